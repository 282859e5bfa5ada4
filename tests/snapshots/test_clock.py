"""Snapshots against the clock: events dated later than the reader's clock
(skew between hosts, or a ledger from before such events were refused), and
cut-offs later than the build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from consentry.ledger import Channel, EventType, Ledger, NewEvent
from consentry.policy import load_policy
from consentry.snapshots import Registry, SnapshotError, build
from consentry.snapshots.purge import purge
from consentry.sources import open_export
from exportkit import item, user, write_export

pytestmark = pytest.mark.slow  # builds and purges Delta tables

T = datetime(2024, 6, 26, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path):
    export = write_export(tmp_path / "export", [user("ann"), user("dan")],
                          [item(f"a{i}", "ann", text=f"ann {i}") for i in range(3)]
                          + [item(f"d{i}", "dan", text=f"dan {i}") for i in range(3)], [])
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.append([NewEvent(user_id=u, type="notified", at="2024-01-01T00:00:00Z", channel="email") for u in ("ann", "dan")])
    yield tmp_path, open_export(export)[0], led
    led.close()


def _ahead(user_id: str, at: datetime) -> NewEvent:
    """An objection dated `at`, as a host whose clock runs ahead (or an old ledger) stored it."""
    return NewEvent.model_construct(user_id=user_id, item_id=None, type=EventType.objected, event_id=f"ahead-{user_id}",
                                    at=at, channel=Channel.web, note=None, actor=None, imported_from=None)


def _authors(led: Ledger, name: str) -> set[str]:
    return set(DeltaTable(Registry(led).require(name).uri).to_pyarrow_table().column("user_id").to_pylist())


def test_an_event_dated_after_the_purges_clock_is_applied_by_a_later_purge(world) -> None:
    """An ML engineer's trial: an erasure or objection dated even a few seconds
    after the purging host's clock was read (watermark) but not applied (at >
    now); the watermark moved past it, so no later purge read it again: the
    rows stayed for good, and `snapshot list` said nothing was pending. Now the
    purge stops its watermark before such an event, and the next one applies it."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    now = datetime.now(UTC)
    led.append([_ahead("ann", now + timedelta(seconds=30))])
    early = purge(led, "s", now=now + timedelta(seconds=1))
    assert "ann" in _authors(led, "s")  # not in force yet: nothing removed ...
    assert early.to_watermark == led.watermark() - 1  # ... and the event stays after the watermark
    assert Registry(led).require("s").manifest.watermark == led.watermark() - 1
    later = purge(led, "s", now=now + timedelta(seconds=31))
    assert "ann" not in _authors(led, "s") and later.rows_removed == 3
    assert later.to_watermark == led.watermark()


def test_a_build_stops_its_watermark_before_an_event_dated_after_it(world) -> None:
    """The same at build time: the snapshot leaves the event after its
    watermark, so its first purge applies it."""
    tmp, export, led = world
    now = datetime.now(UTC)
    led.append([_ahead("dan", now + timedelta(seconds=30))])
    m = build(export, led, load_policy("recommended"), T, "s", out=tmp / "s", now=now)
    assert "dan" in _authors(led, "s") and m.watermark == led.watermark() - 1
    purge(led, "s", now=now + timedelta(seconds=31))
    assert "dan" not in _authors(led, "s")


def test_a_build_refuses_a_cut_off_later_than_now(world) -> None:
    """An ML engineer's trial: a snapshot built today at a cut-off 31 days
    ahead held someone notified seconds before (30 days' notice required) and,
    under meta-2024 at a later cut-off, people who are 17 today; verify called
    them all usable. A snapshot is used from when it is built: refused."""
    tmp, export, led = world
    ahead = datetime.now(UTC) + timedelta(days=31)
    with pytest.raises(SnapshotError, match="is later than now") as refused:
        build(export, led, load_policy("recommended"), ahead, "s", out=tmp / "s")
    assert "consentry evaluate" in str(refused.value)
    assert Registry(led).get("s") is None and not (tmp / "s").exists()
