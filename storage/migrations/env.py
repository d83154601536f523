"""Alembic environment for claimwatch, configured in code (no alembic.ini).

:mod:`storage.schema` runs migrations on a connection it has already opened,
locked and begun a transaction on, and passes it in
``config.attributes["connection"]``. A ``sqlalchemy.url`` main option is
accepted too, for running Alembic's own commands against a URL.
"""

from __future__ import annotations

from alembic import context

from storage.schema import migration_context_options


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        **migration_context_options(connection.dialect.name),  # type: ignore[attr-defined]
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from storage.db import make_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use storage.schema.upgrade()")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("claimwatch migrations run online only (claimwatch db upgrade)")
run_migrations_online()
