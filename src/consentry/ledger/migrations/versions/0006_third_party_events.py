"""Third-party objections become ledger events (CONTRACT §2, rule 15); imported events are marked.

`ledger_events` gains `item_id` (for `third_party_objected` / `third_party_dismissed`,
whose `user_id` is null) and `imported_from` (the file `ledger import` read it from).
Every administrator link made before this revision becomes a `third_party_objected`
event at the moment it was linked, with its audit record, so nothing protected
before the upgrade is unprotected after it. Requests confirmed but not yet
reviewed protected nothing before; the items they named are protected from
their confirmation on, as a confirmation does now. The links table goes:
the ledger holds it all. Event ids start with `tp:<ref>:`, tracing each to
its request.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_events") as batch:
        batch.alter_column("user_id", existing_type=sa.String(256), nullable=True)
        batch.add_column(sa.Column("item_id", sa.String(256), nullable=True))
        batch.add_column(sa.Column("imported_from", sa.Text, nullable=True))
    op.create_index("ix_ledger_events_item", "ledger_events", ["item_id"])
    _links_to_events()
    op.drop_index("ix_third_party_links_item", "third_party_links")
    op.drop_index("ux_third_party_links", "third_party_links")
    op.drop_table("third_party_links")


def _links_to_events() -> None:
    from consentry.ledger import chain

    conn = op.get_bind()
    links = conn.execute(
        sa.text("SELECT ref, item_id, linked_us, actor FROM third_party_links ORDER BY linked_us, ref, item_id")
    ).all()
    pending = conn.execute(
        sa.text("SELECT id, items, received_us FROM third_party_objections WHERE status = 'open' ORDER BY received_us, id")
    ).all()
    found = [(linked_us, ref, item_id, actor, "link") for ref, item_id, linked_us, actor in links]
    for ref, items, received_us in pending:
        found += [(received_us, ref, i, f"requester:{ref}", "named") for i in dict.fromkeys(_tokens(items))]
    conn.execute(sa.text("UPDATE third_party_objections SET status = 'reviewed' WHERE status IN ('linked', 'closed')"))
    if not found:
        return
    head = int(conn.execute(sa.text("SELECT last_seq FROM ledger_head WHERE id = 1")).scalar_one())
    rows = []
    for at_us, ref, item_id, actor, how in sorted(found):
        head += 1
        rows.append({
            "seq": head, "event_id": f"tp:{ref}:{how}:{item_id}"[:128], "user_id": None, "item_id": item_id[:256],
            "type": "third_party_objected", "at_us": at_us, "channel": "web", "note": None,
            "actor": actor, "recorded_us": at_us, "imported_from": None,
        })
    conn.execute(
        sa.text(
            "INSERT INTO ledger_events (seq, event_id, user_id, item_id, type, at_us, channel, note, actor, "
            "recorded_us, imported_from) VALUES (:seq, :event_id, :user_id, :item_id, :type, :at_us, :channel, "
            ":note, :actor, :recorded_us, :imported_from)"
        ),
        rows,
    )
    conn.execute(sa.text("UPDATE ledger_head SET last_seq = :s WHERE id = 1"), {"s": head})
    chain.append(conn, [chain.Record("ledger_event", chain.event_data(r), r["actor"], f"item:{r['item_id']}") for r in rows])


def _tokens(text: str | None) -> list[str]:
    """Item ids as the request form took them (a copy, frozen with this revision, of
    consentry.people.third_party.named_tokens): separated by commas, spaces or new
    lines; a pasted link counts by its last path segment."""
    import re

    out = []
    for token in re.split(r"[\s,;]+", text or ""):
        token = token.strip().rstrip("/")
        if "://" in token:
            token = token.rsplit("/", 1)[-1].split("?", 1)[0]
        token = token.lstrip("@")
        if token and token not in out:
            out.append(token)
    return out


def downgrade() -> None:
    op.create_table(
        "third_party_links",
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("linked_us", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
    )
    op.create_index("ix_third_party_links_item", "third_party_links", ["item_id"])
    op.create_index("ux_third_party_links", "third_party_links", ["ref", "item_id"], unique=True)
    op.drop_index("ix_ledger_events_item", "ledger_events")
    with op.batch_alter_table("ledger_events") as batch:
        batch.drop_column("imported_from")
        batch.drop_column("item_id")

