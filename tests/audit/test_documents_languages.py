"""The GDPR documents in every EU/EEA language (issue #14, point 5): the record of
processing, the LIA and the notice are written entirely in the chosen language, with
numbers and dates as that language writes them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from babel.messages.extract import extract
from typer.testing import CliRunner

from consentry import i18n
from consentry.audit import build_documents
from consentry.audit import documents as documents_module
from consentry.audit.documents import LedgerFacts, render
from consentry.commands.audit import top as accountability_commands
from consentry.ledger import Ledger
from consentry.policy import load_policy

CUTOFF = datetime(2024, 6, 26, tzinfo=UTC)
FACTS = LedgerFacts(watermark=4321, objecting_now=1234, consenting_now=5, notified=1234567, erasure_requests=2,
                    snapshots=3, models=1)
SLUGS = ("record-of-processing", "legitimate-interest-assessment", "notice")


def _msgids() -> list[str]:
    with Path(documents_module.__file__).open("rb") as fh:
        found = extract("python", fh, keywords={"_": None, "N_": None})
        return sorted({m[0] if isinstance(m, tuple) else m for _line, m, _comments, _context in found})


MSGIDS = _msgids()
#: The English text of the msgids, cut at their placeholders; a piece this long never reads the same translated.
ENGLISH = sorted({piece.strip() for m in MSGIDS for piece in re.split(r"%\(\w+\)s", m) if len(piece.strip()) >= 20})


def rendered(lang: str, policy: str = "recommended") -> dict[str, str]:
    """Every document in Markdown and HTML (unescaped, so text compares as text)."""
    docs = build_documents(load_policy(policy), FACTS, cutoff=CUTOFF, language=lang)
    return {f"{slug}.{fmt}": html.unescape(render(docs.get(slug), fmt)) for slug in SLUGS for fmt in ("md", "html")}


def test_the_english_pieces_are_many_and_come_from_the_documents() -> None:
    assert len(MSGIDS) > 100 and len(ENGLISH) > 80
    out = "\n".join(rendered("en", "meta-2024").values())
    assert "Record of processing activities" in out and "Objections are NOT honoured in" in out


@pytest.mark.parametrize("lang", sorted(set(i18n.LANGUAGES) - {"en"}))
@pytest.mark.parametrize("policy", ["recommended", "meta-2024", "consent-only"])
def test_every_document_is_written_in_the_chosen_language(lang: str, policy: str) -> None:
    _ = i18n.gettext(lang)
    for name, text in rendered(lang, policy).items():
        left = [piece for piece in ENGLISH if piece in text]
        assert not left, (lang, name, left)
        assert "%(" not in text, (lang, name)
        if name.endswith(".html"):
            assert f'<html lang="{lang}">' in text
            assert "<strong>Gap:</strong>" not in text
    if policy == "meta-2024":  # its gaps carry the translated label
        assert f"<strong>{_('Gap:')}</strong>" in rendered(lang, policy)["legitimate-interest-assessment.html"]


def test_german_documents_use_german_terms_numbers_and_dates() -> None:
    out = rendered("de")
    record, lia, notice = out["record-of-processing.md"], out["legitimate-interest-assessment.md"], out["notice.md"]
    assert record.startswith("# Verzeichnis von Verarbeitungstätigkeiten (Art. 30 DSGVO)")
    assert "berechtigtes Interesse (Art. 6 Abs. 1 Buchst. f DSGVO)" in record
    assert "| Personen mit wirksamem Widerspruch | 1.234 |" in record and "1.234.567" in record
    assert "Europäische Union" in record and "Überall sonst" in record  # where each jurisdiction applies
    assert "[Datenschutzbeauftragte(r): Name und Kontaktdaten]" in record  # the placeholders too
    assert lia.startswith("# Abwägung berechtigter Interessen (Entwurf)") and "Widerspruchsrecht" in lia
    assert "für einen Stichtag am 26. Juni 2024" in notice


@pytest.mark.parametrize(("lang", "number"), [("en", "1,234"), ("de", "1.234"), ("fr", "1\u202f234"), ("pl", "1\u00a0234")])
def test_numbers_are_grouped_as_the_language_groups_them(lang: str, number: str) -> None:
    record = rendered(lang)["record-of-processing.md"]
    assert f"| {number} |" in record and (lang == "en" or "1,234" not in record)


def test_documents_command_writes_the_chosen_language(ledger: Ledger, tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(accountability_commands)
    r = CliRunner().invoke(app, ["documents", "--policy", "recommended", "--out", str(tmp_path), "--ledger", ledger.url,
                                 "--cutoff", "2024-06-26", "--language", "de"])
    assert r.exit_code == 0, r.output
    record = (tmp_path / "record-of-processing.md").read_text(encoding="utf-8")
    lia = (tmp_path / "legitimate-interest-assessment.html").read_text(encoding="utf-8")
    assert "Verzeichnis von Verarbeitungstätigkeiten" in record and "Record of processing" not in record
    assert '<html lang="de">' in lia and "Abwägung berechtigter Interessen" in lia
    assert "Legitimate Interest Assessment" not in lia
