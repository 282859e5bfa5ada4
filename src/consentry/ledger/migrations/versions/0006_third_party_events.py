"""Third-party objections become ledger events (CONTRACT §2, rule 15); imported events are marked.

`ledger_events` gains `item_id` (for `third_party_objected` / `third_party_dismissed`,
whose `user_id` is null) and `imported_from` (the file `ledger import` read it from).
Every administrator link made before this revision becomes a `third_party_objected`
event at the moment it was linked, with its audit record, so nothing protected
before the upgrade is unprotected after it.

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


def _links_to_events() -> None:
    from consentry.ledger import chain

    conn = op.get_bind()
    links = conn.execute(
        sa.text("SELECT ref, item_id, linked_us, actor FROM third_party_links ORDER BY linked_us, ref, item_id")
    ).all()
    if not links:
        return
    head = int(conn.execute(sa.text("SELECT last_seq FROM ledger_head WHERE id = 1")).scalar_one())
    rows = []
    for ref, item_id, linked_us, actor in links:
        head += 1
        rows.append({
            "seq": head, "event_id": f"tp-link-{ref}-{item_id}"[:128], "user_id": None, "item_id": item_id,
            "type": "third_party_objected", "at_us": linked_us, "channel": "web", "note": None,
            "actor": actor, "recorded_us": linked_us, "imported_from": None,
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
    chain.append(conn, [chain.Record("ledger_event", chain.event_data(r), r["actor"], r["item_id"]) for r in rows])


def downgrade() -> None:
    op.drop_index("ix_ledger_events_item", "ledger_events")
    with op.batch_alter_table("ledger_events") as batch:
        batch.drop_column("imported_from")
        batch.drop_column("item_id")

