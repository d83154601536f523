"""What a database error means for the crawl: the disk is full, or the server is gone.

SQLAlchemy wraps every driver error in :class:`sqlalchemy.exc.DBAPIError`; the crawl's
store stages ask :func:`database_problem` whether waiting and retrying can help (the
connection was lost: PostgreSQL restarted, a proxy cut it) or not (the disk is full:
the crawl stops, and everything already committed stays as it is).
"""

from __future__ import annotations

FULL = "full"
LOST = "lost"

_FULL_WORDS = ("database or disk is full", "no space left on device", "could not extend file",
               "disk full", "could not write to file")
_LOST_WORDS = ("server closed the connection", "connection refused", "terminating connection",
               "could not connect", "connection already closed", "connection is closed",
               "consuming input failed", "ssl syscall", "the database system is",
               "connection timed out", "connection reset", "no connection to the server",
               "server conn crashed", "lost synchronization", "broken pipe")


def database_problem(exc: BaseException) -> str | None:
    """:data:`FULL`, :data:`LOST` or None (any other error: a bug or bad data)."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    text = str(orig or exc).lower()
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if sqlstate == "53100" or any(word in text for word in _FULL_WORDS):
        return FULL  # 53100: disk_full
    if (exc.connection_invalidated or sqlstate.startswith("08")
            or sqlstate in ("53300", "57P01", "57P02", "57P03")  # too many connections, shutdown
            or any(word in text for word in _LOST_WORDS)):
        return LOST
    return None
