"""Which items people without an account objected to, as administrators linked
them. Read by `explain`, snapshot builds and purges; written by
`consentry.people.third_party`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from ..timeutil import from_micros
from .tables import third_party_links


def links_for(engine: Engine, item_id: str) -> list[tuple[str, datetime, str]]:
    """(reference, when linked, by whom) for one item: what `explain` shows."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(third_party_links.c.ref, third_party_links.c.linked_us, third_party_links.c.actor)
            .where(third_party_links.c.item_id == item_id)
            .order_by(third_party_links.c.linked_us)
        ).all()
    return [(r, from_micros(us), a) for r, us, a in rows]


def linked_item_ids(engine: Engine) -> list[str]:
    """Every item some person without an account objected to (small: one row
    per linked photo), for snapshot builds and purges to anti-join."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(third_party_links.c.item_id).distinct()).all()]
