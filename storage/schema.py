"""Schema versions: the Alembic migrations in ``storage/migrations``, run from code.

There is no ``alembic.ini``: :func:`alembic_config` builds the configuration and
points it at the migrations shipped inside the package, so an installed
claimwatch migrates its database with ``claimwatch db upgrade`` alone.

:func:`upgrade` brings any database to the code's schema, under a lock
(a PostgreSQL advisory lock, SQLite ``BEGIN IMMEDIATE``) so that processes
started together do not race, and in one transaction where the backend allows:

- an empty database gets the whole schema at once (``create_all``, stamped at
  the head revision; ``tests/test_migrations.py`` checks that the head revision
  and the models are the same schema), or every migration with ``migrate_fresh``;
- a database at an older revision runs the migrations after it;
- a database created by ``create_all`` before migrations existed (claimwatch
  tables but no ``alembic_version``) is stamped at the newest revision whose
  tables and columns it has, then upgraded.

Services (the daemon, ``claimwatch worker``) do not migrate a database that
holds data: they call :func:`ensure_schema`, which raises
:class:`SchemaOutdated` naming the command to run.

When the models change, add a migration (and review it)::

    claimwatch db revision -m "add crawl leases"
"""

from __future__ import annotations

import functools
import logging
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.pool import StaticPool

from storage.fts import is_search_object
from storage.models import Base, UTCDateTime

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# The schema of databases created by ``create_all`` before migrations existed.
BASELINE_REVISION = "0001"
VERSION_TABLE = "alembic_version"
_PG_LOCK_KEY = 0x636C_6169_6D77_6174  # "claimwat": serialises schema changes per database


class SchemaError(RuntimeError):
    """The database schema cannot be used or changed as asked."""


class SchemaOutdated(SchemaError):
    """The database is older than the code (or empty): ``claimwatch db upgrade`` fixes it."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer claimwatch than this one."""


@dataclass(frozen=True)
class UpgradeResult:
    url: str
    before: str | None
    after: str
    action: str  # current | created | stamped | upgraded

    def __str__(self) -> str:
        if self.action == "current":
            return f"database at {self.url} is at revision {self.after} (current)"
        if self.action == "created":
            return f"database at {self.url}: schema created at revision {self.after}"
        if self.action == "stamped":
            return (f"database at {self.url} predates migrations: recognised and stamped at "
                    f"revision {self.after}")
        return f"database at {self.url} upgraded from revision {self.before} to {self.after}"


# -- Alembic configuration -------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code; ``connection`` is what ``env.py`` migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.set_main_option("truncate_slug_length", "40")
    cfg.attributes["connection"] = connection
    return cfg


@functools.lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise SchemaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def known_revisions() -> list[str]:
    """Every revision, oldest first."""
    return [s.revision for s in reversed(list(script_directory().walk_revisions()))]


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                    compare_to: Any) -> bool:
    # Tables that are not claimwatch's (APScheduler's job store shares the database) are
    # neither compared nor dropped.
    if type_ == "table" and reflected and compare_to is None:
        return False
    # The full-text index (storage/fts.py) is the database's own, not the models'.
    if reflected and compare_to is None and is_search_object(name):
        return False
    return True


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import the models (they change); render our types as plain SQL types.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def migration_context_options(dialect_name: str) -> dict[str, Any]:
    """Options for ``context.configure`` (env.py) and for comparisons: one definition."""
    return {
        "target_metadata": Base.metadata,
        "render_as_batch": dialect_name == "sqlite",  # SQLite cannot ALTER most things
        "compare_type": True,
        "include_object": _include_object,
        "render_item": _render_item,
        "version_table": VERSION_TABLE,
    }


# -- inspection ------------------------------------------------------------------------------


def describe(bind: Engine | Connection) -> str:
    return bind.engine.url.render_as_string(hide_password=True)


def upgrade_command(bind: Engine | Connection) -> str:
    return f"claimwatch db upgrade --db {shlex.quote(describe(bind))}"


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}) \
        .get_current_revision()


def _claimwatch_tables(conn: Connection) -> set[str]:
    """Tables of any claimwatch schema revision present in the database."""
    names = set(inspect(conn).get_table_names())
    known = set(Base.metadata.tables) | set().union(*_revision_columns().values())
    return names & known


def current_revision(bind: Engine | Connection) -> str | None:
    """The revision the database is at (None: empty, or created before migrations)."""
    if isinstance(bind, Connection):
        return _current(bind)
    with bind.connect() as conn:
        return _current(conn)


def schema_status(bind: Engine | Connection) -> tuple[str | None, str]:
    """(current revision, head revision)."""
    return current_revision(bind), head_revision()


def check_schema_current(bind: Engine | Connection) -> str:
    """Return the head revision, or raise :class:`SchemaOutdated` / :class:`SchemaTooNew`.

    The message says what to run, e.g. ``database at postgresql://... is at revision
    0001, the code needs 0002: run `claimwatch db upgrade --db postgresql://...```.
    """
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return check_schema_current(conn)
    conn = bind
    current, head = _current(conn), head_revision()
    if current == head:
        return head
    url, fix = describe(conn), upgrade_command(conn)
    if current is None:
        if _claimwatch_tables(conn):
            raise SchemaOutdated(
                f"database at {url} was created before schema migrations existed, "
                f"the code needs revision {head}: run `{fix}`"
            )
        raise SchemaOutdated(f"database at {url} has no claimwatch schema yet: run `{fix}`")
    if current not in known_revisions():
        raise SchemaTooNew(
            f"database at {url} is at revision {current}, which this claimwatch does not know "
            f"(its newest is {head}): it was migrated by a newer claimwatch; upgrade claimwatch"
        )
    raise SchemaOutdated(
        f"database at {url} is at revision {current}, the code needs {head}: run `{fix}`"
    )


def ensure_schema(engine: Engine) -> str:
    """For services: create the schema in an empty database, else require it to be current.

    A database holding data is never migrated behind the operator's back: an old one
    raises :class:`SchemaOutdated` with the command to run.
    """
    with engine.connect() as conn:
        empty = _current(conn) is None and not _claimwatch_tables(conn)
    if empty:
        upgrade(engine)
    return check_schema_current(engine)


def compare_to_models(bind: Engine | Connection) -> list[Any]:
    """Alembic's autogenerate diff between the database and the models (empty: same schema)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return compare_to_models(conn)
    opts = migration_context_options(bind.dialect.name)
    opts.pop("target_metadata")
    context = MigrationContext.configure(bind, opts=opts)
    return list(compare_metadata(context, Base.metadata))


# -- changes ---------------------------------------------------------------------------------


@contextmanager
def _engine(engine_or_url: Engine | str) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    from storage.db import make_engine

    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _locked_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the schema lock; commits on success."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Table rebuilds (batch migrations) drop tables: with foreign keys on, that would
            # cascade. Off for the migration (only possible outside a transaction), checked after.
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            yield conn
            if sqlite:
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise SchemaError(f"foreign key check failed after migrating: {problems[:5]}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                conn.commit()


def upgrade(engine_or_url: Engine | str, revision: str = "head", *,
            migrate_fresh: bool = False) -> UpgradeResult:
    """Bring the database to ``revision`` (default: the code's head). Idempotent.

    ``migrate_fresh`` runs every migration on an empty database instead of
    creating the head schema directly (the tests use it to check the migrations).
    """
    with _engine(engine_or_url) as engine:
        # Fast path, no lock: already current (every crawl and CLI call passes here).
        with engine.connect() as conn:
            before = _current(conn)
        target = _resolve(revision)
        if before == target:
            return UpgradeResult(describe(engine), before, target, "current")
        with _locked_connection(engine) as conn:
            return _upgrade_locked(conn, target, migrate_fresh)


def _resolve(revision: str) -> str:
    try:
        script = script_directory().get_revision(revision)
    except CommandError as exc:
        raise SchemaError(str(exc)) from exc
    if script is None:
        raise SchemaError(f"unknown schema revision {revision!r}")
    return script.revision


def _upgrade_locked(conn: Connection, target: str, migrate_fresh: bool) -> UpgradeResult:
    cfg = alembic_config(conn)
    url = describe(conn)
    before = _current(conn)  # again: another process may have migrated while we waited
    if before == target:
        return UpgradeResult(url, before, target, "current")
    try:
        if before is None:
            tables = _claimwatch_tables(conn)
            if not tables:
                if target == head_revision() and not migrate_fresh:
                    Base.metadata.create_all(conn)
                    command.stamp(cfg, target)
                else:
                    command.upgrade(cfg, target)
                logger.info("database at %s: schema created at revision %s", url, target)
                return UpgradeResult(url, None, target, "created")
            legacy = _legacy_revision(conn, tables)
            logger.warning("database at %s predates migrations; its schema is revision %s",
                           url, legacy)
            command.stamp(cfg, legacy)
            if legacy == target:
                return UpgradeResult(url, None, target, "stamped")
            command.upgrade(cfg, target)
        else:
            if before not in known_revisions():
                raise SchemaTooNew(
                    f"database at {url} is at revision {before}, which this claimwatch does not "
                    "know: it was migrated by a newer claimwatch; upgrade claimwatch"
                )
            ahead = _schema_ahead_of(conn, before)
            if ahead is not None:
                # Created by create_all from models newer than the revision it was stamped
                # with (a development database): its tables are already there.
                logger.warning("database at %s is stamped %s but has the tables of %s: "
                               "stamped %s", url, before, ahead, ahead)
                command.stamp(cfg, ahead)
            if ahead != target:
                command.upgrade(cfg, target)
    except CommandError as exc:
        raise SchemaError(f"database at {url}: {exc}") from exc
    logger.info("database at %s upgraded from revision %s to %s", url, before, target)
    return UpgradeResult(url, before, target, "upgraded")


def stamp(engine_or_url: Engine | str, revision: str) -> None:
    """Record ``revision`` as the database's schema without changing anything else."""
    with _engine(engine_or_url) as engine, _locked_connection(engine) as conn:
        try:
            command.stamp(alembic_config(conn), revision)
        except CommandError as exc:
            raise SchemaError(str(exc)) from exc


@functools.lru_cache(maxsize=1)
def _revision_columns() -> dict[str, dict[str, frozenset[str]]]:
    """Tables and columns of every revision, from migrating a scratch in-memory database."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    result: dict[str, dict[str, frozenset[str]]] = {}
    try:
        with engine.connect() as conn:
            cfg = alembic_config(conn)
            for rev in known_revisions():
                command.upgrade(cfg, rev)
                insp = inspect(conn)
                result[rev] = {
                    name: frozenset(c["name"] for c in insp.get_columns(name))
                    for name in insp.get_table_names()
                    if name != VERSION_TABLE and not is_search_object(name)
                }
    finally:
        engine.dispose()
    return result


def _actual_columns(conn: Connection) -> dict[str, frozenset[str]]:
    insp = inspect(conn)
    return {name: frozenset(c["name"] for c in insp.get_columns(name)
                            if not is_search_object(c["name"]))  # PostgreSQL's search column
            for name in _claimwatch_tables(conn) if not is_search_object(name)}


def _schema_ahead_of(conn: Connection, revision: str) -> str | None:
    """A revision newer than ``revision`` whose tables and columns the database has already."""
    revisions = _revision_columns()
    order = list(revisions)
    actual = _actual_columns(conn)
    if actual == revisions.get(revision):
        return None
    for rev in reversed(order[order.index(revision) + 1:]):
        if actual == revisions[rev]:
            return rev
    return None


def _legacy_revision(conn: Connection, tables: set[str]) -> str:
    """The newest revision whose tables and columns a migration-less database has."""
    actual = _actual_columns(conn)
    for rev, schema in reversed(list(_revision_columns().items())):
        if actual == schema:
            return rev
    raise SchemaError(
        f"database at {describe(conn)} has claimwatch tables ({', '.join(sorted(tables))}) but "
        "no migration history, and they match no known schema revision: back it up, then "
        "record its revision by hand with `claimwatch db stamp REVISION` and upgrade"
    )


def _skip_if_empty(context: Any, revision: Any, directives: list[Any]) -> None:
    if directives and directives[0].upgrade_ops.is_empty():
        directives[:] = []


def new_revision(message: str, *, rev_id: str | None = None) -> list[Path]:
    """Autogenerate a migration from the difference between the head revision and the models.

    For developers: review the generated file, then run the tests (they check the
    migrations against the models on SQLite and PostgreSQL).
    """
    if not message.strip():
        raise SchemaError("a migration needs a message (-m 'what changed')")
    if rev_id is None:
        numbers = [int(r) for r in known_revisions() if re.fullmatch(r"\d+", r)]
        rev_id = f"{max(numbers, default=0) + 1:04d}"
    engine = create_engine("sqlite://", poolclass=StaticPool)
    try:
        with engine.connect() as conn:
            cfg = alembic_config(conn)
            command.upgrade(cfg, "head")
            scripts = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id,
                                       process_revision_directives=_skip_if_empty)
    finally:
        engine.dispose()
        script_directory.cache_clear()
        _revision_columns.cache_clear()
    if scripts is None:
        return []
    if not isinstance(scripts, list):
        scripts = [scripts]
    return [Path(s.path) for s in scripts if s is not None]
