"""Feed source: RSS 0.9x/2.0, RSS 1.0 (RDF) and Atom; follows each entry to its article."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.middlewares import NotModified
from crawler.spiders.base import TopicSpider
from pipeline.feeds import FeedError, parse_feed

logger = logging.getLogger(__name__)


class FeedSpider(TopicSpider):
    name = "feed"
    source_kind = "feed"

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            self.start_url, callback=self.parse, errback=self.feed_failed, dont_filter=True
        )

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        problems: list[str] = []
        try:
            entries = parse_feed(response.body, base_url=response.url, problems=problems)
        except FeedError as exc:
            self.count("errors/feed")
            logger.error("%s: feed %s: %s", self.source.name, response.url, exc)
            return
        for problem in problems:  # read in part (an entity bomb): the rest is lost
            self.count("errors/feed")
            logger.error("%s: feed %s: %s", self.source.name, response.url, problem)
        self.count("feed/entries", len(entries))
        self.look_up_known(entry.link for entry in entries if entry.link)
        for entry in entries:
            if not entry.link:
                self.count("feed/entries_without_link")
                logger.warning(
                    "%s: feed %s has an entry without a link (title %r); skipped",
                    self.source.name, response.url, entry.title,
                )
                continue
            request = self.article_request(
                entry.link, listed_title=entry.title, listed_published=entry.published
            )
            if request is not None:
                yield request

    def feed_failed(self, failure: Any) -> None:
        if failure.check(NotModified):
            return  # a 304 to a conditional GET: counted as not_modified by the middleware
        self.count("errors/feed")
        logger.error(
            "%s: could not fetch feed %s: %s",
            self.source.name, self.start_url, failure.getErrorMessage(),
        )
