"""What every claimwatch spider shares: one topic source, incremental article fetches."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from twisted.python.failure import Failure

from config.models import Source, Topic
from crawler.middlewares import RefusedRequest
from pipeline.context import source_url, store_for, topic_for
from pipeline.unstored import unstored_for
from pipeline.urls import canonical_url

logger = logging.getLogger(__name__)

HTML_TYPES = (b"text/html", b"application/xhtml+xml")


class TopicSpider(scrapy.Spider):
    """Crawls one source of a topic. ``source`` is the source's name in the topic file."""

    source_kind: str = ""
    custom_settings: dict[str, Any] = {}

    topic: Topic
    source: Source
    start_url: str
    known_urls: set[str]  # of the URLs listed so far, those stored or skipped already
    queued_urls: set[str]

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> TopicSpider:
        source_name = kwargs.pop("source", None)
        topic = topic_for(crawler)
        if source_name is None:
            sources = [s for s in topic.sources if s.kind == cls.source_kind]
            if len(sources) != 1:
                raise NotConfigured(
                    f"{cls.name}: pass -a source=NAME (topic {topic.name!r} has "
                    f"{len(sources)} {cls.source_kind} sources)"
                )
            source_name = sources[0].name
        try:
            source = topic.source(source_name)
        except KeyError as exc:
            raise NotConfigured(str(exc.args[0])) from exc
        if source.kind != cls.source_kind:
            raise NotConfigured(
                f"source {source.name!r} is a {source.kind} source, not {cls.source_kind}"
            )
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.topic = topic
        spider.source = source
        spider.start_url = source_url(source.url, crawler.settings)
        spider.known_urls = set()
        spider.queued_urls = set()
        return spider

    # -- helpers for subclasses ----------------------------------------------------------------

    def count(self, key: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(f"claimwatch/{key}", n)

    def look_up_known(self, urls: Iterable[str]) -> None:
        """Ask the store, in one batch, which of the URLs a feed, sitemap or listing page
        lists (as listed and in canonical form) are stored or skipped already: before
        their :meth:`article_request` calls, which check :attr:`known_urls`."""
        limit = self.settings.getint("URLLENGTH_LIMIT", 2083)
        listed: set[str] = set()
        for url in urls:
            if url.lower().startswith(("http://", "https://")) and not (
                    limit and len(url) > limit):
                listed.update((url, canonical_url(url)))
        self.known_urls |= store_for(self.crawler).known_among(
            self.topic.name, listed - self.known_urls - self.queued_urls)

    def article_request(
        self, url: str, *, listed_title: str | None = None, listed_published: datetime | None = None
    ) -> scrapy.Request | None:
        """A request for one article page, or None when it is stored or queued already
        (:meth:`look_up_known` asked the store about it first)."""
        if not url.lower().startswith(("http://", "https://")):
            # Only the topic file may name a file:// URL (its source document); a link
            # found in a feed, sitemap or page is fetched over http(s) or not at all.
            self.count("refused/scheme")
            logger.warning("%s: refused %s: only http(s) links are fetched", self.source.name,
                           url[:200])
            unstored_for(self.crawler).add(url, "refused", "only http(s) links are fetched")
            return None
        limit = self.settings.getint("URLLENGTH_LIMIT", 2083)
        if limit and len(url) > limit:
            self.count("skipped/url_too_long")
            logger.warning("%s: skipping link of %d characters (over URLLENGTH_LIMIT %d): %s...",
                           self.source.name, len(url), limit, url[:100])
            return None
        key = canonical_url(url)
        if key in self.known_urls or url in self.known_urls:
            self.count("skipped/seen")
            return None
        if key in self.queued_urls:
            return None
        self.queued_urls.add(key)
        self.count("links")
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.article_failed,
            meta={"listed_title": listed_title, "listed_published": listed_published},
        )

    def parse_article(self, response: Response) -> Iterator[dict[str, Any]]:
        self.count("fetched")
        content_type = response.headers.get(b"Content-Type", b"") or b""
        if content_type and not any(t in content_type.lower() for t in HTML_TYPES):
            self.count("errors/not_html")
            logger.warning(
                "%s: %s is %s, not HTML; skipped", self.source.name, response.url,
                content_type.decode("latin-1"),
            )
            return
        yield {
            "topic": self.topic.name,
            "source": self.source.name,
            "url": response.url,
            "requested_url": response.request.url if response.request else response.url,
            "body": response.body,
            "encoding": getattr(response, "encoding", None),
            "fetched_at": datetime.now(UTC),
            "listed_title": response.meta.get("listed_title"),
            "listed_published": response.meta.get("listed_published"),
        }

    def article_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if failure.check(RefusedRequest):
            # counted as claimwatch/refused/<reason> and logged by the middleware
            refusal = failure.value
            if request is not None and refusal.reason == "robots":
                unstored_for(self.crawler).add(url, "robots")
            elif request is not None:
                unstored_for(self.crawler).add(url, "refused",
                                               str(refusal).removeprefix("refused: "))
            return
        reason = failure.getErrorMessage() or failure.type.__name__
        self.count("errors/fetch")
        logger.warning("%s: could not fetch %s: %s", self.source.name, url, reason)
        if request is not None:
            unstored_for(self.crawler).add(url, "error", _download_error(failure, reason))


def _download_error(failure: Failure, message: str) -> str:
    """The HTTP status of a failed download, or the network error's message."""
    response = getattr(failure.value, "response", None)
    status = getattr(response, "status", None)
    if status is not None:
        return f"HTTP {status}"
    return f"{failure.type.__name__}: {message}" if failure.type else message
