"""claimwatch downloader middlewares: safety, politeness and incremental fetches.

Wired in ``crawler/settings.py`` (DOWNLOADER_MIDDLEWARES):

- :class:`AddressGuardMiddleware` refuses requests to loopback, private, link-local,
  metadata and other non-public addresses (the host is resolved first), and links
  with schemes other than http(s), counted as ``claimwatch/refused/<reason>``.
- :class:`RobotsTxtMiddleware` is Scrapy's, with pages forbidden by robots.txt counted
  as ``claimwatch/refused/robots`` rather than as fetch errors.
- :class:`RedirectMiddleware` and :class:`MetaRefreshMiddleware` are Scrapy's, with
  redirect requests exempt from the dupefilter, so a redirect loop ends in a counted
  "max redirections reached" instead of vanishing.
- :class:`RetryAfterMiddleware` waits out a 429/503 ``Retry-After`` before the retry
  (up to ``CLAIMWATCH_RETRY_AFTER_MAX`` seconds; longer waits are not retried).
- :class:`CharsetMiddleware` repairs a wrong declared charset (a UTF-8 header on a
  windows-1252 page), counted as ``claimwatch/errors/charset``.
- :class:`ConditionalGetMiddleware` sends the source document's stored ETag /
  Last-Modified; a 304 is counted as ``claimwatch/not_modified`` and costs nothing.

Refusals and 304s reach the spider's errback as :class:`RefusedRequest` and
:class:`NotModified`, both :class:`~scrapy.exceptions.IgnoreRequest`.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import signals
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware as _ScrapyMetaRefresh
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware as _ScrapyRedirect
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as _ScrapyRobotsTxt
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, Request, Response, TextResponse
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, resolve_encoding

from pipeline.addresses import host_refusal_reason, refusal_reason

logger = logging.getLogger(__name__)

SOURCE_DOC = "claimwatch_source_doc"  # request meta: this is the source's feed/sitemap/listing


class RefusedRequest(IgnoreRequest):
    """A request claimwatch will not make (unsafe address, scheme, robots.txt)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class NotModified(IgnoreRequest):
    """The source document answered 304 Not Modified to a conditional GET."""


def _spider_name(crawler: Any) -> str:
    spider = getattr(crawler, "spider", None)
    source = getattr(spider, "source", None)
    return str(getattr(source, "name", None) or getattr(spider, "name", "?"))


def _is_source_doc(crawler: Any, request: Request) -> bool:
    if request.meta.get(SOURCE_DOC):
        return True
    if request.meta.get("dont_obey_robotstxt"):
        return False  # RobotsTxtMiddleware's own robots.txt request
    start = getattr(getattr(crawler, "spider", None), "start_url", None)
    return start is not None and request.url == start


class AddressGuardMiddleware:
    """Refuse requests whose host is, or resolves to, a non-public address.

    Every resolved address must be public (``pipeline.addresses.refusal_reason``);
    results are cached per host and port for the crawl. Redirects pass through
    again, so a public URL redirecting to ``169.254.169.254`` is refused too.
    ``CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES = True`` turns the address check off (the
    offline demo and tests), never the scheme check; ``CLAIMWATCH_ALLOWED_PRIVATE_HOSTS``
    lists ``host`` or ``host:port`` entries allowed anyway (an intranet feed).

    The check resolves the name separately from the connection Scrapy makes: a
    DNS server that answers differently within seconds (rebinding) is not caught.
    """

    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.allow_private = settings.getbool("CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES", False)
        self.allowed_hosts = {
            str(h).strip().lower() for h in settings.getlist("CLAIMWATCH_ALLOWED_PRIVATE_HOSTS")
        }
        self._cache: dict[tuple[str, int], str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> AddressGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        parts = urlparse_cached(request)
        scheme = (parts.scheme or "").lower()
        # The scheme is checked whatever the address settings: allowing private addresses
        # (the demo, a daemon with an intranet feed) must never let a link read local files.
        if scheme not in ("http", "https"):
            if _is_source_doc(self.crawler, request):
                return None  # the topic file names it: trusted like any configured URL
            self._refuse(request, "scheme", f"the {scheme or 'missing'} scheme is not fetched")
        if self.allow_private:
            return None
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
        if host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts:
            return None
        reason = host_refusal_reason(host)
        if reason is None:
            reason = await self._resolved_reason(host, port)
        if reason is not None:
            self._refuse(
                request, reason,
                f"{host} is a {reason.replace('_', '-')} address (allow it with "
                "CLAIMWATCH_ALLOWED_PRIVATE_HOSTS or CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=True)",
            )
        return None

    async def _resolved_reason(self, host: str, port: int) -> str | None:
        key = (host, port)
        if key in self._cache:
            return self._cache[key]
        from twisted.internet.threads import deferToThread

        try:
            infos = await maybe_deferred_to_future(
                deferToThread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
            )
        except (OSError, UnicodeError):
            # Unresolvable: let the download fail with Scrapy's own DNS error.
            self._cache[key] = None
            return None
        reasons = [refusal_reason(str(info[4][0])) for info in infos]
        reason = next((r for r in reasons if r is not None), None)
        self._cache[key] = reason
        return reason

    def _refuse(self, request: Request, reason: str, why: str) -> None:
        self.stats.inc_value(f"claimwatch/refused/{reason}")
        logger.warning("%s: refused %s: %s", _spider_name(self.crawler), request.url, why)
        raise RefusedRequest(reason, f"refused: {why}")


class RobotsTxtMiddleware(_ScrapyRobotsTxt):
    """Scrapy's robots.txt middleware; a forbidden page counts as refused, not as an error."""

    def process_request_2(self, rp: Any, request: Request) -> None:
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            self.crawler.stats.inc_value("claimwatch/refused/robots")
            logger.info("%s: robots.txt forbids %s; not fetched",
                        _spider_name(self.crawler), request.url)
            raise RefusedRequest("robots", "forbidden by robots.txt") from exc


def _unfiltered(request: Request, result: Request | Response) -> Request | Response:
    """Redirect requests skip the dupefilter.

    Scrapy's dupefilter silently drops a redirect to a URL already requested: in a
    redirect loop (``/a`` -> ``/b`` -> ``/a``) the page then vanishes without reaching
    its errback or ``REDIRECT_MAX_TIMES`` (measured with Scrapy 2.19: only
    ``dupefilter/filtered`` counts it). ``REDIRECT_MAX_TIMES`` bounds the chain instead.
    """
    if isinstance(result, Request) and result is not request:
        result.dont_filter = True
    return result


class RedirectMiddleware(_ScrapyRedirect):
    """Scrapy's 3xx redirects; a redirect loop is counted, not dropped silently."""

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Request | Response:
        return _unfiltered(request, super().process_response(request, response))


class MetaRefreshMiddleware(_ScrapyMetaRefresh):
    """Scrapy's ``<meta http-equiv=refresh>`` redirects; a loop is counted, not dropped.

    Scrapy reads the refresh in the first 4,096 characters of ``response.text``, which
    decodes the whole body and keeps it on the response for as long as the response
    lives: for an article, until its item has been analysed and stored, so a crawl held
    one decoded copy of every page waiting for a worker (4 bytes a character for a page
    with one character past U+FFFF: 32 MB for three large pages). That copy is not kept
    here (nothing after this reads the article's text; the body is analysed as bytes);
    ``response.text`` decodes it again, to the same string, if something asks.
    """

    def process_response(self, request: Request, response: Response,
                         spider: Any = None) -> Request | Response:
        decoded = getattr(response, "_cached_ubody", None) is not None
        result = super().process_response(request, response)
        if not decoded and isinstance(response, TextResponse):
            response._cached_ubody = None
        return _unfiltered(request, result)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class RetryAfterMiddleware:
    """Honour ``Retry-After`` on 429 and 503 before Scrapy's RetryMiddleware retries.

    Placed just outside RetryMiddleware (higher number: it sees the response first).
    A wait longer than ``CLAIMWATCH_RETRY_AFTER_MAX`` seconds is not retried in this
    crawl (counted ``claimwatch/retry_after/too_long``): the next scheduled crawl
    comes back for it.
    """

    CODES = (429, 503)

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.max_wait = crawler.settings.getfloat("CLAIMWATCH_RETRY_AFTER_MAX", 30.0)
        self.max_retry_times = crawler.settings.getint("RETRY_TIMES", 2)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        if not crawler.settings.getbool("RETRY_ENABLED"):
            raise NotConfigured("RETRY_ENABLED is False: Retry-After is not needed")
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in self.CODES or request.meta.get("dont_retry"):
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        if wait is None:
            return response
        retries = request.meta.get("retry_times", 0)
        if retries >= request.meta.get("max_retry_times", self.max_retry_times):
            return response
        stats = self.crawler.stats
        if wait > self.max_wait:
            stats.inc_value("claimwatch/retry_after/too_long")
            logger.warning(
                "%s: %s answered %s with Retry-After %.0fs (more than CLAIMWATCH_RETRY_AFTER_MAX"
                " %.0fs): not retried in this crawl", _spider_name(self.crawler), request.url,
                response.status, wait, self.max_wait,
            )
            request.meta["dont_retry"] = True
            return response
        stats.inc_value("claimwatch/retry_after/waited")
        logger.info("%s: %s answered %s; retrying after %.1fs as Retry-After asks",
                    _spider_name(self.crawler), request.url, response.status, wait)
        from twisted.internet import reactor  # installed by Scrapy by now
        from twisted.internet.task import deferLater

        await maybe_deferred_to_future(deferLater(reactor, wait, lambda: None))
        return response


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _mostly_utf8(body: bytes) -> bool:
    """Whether a body that fails to decode as UTF-8 is still UTF-8 at heart: it has valid
    multi-byte characters and no more invalid bytes than valid ones (a windows-1252 page
    mislabelled UTF-8 has invalid bytes and, almost always, no valid sequence at all)."""
    text = body.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ord(ch) > 127) - bad
    return good > 0 and bad <= good


class CharsetMiddleware:
    """Repair HTML whose declared charset does not decode it (a UTF-8 header on a
    windows-1252 page, a stale ``<meta charset>``).

    When the declared encoding fails on the bytes, the other declaration, then
    UTF-8, then windows-1252 are tried; the first that decodes the whole body is
    used, with a warning and ``claimwatch/errors/charset``. A UTF-8 page with a few
    stray bytes among valid UTF-8 characters stays UTF-8, the bad bytes replaced
    (``claimwatch/charset/bad_bytes_replaced``). Binary bodies are left to the
    extraction stage, which refuses them.
    """

    FALLBACKS = ("utf-8", "cp1252")

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> CharsetMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, HtmlResponse) or not response.body:
            return response
        body = response.body
        if b"\x00" in body[:2048]:
            return response
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        header = http_content_type_encoding(content_type)
        meta = html_body_declared_encoding(body)
        declared = resolve_encoding(header or meta or "") or header or meta
        if declared is None or _decodes(body, declared):
            return response
        if declared == "utf-8" and _mostly_utf8(body):
            # Valid UTF-8 with a stray byte or two (a truncated character, a pasted byte):
            # the page stays UTF-8 and the bad bytes become U+FFFD when it is decoded.
            self.crawler.stats.inc_value("claimwatch/charset/bad_bytes_replaced")
            logger.info("%s: %s has bytes that are not UTF-8; they are replaced",
                        _spider_name(self.crawler), response.url)
            return response
        candidates = [resolve_encoding(e) or e for e in (meta, header, *self.FALLBACKS) if e]
        for candidate in dict.fromkeys(candidates):
            if candidate == declared or not _decodes(body, candidate):
                continue
            self.crawler.stats.inc_value("claimwatch/errors/charset")
            logger.warning(
                "%s: %s declares charset %s but is not valid %s; decoded as %s",
                _spider_name(self.crawler), response.url, declared, declared, candidate,
            )
            return response.replace(encoding=candidate)
        return response


class ConditionalGetMiddleware:
    """Conditional GET for the source document (feed, sitemap, listing page).

    Sends the ETag / Last-Modified stored in ``source_states`` for this topic and
    source; a 304 raises :class:`NotModified` (counted ``claimwatch/not_modified``).
    New validators are stored when the spider closes, and only if the crawl
    finished with no fetch or source errors: a failed article must be retried by
    the next crawl, which a 304 would prevent.

    A spider whose source document is not the whole story sets ``conditional_get =
    False`` (a sitemap index or robots.txt, whose child sitemaps change while it does
    not; a listing followed to depth 2): its validators are then cleared, not stored.
    """

    BLOCKING_ERRORS = ("claimwatch/errors/fetch", "claimwatch/errors/feed",
                       "claimwatch/errors/sitemap", "claimwatch/errors/listing",
                       "claimwatch/errors/item", "spider_exceptions/count")

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.seen: tuple[str | None, str | None] | None = None
        self.enabled = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> ConditionalGetMiddleware:
        if not crawler.settings.getbool("CLAIMWATCH_CONDITIONAL_GET", True):
            raise NotConfigured
        mw = cls(crawler)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def _store(self) -> Any:
        from pipeline.context import store_for

        return store_for(self.crawler)

    def spider_opened(self, spider: Any) -> None:
        topic, source = getattr(spider, "topic", None), getattr(spider, "source", None)
        if topic is None or source is None:
            return
        self.enabled = True
        state = self._store().source_state(topic.name, source.name)
        if state is not None:
            self.etag, self.last_modified = state.etag, state.last_modified

    def spider_closed(self, spider: Any, reason: str) -> None:
        if not self.enabled:
            return
        if not getattr(spider, "conditional_get", True):
            if self.etag or self.last_modified:
                self._store().update_source_state(spider.topic.name, spider.source.name,
                                                  etag=None, last_modified=None)
            return
        if self.seen is None:
            return
        blocked = [k for k in self.BLOCKING_ERRORS if self.stats.get_value(k)]
        if reason != "finished" or blocked:
            logger.info(
                "%s: validators not stored (crawl %s%s): the next crawl fetches the source again",
                spider.source.name, reason, f", {', '.join(blocked)}" if blocked else "",
            )
            return
        etag, last_modified = self.seen
        self._store().update_source_state(
            spider.topic.name, spider.source.name, etag=etag, last_modified=last_modified
        )

    def process_request(self, request: Request) -> None:
        if not self.enabled or not _is_source_doc(self.crawler, request):
            return None
        if not getattr(self.crawler.spider, "conditional_get", True):
            return None
        request.meta[SOURCE_DOC] = True
        if self.etag and b"If-None-Match" not in request.headers:
            request.headers[b"If-None-Match"] = self.etag
        if self.last_modified and b"If-Modified-Since" not in request.headers:
            request.headers[b"If-Modified-Since"] = self.last_modified
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        if not self.enabled or not request.meta.get(SOURCE_DOC):
            return response
        if response.status == 304:
            self.stats.inc_value("claimwatch/not_modified")
            logger.info("%s: %s not modified since the last crawl", _spider_name(self.crawler),
                        request.url)
            raise NotModified(f"{request.url}: 304 Not Modified")
        if 200 <= response.status < 300:
            etag = response.headers.get(b"ETag")
            modified = response.headers.get(b"Last-Modified")
            self.seen = (etag.decode("latin-1") if etag else None,
                         modified.decode("latin-1") if modified else None)
        return response
