"""Alembic environment: runs on the connection the application hands over (see migrate.py)."""

from alembic import context

from domain.adapters.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # invoked from the alembic CLI: build an engine from the ini URL
    from domain.adapters.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
