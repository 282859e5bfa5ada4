"""The numbers in the accountability report, each from one query a test can rerun.

Plain SQLAlchemy Core over the ledger's own tables, so the same text runs on
SQLite and PostgreSQL. Percentiles are computed here (nearest rank), because
SQLite has no percentile function and the rank method must be stated anyway.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, exists, func, select

from ..ledger import Ledger
from ..ledger.tables import events, head
from ..notices.tables import DELIVERED, FAILED, outbox
from ..policy import Policy
from ..snapshots import changes_since
from ..snapshots.tables import models, purged_people, snapshot_purges, snapshots
from ..sources import Export
from ..timeutil import from_micros, to_micros

#: Channels on which consentry itself received the objection, so `at` is the
#: receipt time and `recorded_us - at_us` is how long it took to take effect.
LIVE_CHANNELS = ("web", "api", "email", "in_app", "cli")

#: Ledger event types charted over time.
TREND_TYPES = ("objected", "objection_withdrawn", "consent_given", "consent_withdrawn")
ALL_TYPES = (
    "notified", "objected", "objection_withdrawn", "objection_rejected",
    "consent_given", "consent_withdrawn", "erasure_requested",
)

#: Outbox states grouped into what a DPO asks: did it arrive, did it fail, is it still to go.
DAY_US = 86_400 * 1_000_000


def percentile(values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- notices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeRow:
    jurisdiction: str
    language: str
    channel: str
    planned: int
    delivered: int  # e-mail accepted by the mail server, or in-app notice shown
    failed: int  # bounced
    pending: int  # not yet sent (pending, sending, deferred, committing)


def notices(engine: Engine) -> list[NoticeRow]:
    """Per jurisdiction, language and channel, from the outbox's current states."""
    q = (
        select(outbox.c.jurisdiction, outbox.c.language, outbox.c.channel, outbox.c.state, func.count())
        .group_by(outbox.c.jurisdiction, outbox.c.language, outbox.c.channel, outbox.c.state)
    )
    acc: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    with engine.connect() as conn:
        for j, lang, channel, state, n in conn.execute(q):
            row = acc[(j, lang, channel)]
            row[0] += n
            if state in DELIVERED:
                row[1] += n
            elif state in FAILED:
                row[2] += n
            else:
                row[3] += n
    return [NoticeRow(j, lang, ch, *v) for (j, lang, ch), v in sorted(acc.items())]


# -- the ledger over time ----------------------------------------------------------------


@dataclass
class Trend:
    """Events per period for the charted types, plus totals for every type up to T."""

    unit: str  # day | week | month
    periods: list[str] = field(default_factory=list)
    series: dict[str, list[int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    by_channel: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Per type, the events `ledger import` wrote (whatever channel their file gave: CONTRACT §2).
    imported: dict[str, int] = field(default_factory=dict)


def daily_counts(engine: Engine, at: datetime) -> dict[tuple[str, int], int]:
    """(type, day number since the epoch) -> events with at <= T."""
    day = (events.c.at_us // DAY_US).label("day")  # floor division, rendered for each database
    q = select(events.c.type, day, func.count()).where(events.c.at_us <= to_micros(at)).group_by(events.c.type, day)
    with engine.connect() as conn:
        return {(typ, int(d)): int(n) for typ, d, n in conn.execute(q)}


def trend(engine: Engine, at: datetime) -> Trend:
    days = daily_counts(engine, at)
    totals: dict[str, int] = {t: 0 for t in ALL_TYPES}
    for (typ, _), n in days.items():
        totals[typ] = totals.get(typ, 0) + n
    was_imported = events.c.imported_from.is_not(None).label("imported")
    q = (
        select(events.c.type, events.c.channel, was_imported, func.count())
        .where(events.c.at_us <= to_micros(at))
        .group_by(events.c.type, events.c.channel, was_imported)
    )
    by_channel: dict[tuple[str, str], int] = {}
    imported: dict[str, int] = {}
    with engine.connect() as conn:
        for t, c, imp, n in conn.execute(q):
            by_channel[(t, c)] = by_channel.get((t, c), 0) + int(n)
            if imp:
                imported[t] = imported.get(t, 0) + int(n)
    trended = [d for (t, d) in days if t in TREND_TYPES]
    if not trended:
        return Trend(unit="month", totals=totals, by_channel=by_channel, imported=imported)
    first, last = min(trended), max(trended)
    span = last - first
    unit = "day" if span <= 31 else "week" if span <= 26 * 7 else "month"
    keys: list[str] = []
    index: dict[str, int] = {}
    for d in range(first, last + 1):
        k = _bucket(d, unit)
        if k not in index:
            index[k] = len(keys)
            keys.append(k)
    series = {t: [0] * len(keys) for t in TREND_TYPES}
    for (typ, d), n in days.items():
        if typ in series:
            series[typ][index[_bucket(d, unit)]] += n
    return Trend(unit=unit, periods=keys, series=series, totals=totals, by_channel=by_channel, imported=imported)


def _bucket(day: int, unit: str) -> str:
    d = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).date()
    if unit == "day":
        return d.isoformat()
    if unit == "week":
        monday = d - timedelta(days=d.weekday())
        return monday.isoformat()
    return d.strftime("%Y-%m")


# -- how fast objections take effect ----------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Microsecond delays: how many, the median, the 99th percentile and the worst."""

    count: int
    p50_us: int | None
    p99_us: int | None
    max_us: int | None

    @classmethod
    def of(cls, values: Sequence[int]) -> Latency:
        return cls(len(values), percentile(values, 50), percentile(values, 99), max(values) if values else None)


@dataclass(frozen=True)
class EffectTimes:
    live: Latency  # objections received by consentry itself
    by_channel: dict[str, Latency]
    imported: int  # objections that arrived by import: not timed
    late: int  # live-channel objections stored over a day after receipt: most likely imported history


def objection_effect(engine: Engine, at: datetime) -> EffectTimes:
    """recorded_us - at_us for objections received live, at <= T. Events that
    `ledger import` wrote are never timed, whatever channel the file gave
    (CONTRACT §2): their recorded time is the import, not the receipt."""
    q = select(events.c.channel, events.c.recorded_us - events.c.at_us, events.c.imported_from).where(
        events.c.type == "objected", events.c.at_us <= to_micros(at)
    )
    per: dict[str, list[int]] = defaultdict(list)
    imported = 0
    with engine.connect() as conn:
        for channel, delay, source in conn.execute(q):
            if channel in LIVE_CHANNELS and source is None:
                per[channel].append(int(delay))
            else:
                imported += 1
    everything = [v for vs in per.values() for v in vs]
    late = sum(1 for v in everything if v > DAY_US)
    return EffectTimes(Latency.of(everything), {c: Latency.of(v) for c, v in sorted(per.items())}, imported, late)


@dataclass(frozen=True)
class PurgeTimes:
    overall: Latency
    by_cause: dict[str, Latency]  # by the type of the event that set the removal off
    untraced: int  # purged people rows with no trigger event
    imported: int = 0  # set off by an imported event: not timed (CONTRACT §2)


def objection_to_purge(engine: Engine, at: datetime) -> PurgeTimes:
    """purged_us - at_us of the live ledger event that triggered each purge,
    purged by T, by that event's type (an erasure request was listed as its rule,
    "account_deleted"). An imported event's `at` is when the platform received
    it, long before consentry could act: CONTRACT §2 leaves it out of the times."""
    done = purged_people.c.purged_us <= to_micros(at)
    q = (
        select(events.c.type, purged_people.c.purged_us - events.c.at_us, events.c.imported_from.is_not(None))
        .select_from(purged_people.join(events, events.c.seq == purged_people.c.trigger_seq))
        .where(done)
    )
    untraced_q = select(func.count()).select_from(purged_people).where(
        done, ~exists().where(events.c.seq == purged_people.c.trigger_seq))
    per: dict[str, list[int]] = defaultdict(list)
    imported = 0
    with engine.connect() as conn:
        for cause, delay, was_imported in conn.execute(q):
            if was_imported:
                imported += 1
            else:
                per[cause].append(int(delay))
        untraced = int(conn.execute(untraced_q).scalar_one())
    everything = [v for vs in per.values() for v in vs]
    return PurgeTimes(Latency.of(everything), {c: Latency.of(v) for c, v in sorted(per.items())}, untraced, imported)


# -- snapshots, purges, models ---------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotRow:
    name: str
    policy_name: str
    cutoff: datetime
    built: datetime
    rows_built: int
    rows_now: int
    purges: int
    rows_removed: int
    people_removed: int


@dataclass(frozen=True)
class FlaggedModel:
    name: str
    snapshot: str
    registered: datetime
    rows_removed_since: int
    rows_rewritten_since: int = 0  # kept but rewritten for someone's sake (an @mention hidden, an id out of `tagged`)


@dataclass(frozen=True)
class Lifecycle:
    snapshots: list[SnapshotRow]
    purges: int
    rows_removed: int
    models: int
    flagged: list[FlaggedModel]
    built_after: int = 0  # snapshots built after T: not counted, but the report must not say there are none


def lifecycle(engine: Engine, at: datetime) -> Lifecycle:
    """Snapshots built by T, purges finished by T, and models trained on rows
    that a later purge removed (they still carry data of people who said no)."""
    t = to_micros(at)
    p_agg = (
        select(
            snapshot_purges.c.snapshot,
            func.count().label("n_purges"),
            # not "rows": the snapshots table has a column of that name (the rows now), and the
            # result row would give either for r.rows (the report showed rows now as rows removed)
            func.sum(snapshot_purges.c.rows_removed).label("rows_removed"),
            func.sum(snapshot_purges.c.people).label("people_removed"),
        )
        .where(snapshot_purges.c.finished_us <= t)
        .group_by(snapshot_purges.c.snapshot)
        .subquery()
    )
    snaps_q = (
        select(snapshots, p_agg.c.n_purges, p_agg.c.rows_removed, p_agg.c.people_removed)
        .select_from(snapshots.outerjoin(p_agg, p_agg.c.snapshot == snapshots.c.name))
        .where(snapshots.c.built_us <= t)
        .order_by(snapshots.c.built_us, snapshots.c.name)
    )
    # Flagged by the purges (finished by T) after the version each model was trained on: `changes_since`.
    flagged_q = (select(models.c.name, models.c.snapshot, models.c.registered_us).where(models.c.registered_us <= t)
                 .order_by(models.c.registered_us, models.c.name))
    with engine.connect() as conn:
        snaps = [
            SnapshotRow(
                name=r.name, policy_name=r.policy_name, cutoff=from_micros(r.cutoff_us), built=from_micros(r.built_us),
                rows_built=int(r.rows_built), rows_now=int(r.rows), purges=int(r.n_purges or 0),
                rows_removed=int(r.rows_removed or 0), people_removed=int(r.people_removed or 0),
            )
            for r in conn.execute(snaps_q)
        ]
        purges, rows = conn.execute(
            select(func.count(), func.coalesce(func.sum(snapshot_purges.c.rows_removed), 0)).where(
                snapshot_purges.c.finished_us <= t
            )
        ).one()
        n_models = int(conn.execute(select(func.count()).select_from(models).where(models.c.registered_us <= t)).scalar_one())
        after = int(conn.execute(select(func.count()).select_from(snapshots).where(snapshots.c.built_us > t)).scalar_one())
        since = changes_since(conn, at_us=t)
        flagged = [
            FlaggedModel(r.name, r.snapshot, from_micros(r.registered_us), *since[r.name])
            for r in conn.execute(flagged_q) if any(since.get(r.name, (0, 0)))
        ]
    return Lifecycle(snaps, int(purges), int(rows), n_models, flagged, after)


def watermark(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one())


# -- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exclusions:
    """Items per (jurisdiction, reason), from a decision run at T."""

    counts: dict[tuple[str, str], int]
    jurisdictions: list[str]
    watermark: int
    items: int

    def total(self, reason: str) -> int:
        return sum(n for (_, r), n in self.counts.items() if r == reason)

    def in_jurisdiction(self, jurisdiction: str) -> int:
        return sum(n for (j, _), n in self.counts.items() if j == jurisdiction)


def exclusions(export: Export, ledger: Ledger, policy: Policy, at: datetime, workdir: Path) -> Exclusions:
    """Run the decision engine at T (as `consentry evaluate` does) and count each
    reason per jurisdiction; the author's country gives the jurisdiction, through
    the policy, exactly as the engine applies it."""
    from ..engine import evaluate
    from ..engine.duck import connect

    con = connect()
    try:
        out = Path(workdir) / "decisions.parquet"
        result = evaluate(export, ledger, policy, at, out, con=con)  # registers the users view too
        countries = [r[0] for r in con.execute("SELECT DISTINCT country FROM users").fetchall()]
        mapping = [(c, policy.jurisdiction_for(c).name) for c in countries if c is not None]
        con.execute("CREATE OR REPLACE TEMP TABLE audit_country_map (country VARCHAR, jurisdiction VARCHAR)")
        if mapping:
            con.executemany("INSERT INTO audit_country_map VALUES (?, ?)", mapping)
        unknown = policy.unknown_country_jurisdiction.name
        rows = con.execute(
            f"""
            SELECT coalesce(m.jurisdiction, ?) AS jurisdiction, d.reason, count(*)
            FROM read_parquet(?) d
            JOIN users u ON u.user_id = d.user_id
            LEFT JOIN audit_country_map m ON m.country = u.country
            GROUP BY 1, 2
            """,
            [unknown, str(out)],
        ).fetchall()
    finally:
        con.close()
    counts = {(j, r): int(n) for j, r, n in rows}
    return Exclusions(counts, [j.name for j in policy.jurisdictions], result.watermark, sum(counts.values()))
