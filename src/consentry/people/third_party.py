"""Objections from people without an account, who appear in others' photos.

They have no user_id, so the contract's person rules cannot reach them. An
administrator links a verified objection to the photos that show the person;
snapshot builds and purges then keep those photos out (or blur their faces
where the policy blurs), and `explain` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update

from ..access.tables import third_party_links, third_party_objections
from ..access.third_party import linked_item_ids, links_for  # noqa: F401 - re-exported
from ..engine.duck import connect
from ..errors import ConsentryError
from ..ledger import chain
from ..sources import Export
from ..timeutil import to_micros

# Kinds that can show a face.
VISUAL_KINDS = ("photo", "story", "video", "reel")


class ThirdPartyError(ConsentryError):
    """A link the administrator asked for cannot be made (the message says why)."""


@dataclass(frozen=True)
class Candidate:
    item_id: str
    author: str | None
    kind: str
    created_at: datetime
    named: bool  # the person named this item themselves


def named_tokens(text: str | None) -> list[str]:
    """Handles or item ids as people type them: separated by commas, spaces or
    new lines; a pasted link counts by its last path segment."""
    out = []
    for token in re.split(r"[\s,;]+", text or ""):
        token = token.strip().rstrip("/")
        if not token:
            continue
        if "://" in token:
            token = token.rsplit("/", 1)[-1].split("?", 1)[0]
        out.append(token.lstrip("@"))
    return out


class ThirdParties:
    def __init__(self, engine: Engine, export: Export) -> None:
        self.engine = engine
        self.export = export

    def request(self, ref: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(third_party_objections).where(third_party_objections.c.id == ref)).mappings().first()
        return dict(row) if row else None

    def candidates(self, ref: str, limit: int = 200) -> list[Candidate]:
        """Photos the person named, then visual items posted by the accounts they
        named: what the administrator looks at before linking."""
        req = self.request(ref)
        if req is None:
            return []
        items = named_tokens(req["items"])
        handles = [h.lower() for h in named_tokens(req["handles"])]
        con = connect()
        try:
            self.export.register(con)
            rows = con.execute(
                f"""
                SELECT c.item_id, u.handle, c.kind, c.created_at, list_contains(?::VARCHAR[], c.item_id) AS named
                FROM content c JOIN users u USING (user_id)
                WHERE list_contains(?::VARCHAR[], c.item_id)
                   OR (list_contains(?::VARCHAR[], lower(u.handle)) AND c.kind IN {VISUAL_KINDS!r})
                ORDER BY named DESC, c.created_at DESC, c.item_id
                LIMIT ?
                """,
                [items, items, handles, limit],
            ).fetchall()
        finally:
            con.close()
        return [Candidate(i, a, k, t if t.tzinfo else t.replace(tzinfo=UTC), n) for i, a, k, t, n in rows]

    def link(self, ref: str, item_ids: list[str], *, actor: str, resolution: str) -> int:
        """Link the objection to these items and mark it resolved, in one
        transaction. Every item must exist in the export."""
        wanted = sorted({i.strip() for i in item_ids if i.strip()})
        if not wanted:
            raise ThirdPartyError("Choose at least one photo to link, or close the objection instead.")
        con = connect()
        try:
            self.export.register(con)
            found = {r[0] for r in con.execute("SELECT item_id FROM content WHERE list_contains(?::VARCHAR[], item_id)", [wanted]).fetchall()}
        finally:
            con.close()
        unknown = [i for i in wanted if i not in found]
        if unknown:
            raise ThirdPartyError(f"No item with id {', '.join(unknown[:10])} in the export; check the ids and try again.")
        now = to_micros(datetime.now(UTC))
        with self.engine.begin() as conn:
            done = conn.execute(
                update(third_party_objections)
                .where(third_party_objections.c.id == ref, third_party_objections.c.status == "open")
                .values(status="linked", resolved_by=actor, resolution=resolution)
            )
            if done.rowcount != 1:
                raise ThirdPartyError("No open objection with that reference.")
            conn.execute(insert(third_party_links), [{"ref": ref, "item_id": i, "linked_us": now, "actor": actor} for i in wanted])
            chain.append(conn, [chain.Record("third_party_linked", {"ref": ref, "items": wanted, "resolution": resolution}, actor, ref)])
        return len(wanted)

    def close(self, ref: str, *, actor: str, resolution: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(third_party_objections)
                .where(third_party_objections.c.id == ref, third_party_objections.c.status == "open")
                .values(status="closed", resolved_by=actor, resolution=resolution)
            )
            if done.rowcount == 1:
                chain.append(conn, [chain.Record("third_party_closed", {"ref": ref, "resolution": resolution}, actor, ref)])
        if done.rowcount != 1:
            raise ThirdPartyError("No open objection with that reference.")
