"""``claimwatch db``: create, upgrade and check the database schema (Alembic migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from claimwatch.cli.common import db_option, user_errors


@contextmanager
def _engine(db_url: str | None) -> Iterator[Any]:
    from storage.db import make_engine

    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@click.group("db")
def db() -> None:
    """The database schema: upgrade it after installing a new claimwatch, or check it.

    \b
    Example:
      claimwatch db upgrade --db postgresql+psycopg://claimwatch@dbhost/claimwatch
      claimwatch db check
    """


@db.command()
@db_option
@click.option("--revision", default="head", show_default=True, hidden=True,
              help="Upgrade to this revision instead of the newest.")
@user_errors
def upgrade(db_url: str | None, revision: str) -> None:
    """Create the schema, or migrate it to this claimwatch's version. Safe to run twice.

    Run it once per deployment after installing a new claimwatch, before starting the
    daemon and workers (they refuse to start on an older schema). A database created
    before migrations existed is recognised and migrated.

    \b
    Example:
      claimwatch db upgrade --db postgresql+psycopg://claimwatch@dbhost/claimwatch
    """
    from storage.schema import upgrade as do_upgrade

    with _engine(db_url) as engine:
        click.echo(str(do_upgrade(engine, revision)))


@db.command()
@db_option
@user_errors
def current(db_url: str | None) -> None:
    """Print the database's schema revision and the one this claimwatch needs.

    \b
    Example:
      claimwatch db current --db sqlite:///claimwatch.sqlite
    """
    from storage.schema import describe, schema_status

    with _engine(db_url) as engine:
        revision, head = schema_status(engine)
        state = "current" if revision == head else f"the code needs {head}"
        click.echo(f"{describe(engine)}: revision {revision or 'none'} ({state})")


@db.command()
@db_option
@user_errors
def check(db_url: str | None) -> None:
    """Exit 0 if the schema is current, else 1 with the command that fixes it.

    \b
    Example:
      claimwatch db check --db postgresql+psycopg://claimwatch@dbhost/claimwatch && echo ok
    """
    from storage.schema import check_schema_current, describe

    with _engine(db_url) as engine:
        head = check_schema_current(engine)
        click.echo(f"{describe(engine)}: revision {head} (current)")


@db.command(hidden=True)
@click.argument("revision")
@db_option
@user_errors
def stamp(revision: str, db_url: str | None) -> None:
    """Record REVISION as the schema's revision without changing anything (repairs only).

    \b
    Example:
      claimwatch db stamp 0001 --db sqlite:///old.sqlite
    """
    from storage.schema import stamp as do_stamp

    with _engine(db_url) as engine:
        do_stamp(engine, revision)
        click.echo(f"stamped at {revision}")


@db.command(hidden=True)
@click.option("-m", "--message", required=True, help="What changed, e.g. 'add crawl leases'.")
@user_errors
def revision(message: str) -> None:
    """For developers: write a migration for the models' changes since the newest one.

    Review the generated file in storage/migrations/versions, then run the tests.

    \b
    Example:
      claimwatch db revision -m "add crawl leases"
    """
    from storage.schema import new_revision

    paths = new_revision(message)
    for path in paths:
        click.echo(f"wrote {path}")
    if not paths:
        click.echo("no changes")


COMMANDS = (db,)
