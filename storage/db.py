"""Engines and sessions. SQLite (WAL, busy timeout) by default, PostgreSQL by URL."""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

ENV_VAR = "CLAIMWATCH_DB"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    """``CLAIMWATCH_DB`` if set, else a SQLite file in the user's data directory."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_VAR):
        return environ[ENV_VAR]
    from platformdirs import user_data_dir

    path = Path(user_data_dir("claimwatch", appauthor=False)) / "claimwatch.sqlite"
    return f"sqlite:///{path}"


SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _use_wal(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    # Checkpoint the WAL every ~40 MB (10,000 pages) instead of SQLite's ~4 MB: a stored
    # article dirties ~60 scattered index pages (band keys), so at the default a crawl
    # into a grown store checkpointed (copy back + fsync) every ~16 articles. Store.save
    # per 300 pages at 100k stored: 1.30-1.68 s -> 1.02-1.16 s (BENCHMARKS.md, store growth).
    cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so), waiting out other connections like the busy
    timeout does. SQLite's switch does not wait on its own: processes opening a new file
    at the same moment got "database is locked" from it."""
    import sqlite3
    import time

    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: :func:`default_db_url`).

    SQLite files get their parent directory created, WAL mode and a busy
    timeout on every connection, so a daemon and a CLI can share one file.
    """
    url = url or default_db_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "before_cursor_execute", _strip_nul_characters, retval=True)
    return engine


def _without_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_nul(v) for v in value)
    return value


def _strip_nul_characters(conn: Any, cursor: Any, statement: str, parameters: Any,
                          context: Any, executemany: bool) -> tuple[str, Any]:
    """PostgreSQL text cannot hold NUL characters (SQLite can): drop them from parameters,
    so a page with a stray NUL is stored on both backends instead of failing on one."""
    return statement, _without_nul(parameters)


def init_db(engine: Engine) -> None:
    """Bring the schema to the code's revision with Alembic (idempotent, cheap when current).

    An empty database gets the whole schema; an older one is migrated; one created
    by ``create_all`` before migrations existed is recognised and stamped. See
    :mod:`storage.schema` (services use :func:`storage.schema.ensure_schema` instead,
    which never migrates a database holding data).
    """
    if not _at_head(engine):
        from storage.schema import upgrade  # Alembic: only when there is something to do

        upgrade(engine)
    refresh_statistics(engine)


_REVISION_LINE = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*['\"]([^'\"]*)['\"]", re.M)


@functools.lru_cache(maxsize=1)
def _head_from_files() -> str | None:
    """The head revision read from the migration files' text (no Alembic import), or None
    when that is not one clear line of revisions (then Alembic decides)."""
    versions = Path(__file__).resolve().with_name("migrations") / "versions"
    revisions: dict[str, str | None] = {}
    for path in versions.glob("*.py"):
        if path.name == "__init__.py":
            continue
        found = dict((bool(down), rev) for down, rev in
                     _REVISION_LINE.findall(path.read_text("utf-8")))
        if False not in found:
            return None
        revisions[found[False]] = found.get(True)
    parents = set(revisions.values())
    heads = [r for r in revisions if r not in parents]
    return heads[0] if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """The database is at the code's head revision: one SELECT, no Alembic import (a
    process that only reads, like ``claimwatch digest``, starts ~0.3 s sooner)."""
    head = _head_from_files()
    if head is None:
        return False
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:  # no version table yet, or not readable: Alembic decides
        return False
    return current == [head]


#: The tables whose planner statistics matter to the crawl, the lists and the digest.
STAT_TABLES = ("articles", "article_bands", "article_claims", "claim_candidates", "crawl_runs")


def refresh_statistics(engine: Engine, *, force: bool = False) -> list[str]:
    """Bring the planner's statistics up to date when they are missing or stale.

    SQLite has none until ANALYZE runs, and a plan chosen without them can walk every
    article of a topic; PostgreSQL's autovacuum analyses on its own schedule, which a
    crawl into a young database outruns. Run at open (:func:`init_db`) and after every
    crawl: the check is a few indexed reads; ANALYZE runs only when a table grew or
    changed by more than half since it was last analysed (SQLite: sampled, at most
    ``analysis_limit`` rows per index). Returns the tables analysed.
    """
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return _refresh_sqlite(conn, force)
            if conn.dialect.name == "postgresql":
                return _refresh_postgresql(conn, force)
    except Exception as exc:  # statistics are an optimisation: never fail a crawl for them
        logger.warning("could not refresh the planner's statistics: %s",
                       str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return []


def _refresh_sqlite(conn: Any, force: bool) -> list[str]:
    from sqlalchemy import text

    names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    stats: dict[str, int] = {}
    if "sqlite_stat1" in names:
        for tbl, stat in conn.execute(text("SELECT tbl, stat FROM sqlite_stat1")):
            if stat:
                stats[tbl] = max(stats.get(tbl, 0), int(str(stat).split()[0]))
    stale = []
    for table in STAT_TABLES:
        if table not in names:
            continue
        # max(id) is one index probe; ids only grow, so it bounds the row count.
        rows = conn.execute(text(f"SELECT max(id) FROM {table}")).scalar() or 0
        known = stats.get(table)
        if force or (rows and (known is None or rows > 1.5 * known + 100)):
            stale.append(table)
    if stale:
        conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
        for table in stale:
            conn.exec_driver_sql(f"ANALYZE {table}")
        conn.commit()
        logger.debug("analysed %s", ", ".join(stale))
    return stale


def _refresh_postgresql(conn: Any, force: bool) -> list[str]:
    from sqlalchemy import bindparam, text

    rows = conn.execute(
        text("SELECT relname, n_live_tup, n_mod_since_analyze, "
             "coalesce(last_analyze, last_autoanalyze) IS NULL FROM pg_stat_user_tables "
             "WHERE relname IN :names AND schemaname = current_schema()")
        .bindparams(bindparam("names", expanding=True)),
        {"names": list(STAT_TABLES)},
    ).all()
    stale = [name for name, live, modified, never in rows
             if force or ((never and (live or modified))
                          or modified > 0.5 * max(live, 0) + 100)]
    for table in stale:
        conn.exec_driver_sql(f"ANALYZE {table}")
    conn.commit()
    return stale


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def open_db(url: str | None = None) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    init_db(engine)
    return engine, session_factory(engine)


def describe(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)
