"""GDPR documents from the policy and the ledger (issue #6 part 3): a change of
policy must show in the documents, and the ledger's facts must be the ledger's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from consentry.audit import Controller, build_documents, write_documents
from consentry.audit.documents import ledger_facts, render
from consentry.commands.audit import top as accountability_commands
from consentry.ledger import Channel, EventType, Ledger, NewEvent
from consentry.policy import load_policy

CUTOFF = datetime(2024, 6, 26, tzinfo=UTC)


def docs_for(policy: str, ledger: Ledger, **kw):  # noqa: ANN201
    return build_documents(load_policy(policy), ledger_facts(ledger.reader), Controller(**kw), cutoff=CUTOFF)


def md(docs, slug: str, anchor: str | None = None) -> str:  # noqa: ANN001
    doc = docs.get(slug)
    if anchor is None:
        return render(doc, "md")
    section = doc.section(anchor)
    return "\n".join(b.text or " ".join(b.items) or " ".join(" ".join(r) for r in b.rows) for b in section.blocks)


def test_safeguards_follow_the_policy(ledger: Ledger) -> None:
    rec, meta = docs_for("recommended", ledger), docs_for("meta-2024", ledger)
    rec_s = md(rec, "legitimate-interest-assessment", "safeguards")
    meta_s = md(meta, "legitimate-interest-assessment", "safeguards")
    assert rec_s != meta_s
    # meta-2024: objections and notice only in Europe, no age-at-posting rule, tagged people unchecked
    assert "Objections are NOT honoured in rest_of_world" in meta_s
    assert "No notice is given in rest_of_world" in meta_s
    assert "Age at posting is not checked" in meta_s
    assert "People tagged in photos are not checked" in meta_s
    assert "Right to object: honoured in europe." in meta_s
    # recommended: everywhere, and no gaps
    assert "NOT honoured" not in rec_s and "Gap" not in md(rec, "legitimate-interest-assessment")
    assert "Right to object: honoured in europe, rest_of_world." in rec_s
    assert "already when they posted" in rec_s
    # the notice: no notice outside Europe under meta-2024
    assert "rest_of_world: no notice" in md(meta, "notice")
    assert md(rec, "notice").count("Subject: ") == 2 and md(meta, "notice").count("Subject: ") == 1
    # the record names the policy's hash, so the document can be matched to the decisions
    for name, d in (("recommended", rec), ("meta-2024", meta)):
        assert load_policy(name).hash in md(d, "record-of-processing")


def test_the_lia_lists_the_transforms_the_policy_really_applies(ledger: Ledger, tmp_path: Path) -> None:
    """Finding (#14 review): the LIA said "Transforms applied to kept items: none
    (no redaction ...)" of `recommended`, which redacts e-mails, phones, IBANs,
    cards and mentions and strips metadata. It now reads the policy's transforms."""
    from consentry.policy import preset_text

    def safeguards_of(yaml_text: str, name: str) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml_text.replace("name: recommended", f"name: {name}"))  # an edited file has its own name
        return md(docs_for(str(path), ledger), "legitimate-interest-assessment", "safeguards")

    rec = md(docs_for("recommended", ledger), "legitimate-interest-assessment", "safeguards")
    assert "none (no redaction" not in rec
    for words in ("e-mail addresses replaced by [email]", "phone numbers replaced by [phone]",
                  "bank account numbers (IBAN) replaced by [iban]", "payment card numbers replaced by [card]",
                  "@mentions of people who may not be used hidden", "photos re-encoded without their metadata"):
        assert words in rec
    assert "blurred" not in rec
    blur = safeguards_of(preset_text("recommended").replace("tagged_people: require", "tagged_people: blur"), "blur")
    assert "blur_faces" in blur and "faces of tagged people who could not be used blurred" in blur
    off = preset_text("recommended")
    for flag in ("redact_emails", "redact_phones", "redact_ibans", "redact_cards", "mentions", "strip_exif"):
        off = re.sub(rf"{flag}: true", f"{flag}: false", off)
    bare = safeguards_of(off, "bare")
    assert "Transforms applied to kept items: none (no redaction or blurring is configured in this policy)." in bare
    only_phones = safeguards_of(off.replace("redact_phones: false", "redact_phones: true"), "phones")
    assert "Transforms applied to kept items: phone numbers replaced by [phone]." in only_phones


def test_ledger_facts_are_counted_from_the_ledger(ledger: Ledger) -> None:
    at = "2024-01-01T00:00:00Z"
    ledger.append([
        NewEvent(user_id="a", type=EventType.notified, at=at, channel=Channel.email),
        NewEvent(user_id="a", type=EventType.objected, at="2024-01-02T00:00:00Z", channel=Channel.web),
        NewEvent(user_id="b", type=EventType.objected, at=at, channel=Channel.web),
        NewEvent(user_id="b", type=EventType.objection_withdrawn, at="2024-01-03T00:00:00Z", channel=Channel.web),
        NewEvent(user_id="c", type=EventType.consent_given, at=at, channel=Channel.api),
        NewEvent(user_id="d", type=EventType.erasure_requested, at=at, channel=Channel.cli),
    ])
    facts = ledger_facts(ledger.reader)
    with ledger.reader.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        assert facts.objecting_now == q("SELECT count(*) FROM person_state WHERE objection = 'objected'") == 1
        assert facts.consenting_now == q("SELECT count(*) FROM person_state WHERE consent = 'consent_given'") == 1
        assert facts.notified == 1 and facts.erasure_requests == 1
        assert facts.watermark == q("SELECT max(seq) FROM ledger_events")
    out = md(build_documents(load_policy("recommended"), facts, cutoff=CUTOFF), "record-of-processing")
    assert re.search(r"\| people whose objection is in force \| 1 \|", out)


@pytest.mark.slow
def test_documents_command_writes_markdown_and_html(ledger: Ledger, tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(accountability_commands)
    runner = CliRunner()
    r = runner.invoke(app, ["documents", "--policy", "meta-2024", "--out", str(tmp_path / "d"), "--ledger", ledger.url,
                            "--controller", "Pixgram B.V., Amsterdam <b>", "--platform", "Pixgram", "--cutoff", "2024-06-26"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == sorted(f"{s}.{x}" for s in ("record-of-processing", "legitimate-interest-assessment", "notice")
                           for x in ("md", "html"))
    html = (tmp_path / "d" / "record-of-processing.html").read_text()
    assert "Pixgram B.V., Amsterdam &lt;b&gt;" in html  # escaped, never raw HTML
    assert "[data protection officer" in html  # what was not given stays a visible placeholder
    assert "June 26, 2024" in (tmp_path / "d" / "notice.md").read_text()
    lia = (tmp_path / "d" / "legitimate-interest-assessment.html").read_text()
    assert lia.count('class="gap"') == 5
    bad = runner.invoke(app, ["documents", "--out", str(tmp_path / "x"), "--ledger", ledger.url, "--language", "xx"])
    assert bad.exit_code == 2 and "--language" in bad.output


@pytest.mark.slow
def test_an_option_that_replaces_part_of_the_controller_file_is_named(ledger: Ledger, tmp_path: Path) -> None:
    """A README walk-through: with section 6's controller.yaml (Pixgram Europe
    Ltd., Dublin, DPO Ana Silva) and section 8's `--controller "Pixgram B.V.,
    ..."`, the record named the one company with the other's DPO, without a word."""
    app = typer.Typer()
    app.add_typer(accountability_commands)
    (tmp_path / "controller.yaml").write_text("platform: Pixgram\nname: Pixgram Europe Ltd.\naddress: 1 Harbour Square, Dublin 2\n"
                                              "dpo: Ana Silva, dpo@pixgram.example\n")
    r = CliRunner().invoke(app, ["documents", "--out", str(tmp_path / "d"), "--ledger", ledger.url,
                                 "--controller-file", str(tmp_path / "controller.yaml"),
                                 "--controller", "Pixgram B.V., Keizersgracht 1, Amsterdam"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stderr.split())
    assert f"note: the controller file {tmp_path / 'controller.yaml'} is used for what no option gives; --controller " \
           "replaces its name and address ('Pixgram Europe Ltd., 1 Harbour Square, Dublin 2')" in said, said
    assert "the DPO (--dpo)" not in said and "the platform (--platform)" not in said  # the file gave the rest
    r = CliRunner().invoke(app, ["documents", "--out", str(tmp_path / "e"), "--ledger", ledger.url,
                                 "--controller-file", str(tmp_path / "controller.yaml")])
    assert r.exit_code == 0 and "replaces" not in r.stderr, r.output


@pytest.mark.parametrize("lang,word", [("de", "Widerspruch"), ("nl", "bezwaar")])
def test_notice_in_another_language(ledger: Ledger, lang: str, word: str) -> None:
    docs = build_documents(load_policy("recommended"), ledger_facts(ledger.reader), cutoff=CUTOFF, language=lang)
    assert word.lower() in md(docs, "notice").lower()


def test_the_lia_says_what_happens_to_objections_of_people_without_an_account(ledger: Ledger, tmp_path: Path) -> None:
    """DPO finding: the documents never mentioned rule 15. meta-2024 (which does not honour third-party
    objections) listed four gaps but not this one; recommended's safeguards did not list rule 15; and the
    record sends people who are in content without being tagged to the LIA, which said nothing of them."""
    from consentry.policy import preset_text

    meta = docs_for("meta-2024", ledger)
    meta_s = md(meta, "legitimate-interest-assessment", "safeguards")
    gap_text = ("Objections from people without an account who appear in someone else’s photos are NOT honoured: "
                "their objection is recorded, but the photos are still used.")
    assert gap_text in meta_s and "Gaps in this policy (5):" in meta_s
    assert [b.text for b in meta.get("legitimate-interest-assessment").section("safeguards").blocks
            if b.kind == "gap"][-1] == gap_text
    assert gap_text in md(meta, "legitimate-interest-assessment", "others")  # the section the record points to
    assert "(see the LIA)" in md(meta, "record-of-processing")

    rec = docs_for("recommended", ledger)
    rec_s = md(rec, "legitimate-interest-assessment", "safeguards")
    left_out = ("Objections from people without an account: someone who appears in another person’s photo can object "
                "in the privacy center. From the moment they confirm their request, the photo is left out of training "
                "sets built from then on, and removed from training sets built before, at their next purge.")
    assert left_out in rec_s and "NOT honoured" not in rec_s
    others = md(rec, "legitimate-interest-assessment", "others")
    assert left_out in others and "without being tagged, and people without an account, are not checked" in others
    assert "Gap" not in md(rec, "legitimate-interest-assessment")

    path = tmp_path / "blur.yaml"  # under blur, every face in the photo is blurred instead
    path.write_text(preset_text("recommended").replace("tagged_people: require", "tagged_people: blur")
                    .replace("name: recommended", "name: blur"))
    blur_s = md(docs_for(str(path), ledger), "legitimate-interest-assessment", "safeguards")
    assert "From the moment they confirm their request, every face in the photo is blurred (transform: blur_faces)" \
        in blur_s and "the photo is left out" not in blur_s and "at their next purge" in blur_s


def test_the_documents_say_where_people_whose_country_is_unknown_fall(ledger: Ledger, tmp_path: Path) -> None:
    from consentry.policy import preset_text

    default = "People whose country is unknown fall under rest_of_world, the jurisdiction for everywhere else."
    for name in ("recommended", "meta-2024"):
        docs = docs_for(name, ledger)
        assert default in md(docs, "record-of-processing", "purpose")  # where the jurisdictions are described
        assert default in md(docs, "legitimate-interest-assessment", "safeguards")
    path = tmp_path / "unknown.yaml"
    text = preset_text("meta-2024").replace("tagged_people: ignore", "tagged_people: ignore\nunknown_country: europe")
    path.write_text(text.replace("name: meta-2024", "name: unknown"))
    named = md(docs_for(str(path), ledger), "record-of-processing", "purpose")
    assert "People whose country is unknown fall under europe (European Union, " in named
    assert named.rstrip().endswith("United Kingdom), as the policy specifies.")


def _today(lang: str) -> set[str]:
    from babel.dates import format_date

    return {format_date(datetime.now(UTC).date(), "long", locale=lang)}


def test_the_record_and_the_lia_carry_the_date_they_were_generated(ledger: Ledger) -> None:
    """DPO finding: "Read from the consent ledger up to event #N, when this document was generated", and
    no date anywhere. The date (UTC) now opens both documents, as the language writes dates."""
    before = _today("en")
    docs = docs_for("recommended", ledger)
    days = before | _today("en")  # a run across midnight UTC
    record, lia = md(docs, "record-of-processing"), md(docs, "legitimate-interest-assessment")
    assert any(f"Generated on {d} (UTC) from the policy “recommended”" in record for d in days), record[:400]
    assert any(f"A draft generated on {d} (UTC) from the policy “recommended”" in lia for d in days), lia[:400]


def test_the_new_sentences_in_german(ledger: Ledger) -> None:
    def german(policy: str):
        before = _today("de")
        docs = build_documents(load_policy(policy), ledger_facts(ledger.reader), cutoff=CUTOFF, language="de")
        return docs, before | _today("de")

    meta, days = german("meta-2024")
    record, lia = md(meta, "record-of-processing"), md(meta, "legitimate-interest-assessment")
    assert any(f"Erstellt am {d} (UTC) aus der Richtlinie „meta-2024“" in record for d in days), record[:400]
    assert any(f"Ein Entwurf, erstellt am {d} (UTC) aus der Richtlinie „meta-2024“" in lia for d in days), lia[:400]
    meta_s = md(meta, "legitimate-interest-assessment", "safeguards")
    assert "Lücken in dieser Richtlinie (5):" in meta_s
    assert "Widersprüche von Personen ohne Konto, die auf Fotos anderer zu sehen sind, werden NICHT berücksichtigt" \
        in meta_s
    assert "Personen, deren Land unbekannt ist, fallen unter den Rechtsraum rest_of_world" in meta_s
    assert "Personen, deren Land unbekannt ist" in md(meta, "record-of-processing", "purpose")
    rec, _days = german("recommended")
    rec_s = md(rec, "legitimate-interest-assessment", "safeguards")
    assert "Widersprüche von Personen ohne Konto: Wer auf dem Foto einer anderen Person zu sehen ist, kann im " \
           "Datenschutzcenter widersprechen" in rec_s and "NICHT" not in rec_s
    assert rec.get("legitimate-interest-assessment").section("others").heading == \
        "Personen in Inhalten, die nicht markiert sind oder kein Konto haben"
