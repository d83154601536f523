"""The local PostgreSQL and Redis the storage and distributed tests use.

Defaults are this machine's services: PostgreSQL on 127.0.0.1:5432 (trust auth,
database ``test``) and Redis on 127.0.0.1:6379. Override with
``CLAIMWATCH_TEST_POSTGRES`` / ``CLAIMWATCH_TEST_REDIS``. Tests that need a service
that is not reachable are skipped with the reason, or fail when
``CLAIMWATCH_REQUIRE_SERVICES=1`` (set by CI, where the services must be up).

Each test session works in its own PostgreSQL schema and Redis key prefix and
removes them afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "CLAIMWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CLAIMWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("CLAIMWATCH_REQUIRE_SERVICES", "") not in ("", "0")


def unavailable(what: str, url: str, error: object) -> None:
    """Skip (or, in CI, fail) the test because a service is not reachable."""
    message = f"{what} not reachable at {url}: {error}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (CLAIMWATCH_REQUIRE_SERVICES is set)", pytrace=False)
    variable = "CLAIMWATCH_TEST_POSTGRES" if what == "PostgreSQL" else "CLAIMWATCH_TEST_REDIS"
    pytest.skip(f"{message} (start it, or point {variable} at one)")


def postgres_error(url: str = POSTGRES_URL) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any driver or network error means "not usable here"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first_line}"
    return None


def redis_error(url: str = REDIS_URL) -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (created with :func:`postgres_schema`)."""
    parsed = make_url(url)
    query = dict(parsed.query)
    query["options"] = f"-csearch_path={schema}"
    return parsed.set(query=query).render_as_string(hide_password=False)


@contextmanager
def postgres_schema(url: str = POSTGRES_URL, prefix: str = "cw_test") -> Iterator[str]:
    """A fresh, empty schema; yields a URL that uses it. Dropped (CASCADE) afterwards.
    Skips the test (fails it in CI) when PostgreSQL does not answer at ``url``."""
    error = postgres_error(url)
    if error:
        unavailable("PostgreSQL", url, error)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield with_search_path(url, schema)
        finally:
            with admin.begin() as conn:
                # Sessions left open by a failed test must not block the drop forever.
                conn.execute(text("SET lock_timeout = '20s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def empty_tables(url: str) -> None:
    """Delete every row of every claimwatch table at ``url`` (keeps the schema and revision)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            names = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
            if names:
                quoted = ", ".join(f'"{n}"' for n in names)
                conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


def redis_prefix() -> str:
    return f"cwtest:{uuid.uuid4().hex[:10]}"


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (the test's own); returns how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


__all__ = [
    "POSTGRES_URL", "REDIS_URL", "REQUIRE_SERVICES", "delete_redis_keys", "empty_tables",
    "postgres_error", "postgres_schema", "redis_error", "redis_prefix", "unavailable",
    "with_search_path",
]
