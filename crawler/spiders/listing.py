"""Listing source: a section page (``/tech/``); follows the links that look like articles.

Links are extracted with Scrapy's ``LinkExtractor`` and classified by the pure
:mod:`pipeline.links`: article-shaped links on the same site are fetched, other
same-site section and pagination links are followed as further listing pages while
``max_depth`` allows if they are within the source page's section (``/tech/`` leads
to ``/tech/page/2``, not to ``/sport/`` or the home page); offsite and
``rel=nofollow`` links are never followed.

Depth counts link hops from the source page: with ``max_depth: 1`` (the default,
``CLAIMWATCH_LISTING_MAX_DEPTH``) the articles linked from the source page are
fetched; with 2, also those linked from the sections and pages it links to (at most
``CLAIMWATCH_LISTING_MAX_PAGES`` listing pages per crawl).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from twisted.python.failure import Failure

from crawler.middlewares import NotModified
from crawler.spiders.base import TopicSpider
from crawler.spiders.sitemap import warn_unknown_options
from pipeline.links import in_section, looks_like_article, looks_like_listing
from pipeline.urls import is_same_site, registrable_domain

logger = logging.getLogger(__name__)


class ListingSpider(TopicSpider):
    name = "listing"
    source_kind = "listing"
    max_depth: int
    max_pages: int
    pages_seen: set[str]
    link_extractor: LinkExtractor
    conditional_get: bool
    allowed_domains: list[str]

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ListingSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, ListingSpider)
        warn_unknown_options(spider.source.name, spider.source.options, ("max_depth",))
        value = spider.source.options.get(
            "max_depth", crawler.settings.getint("CLAIMWATCH_LISTING_MAX_DEPTH", 1)
        )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NotConfigured(
                f"source {spider.source.name!r}: max_depth must be a whole number >= 1 "
                f"(1 = the articles linked from the page), got {value!r}"
            )
        spider.max_depth = value
        # A 304 on the source page says nothing about the sections it links to.
        spider.conditional_get = value == 1
        spider.max_pages = crawler.settings.getint("CLAIMWATCH_LISTING_MAX_PAGES", 20)
        spider.pages_seen = {spider.start_url}
        spider.link_extractor = LinkExtractor(unique=True, canonicalize=False)
        # Scrapy's OffsiteMiddleware then also refuses redirects off the site.
        host = urlsplit(spider.start_url).hostname or ""
        spider.allowed_domains = [registrable_domain(host)] if host else []
        return spider

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            self.start_url, callback=self.parse_listing, errback=self.listing_failed,
            dont_filter=True, meta={"claimwatch_depth": 0},
        )

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request]:
        depth = int(response.meta.get("claimwatch_depth", 0))
        self.count("listing/pages")
        if not isinstance(response, TextResponse):
            self._listing_error(response.url, depth, "not an HTML page")
            return
        try:
            links = self.link_extractor.extract_links(response)
        except Exception as exc:  # lxml on a hostile page: count it, crawl on
            self._listing_error(response.url, depth, f"links could not be read: {exc}")
            return
        self.count("listing/links", len(links))
        self.look_up_known(link.url for link in links if looks_like_article(link.url))
        for link in links:
            url = link.url
            if link.nofollow:
                self.count("skipped/nofollow")
                continue
            if not is_same_site(url, self.start_url):
                self.count("skipped/offsite")
                continue
            if looks_like_article(url):
                if depth + 1 > self.max_depth:
                    continue
                self.count("listing/articles")
                request = self.article_request(url, listed_title=link.text.strip() or None)
                if request is not None:
                    yield request
            elif looks_like_listing(url) and depth + 2 <= self.max_depth:
                if url in self.pages_seen or not in_section(url, self.start_url):
                    continue
                if len(self.pages_seen) >= self.max_pages:
                    self.count("listing/page_limit")
                    continue
                self.pages_seen.add(url)
                yield scrapy.Request(url, callback=self.parse_listing,
                                     errback=self.listing_failed,
                                     meta={"claimwatch_depth": depth + 1})

    def _listing_error(self, url: str, depth: int, reason: str) -> None:
        # The source page failing fails the source; a further page is an ordinary fetch error.
        self.count("errors/listing" if depth == 0 else "errors/fetch")
        log = logger.error if depth == 0 else logger.warning
        log("%s: listing page %s: %s", self.source.name, url, reason)

    def listing_failed(self, failure: Failure) -> None:
        if failure.check(NotModified):
            return  # counted as not_modified by the middleware
        request = getattr(failure, "request", None)
        url = request.url if request is not None else self.start_url
        depth = int(request.meta.get("claimwatch_depth", 0)) if request is not None else 0
        self._listing_error(url, depth, f"could not fetch: {failure.getErrorMessage()}")
