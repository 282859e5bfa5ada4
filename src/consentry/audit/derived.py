"""The tables consentry keeps beside the ledger, checked against what the audit
log and the ledger record.

The report counts models, purges, people removed and notices delivered from
these tables, not from the chain: a model's row deleted hid a model that must
be retrained, a purge's count edited changed "rows removed", and an outbox
state flipped to `shown` made 1,240 notices "delivered" that no `notified`
event bears out, all while the chain verified. Each row is compared with the
chained record written in the same transaction (`snapshots.registry`), and
each delivered notice with its `notified` event (`notices.campaign`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, and_, exists, func, literal, select

from ..ledger import Ledger
from ..ledger.tables import audit_log, events
from ..notices.tables import outbox
from ..snapshots.tables import models, purged_people, snapshot_purges, snapshots

#: A row's time and its record's may differ by the moments between them in one transaction.
SLACK_US = 60 * 10**6
_KINDS = ("snapshot_built", "snapshot_purged", "snapshot_checked", "snapshot_unregistered", "snapshot_moved",
          "model_registered")


def check_derived(ledger: Ledger) -> str | None:
    """The first table row that its audit record or the ledger does not bear
    out, in words; None when all agree."""
    with ledger.reader.connect() as conn:
        # Per kind, in chain order: (time, data) of each record, and `order` holds them all as chained.
        recs: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for kind, at_us, data in conn.execute(
                select(audit_log.c.kind, audit_log.c.at_us, audit_log.c.data)
                .where(audit_log.c.kind.in_(_KINDS)).order_by(audit_log.c.seq)):
            recs[kind].append((int(at_us), json.loads(data)))
            recs["order"].append((kind, json.loads(data)))
        return _models(conn, recs) or _purges(conn, recs) or _snapshots(conn, recs) or _notices(conn)


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
    return None


def _snapshots(conn: Connection, recs: dict) -> str | None:
    """Each snapshot row as its records leave it: built (rows, digest,
    watermark, where), then each purge (rows removed, digest, watermark),
    check and move."""
    state: dict[str, dict[str, Any]] = {}
    for kind, d in recs["order"]:  # as chained: a name built again after it was unregistered starts over
        if kind == "snapshot_built":
            state[d["name"]] = {"rows": d["rows"], "digest": d["digest"], "watermark": d["watermark"], "uri": d.get("uri")}
        elif kind == "snapshot_unregistered":
            state.pop(d["name"], None)
        elif (s := state.get(d["name"])) is not None and kind == "snapshot_purged":
            s.update(rows=s["rows"] - int(d["rows_removed"]), digest=d["digest"], watermark=d["to_watermark"])
        elif s is not None and kind == "snapshot_checked":
            s["watermark"] = max(s["watermark"], int(d["watermark"]))
        elif s is not None and kind == "snapshot_moved":
            s["uri"] = d["to"]
    rows = {r["name"]: r for r in conn.execute(select(snapshots)).mappings()}
    for name in state.keys() - rows.keys():
        return f"snapshot '{name}' is in the audit log but missing from the snapshots table: deleted outside consentry"
    for name, r in rows.items():
        if name not in state:
            return f"snapshot '{name}' has no audit record: it was added outside consentry"
        for f in ("rows", "digest", "watermark", "uri"):  # uri: a table pointed at another folder by hand
            if r[f] != state[name][f] and not (f == "uri" and state[name][f] is None):  # a record without one
                return _changed("snapshots", f"'{name}'", f, r[f], state[name][f])
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
