"""Revisits: a source's recent articles fetched again, to catch edits and removals.

``claimwatch crawl TOPIC_FILE --revisit`` runs this spider for each source instead of
its usual one. It fetches the source's articles first stored within the source's
``revisit`` window (default 3d; ``revisit: false`` turns it off), least recently
fetched first, with a conditional GET (``If-Modified-Since`` the last fetch: an
unchanged page costs a 304), through the same politeness (robots.txt, the address
guard, AutoThrottle) as any crawl. What each fetch found is handed to
pipeline/revisit.py by the analyse stage: a new revision is stored with its
classified changes; a failure, a redirect elsewhere or another article at the
address is recorded, never stored as a revision.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import scrapy
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from twisted.python.failure import Failure

from config.loader import revisit_window
from pipeline.context import store_for, topic_for
from storage.revisions import due_for_revisit

logger = logging.getLogger(__name__)


class RevisitSpider(scrapy.Spider):
    name = "revisit"

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> RevisitSpider:
        source_name = kwargs.pop("source", None)
        topic = topic_for(crawler)
        try:
            source = topic.source(source_name)
        except KeyError as exc:
            raise NotConfigured(str(exc.args[0])) from exc
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.topic = topic
        spider.source = source
        spider.window = revisit_window(source)
        spider.store = store_for(crawler)
        spider.limit = crawler.settings.getint("CLAIMWATCH_REVISIT_MAX", 500)
        return spider

    def count(self, key: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(f"claimwatch/{key}", n)

    async def start(self) -> AsyncIterator[Any]:
        if self.window is None:
            logger.info("%s: revisits are off (revisit: false)", self.source.name)
            return
        since = datetime.now(UTC) - self.window
        with self.store.sessions() as session:
            due = due_for_revisit(session, self.topic.name, self.source.name, since,
                                  self.limit)
        for article_id, url, last in due:
            self.count("revisit/requests")
            yield scrapy.Request(
                url, callback=self.parse_revisit, errback=self.revisit_failed,
                dont_filter=True,
                headers={"If-Modified-Since": format_datetime(last, usegmt=True)},
                meta={"revisit_of": article_id, "handle_httpstatus_all": True},
            )

    def parse_revisit(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {
            "topic": self.topic.name, "source": self.source.name, "url": response.url,
            "requested_url": response.request.url if response.request else response.url,
            "revisit_of": response.meta["revisit_of"], "status": response.status,
            "body": response.body if response.status == 200 else b"",
            "encoding": getattr(response, "encoding", None),
            "fetched_at": datetime.now(UTC),
        }

    def revisit_failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        request = getattr(failure, "request", None)
        if request is None:
            return
        reason = failure.getErrorMessage() or failure.type.__name__
        self.count("errors/fetch")
        logger.warning("%s: revisit of %s failed: %s", self.source.name, request.url, reason)
        yield {"topic": self.topic.name, "source": self.source.name, "url": request.url,
               "requested_url": request.url, "revisit_of": request.meta["revisit_of"],
               "status": None, "error": reason, "body": b"", "fetched_at": datetime.now(UTC)}
