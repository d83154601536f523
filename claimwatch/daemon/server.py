"""The daemon's web server: the JSON API and the review page on one port.

Kept in this one module so the app behind it can change (a new web app's factory)
without touching the rest of the daemon.
"""

from __future__ import annotations

import logging
from typing import Any

from claimwatch.daemon.options import DaemonError
from claimwatch.web import ApiServer, CrawlRefused, HTTPError, create_app

logger = logging.getLogger(__name__)


def start_server(daemon: Any, host: str, port: int) -> tuple[Any, Any, ApiServer]:
    """Build the web app (review pages and JSON API, claimwatch/web/) for ``daemon`` and
    serve it.

    Returns ``(app, review, server)`` (the app twice: pages and API are one app); raises
    :class:`DaemonError` when the address cannot be listened on.
    """
    app = review = review_app(daemon)
    try:
        server = ApiServer(app, host, port).start()
    except OSError as exc:
        raise DaemonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                          " (use --listen HOST:PORT, or --listen none)") from exc
    return app, review, server


def review_app(daemon: Any) -> Any:
    """The web app with ``daemon`` as its control (health, crawl now, runs)."""

    def crawl_now(topic_name: str, source_name: str) -> str:
        try:
            result = daemon.trigger(topic_name, source_name)
        except HTTPError as exc:
            raise CrawlRefused(exc.message) from None
        if not result["runs"]:
            raise CrawlRefused(result.get("error") or "the source is being crawled already")
        return f"crawl run {result['runs'][0]['id']} started"

    with daemon._lock:
        topics = {item.topic.name: item.topic for item in daemon.topics.values()}
    return create_app(daemon.sessions, topics, token=daemon.options.token,
                      trigger_crawl=crawl_now, control=daemon)


def update_review_topics(review: Any, topics: dict[str, Any]) -> None:
    """Tell the review page the topics after a reload (``topics``: name -> Topic)."""
    current = getattr(review, "topics", None)
    if isinstance(current, dict):
        current.clear()
        current.update(topics)
