"""Why pages a crawl met were not stored, kept per URL for ``claimwatch explain``.

The crawl's drop points (robots.txt and address refusals and download errors in the
spiders' errback, too little text in the analyse stage, an already-stored canonical URL
in the dedup stage) call :meth:`UnstoredLog.add`; the records are buffered and written
in one upsert per :data:`BATCH` pages (or :data:`MAX_AGE` seconds) and when the spider
closes, so the crawl's hot
path gains no transaction per page. The log only records: what a later crawl fetches is
decided by ``skipped_urls`` and the stored articles, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from storage.repository import Store, UnstoredRecord

logger = logging.getLogger(__name__)

BATCH = 200  # pages buffered before one upsert
MAX_AGE = 60.0  # seconds a record waits at most once another page is dropped (long crawls)

# reason -> how ``claimwatch explain`` says it
REASONS = {
    "robots": "robots.txt forbids fetching it",
    "refused": "its address was refused (not a public http(s) address)",
    "error": "it could not be downloaded",
    "too_short": "too little text was extracted from it",
    "no_article": "no article could be extracted from it",
    "seen": "its canonical URL is already stored",
}


class UnstoredLog:
    """A crawl's buffer of :class:`~storage.repository.UnstoredRecord` for one topic."""

    def __init__(self, store: Store, topic: str, batch: int = BATCH,
                 max_age: float = MAX_AGE) -> None:
        self.store = store
        self.topic = topic
        self.batch = batch
        self.max_age = max_age
        self.pending: dict[str, UnstoredRecord] = {}

    def add(self, url: str, reason: str, detail: str | None = None) -> None:
        """Remember why ``url`` was not stored; written with the next batch."""
        now = datetime.now(UTC)
        self.pending[url] = UnstoredRecord(url, reason, detail, now)
        oldest = next(iter(self.pending.values())).seen_at
        if len(self.pending) >= self.batch or (now - oldest).total_seconds() >= self.max_age:
            self.flush()

    def forget(self, urls: Iterable[str]) -> None:
        """Stored after all (the store removes rows already written)."""
        for url in urls:
            self.pending.pop(url, None)

    def flush(self) -> None:
        """Write the buffered records in one statement. A database error loses only these
        explanations (logged), never the crawl."""
        records, self.pending = list(self.pending.values()), {}
        try:
            self.store.record_unstored(self.topic, records)
        except SQLAlchemyError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            logger.warning("why %d pages were not stored is not kept (%s)", len(records), first)


def unstored_for(crawler: Any) -> UnstoredLog:
    """The crawl's :class:`UnstoredLog`, made once and flushed when the spider closes."""
    log = getattr(crawler, "_claimwatch_unstored", None)
    if log is None:
        from scrapy import signals

        from pipeline.context import store_for, topic_for

        log = UnstoredLog(store_for(crawler), topic_for(crawler).name)
        crawler.signals.connect(lambda *_, **__: log.flush(), signal=signals.spider_closed,
                                weak=False)
        crawler._claimwatch_unstored = log
    return log
