"""The decision rules (CONTRACT §3) written by hand with polars' lazy API, as a benchmark peer.

What a careful data engineer would write with polars instead of consentry: one lazy
query plan over the three tables and the ledger, collected once by the streaming
engine. The ledger is reduced to a few rows of facts per person (`group_by`s),
left-joined onto the users; every item is then joined to its author (and to
small per-item aggregates for tags and third-party objections) and decided by one
`when/then` chain written in rule order. There is no `map_elements`, no Python loop
over rows, users or events; the only Python loops run over the policy's handful of
rules and jurisdictions, while the plan is being built.

Reading: `pl.scan_parquet` on users/content/tags.parquet (tags may be absent), each
projected to the columns the rules read, so the Parquet reader skips text, media
paths and the rest, and the streaming engine never holds a whole table. The schema
is read from the Parquet footer (`collect_schema`, no data) only to learn whether
timestamps carry a time zone: zoned columns are converted to naive UTC, which is
how the engine compares instants. The ledger arrives as an Arrow table
(`Ledger.events_arrow()`) and enters the plan through `pl.from_arrow(...).lazy()`,
column by column, never as Python objects. Only Parquet exports are read.

Choices:
- The reason is a `pl.Enum` of the reason codes in rule order (as the pandas
  baseline's categorical): each row stores a small integer, not a string, and the
  `when/then` chain of Enum literals is evaluated without building strings.
- "The latest event of a group of types, by (event_at, seq)" (objection state,
  consent state, third-party state) is its own small `group_by` over the events of
  those types, `type.sort_by("event_at", "seq").last()`, which polars rewrites to a
  streaming `max_by` on the row-encoded pair; erasure and first notice come from a
  third. A single `group_by` masking `type` to each group before sorting reads
  nicer but is not streamable (polars falls back to an in-memory aggregation),
  so the three are left-joined to users instead, as the engine's SQL does. The
  sort keys always include seq: `sort_by` is not guaranteed stable (ties at one
  instant were seen to come out in either order), and the Arrow table's row order
  must not decide.
- Ages follow the pandas baseline's `_age`: year difference minus one when the
  month*100+day of the instant is before the birthday's, so a 29 February birthday
  is completed on 1 March in a common year. For rule 9 applied to tagged people the
  plan keeps, per item, only the latest birth date among the people tagged in it:
  age is monotone in birth date, so the youngest tagged person is under age at
  the item's creation exactly when any of them is, and tags never need to be
  joined to content before being aggregated.
- Joins: items to people is an inner join (the engine drops items whose author is
  not in users); tags are inner-joined to people (tags naming unknown people are
  ignored) and the per-item aggregate left-joined to items (tags naming unknown
  items are ignored). Row order of the result is not kept (`maintain_order` would
  cost the streaming engine its freedom); callers sort when they compare.

Semantics follow `consentry.engine.compile` exactly, including where SQL's NULL
handling decides, which polars' own null propagation mirrors: a comparison with
null is null and a null `when` condition is not taken, so a null deleted_at never
deletes and a null created_at is never after the cut-off.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import reduce
from pathlib import Path

import polars as pl
import pyarrow as pa

from consentry.engine.rules import ORDER, Reason
from consentry.ledger.events import CONSENT_TYPES, OBJECTION_TYPES, THIRD_PARTY_TYPES, EventType
from consentry.policy import Policy, TaggedPeople
from consentry.timeutil import naive_utc, parse_instant

REASONS: list[str] = [str(r) for r in ORDER]
REASON = pl.Enum(REASONS)


def _r(reason: Reason) -> pl.Expr:
    """A reason as an Enum literal."""
    return pl.lit(str(reason), dtype=REASON)


def _first(rules: list[tuple[pl.Expr, pl.Expr]], otherwise: pl.Expr) -> pl.Expr:
    """CASE WHEN ... in list order: the first (condition, value) whose condition is
    true decides; a null condition is not taken, as in SQL."""
    (cond, value), *rest = rules
    chain = reduce(lambda acc, rule: acc.when(rule[0]).then(rule[1]), rest, pl.when(cond).then(value))
    return chain.otherwise(otherwise)


def _scan(path: Path, columns: list[str]) -> pl.LazyFrame:
    """Scan a Parquet table, projected, with timestamps as naive UTC (the engine's form)."""
    lf = pl.scan_parquet(path).select(columns)
    fixes = [
        pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        for name, dtype in lf.collect_schema().items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    return lf.with_columns(fixes) if fixes else lf


def _age(birth: pl.Expr, year: pl.Expr | int, md: pl.Expr | int) -> pl.Expr:
    """Whole years completed at (year, month*100+day), as the engine counts them: a
    29 February birthday has its anniversary on 1 March in a common year, because
    (2, 28) < (2, 29)."""
    b_md = birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day()
    return year - birth.dt.year() - (md < b_md).cast(pl.Int32)


def decide_polars(data_dir: Path, events: pa.Table, policy: Policy, at: datetime) -> pl.DataFrame:
    """One row per content item whose author is in users: item_id, user_id,
    eligible (bool), reason (Enum of the reason codes, CONTRACT §3).

    `events` is `Ledger.events_arrow()`: seq, user_id, item_id (may be absent),
    type, event_at.
    """
    return plan_polars(data_dir, events, policy, at).collect(engine="streaming")


def plan_polars(data_dir: Path, events: pa.Table | pl.LazyFrame, policy: Policy, at: datetime) -> pl.LazyFrame:
    """`decide_polars` as a lazy plan, for a caller that streams it to a file
    (`sink_parquet`) instead of collecting 20M rows. `events`: an Arrow table,
    or a lazy scan (of the ledger's kept extract, cut at the watermark)."""
    data_dir = Path(data_dir)
    T = naive_utc(parse_instant(at))
    T_md = T.month * 100 + T.day
    min_age = policy.minimum_age

    # -- the ledger at T ----------------------------------------------------------
    ev_all = events if isinstance(events, pl.LazyFrame) else pl.from_arrow(events).lazy()
    ev_at = ev_all.collect_schema()["event_at"]
    if isinstance(ev_at, pl.Datetime) and ev_at.time_zone is not None:
        ev_all = ev_all.with_columns(pl.col("event_at").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    ev_all = ev_all.filter(pl.col("event_at") <= T)

    person_ev = ev_all.filter(pl.col("user_id").is_not_null()).select("user_id", "type", "event_at", "seq")

    def latest(types: tuple[str, ...], name: str) -> pl.LazyFrame:
        """Per person: the type of their latest event among `types`, by (event_at, seq)."""
        return (
            person_ev.filter(pl.col("type").is_in([str(t) for t in types]))
            .group_by("user_id")
            .agg(pl.col("type").sort_by("event_at", "seq").last().alias(name))
        )

    # Ledger facts per person; people not in users are dropped by the left joins below.
    facts = person_ev.group_by("user_id").agg(
        (pl.col("type") == str(EventType.erasure_requested)).any().alias("erased"),
        pl.col("event_at").filter(pl.col("type") == str(EventType.notified)).min().alias("first_notified"),
    )

    # -- people: one row per user, with the person rules decided at T ---------------
    js = policy.jurisdictions
    country = pl.col("country")
    jurisdiction = _first(
        [(country.is_null(), pl.lit(policy.unknown_country_jurisdiction.name))]
        + [(country.is_in(j.countries), pl.lit(j.name)) for j in js if not j.is_default],
        pl.lit(policy.default_jurisdiction.name),
    )
    notice_days = {j.name: T - timedelta(days=j.notice_days) for j in js if j.notice_days is not None}
    notice_before = (
        pl.col("jurisdiction").replace_strict(notice_days, default=None, return_dtype=pl.Datetime("us"))
        if notice_days
        else pl.lit(None, dtype=pl.Datetime("us"))
    )
    consent_j = [j.name for j in js if j.basis == "consent"]
    honour_j = [j.name for j in js if j.honour_objections]

    users = _scan(data_dir / "users.parquet", ["user_id", "birth_date", "country", "deleted_at"])
    people = (
        users.join(facts, on="user_id", how="left")
        .join(latest(OBJECTION_TYPES, "objection_state"), on="user_id", how="left")
        .join(latest(CONSENT_TYPES, "consent_state"), on="user_id", how="left")
        .with_columns(
            pl.col("birth_date").cast(pl.Date),
            jurisdiction.alias("jurisdiction"),
        )
        .with_columns(notice_before.alias("notice_before"))
    )
    birth = pl.col("birth_date")
    account_deleted = (pl.col("deleted_at") <= T).fill_null(False) | pl.col("erased").fill_null(False)
    no_consent = pl.col("jurisdiction").is_in(consent_j) & (
        pl.col("consent_state") != str(EventType.consent_given)
    ).fill_null(True)
    objected = pl.col("jurisdiction").is_in(honour_j) & (
        pl.col("objection_state") == str(EventType.objected)
    ).fill_null(False)
    not_notified = pl.col("notice_before").is_not_null() & (
        pl.col("first_notified").is_null() | (pl.col("first_notified") > pl.col("notice_before"))
    )
    none = pl.lit(None, dtype=REASON)
    people = people.select(
        "user_id",
        "birth_date",
        # Rules 6-8 and 10-12 at T, each group reduced to its first failed rule.
        _first(
            [
                (account_deleted, _r(Reason.account_deleted)),
                (birth.is_null(), _r(Reason.age_unknown)),
                (_age(birth, T.year, T_md) < min_age, _r(Reason.minor)),
            ],
            none,
        ).alias("reason_a"),
        _first(
            [
                (no_consent, _r(Reason.no_consent)),
                (objected, _r(Reason.objected)),
                (not_notified, _r(Reason.not_notified)),
            ],
            none,
        ).alias("reason_b"),
    )

    # -- items -----------------------------------------------------------------------
    items = _scan(
        data_dir / "content.parquet", ["item_id", "user_id", "kind", "visibility", "created_at", "deleted_at"]
    ).join(people, on="user_id", how="inner")  # the engine inner-joins items to their author
    created = pl.col("created_at")
    c_year, c_md = created.dt.year(), created.dt.month().cast(pl.Int32) * 100 + created.dt.day()

    # (first reason the rule can give, condition, reason): checked against ORDER below.
    rules: list[tuple[Reason, pl.Expr, pl.Expr]] = [
        (Reason.private_message, pl.col("kind") == "private_message", _r(Reason.private_message)),
        (Reason.kind_not_allowed, ~pl.col("kind").is_in(list(policy.kinds)), _r(Reason.kind_not_allowed)),
        (Reason.not_public, (pl.col("visibility") != "public").fill_null(True), _r(Reason.not_public)),
        (Reason.after_cutoff, created > T, _r(Reason.after_cutoff)),
        (Reason.content_deleted, pl.col("deleted_at") <= T, _r(Reason.content_deleted)),
        (Reason.account_deleted, pl.col("reason_a").is_not_null(), pl.col("reason_a")),  # rules 6-8
    ]
    if policy.minimum_age_at_posting:
        rules.append((Reason.minor_at_posting, _age(birth, c_year, c_md) < min_age, _r(Reason.minor_at_posting)))
    rules.append((Reason.no_consent, pl.col("reason_b").is_not_null(), pl.col("reason_b")))  # rules 10-12
    if policy.content_since is not None:
        since = datetime.combine(policy.content_since, datetime.min.time())
        rules.append((Reason.before_window, created < since, _r(Reason.before_window)))

    # Rule 14: per item, does any tagged person fail a person rule at T, and the
    # latest birth date among them (rule 9 at the item's creation time).
    tags_file = data_dir / "tags.parquet"
    if policy.tagged_people is TaggedPeople.require and tags_file.exists():
        tagged = (
            pl.scan_parquet(tags_file)
            .select("item_id", pl.col("tagged_user_id").alias("user_id"))
            .join(people, on="user_id", how="inner")
            .group_by("item_id")
            .agg(
                (pl.col("reason_a").is_not_null() | pl.col("reason_b").is_not_null()).any().alias("tag_fails_now"),
                pl.col("birth_date").max().alias("tag_youngest_birth"),
            )
        )
        items = items.join(tagged, on="item_id", how="left")
        tag_fail = pl.col("tag_fails_now").fill_null(False)
        if policy.minimum_age_at_posting:
            tag_fail = tag_fail | (_age(pl.col("tag_youngest_birth"), c_year, c_md) < min_age).fill_null(False)
        rules.append((Reason.tagged_person, tag_fail, _r(Reason.tagged_person)))

    # Rule 15: items whose latest third-party event, by (event_at, seq), is an objection.
    if (
        policy.honour_third_party_objections
        and policy.tagged_people is not TaggedPeople.blur
        and "item_id" in ev_all.collect_schema().names()
    ):
        third_party = (
            ev_all.filter(pl.col("item_id").is_not_null() & pl.col("type").is_in([str(t) for t in THIRD_PARTY_TYPES]))
            .group_by("item_id")
            .agg(pl.col("type").sort_by("event_at", "seq").last().alias("tp_state"))
            .filter(pl.col("tp_state") == str(EventType.third_party_objected))
            .select("item_id", pl.lit(True).alias("tp_objected"))
        )
        items = items.join(third_party, on="item_id", how="left")
        tp_objected = pl.col("tp_objected").fill_null(False)
        rules.append((Reason.third_party_objected, tp_objected, _r(Reason.third_party_objected)))

    positions = [ORDER.index(r) for r, _, _ in rules]
    assert positions == sorted(positions), "rules must be listed in rule order (CONTRACT §3)"
    reason = _first([(cond, value) for _, cond, value in rules], _r(Reason.eligible))
    return items.select("item_id", "user_id", reason.alias("reason")).select(
        "item_id", "user_id", (pl.col("reason") == str(Reason.eligible)).alias("eligible"), "reason"
    )
