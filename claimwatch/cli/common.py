"""What every command shares: its common options (``--db``, ``--set``, ``-o``), the store
opened and closed, dates as options, and user errors as one line, never a traceback.

Kept apart from claimwatch.cli, which imports the command modules to register them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The access token of the review page and API, for ``serve`` and ``daemon``.
TOKEN_ENV = "CLAIMWATCH_WEB_TOKEN"
DB_OPTION_HELP = "Database URL (default: $CLAIMWATCH_DB, else a SQLite file in your data dir)."
# A stored row's id: what a 64-bit integer column holds (a bigger number is a usage error,
# not an OverflowError from the driver).
MAX_DB_ID = 2**63 - 1
DB_ID = click.IntRange(1, MAX_DB_ID)

#: ``--db URL`` as every command that opens the store takes it (a decorator).
db_option = click.option("--db", "db_url", envvar="CLAIMWATCH_DB", help=DB_OPTION_HELP)
#: ``-o FILE``: write there (see :func:`write_file`) instead of standard output.
output_option = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                             help="Write to this file instead of standard output.")


def settings_option(help: str) -> Callable[[F], F]:
    """``--set NAME=VALUE`` (repeatable), given to the command as ``settings``: a dict."""
    return click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help=help,
                        callback=lambda _ctx, _param, value: parse_settings(value))


def sources_option(verb: str) -> Callable[[F], F]:
    """``--source NAME`` (repeatable): only these sources of the topic."""
    return click.option("--source", "sources", multiple=True, metavar="NAME",
                        help=f"{verb} only this source (repeatable).")


@contextmanager
def store(db_url: str | None) -> Iterator[Any]:
    """The store's session factory for one command, its engine disposed after. Says on
    stderr when it is about to create an empty SQLite file (see warn_if_new_database)."""
    from storage.db import open_db

    warn_if_new_database(db_url)
    engine, sessions = open_db(db_url)
    try:
        yield sessions
    finally:
        engine.dispose()


def parse_when(value: str | None, option: str) -> Any:
    """An option's date (``7d``, ``24h`` or an ISO date) as a datetime; None stays None."""
    if value is None:
        return None
    from claimwatch.digest import DigestError, parse_since

    try:
        return parse_since(value)
    except DigestError as exc:
        raise click.BadParameter(f"{value!r} is not a duration like 7d or an ISO date in range",
                                 param_hint=option) from exc


def write_file(output: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``output`` through ``output.partial``: never a half-written file
    under the real name, and a path that cannot be written is a one-line error."""
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from exc
    partial.replace(output)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The library's errors that mean "the user must fix something" (imported lazily)."""
    from claimwatch.accounts import AccountError
    from claimwatch.digest import DigestError
    from claimwatch.review import ReviewError
    from config.loader import ConfigError
    from crawler.runner import CrawlError
    from storage.schema import SchemaError
    from storage.search import SearchError

    return (AccountError, ConfigError, CrawlError, DigestError, ReviewError, SchemaError,
            SearchError)


def user_errors(func: F) -> F:
    """Turn the library's user errors into one clear line and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            message = user_message(exc, kwargs.get("db_url"))
            if message is None:
                raise
            raise click.ClickException(message) from exc

    return wrapper  # type: ignore[return-value]


def warn_if_new_database(db_url: str | None) -> None:
    """Say on stderr when a command that reads the store is about to create an empty
    SQLite database: a mistyped ``--db`` or ``CLAIMWATCH_DB`` must not pass unseen.
    (``crawl``, ``daemon`` and ``db upgrade`` create one on purpose and stay quiet.)"""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from storage.db import default_db_url

    try:
        parsed = make_url(db_url or default_db_url())
    except Exception:  # noqa: BLE001 - the command reports a bad URL itself
        return
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if not path.exists():
        click.echo(f"Warning: {path} does not exist: creating a new, empty database there "
                   "(check --db or CLAIMWATCH_DB)", err=True)


def _database_name(db_url: str | None) -> str:
    """The database a command used, for messages: the SQLite file, else the URL (no password)."""
    from sqlalchemy.engine import make_url

    from storage.db import default_db_url, describe

    url = db_url or default_db_url()
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - only naming it for a message
        return url
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return describe(url)


def user_message(exc: BaseException, db_url: str | None = None) -> str | None:
    """The one line to show for a user error, or None for a bug (which keeps its traceback).

    ``db_url`` is the command's ``--db``, to name the database in its errors.
    """
    import sys

    from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

    if isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError):
        # A corrupted, truncated or overwritten SQLite file ("file is not a database",
        # "database disk image is malformed") and the like: name the file, no traceback.
        first = str(exc.orig).splitlines()[0] if exc.orig is not None else "unreadable"
        return f"database error in {_database_name(db_url)}: {first}"
    if isinstance(exc, OperationalError):
        first = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        return f"database error in {_database_name(db_url)}: {first}"
    if isinstance(exc, ArgumentError):
        return f"bad database URL: {exc}"
    if isinstance(exc, OverflowError):
        return f"number out of range: {exc}"
    if isinstance(exc, _user_error_types()):
        return str(exc)
    # Redis and queue errors, checked without importing Redis for commands that never use it.
    distributed = sys.modules.get("crawler.distributed")
    if distributed is not None and isinstance(exc, distributed.DistributedError):
        return str(exc)
    redis_exceptions = sys.modules.get("redis.exceptions")
    if redis_exceptions is not None and isinstance(exc, redis_exceptions.RedisError):
        return f"Redis error: {exc}"
    return None


def parse_settings(overrides: tuple[str, ...]) -> dict[str, str]:
    """``--set NAME=VALUE`` options as a dict of setting overrides."""
    settings: dict[str, str] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--set")
        settings[name.strip()] = value
    return settings
