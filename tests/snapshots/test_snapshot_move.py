"""`snapshot move`: a snapshot's folder taken to a new place, or the registry
told where it went by hand; refused for a folder that is not this snapshot as
recorded, and recorded in the audit log (which `audit verify` then holds the
registry to)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from cli_kit import cli, ok
from consentry.audit import verify_chain
from consentry.audit.derived import check_derived
from consentry.errors import SnapshotError
from consentry.ledger import Ledger, NewEvent
from consentry.snapshots import Registry, impact, move
from exportkit import item, user, write_export

pytestmark = pytest.mark.slow  # builds and purges Delta tables

AT = "2024-06-26T00:00:00Z"
PEOPLE = ["ann", "dan", "eve"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch):
    export = write_export(tmp_path / "export", [user(p) for p in PEOPLE],
                          [item(f"{p[0]}{i}", p, text=f"{p} says {i}") for p in PEOPLE for i in range(4)], [])
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.append([NewEvent(user_id=u, type="notified", at="2024-01-01T00:00:00Z", channel="email") for u in PEOPLE])
    ok(cli("snapshot", "build", "--data", export, "--at", AT, "--name", "s1", "--out", tmp_path / "snaps" / "s1",
           "--ledger", str(led.engine.url)))
    yield tmp_path, led
    led.close()


def _said(r) -> str:  # noqa: ANN001
    return " ".join((r.stdout + r.stderr).split())


def test_a_folder_moved_by_hand_is_taken_where_it_is_and_purged_there(world) -> None:
    """Finding (noticed): a snapshot folder moved on purpose (new storage) left
    every command saying "move it back"; no command could point consentry at
    it. Now `move` takes it where it is, once it is the very snapshot."""
    tmp, led = world
    old = tmp / "snaps" / "s1"
    new = tmp / "archive" / "s1"
    new.parent.mkdir()
    shutil.move(str(old), str(new))
    r = cli("snapshot", "purge", "s1", "--ledger", str(led.engine.url))
    assert r.exit_code != 0 and "snapshot move s1" in _said(r), _said(r)  # the fix names the command
    r = cli("snapshot", "move", "s1", new, "--ledger", str(led.engine.url))
    ok(r)
    assert f"s1: found at {new.resolve()}" in _said(r), _said(r)
    assert Registry(led).require("s1").uri == str(new.resolve() / "table")
    led.record(NewEvent(user_id="eve", type="objected", at=datetime.now(UTC), channel="web"))
    ok(cli("snapshot", "purge", "s1", "--ledger", str(led.engine.url)))
    assert "eve" not in set(DeltaTable(str(new / "table")).to_pyarrow_table().column("user_id").to_pylist())
    assert [s.snapshot for s in impact(led, "eve")] == ["s1"] and not impact(led, "eve").unchecked
    assert verify_chain(led).ok and check_derived(led) is None


def test_move_moves_the_folder_and_audit_verify_holds_the_registry_to_it(world) -> None:
    tmp, led = world
    old, new = tmp / "snaps" / "s1", tmp / "elsewhere" / "s1"
    assert move(led, "s1", new) == (old, new.resolve(), True)
    assert not old.exists() and (new / "manifest.json").is_file()
    ok(cli("snapshot", "verify", "s1", "--ledger", str(led.engine.url)))
    assert verify_chain(led).ok and check_derived(led) is None
    # A registry row pointed at another folder by hand is caught.
    with led.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE snapshots SET uri = ? WHERE name = 's1'", (str(tmp / "other" / "table"),))
    found = check_derived(led)
    assert found is not None and "uri" in found, found


@pytest.mark.parametrize("case", ["empty", "changed", "taken"])
def test_a_folder_that_is_not_this_snapshot_is_refused(world, case: str) -> None:
    tmp, led = world
    old = tmp / "snaps" / "s1"
    target = tmp / "moved"
    if case == "empty":
        shutil.move(str(old), str(tmp / "lost"))
        target.mkdir()
        match = "holds no snapshot"
    elif case == "changed":
        shutil.move(str(old), str(target))
        first = sorted((target / "table").rglob("*.parquet"))[0]
        first.write_bytes(first.read_bytes()[:-8] + b"tampered")
        match = "digest"
    else:  # the snapshot is still where it was: the new place must be free
        target.mkdir()
        match = "already exists"
    with pytest.raises(SnapshotError, match=match):
        move(led, "s1", target)
    assert Registry(led).require("s1").uri == str(old / "table")  # nothing changed
