"""The tables consentry keeps beside the ledger, checked against what the audit
log and the ledger record.

The report counts models, purges, people removed and notices delivered from
these tables, not from the chain: a model's row deleted hid a model that must
be retrained, a purge's count edited changed "rows removed", and an outbox
state flipped to `shown` made 1,240 notices "delivered" that no `notified`
event bears out, all while the chain verified. Each row is compared with the
chained record written in the same transaction (`snapshots.registry`), and
each delivered notice with its `notified` event (`notices.campaign`).

A snapshot's row is held to its `snapshot_built` record (policy name and hash,
cut-off, rows built, when) and its stored manifest too (what `snapshot show`
prints and purges apply: the decisions and exclusions at build, the policy
document by its hash, the purges it lists), and a purge's `purged_people` rows
to the digest of them its `snapshot_purged` record holds. Records written
before a field existed are checked as far as they go.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, literal, select

from ..errors import ConsentryError
from ..ledger import Ledger
from ..ledger.tables import audit_log, events
from ..notices.tables import outbox
from ..policy import Policy, load_policy, preset_names
from ..snapshots.manifest import loads
from ..snapshots.registry import people_digest
from ..snapshots.tables import models, purged_people, snapshot_purges, snapshots
from ..timeutil import from_micros, iso, to_micros

#: A row's time and its record's may differ by the moments between them in one transaction.
SLACK_US = 60 * 10**6
_KINDS = ("snapshot_built", "snapshot_purged", "snapshot_checked", "snapshot_unregistered", "snapshot_moved",
          "model_registered")


def check_derived(ledger: Ledger) -> str | None:
    """The first table row that its audit record or the ledger does not bear
    out, in words; None when all agree."""
    with ledger.reader.connect() as conn:
        # Per kind, in chain order: (time, data) of each record, and `order` holds them all as chained
        # (kind, time, data).
        recs: dict[str, list[tuple]] = defaultdict(list)
        for kind, at_us, data in conn.execute(
                select(audit_log.c.kind, audit_log.c.at_us, audit_log.c.data)
                .where(audit_log.c.kind.in_(_KINDS)).order_by(audit_log.c.seq)):
            recs[kind].append((int(at_us), json.loads(data)))
            recs["order"].append((kind, int(at_us), recs[kind][-1][1]))
        problem = _models(conn, recs) or _purges(conn, recs) or _snapshots(conn, recs) or _notices(conn)
    return None if problem is None else (
        f"{problem}. Fix: find out who wrote to that table, and put the ledger's database back from a backup that "
        "`consentry audit verify` passes (the audit records say what the table held)")


def _changed(table: str, key: str, field: str, now: object, recorded: object) -> str:
    return (f"{table} row {key}: {field} is {now!r}, but its audit record says {recorded!r}: the table was changed "
            "outside consentry")


def _models(conn: Connection, recs: dict) -> str | None:
    chained = {d["name"]: (at, d) for at, d in recs["model_registered"]}
    rows = {r["name"]: r for r in conn.execute(select(models)).mappings()}
    for name in chained.keys() - rows.keys():
        return (f"model '{name}' is registered in the audit log but missing from the models table: it was deleted "
                "outside consentry (the report would not flag it)")
    for name, r in rows.items():
        if name not in chained:
            return f"model '{name}' has no audit record: it was added outside consentry"
        at, d = chained[name]
        for f in ("snapshot", "table_version", "digest", "rows", "mlflow_run"):
            if r[f] != d.get(f):
                return _changed("models", f"'{name}'", f, r[f], d.get(f))
        if abs(int(r["registered_us"]) - at) > SLACK_US:
            return (f"models row '{name}': its registration time is not the one its audit record bears: the table "
                    "was changed outside consentry (whether it is flagged depends on it)")
    return None


def _purges(conn: Connection, recs: dict) -> str | None:
    chained = {int(d["purge_id"]): (at, d) for at, d in recs["snapshot_purged"]}
    rows = {int(r["id"]): r for r in conn.execute(select(snapshot_purges)).mappings()}
    people = dict(conn.execute(select(purged_people.c.purge_id, func.count()).group_by(purged_people.c.purge_id)).all())
    for pid in chained.keys() - rows.keys():
        return f"purge #{pid} of snapshot '{chained[pid][1]['name']}' is in the audit log but missing from snapshot_purges"
    for pid, r in rows.items():
        if pid not in chained:
            return f"purge #{pid} of snapshot '{r['snapshot']}' has no audit record: it was added outside consentry"
        at, d = chained[pid]
        now = {"name": r["snapshot"], "from_watermark": r["from_watermark"], "to_watermark": r["to_watermark"],
               "people": r["people"], "rows_removed": r["rows_removed"], "files_removed": r["files_removed"],
               "counts": json.loads(r["counts"])}
        for f, v in now.items():
            if v != d.get(f):
                return _changed("snapshot_purges", f"#{pid}", f, v, d.get(f))
        if abs(int(r["finished_us"]) - at) > SLACK_US:
            return (f"snapshot_purges row #{pid}: its finishing time is not the one its audit record bears: the table "
                    "was changed outside consentry (the times from objection to removal depend on it)")
        if int(people.get(pid, 0)) != int(d["people"]):
            return (f"purge #{pid} removed the rows of {d['people']} people by its audit record, but purged_people "
                    f"lists {people.get(pid, 0)}: the table was changed outside consentry")
    for pid in people.keys() - rows.keys():
        return f"purged_people lists people for purge #{pid}, which no purge record names: added outside consentry"
    return _purged_people(conn, rows, chained)


def _purged_people(conn: Connection, purges: dict[int, Any], chained: dict[int, tuple[int, dict]]) -> str | None:
    """Each purge's people as its record leaves them: the snapshot of the
    purge, and, where the record holds their digest (purges recorded since it
    was added), who they are, why, how many rows, which event set it off and
    when (`impact`, receipts and the report's removal times read them). Read
    purge by purge, in one pass."""
    def check(pid: int, found: list[dict]) -> str | None:
        purge, d = purges[pid], chained[pid][1]
        for p in found:
            if p["snapshot"] != purge["snapshot"]:
                return (f"purged_people of purge #{pid}: {p['user_id']} is listed under snapshot '{p['snapshot']}', "
                        f"but the purge was of snapshot '{purge['snapshot']}': the table was changed outside consentry")
        if "people_digest" in d and people_digest(found) != d["people_digest"]:  # records before it: counted only
            return (f"purged_people of purge #{pid} are not the people its audit record names (a person, their cause, "
                    "their rows, the event that set the removal off or when it was done differs): the table was "
                    "changed outside consentry (`impact`, purge receipts and the report's times from objection to removal read it)")
        return None

    pid, found = None, []
    for p in conn.execute(select(purged_people).order_by(purged_people.c.purge_id)).mappings():
        if p["purge_id"] != pid:
            if pid is not None and (problem := check(pid, found)):
                return problem
            pid, found = int(p["purge_id"]), []
        found.append(dict(p))
    if pid is not None:
        return check(pid, found)
    return None


def _snapshots(conn: Connection, recs: dict) -> str | None:
    """Each snapshot row as its records leave it: built (policy, cut-off, rows,
    digest, watermark, where, decisions), then each purge (rows removed,
    digest, watermark), check and move; and its stored manifest (what
    `snapshot show`, purges and verify read) with it."""
    state: dict[str, dict[str, Any]] = {}
    for kind, at, d in recs["order"]:  # as chained: a name built again after it was unregistered starts over
        if kind == "snapshot_built":
            state[d["name"]] = {"rows": d["rows"], "digest": d["digest"], "watermark": d["watermark"], "uri": d.get("uri"),
                                "built": d, "built_at": at, "purges": []}
        elif kind == "snapshot_unregistered":
            state.pop(d["name"], None)
        elif (s := state.get(d["name"])) is not None and kind == "snapshot_purged":
            s.update(rows=s["rows"] - int(d["rows_removed"]), digest=d["digest"], watermark=d["to_watermark"])
            s["purges"].append((at, d))
        elif s is not None and kind == "snapshot_checked":
            s["watermark"] = max(s["watermark"], int(d["watermark"]))
        elif s is not None and kind == "snapshot_moved":
            s["uri"] = d["to"]
    rows = {r["name"]: r for r in conn.execute(select(snapshots)).mappings()}
    finished = dict(conn.execute(select(snapshot_purges.c.id, snapshot_purges.c.finished_us)).all())
    for name in state.keys() - rows.keys():
        return f"snapshot '{name}' is in the audit log but missing from the snapshots table: deleted outside consentry"
    for name, r in rows.items():
        if name not in state:
            return f"snapshot '{name}' has no audit record: it was added outside consentry"
        for f in ("rows", "digest", "watermark", "uri"):  # uri: a table pointed at another folder by hand
            if r[f] != state[name][f] and not (f == "uri" and state[name][f] is None):  # a record without one
                return _changed("snapshots", f"'{name}'", f, r[f], state[name][f])
        if problem := _built(name, r, state[name]) or _manifest(name, r, state[name], finished):
            return problem
    return None


def _cutoff_us(recorded: object) -> int | None:
    try:
        return to_micros(datetime.fromisoformat(str(recorded)))  # written by `isoformat()`; "Z" reads too (3.11+)
    except ValueError:
        return None


def _built(name: str, r: Any, s: dict) -> str | None:  # noqa: ANN401 - a row mapping
    """The row's facts fixed at build (what the report and `snapshot list` show), against the
    `snapshot_built` record; a field an old record lacks is not checked."""
    d, key = s["built"], f"'{name}'"
    for f, rec_f in (("policy_name", "policy"), ("policy_hash", "policy_hash"), ("rows_built", "rows")):
        if rec_f in d and r[f] != d[rec_f]:
            return _changed("snapshots", key, f, r[f], d[rec_f])
    if "cutoff" in d and (cut := _cutoff_us(d["cutoff"])) is not None and int(r["cutoff_us"]) != cut:
        return _changed("snapshots", key, "cutoff", iso(from_micros(r["cutoff_us"])), iso(from_micros(cut)))
    if int(r["built_us"]) > s["built_at"] + SLACK_US:  # the build is recorded once it is done, never before it starts
        return (f"snapshots row {key}: it was built at {iso(from_micros(r['built_us']))} by the table, after its audit "
                f"record of the build ({iso(from_micros(s['built_at']))}): the table was changed outside consentry "
                "(the report counts snapshots by when they were built)")
    return None


def _first_difference(now: object, recorded: object, path: str) -> tuple[str, object, object] | None:
    """Where two JSON values first differ: (path, value now, value recorded)."""
    if isinstance(now, dict) and isinstance(recorded, dict):
        for k in sorted(now.keys() | recorded.keys(), key=str):
            if (found := _first_difference(now.get(k), recorded.get(k), f"{path}[{k!r}]" if path else str(k))) is not None:
                return found
        return None
    if isinstance(now, list) and isinstance(recorded, list) and len(now) == len(recorded):
        for i, (a, b) in enumerate(zip(now, recorded)):
            if (found := _first_difference(a, b, f"{path}[{i}]")) is not None:
                return found
        return None
    return None if now == recorded else (path, now, recorded)


def _manifest(name: str, r: Any, s: dict, finished: dict) -> str | None:  # noqa: ANN401 - a row mapping
    """The stored manifest (`snapshot show`, the policy purges and verify
    apply, the purges it lists) against the records, and, for what no record
    holds (its Delta version, when it was built), against the row itself."""
    key, d = f"'{name}'", s["built"]
    try:
        m = loads(r["manifest"])
    except ValueError as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        return (f"snapshots row {key}: its manifest is not a consentry manifest ({first}): the table was changed "
                "outside consentry")
    against_record: list[tuple[str, object, object]] = [
        ("name", m.name, name), ("rows", m.rows, s["rows"]), ("digest", m.digest, s["digest"]),
        ("watermark", m.watermark, s["watermark"])]
    against_record += [(f, getattr(m, f), d[rec_f]) for f, rec_f in (
        ("policy", "policy"), ("policy_hash", "policy_hash"), ("rows_built", "rows"), ("decisions", "decisions"),
        ("excluded_at_build", "excluded_at_build"), ("transforms", "transforms")) if rec_f in d]
    if "cutoff" in d and (cut := _cutoff_us(d["cutoff"])) is not None:
        against_record.append(("cutoff", iso(m.cutoff), iso(from_micros(cut))))
    for f, now, recorded in against_record:
        if (diff := _first_difference(now, recorded, f"manifest {f}")) is not None:
            return _changed("snapshots", key, diff[0], diff[1], diff[2])
    for f, now, row in (("table_version", m.table_version, r["table_version"]),
                        ("built_at", to_micros(m.built_at), r["built_us"])):
        if int(now) != int(row):
            shown = (iso(from_micros(now)), iso(from_micros(row))) if f == "built_at" else (now, row)
            return (f"snapshots row {key}: manifest {f} is {shown[0]!r}, but the row's is {shown[1]!r}: the table was "
                    "changed outside consentry")
    if problem := _stored_policy(key, m, d):
        return problem
    chained = s["purges"]
    if "policy_hash" not in d:  # a build record as written before it held the build's facts: as far as it goes
        return None
    if len(m.purges) != len(chained):
        return (f"snapshots row {key}: its manifest lists {len(m.purges)} purges, but the audit log records "
                f"{len(chained)}: the table was changed outside consentry")
    for i, (p, (_, pd)) in enumerate(zip(m.purges, chained), 1):
        now = {"from_watermark": p.from_watermark, "to_watermark": p.to_watermark, "people": p.people,
               "rows_removed": p.rows_removed, "files_removed": p.files_removed, "counts": p.counts}
        for f, v in now.items():
            if f in pd and (diff := _first_difference(v, pd[f], f"manifest purge {i} {f}")) is not None:
                return _changed("snapshots", key, diff[0], diff[1], diff[2])
        # The same instant as its snapshot_purges row (checked against the record above), not the record's own.
        if (row_us := finished.get(int(pd["purge_id"]))) is not None and to_micros(p.at) != int(row_us):
            return (f"snapshots row {key}: manifest purge {i} finished at {iso(p.at)}, but its snapshot_purges row "
                    f"(#{pd['purge_id']}) says {iso(from_micros(row_us))}: the table was changed outside consentry")
    return None


def _stored_policy(key: str, m: Any, d: dict) -> str | None:  # noqa: ANN401 - a Manifest
    """The policy document a snapshot's purges and verify apply is the one its build record names (by hash)."""
    if "policy_hash" not in d or not m.policy_document:  # a manifest from before it stored the policy: nothing to check
        return None
    try:
        policy = Policy.model_validate(m.policy_document)
    except (ValueError, ConsentryError) as exc:
        first = (str(exc).strip().splitlines() or ["invalid"])[0]
        return (f"snapshots row {key}: manifest policy_document is not a valid policy ({first}): the table was "
                "changed outside consentry (purges and `snapshot verify` apply the stored policy)")
    if policy.hash != d["policy_hash"]:
        what = ""
        if d.get("policy") in preset_names() and (preset := load_policy(d["policy"])).hash == d["policy_hash"]:
            diff = _first_difference(policy.rules_document(), preset.rules_document(), "policy_document")
            if diff is not None:
                what = f" ({diff[0]} is {diff[1]!r}; in the policy recorded it is {diff[2]!r})"
        return (f"snapshots row {key}: manifest policy_document is not the policy its audit record names: its rules "
                f"hash to {policy.hash}, the record says {d['policy_hash']}{what}: the table was changed outside "
                "consentry (purges and `snapshot verify` apply the stored policy)")
    if "policy" in d and policy.name != d["policy"]:
        return _changed("snapshots", key, "manifest policy_document['name']", policy.name, d["policy"])
    diff = _first_difference(m.transforms_enabled, policy.transforms.model_dump(), "manifest transforms_enabled")
    if diff is not None:
        return (f"snapshots row {key}: {diff[0]} is {diff[1]!r}, but its stored policy says {diff[2]!r}: the table "
                "was changed outside consentry")
    return None


def _notices(conn: Connection) -> str | None:
    """A notice counted as delivered has its `notified` event (written in the
    same transaction), and a campaign's `notified` event its delivered notice."""
    key = literal("notice:") + outbox.c.campaign_id + ":" + outbox.c.user_id + ":" + outbox.c.channel
    unbacked = conn.execute(
        select(outbox.c.dedupe_key, outbox.c.state)
        .where(outbox.c.state.in_(("sent", "shown")), ~exists().where(events.c.event_id == key)).limit(1)).first()
    if unbacked is not None:
        return (f"notice {unbacked[0]} is '{unbacked[1]}' in the outbox, but the ledger has no notified event for it: "
                "the outbox was changed outside consentry (the report would count it as delivered)")
    undone = conn.execute(
        select(events.c.event_id).where(
            events.c.event_id.like("notice:%"), events.c.imported_from.is_(None),
            ~exists().where(and_(key == events.c.event_id, outbox.c.state.in_(("committing", "sent", "shown"))))
        ).limit(1)).first()
    if undone is not None:
        return (f"the ledger records {undone[0]} as notified, but the outbox no longer says that notice was delivered: "
                "the outbox was changed outside consentry")
    return None
