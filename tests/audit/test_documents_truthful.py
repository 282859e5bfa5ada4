"""The GDPR documents claim only what the policy does (a trial of `consentry
documents --policy meta-2024`): the Art. 30 record said that objections take
effect the moment they are received and that objectors are purged from
existing snapshots, while its own table said objections are NOT honoured in
rest_of_world; and its facts counted 75 "people whose objection is in force",
18 of them in rest_of_world, where the policy ignores them.

Real parts: a SQLite ledger, an export on disk, the `documents` command."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import typer
from typer.testing import CliRunner

from consentry.audit import build_documents, ledger_facts
from consentry.audit.documents import render
from consentry.commands.audit import top as accountability_commands
from consentry.ledger import Channel, EventType, Ledger, NewEvent
from consentry.policy import load_policy
from consentry.sources import Export
from exportkit import item, user, write_export

CUTOFF = datetime(2024, 6, 26, tzinfo=UTC)
AT = "2024-01-02T00:00:00Z"


def _objections(ledger: Ledger) -> None:
    """Two objectors in Europe, one in the US, one whose country is unknown, one not in the export;
    and one in Europe who withdrew (not in force)."""
    ledger.append([NewEvent(user_id=u, type=EventType.objected, at=AT, channel=Channel.web)
                   for u in ("de1", "fr1", "us1", "nowhere", "gone")]
                  + [NewEvent(user_id="de2", type=EventType.objected, at=AT, channel=Channel.web),
                     NewEvent(user_id="de2", type=EventType.objection_withdrawn, at="2024-01-03T00:00:00Z",
                              channel=Channel.web)])


def _export(tmp_path: Path) -> Export:
    users = [user("de1", country="DE"), user("de2", country="DE"), user("fr1", country="FR"),
             user("us1", country="US"), user("nowhere", country=None)]
    return Export(write_export(tmp_path / "export", users, [item("i1", "de1")], []))


def _md(docs, slug: str) -> str:  # noqa: ANN001
    return render(docs.get(slug), "md")


def _facts_rows(text: str) -> dict[str, str]:
    return {m.group(1).strip(): m.group(2).strip() for m in re.finditer(r"^\| ([^|]+) \| ([\d.,\s]+) \|$", text, re.MULTILINE)}


def test_meta_2024_documents_claim_only_what_it_does(ledger: Ledger, tmp_path: Path) -> None:
    _objections(ledger)
    facts = ledger_facts(ledger.reader, export=_export(tmp_path))
    docs = build_documents(load_policy("meta-2024"), facts, cutoff=CUTOFF)
    record, lia = _md(docs, "record-of-processing"), _md(docs, "legitimate-interest-assessment")
    for text in (record, lia):
        assert "Objections need no reason and take effect the moment they are received." not in text
        assert "People who object or ask for erasure are purged from existing training snapshots." not in text
        assert "people whose objection is in force |" not in text
    security = "\n".join(b.text or " ".join(b.items) for b in docs.get("record-of-processing").section("security").blocks)
    assert ("Objections need no reason and take effect the moment they are received in europe; in rest_of_world "
            "they are recorded but not honoured.") in security
    assert ("People who ask for erasure, and people in europe who object, are purged from existing training "
            "snapshots.") in record
    for text in (record, lia):
        rows = _facts_rows(text)
        # de1, fr1 in Europe; us1 and `nowhere` (unknown country: rest_of_world) are not honoured; `gone` is not in the export
        assert rows["people whose objection is honoured under this policy"] == "2", rows
        assert rows["people whose objection is recorded but not honoured under this policy"] == "2", rows
        assert rows["people whose objection is recorded, in a jurisdiction this document cannot tell"] == "1", rows


def test_without_the_export_the_documents_do_not_guess(ledger: Ledger, tmp_path: Path) -> None:
    """`consentry documents` reads the ledger only, which holds no countries:
    the objections are then counted as recorded, not as honoured."""
    _objections(ledger)
    app = typer.Typer()
    app.add_typer(accountability_commands)
    out = tmp_path / "docs"
    r = CliRunner().invoke(app, ["documents", "--policy", "meta-2024", "--out", str(out), "--ledger", ledger.url,
                                 "--cutoff", "2030-01-01"])
    assert r.exit_code == 0, r.output
    record = (out / "record-of-processing.md").read_text()
    assert "take effect the moment they are received." not in record
    assert "in rest_of_world they are recorded but not honoured" in record
    rows = _facts_rows(record)
    assert "people whose objection is in force" not in rows
    assert rows["people whose objection is recorded, in a jurisdiction this document cannot tell"] == "5", rows
    assert "The ledger holds no countries" in record


def test_a_policy_that_honours_every_objection_says_so_as_before(ledger: Ledger, tmp_path: Path) -> None:
    _objections(ledger)
    for facts in (ledger_facts(ledger.reader), ledger_facts(ledger.reader, export=_export(tmp_path))):
        record = _md(build_documents(load_policy("recommended"), facts, cutoff=CUTOFF), "record-of-processing")
        assert "Objections need no reason and take effect the moment they are received." in record
        assert "People who object or ask for erasure are purged from existing training snapshots." in record
        assert _facts_rows(record)["people whose objection is in force"] == "5"


def test_german_says_the_same(ledger: Ledger, tmp_path: Path) -> None:
    _objections(ledger)
    facts = ledger_facts(ledger.reader, export=_export(tmp_path))
    de = _md(build_documents(load_policy("meta-2024"), facts, cutoff=CUTOFF, language="de"), "record-of-processing")
    en = _md(build_documents(load_policy("meta-2024"), facts, cutoff=CUTOFF, language="en"), "record-of-processing")
    assert "Widersprüche bedürfen keiner Begründung und werden mit ihrem Eingang wirksam." not in de
    assert "in rest_of_world werden sie erfasst, aber nicht berücksichtigt" in de
    assert sorted(_facts_rows(de).values()) == sorted(_facts_rows(en).values())
    assert len(_facts_rows(de)) == len(_facts_rows(en)) == 8


def test_documents_data_gives_the_honoured_split(ledger: Ledger, tmp_path: Path) -> None:
    """With --data the command counts, per the policy, which objections in force are honoured
    (the library could; the command had no way to give it the export)."""
    _objections(ledger)
    _export(tmp_path)
    app = typer.Typer()
    app.add_typer(accountability_commands)
    out = tmp_path / "docs"
    r = CliRunner().invoke(app, ["documents", "--policy", "meta-2024", "--out", str(out), "--ledger", ledger.url,
                                 "--data", str(tmp_path / "export")])
    assert r.exit_code == 0, r.output
    rows = _facts_rows((out / "record-of-processing.md").read_text())
    assert rows["people whose objection is honoured under this policy"] == "2", rows
    assert rows["people whose objection is recorded but not honoured under this policy"] == "2", rows
