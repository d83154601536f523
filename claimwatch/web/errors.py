"""The exceptions of the web app: what a view raises, what a crawl trigger raises, what
a bad ``--listen`` raises. The app's error handlers turn :class:`HTTPError` into an HTML
page or a JSON body (claimwatch/web/app.py); no traceback ever reaches a client."""

from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    """Raised by a view (or the daemon's trigger): ``{"error": message, **extra}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class CrawlRefused(Exception):
    """Raised by a ``trigger_crawl`` callable that will not start a crawl; the message
    is shown to the user (e.g. "a crawl of this source is already running")."""


class WebConfigError(ValueError):
    """The web app cannot be served as asked (bad --listen, missing token)."""
