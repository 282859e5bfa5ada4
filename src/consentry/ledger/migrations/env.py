"""Alembic environment: consentry passes its own connection in `attributes`."""

from alembic import context

from consentry.ledger.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
