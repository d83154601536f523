"""What every command shares: user errors as one line, and ``--set NAME=VALUE`` parsing.

Kept apart from claimwatch.cli, which imports the command modules to register them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DB_OPTION_HELP = "Database URL (default: $CLAIMWATCH_DB, else a SQLite file in your data dir)."


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
            message = user_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from exc

    return wrapper  # type: ignore[return-value]


def user_message(exc: BaseException) -> str | None:
    """The one line to show for a user error, or None for a bug (which keeps its traceback)."""
    import sys

    from sqlalchemy.exc import ArgumentError, OperationalError

    if isinstance(exc, OperationalError):
        return f"database error: {exc.orig}"
    if isinstance(exc, ArgumentError):
        return f"bad database URL: {exc}"
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
