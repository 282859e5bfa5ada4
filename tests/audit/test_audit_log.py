"""The audit hash chain: every action appends a record in its own transaction,
and any edit, deletion, insertion, reordering or truncation is found and named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, text, update
from typer.testing import CliRunner

from consentry.access import Admins, ApiClients
from consentry.audit.log import checkpoint, export_jsonl, verify
from consentry.cli import app
from consentry.engine import evaluate
from consentry.ledger import Ledger, NewEvent
from consentry.ledger.tables import audit_head, audit_log, events
from consentry.policy import load_policy
from consentry.snapshots import build
from consentry.snapshots.lineage import register_model
from consentry.snapshots.purge import purge
from consentry.sources import open_export

from exportkit import item, user, write_export

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

T = datetime(2024, 6, 26, tzinfo=UTC)


@pytest.fixture
def led(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.append([NewEvent(user_id=f"u{i}", type="notified", at="2024-01-01T00:00:00Z", channel="email") for i in range(5)])
    ledger.record(NewEvent(user_id="u1", type="objected", at="2024-02-01T00:00:00Z", channel="web", note="private words"))
    yield ledger
    ledger.close()


def kinds(led: Ledger) -> list[str]:
    with led.engine.connect() as conn:
        return [k for (k,) in conn.execute(select(audit_log.c.kind).order_by(audit_log.c.seq))]


def test_ledger_events_are_chained_without_copying_notes(led) -> None:
    r = verify(led)
    assert r.ok and r.records == 6 == r.head_seq and kinds(led) == ["ledger_event"] * 6
    with led.engine.connect() as conn:
        data = json.loads(conn.execute(select(audit_log.c.data).where(audit_log.c.seq == 6)).scalar_one())
    assert data["type"] == "objected" and data["note"].startswith("sha256:") and "private" not in json.dumps(data)


@pytest.mark.parametrize("tamper, seq, words", [
    ("edit", 3, "does not match its hash"),
    ("delete", 4, "record 3 is missing"),
    ("insert", 4, "does not follow the record before it"),
    ("reorder", 3, "does not follow the record before it"),
    ("truncate", 5, "records were removed from the end"),
    ("ledger", 3, "was changed after it was recorded"),
])
def test_each_kind_of_tampering_is_found_and_named(led, tamper, seq, words) -> None:
    with led.engine.begin() as conn:
        rows = {r["seq"]: dict(r) for r in conn.execute(select(audit_log)).mappings()}
        if tamper == "edit":
            conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="someone"))
        elif tamper == "delete":
            conn.execute(delete(audit_log).where(audit_log.c.seq == 3))
        elif tamper == "insert":  # a forged record spliced in after 3, the rest shifted up
            for s in sorted(rows, reverse=True):
                if s > 3:
                    conn.execute(update(audit_log).where(audit_log.c.seq == s).values(seq=s + 1))
            conn.execute(insert(audit_log).values({**rows[3], "seq": 4, "kind": "forged"}))
        elif tamper == "reorder":  # swap the contents of 3 and 4
            for a, b in ((3, 4), (4, 3)):
                conn.execute(update(audit_log).where(audit_log.c.seq == a).values(
                    {k: v for k, v in rows[b].items() if k != "seq"}))
        elif tamper == "truncate":
            conn.execute(delete(audit_log).where(audit_log.c.seq == 6))
        elif tamper == "ledger":
            conn.execute(update(events).where(events.c.seq == 3).values(type="consent_given"))
    r = verify(led)
    assert not r.ok and r.first_bad.seq == seq and words in r.first_bad.problem, r.first_bad


def test_every_action_appends_a_record(tmp_path, led) -> None:
    export = write_export(tmp_path / "export", [user(f"u{i}") for i in range(5)], [item(f"i{i}", f"u{i}") for i in range(5)])
    exp = open_export(export)[0]
    pol = load_policy("recommended")
    evaluate(exp, led, pol, T, tmp_path / "d.parquet")
    build(exp, led, pol, T, "s", out=tmp_path / "s")
    register_model(led, "m", "s", actor="cli:test")
    led.record(NewEvent(user_id="u2", type="objected", at=datetime.now(UTC), channel="api"))
    purge(led, "s")
    Admins(led.engine).add("dpo", "a long password 123")
    cid, _ = ApiClients(led.engine).create("platform")
    ApiClients(led.engine).revoke(cid)
    got = kinds(led)[6:]
    assert got == ["evaluation", "snapshot_built", "model_registered", "ledger_event", "snapshot_purged",
                   "admin_set", "api_client_created", "api_client_revoked"]
    assert verify(led).ok
    out = tmp_path / "audit.jsonl"
    assert export_jsonl(led, out) == len(kinds(led))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[-1]["kind"] == "api_client_revoked" and lines[7]["data"]["name"] == "s" and lines[0]["at"].endswith("Z")


def test_a_failed_action_leaves_no_record(tmp_path, led) -> None:
    before = kinds(led)
    with pytest.raises(Exception):
        register_model(led, "m", "no-such-snapshot")
    with pytest.raises(Exception):
        Admins(led.engine).add("x", "short")
    assert kinds(led) == before


def _rewrite_channel(led: Ledger, seq: int, old: str, new: str) -> str:
    """What someone able to write the database does: event `seq`'s channel
    changed, its audit record rehashed and the head moved to match. The new head."""
    from consentry.ledger.chain import canonical, link

    with led.engine.begin() as conn:
        r = dict(conn.execute(select(audit_log).where(audit_log.c.seq == seq)).mappings().one())
        data = r["data"].replace(f'"{old}"', f'"{new}"')
        new_hash = link(r["prev_hash"], canonical(seq, r["at_us"], r["kind"], r["actor"], r["subject"], data))
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(data=data, hash=new_hash))
        conn.execute(update(events).where(events.c.seq == seq).values(channel=new))
        conn.execute(update(audit_head).values(last_hash=new_hash))
    return new_hash


def test_signed_checkpoints_catch_a_rewritten_chain(tmp_path, led) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    seq, h = checkpoint(led, pem)
    assert seq == 6 and verify(led, public_key=pub).checkpoints == 1
    # Someone rewrites record 6 and recomputes its hash and the head: the chain alone cannot tell ...
    _rewrite_channel(led, 6, "web", "api")
    assert verify(led).ok
    # ... but the signed checkpoint can.
    bad = verify(led, public_key=pub)
    assert not bad.ok and bad.first_bad.seq == 6 and "signed checkpoint" in bad.first_bad.problem
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    wrong = verify(led, public_key=other).first_bad
    assert not wrong.broken and "names another signing key" in wrong.problem and "audit-key.pub.pem" in wrong.problem


def test_verify_with_the_wrong_public_key_does_not_call_an_intact_log_broken(tmp_path, led) -> None:
    """A README walk-through: `audit verify --public-key` with an old key said
    "audit log broken at record N" of a log nobody had touched."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def pem_pair(k):
        return (k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    signer, _ = pem_pair(Ed25519PrivateKey.generate())
    _, old_pub = pem_pair(Ed25519PrivateKey.generate())
    checkpoint(led, signer)
    (tmp_path / "old.pub.pem").write_bytes(old_pub)
    url = led.engine.url.render_as_string(hide_password=False)
    r = CliRunner().invoke(app, ["audit", "verify", "--ledger", url, "--public-key", str(tmp_path / "old.pub.pem")])
    said = " ".join(r.stderr.split())
    assert r.exit_code == 1 and "audit log not verified at record 6" in said and "broken" not in said, said
    assert "names another signing key" in said and "public half of the audit key" in said, said


def _keys():  # noqa: ANN202 - (private PEM, public PEM)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    return (k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def test_checkpoints_kept_outside_catch_deleted_checkpoints_and_a_rollback(tmp_path) -> None:
    """A DPO's trial: `DELETE FROM audit_checkpoints` and then a rewrite of the
    whole chain, or the database file put back to an older copy (an objection
    gone with it), passed `audit verify --public-key` as "intact, 0 signed
    checkpoints verified". Checkpoints are now also appended to a file kept
    elsewhere, and verify checks the database against it; with a key and no
    checkpoint at all, it says the log could not be verified."""
    import shutil

    from consentry.ledger.tables import audit_checkpoints

    pem, pub = _keys()
    kept = tmp_path / "elsewhere" / "checkpoints.jsonl"
    kept.parent.mkdir()
    db = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{db}") as led:
        led.append([NewEvent(user_id=f"u{i}", type="notified", at="2024-01-01T00:00:00Z", channel="email") for i in range(3)])
        none_yet = verify(led, public_key=pub)
        assert not none_yet.ok and not none_yet.first_bad.broken and "no signed checkpoint" in none_yet.first_bad.problem
        assert checkpoint(led, pem, out=kept) == (3, led_head := verify(led).head_hash)
        r = verify(led, public_key=pub, checkpoints=kept)
        assert r.ok and r.checkpoints == 1, r.first_bad
    shutil.copy(db, tmp_path / "older.db")
    with Ledger(f"sqlite:///{db}") as led:
        led.record(NewEvent(user_id="u1", type="objected", at=datetime.now(UTC), channel="web"))
        checkpoint(led, pem, out=kept)
        assert verify(led, public_key=pub, checkpoints=kept).checkpoints == 2
    assert [json.loads(line)["seq"] for line in kept.read_text().splitlines()] == [3, 4]

    # The file put back to the older copy: the objection is gone, and the database alone agrees with itself.
    shutil.copy(tmp_path / "older.db", db)
    with Ledger(f"sqlite:///{db}") as led:
        assert verify(led, public_key=pub).ok
        bad = verify(led, public_key=pub, checkpoints=kept).first_bad
        assert bad.broken and bad.seq == 4 and "older copy" in bad.problem and "line 2" in bad.problem, bad

        # Its checkpoints deleted, then the whole chain rewritten (record 3 and the head recomputed).
        with led.engine.begin() as conn:
            conn.execute(delete(audit_checkpoints))
        alone = verify(led, public_key=pub).first_bad
        assert not alone.broken and "no signed checkpoint" in alone.problem
        bad = verify(led, public_key=pub, checkpoints=kept).first_bad
        assert bad.broken and bad.seq == 3 and "missing from the database" in bad.problem, bad
        assert _rewrite_channel(led, 3, "email", "in_app") != led_head
        assert verify(led).ok
        bad = verify(led, public_key=pub, checkpoints=kept).first_bad
        assert bad.broken and bad.seq == 3 and "the chain was rewritten" in bad.problem, bad


def test_cli_checkpoints_kept_outside(tmp_path, led) -> None:
    pem, pub = _keys()
    (tmp_path / "k.pem").write_bytes(pem)
    (tmp_path / "k.pub.pem").write_bytes(pub)
    url = led.engine.url.render_as_string(hide_password=False)
    kept = tmp_path / "cp.jsonl"
    r = CliRunner().invoke(app, ["audit", "checkpoint", "--key", str(tmp_path / "k.pem"), "--out", str(kept), "--ledger", url])
    assert r.exit_code == 0 and f"appended to {kept}" in " ".join(r.stdout.split()) and kept.is_file(), r.output
    r = CliRunner().invoke(app, ["audit", "verify", "--checkpoints", str(kept), "--ledger", url])
    assert r.exit_code == 2 and "pass --public-key too" in " ".join(r.stderr.split()), r.output
    r = CliRunner().invoke(app, ["audit", "verify", "--checkpoints", str(kept), "--public-key", str(tmp_path / "k.pub.pem"),
                                 "--ledger", url])
    assert r.exit_code == 0 and "1 signed checkpoint verified" in r.stdout, r.output
    (tmp_path / "junk.jsonl").write_text('{"seq": 6}\n')
    r = CliRunner().invoke(app, ["audit", "verify", "--checkpoints", str(tmp_path / "junk.jsonl"), "--public-key",
                                 str(tmp_path / "k.pub.pem"), "--ledger", url])
    assert r.exit_code == 2 and "junk.jsonl:1" in r.stderr and "is not a signed checkpoint" in " ".join(r.stderr.split())


def test_an_edited_head_hash_is_named_as_such(led) -> None:
    """It said "records were removed from the end" when only audit_head's hash was changed."""
    with led.engine.begin() as conn:
        conn.execute(update(audit_head).values(last_hash="00"))
    bad = verify(led).first_bad
    assert "head was changed" in bad.problem and "removed" not in bad.problem, bad


def test_a_finding_without_a_record_is_not_said_to_be_at_the_log(led) -> None:
    """It printed "audit log broken at the log: ..."."""
    from consentry.ledger.tables import head

    with led.engine.begin() as conn:
        conn.execute(update(head).values(last_seq=4))
    r = CliRunner().invoke(app, ["audit", "verify", "--ledger", led.engine.url.render_as_string(hide_password=False)])
    assert r.exit_code == 1 and "audit log broken: the ledger's head says #4" in " ".join(r.stderr.split()), r.stderr


def test_cli_verify_and_export(tmp_path, led) -> None:
    url = str(led.engine.url.render_as_string(hide_password=False))
    r = CliRunner().invoke(app, ["audit", "verify", "--ledger", url])
    assert r.exit_code == 0 and "audit log intact" in r.stdout and "6 records" in r.stdout
    r = CliRunner().invoke(app, ["audit", "export", "--out", str(tmp_path / "a.jsonl"), "--ledger", url])
    assert r.exit_code == 0 and len((tmp_path / "a.jsonl").read_text().splitlines()) == 6
    with led.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(subject="u9"))
    r = CliRunner().invoke(app, ["audit", "verify", "--ledger", url])
    assert r.exit_code == 1 and "audit log broken at record 2" in r.stderr


# -- the ledger's own counters: ledger_head and person_state (issue 11 §5) ----------------------------


@pytest.mark.parametrize("tamper, words", [
    ("lower head", "the ledger's head says #4, but its events go up to #6"),
    ("raise head", "the ledger's head says #9, but its events go up to #6"),
    ("gap", "event #3 is missing"),
    ("edit state", "person_state of u1 differs from the fold of their events"),
    ("delete state", "person_state of u3 differs from the fold of their events"),
    ("extra state", "person_state of ghost differs from the fold of their events"),
    ("added event", "events were added outside consentry"),
    ("edit state seq", "person_state of u0 differs from the fold of their events"),
])
def test_verify_checks_the_ledger_head_and_person_state(led, tamper, words) -> None:
    from consentry.ledger.tables import head, person_state

    with led.engine.begin() as conn:
        if tamper == "lower head":
            conn.execute(update(head).values(last_seq=4))
        elif tamper == "raise head":
            conn.execute(update(head).values(last_seq=9))
        elif tamper == "gap":  # the event and its audit record both removed: the chain is intact, the seqs are not
            conn.execute(delete(events).where(events.c.seq == 3))
            conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(kind="note"))
        elif tamper == "edit state":
            conn.execute(update(person_state).where(person_state.c.user_id == "u1").values(objection=None, objection_us=None))
        elif tamper == "delete state":
            conn.execute(delete(person_state).where(person_state.c.user_id == "u3"))
        elif tamper == "extra state":
            conn.execute(insert(person_state).values(user_id="ghost", objection="objected", objection_us=1, last_seq=2))
        elif tamper == "added event":  # an event written straight into the table, the head moved with it
            row = dict(conn.execute(select(events).where(events.c.seq == 6)).mappings().one())
            conn.execute(insert(events).values({**row, "seq": 7, "event_id": "forged"}))
            conn.execute(update(head).values(last_seq=7))
        elif tamper == "edit state seq":
            conn.execute(update(person_state).where(person_state.c.user_id == "u0").values(last_seq=5))
    if tamper == "gap":  # re-hash the chain from record 3 on, as a careful forger would
        from consentry.ledger.chain import GENESIS, canonical, link

        with led.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()]
            prev = GENESIS
            for r in rows:
                h = link(prev, canonical(r["seq"], r["at_us"], r["kind"], r["actor"], r["subject"], r["data"]))
                conn.execute(update(audit_log).where(audit_log.c.seq == r["seq"]).values(prev_hash=prev, hash=h))
                prev = h
            conn.execute(update(audit_head).values(last_hash=prev))
    r = verify(led)
    assert not r.ok and words in r.first_bad.problem, r.first_bad
    result = CliRunner().invoke(app, ["audit", "verify", "--ledger", led.engine.url.render_as_string(hide_password=False)])
    assert result.exit_code == 1 and words in result.stderr


def test_a_head_behind_its_events_refuses_to_append_with_a_clear_error(led) -> None:
    """Issue 11 §5: a lowered head made the next `consentry object` crash on a duplicate key."""
    from consentry.errors import LedgerError
    from consentry.ledger.tables import head

    with led.engine.begin() as conn:
        conn.execute(update(head).values(last_seq=4))
    with pytest.raises(LedgerError, match="head is behind its events: run `consentry audit verify`"):
        led.record(NewEvent(user_id="u2", type="objected", at="2024-03-01T00:00:00Z"))
    result = CliRunner().invoke(app, ["object", "u2", "--ledger", led.engine.url.render_as_string(hide_password=False)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit) and "audit verify" in result.output
    with led.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 6


_JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(seq=st.integers(0, 2**62), at_us=st.integers(-(2**62), 2**62), kind=st.text(), actor=st.none() | st.text(),
       subject=st.none() | st.text(), data=st.dictionaries(st.text(max_size=12), _JSONABLE, max_size=6))
def test_the_canonical_text_is_what_json_dumps_writes(seq, at_us, kind, actor, subject, data) -> None:
    """chain.canonical puts the record together as text instead of parsing
    `data` and dumping it again (#15 point 5); every hash ever stored must still
    verify, so it must write exactly what the json.dumps form wrote."""
    import json

    from consentry.ledger import chain

    dj = chain.data_json(data)
    before = json.dumps(
        {"seq": seq, "at_us": at_us, "kind": kind, "actor": actor, "subject": subject, "data": json.loads(dj)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    assert chain.canonical(seq, at_us, kind, actor, subject, dj) == before


_OPT_TEXT = st.none() | st.text(max_size=20)


@settings(max_examples=300, deadline=None)
@given(row=st.fixed_dictionaries({
    "seq": st.integers(1, 2**62), "event_id": st.text(max_size=20), "user_id": _OPT_TEXT, "type": st.text(max_size=12),
    "at_us": st.integers(-(2**62), 2**62), "channel": st.text(max_size=8), "note": _OPT_TEXT, "actor": _OPT_TEXT,
    "recorded_us": st.integers(0, 2**62), "item_id": _OPT_TEXT, "imported_from": _OPT_TEXT,
}))
def test_an_events_audit_text_is_what_the_dict_form_writes(row) -> None:
    """chain.event_json writes an imported event's audit data as text; it must
    equal data_json(event_data(row)), which `audit verify` recomputes."""
    from consentry.ledger import chain

    assert chain.event_json(row) == chain.data_json(chain.event_data(row))


# -- an import is chained in groups (#15 point 5) ----------------------------------------------------


@pytest.fixture
def imported(ledger_url, tmp_path, monkeypatch):
    """A ledger with 250 events imported from a file, chained in groups of 100."""
    from consentry.ledger import chain

    monkeypatch.setattr(chain, "GROUP", 100)
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps({"event_id": f"e{i}", "user_id": f"u{i % 40}", "type": "notified",
                                       "at": "2024-01-01T00:00:00Z", "channel": "email"}) + "\n" for i in range(250)))
    ledger = Ledger(ledger_url)
    ledger.import_jsonl(src)
    yield ledger, src
    ledger.close()


def test_an_import_is_chained_as_groups_that_verify(imported) -> None:
    led, src = imported
    assert kinds(led) == ["ledger_events"] * 3
    r = verify(led)
    assert r.ok and r.records == 3, r.first_bad
    with led.engine.connect() as conn:
        groups = [json.loads(d) for (d,) in conn.execute(select(audit_log.c.data).order_by(audit_log.c.seq))]
    assert [(g["first_seq"], g["last_seq"], g["count"]) for g in groups] == [(1, 100, 100), (101, 200, 100), (201, 250, 50)]
    assert {g["imported_from"] for g in groups} == {str(src)} and all(g["digest"].startswith("sha256:") for g in groups)
    # A later live event still gets a record of its own, and the chain goes on.
    led.record(NewEvent(user_id="u1", type="objected", at="2024-02-01T00:00:00Z", channel="web"))
    assert kinds(led)[-1] == "ledger_event" and verify(led).ok


@pytest.mark.parametrize("tamper, words", [
    ("edit", "one of ledger events #101-#200, recorded here together, was changed"),
    ("delete", "ledger event #150 is recorded here but missing from the ledger"),
    ("count", "does not match its hash"),
])
def test_tampering_with_a_grouped_event_is_found(imported, tamper, words) -> None:
    led, _ = imported
    with led.engine.begin() as conn:
        if tamper == "edit":
            conn.execute(update(events).where(events.c.seq == 150).values(type="consent_given"))
        elif tamper == "delete":
            conn.execute(delete(events).where(events.c.seq == 150))
        else:  # the group's record says fewer events, without re-hashing
            data = conn.execute(select(audit_log.c.data).where(audit_log.c.seq == 2)).scalar_one()
            conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(data=data.replace('"count":100', '"count":99')))
    r = verify(led)
    assert not r.ok and r.first_bad.seq == 2 and words in r.first_bad.problem, r.first_bad


def test_a_groups_digest_covers_every_field_of_every_event(imported) -> None:
    """Each column the event's own record would hold is in the digest: an edit
    to any one of them, in any event of the group, is caught."""
    led, _ = imported
    for column, value in [("user_id", "someone"), ("at_us", 1), ("channel", "web"), ("note", "x"), ("actor", "x"),
                          ("recorded_us", 1), ("event_id", "forged"), ("item_id", "i9"), ("imported_from", "other.jsonl")]:
        with led.engine.begin() as conn:
            old = conn.execute(select(events.c[column]).where(events.c.seq == 201)).scalar_one()
            conn.execute(update(events).where(events.c.seq == 201).values({column: value}))
        r = verify(led)
        assert not r.ok and r.first_bad.seq == 3, column
        with led.engine.begin() as conn:
            conn.execute(update(events).where(events.c.seq == 201).values({column: old}))
    assert verify(led).ok


def test_events_recorded_live_get_a_record_each_however_many_at_once(ledger_url) -> None:
    """Only an import is chained in groups: a large append (or a group commit
    under load) keeps the per-event records the audit export shows a DPO."""
    with Ledger(ledger_url) as led:
        led.append([NewEvent(user_id=f"u{i}", type="objected", at="2024-01-01T00:00:00Z", channel="api")
                    for i in range(150)])
        assert kinds(led) == ["ledger_event"] * 150 and verify(led).ok


def test_export_to_a_folder_it_cannot_write_says_so_and_names_the_file(tmp_path, led) -> None:
    """It used to name its temporary file ("/proc/x.jsonl.tmp: no such file"), or end in a traceback."""
    url = str(led.engine.url.render_as_string(hide_password=False))
    for out, words in (("/proc/x.jsonl", "/proc/x.jsonl: cannot write in /proc"),
                       (str(tmp_path / "no" / "x.jsonl"), f"{tmp_path / 'no' / 'x.jsonl'}: its folder does not exist"),
                       # `--out ""` (a variable unset) and a folder: a traceback ("PosixPath('.') has an empty name")
                       ("", "is a folder; the audit records are written to one JSONL file"),
                       (str(tmp_path), f"fix: e.g. --out {tmp_path / 'audit.jsonl'}")):
        r = CliRunner().invoke(app, ["audit", "export", "--out", out, "--ledger", url])
        assert r.exit_code == 2 and words in r.output and ".tmp" not in r.output, r.output


def test_the_report_and_documents_check_signed_checkpoints_when_given_the_key(tmp_path, led) -> None:
    """DPO trial: with the last audit record deleted, audit_head set back and the
    database's checkpoints deleted, `audit verify --public-key --checkpoints`
    caught it, but `report` had no such option and said "verified intact".
    Both now take the key and the file kept elsewhere, and refuse."""
    from consentry.ledger.tables import audit_checkpoints

    pem, pub = _keys()
    (tmp_path / "k.pem").write_bytes(pem)
    (tmp_path / "k.pub.pem").write_bytes(pub)
    url = led.engine.url.render_as_string(hide_password=False)
    kept = tmp_path / "cp.jsonl"
    ApiClients(led.engine).create("dashboard", ("read",))  # the last record is not an event: the chain alone hides its loss
    assert CliRunner().invoke(app, ["audit", "checkpoint", "--key", str(tmp_path / "k.pem"), "--out", str(kept),
                                    "--ledger", url]).exit_code == 0
    keyed = ["--public-key", str(tmp_path / "k.pub.pem"), "--checkpoints", str(kept), "--ledger", url]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = CliRunner().invoke(app, ["report", "--at", now, "--out", str(tmp_path / "rep"), "--no-pdf", *keyed])
    assert r.exit_code == 0, r.output
    with led.engine.begin() as conn:
        last, prev = conn.execute(select(audit_log.c.seq, audit_log.c.prev_hash).order_by(audit_log.c.seq.desc())).first()
        conn.execute(delete(audit_log).where(audit_log.c.seq == last))
        conn.execute(update(audit_head).values(last_seq=last - 1, last_hash=prev))
        conn.execute(delete(audit_checkpoints))
    assert CliRunner().invoke(app, ["report", "--at", now, "--out", str(tmp_path / "plain"), "--no-pdf",
                                    "--ledger", url]).exit_code == 0  # the database alone agrees with itself
    for args in (["report", "--at", now, "--out", str(tmp_path / "rep2"), "--no-pdf"],
                 ["documents", "--out", str(tmp_path / "docs")]):
        r = CliRunner().invoke(app, [*args, *keyed])
        said = " ".join(r.stderr.split())
        assert r.exit_code == 2 and "the audit log is broken" in said and "the chain ends at record" in said, said
    assert not (tmp_path / "rep2" / "report.html").exists() and not list((tmp_path / "docs").glob("*"))
