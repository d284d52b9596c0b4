"""Alembic environment of the store. Run through ``Store.upgrade()`` / ``phase1 db upgrade``.

``Store`` passes its open connection (inside a write transaction that also serializes
concurrent upgrades) as ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from phase1_platform.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - plain `alembic` command line use
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
