"""Sitemap source: sitemap indexes, gzip, Google News sitemaps, a lastmod window.

The source URL may be a sitemap, a sitemap index (followed to its sitemaps) or a
``robots.txt`` (its ``Sitemap:`` lines are followed). Only entries whose
``news:publication_date`` (else ``lastmod``) is within ``lastmod_days`` days are
fetched; entries without any date are fetched too (counted ``sitemap/undated``),
since a missing date says nothing about age. Index entries whose ``lastmod`` is
older than the window are not followed.

Source options (topic file): ``lastmod_days`` (default
``CLAIMWATCH_SITEMAP_LASTMOD_DAYS``; ``null`` for no window) and
``allow_offsite`` (default false: URLs on another site than the sitemap's are
skipped, as the sitemaps.org protocol requires).

Scrapy's own ``SitemapSpider`` is not used: its parser drops the nested Google
News fields, it has no errback (a failed sitemap would only be logged) and its
filter hook cannot pass titles and dates on to the article requests. Parsing is
the pure :mod:`pipeline.sitemaps`, run in a thread: a 50,000-URL sitemap is ~2 s of
CPU, for which the reactor thread would stop every source of the crawl.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from crawler.middlewares import NotModified
from crawler.spiders.base import TopicSpider
from pipeline.sitemaps import (
    ParsedSitemap,
    SitemapEntry,
    SitemapError,
    gunzip_bounded,
    is_gzip,
    parse_sitemap,
    sitemap_urls_from_robots,
    within_window,
)
from pipeline.urls import is_same_site

logger = logging.getLogger(__name__)

MAX_INDEX_DEPTH = 3  # index -> index -> sitemap is already more than the protocol allows
OPTIONS = ("lastmod_days", "allow_offsite")


def warn_unknown_options(source_name: str, options: dict[str, object],
                         known: tuple[str, ...]) -> None:
    """A misspelled option would silently fall back to its default: say so."""
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            logger.warning("source %r: unknown option %r ignored%s (options: %s)", source_name,
                           key, f", did you mean {close[0]!r}?" if close else "",
                           ", ".join(known))


def _lastmod_days(options: dict[str, object], default: float | None, source: str) -> float | None:
    if "lastmod_days" not in options:
        return default
    value = options["lastmod_days"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise NotConfigured(
            f"source {source!r}: lastmod_days must be a positive number of days or null "
            f"(no window), got {value!r}"
        )
    return float(value)


@dataclass
class _Sifted:
    """A urlset's entries sorted: those to fetch, those on another site, how many old
    and how many undated (fetched)."""

    wanted: list[SitemapEntry] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    old: int = 0
    undated: int = 0


class SitemapSpider(TopicSpider):
    name = "sitemap"
    source_kind = "sitemap"
    conditional_get = True  # False once the source turns out to be an index or robots.txt
    lastmod_days: float | None
    allow_offsite: bool
    max_urls: int
    max_size: int
    now: datetime
    sitemaps_seen: set[str]

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> SitemapSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, SitemapSpider)
        settings = crawler.settings
        warn_unknown_options(spider.source.name, spider.source.options, OPTIONS)
        default_days = settings.get("CLAIMWATCH_SITEMAP_LASTMOD_DAYS", 2)
        spider.lastmod_days = _lastmod_days(
            spider.source.options,
            None if default_days is None else float(default_days),
            spider.source.name,
        )
        spider.allow_offsite = bool(spider.source.options.get("allow_offsite", False))
        spider.max_urls = settings.getint("CLAIMWATCH_SITEMAP_MAX_URLS", 50_000)
        spider.max_size = settings.getint("CLAIMWATCH_SITEMAP_MAXSIZE", 50 * 1024 * 1024)
        spider.now = datetime.now(UTC)
        spider.sitemaps_seen = set()
        return spider

    async def start(self) -> AsyncIterator[Any]:
        yield self._sitemap_request(self.start_url, depth=0)

    def _sitemap_request(self, url: str, depth: int) -> scrapy.Request:
        self.sitemaps_seen.add(url)
        return scrapy.Request(
            url, callback=self.parse_sitemap, errback=self.sitemap_failed, dont_filter=True,
            meta={"claimwatch_depth": depth, "download_maxsize": self.max_size},
        )

    async def parse_sitemap(self, response: Response) -> AsyncIterator[scrapy.Request]:
        depth = int(response.meta.get("claimwatch_depth", 0))
        self.count("sitemap/documents")
        if response.url.endswith("/robots.txt"):
            self.conditional_get = False  # its sitemaps change while it does not
            urls = sitemap_urls_from_robots(response.body, response.url)
            if not urls:
                self._sitemap_error(response.url, "robots.txt lists no Sitemap: lines")
            for sitemap_request in self._follow(urls, depth, response.url):
                yield sitemap_request
            return
        try:
            # Off the reactor thread: a 50,000-URL sitemap costs ~2 s of CPU (4-7 s of
            # wall time on a loaded machine), and on the reactor it stopped every source
            # of the crawl for that long, its download timeouts included (a page answering
            # after its DOWNLOAD_TIMEOUT was then read before the timeout could fire).
            parsed, sifted = await maybe_deferred_to_future(
                deferToThread(self._read, response.body, response.url))
        except SitemapError as exc:
            self._sitemap_error(response.url, str(exc))
            return
        if parsed.over_limit:
            self.count("errors/sitemap_over_limit")
            self.count("sitemap/over_limit_urls", parsed.over_limit)
            logger.warning(
                "%s: sitemap %s lists %d URLs, more than CLAIMWATCH_SITEMAP_MAX_URLS (%d): "
                "the last %d are ignored", self.source.name, response.url,
                len(parsed.entries) + parsed.over_limit, self.max_urls, parsed.over_limit,
            )
        if parsed.without_loc:
            self.count("sitemap/without_loc", parsed.without_loc)
            logger.warning("%s: sitemap %s has %d entries without a usable <loc>",
                           self.source.name, response.url, parsed.without_loc)
        if parsed.kind == "sitemapindex":
            self.conditional_get = False  # its sitemaps change while it does not
            fresh = []
            for entry in parsed.entries:
                if within_window(entry, self.now, self.lastmod_days) is False:
                    self.count("sitemap/skipped_old_sitemaps")
                else:
                    fresh.append(entry.loc)
            for sitemap_request in self._follow(fresh, depth, response.url):
                yield sitemap_request
            return
        self.count("sitemap/entries", len(parsed.entries))
        for loc in sifted.offsite:
            self.count("skipped/offsite")
            logger.info("%s: sitemap %s lists %s on another site; skipped",
                        self.source.name, response.url, loc)
        if sifted.old:
            self.count("sitemap/skipped_old", sifted.old)
        if sifted.undated:
            self.count("sitemap/undated", sifted.undated)
        self.look_up_known(entry.loc for entry in sifted.wanted)
        for entry in sifted.wanted:
            request = self.article_request(
                entry.loc, listed_title=entry.news_title, listed_published=entry.date
            )
            if request is not None:
                yield request

    def _read(self, body: bytes, url: str) -> tuple[ParsedSitemap, _Sifted]:
        """Decompress and parse a sitemap, and sort a urlset's entries (in a thread: it
        reads only settings fixed when the spider opened)."""
        if is_gzip(body):
            body = gunzip_bounded(body, self.max_size)
        parsed = parse_sitemap(body, url, max_urls=self.max_urls)
        sifted = _Sifted()
        if parsed.kind == "sitemapindex":
            return parsed, sifted
        for entry in parsed.entries:
            if not self.allow_offsite and not is_same_site(entry.loc, url):
                sifted.offsite.append(entry.loc)
                continue
            recent = within_window(entry, self.now, self.lastmod_days)
            if recent is False:
                sifted.old += 1
                continue
            if recent is None:
                sifted.undated += 1
            sifted.wanted.append(entry)
        return parsed, sifted

    def _follow(self, urls: list[str], depth: int, parent: str) -> Iterator[scrapy.Request]:
        for url in urls:
            if url in self.sitemaps_seen:
                continue
            if not self.allow_offsite and not is_same_site(url, parent):
                self.count("skipped/offsite")
                logger.warning("%s: %s points to a sitemap on another site, %s; skipped",
                               self.source.name, parent, url)
                continue
            if depth + 1 > MAX_INDEX_DEPTH:
                self._sitemap_error(url, f"sitemap indexes nested more than {MAX_INDEX_DEPTH} deep")
                continue
            yield self._sitemap_request(url, depth + 1)

    def _sitemap_error(self, url: str, reason: str) -> None:
        self.count("errors/sitemap")
        logger.error("%s: sitemap %s: %s", self.source.name, url, reason)

    def sitemap_failed(self, failure: Failure) -> None:
        if failure.check(NotModified):
            return  # counted as not_modified by the middleware
        request = getattr(failure, "request", None)
        url = request.url if request is not None else self.start_url
        self._sitemap_error(url, f"could not fetch: {failure.getErrorMessage()}")
