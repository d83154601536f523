"""Pure sitemap parsing: sitemaps.org urlsets and indexes, Google News sitemaps.

Scrapy's ``scrapy.utils.sitemap.Sitemap`` keeps only the direct children of
``<url>`` as text, so a Google News sitemap's ``news:publication_date`` and
``news:title`` (nested in ``<news:news>``) are lost; this parser keeps them.
It streams (``iterparse``, elements cleared as it goes), never resolves
entities or touches the network, resolves relative ``<loc>`` values against the
sitemap's URL, and stops collecting at ``max_urls`` entries (the protocol's
limit is 50,000) while still counting the rest.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import lxml.etree

__all__ = [
    "MAX_URLS",
    "ParsedSitemap",
    "SitemapEntry",
    "SitemapError",
    "gunzip_bounded",
    "is_gzip",
    "parse_sitemap",
    "parse_w3c_datetime",
    "sitemap_urls_from_robots",
    "within_window",
]

MAX_URLS = 50_000  # sitemaps.org: at most 50,000 URLs per sitemap file


class SitemapError(ValueError):
    """The document is not a sitemap or sitemap index."""


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: datetime | None = None
    news_published: datetime | None = None  # news:publication_date
    news_title: str | None = None  # news:title
    alternates: tuple[str, ...] = ()  # xhtml:link rel=alternate hrefs

    @property
    def date(self) -> datetime | None:
        """The entry's most telling date: the news publication date, else lastmod."""
        return self.news_published or self.lastmod


@dataclass
class ParsedSitemap:
    kind: str  # "urlset" or "sitemapindex"
    entries: list[SitemapEntry] = field(default_factory=list)
    over_limit: int = 0  # entries past max_urls, counted but not returned
    without_loc: int = 0  # <url>/<sitemap> elements with an empty or missing <loc>


def parse_w3c_datetime(value: str | None) -> datetime | None:
    """W3C datetime (``2022-12-21``, ``2022-12-21T16:40:00+00:00``, ``...Z``) as aware UTC."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        # Seconds fractions or offsets some generators write oddly: try the date alone.
        try:
            parsed = datetime.fromisoformat(value[:10])
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def within_window(entry: SitemapEntry, now: datetime, days: float | None) -> bool | None:
    """True if the entry's date is within ``days`` of ``now``; None if it has no date.

    ``days=None`` means no window: every entry is in it.
    """
    if days is None:
        return True
    date = entry.date
    if date is None:
        return None
    return date >= now - timedelta(days=days)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _text(el: lxml.etree._Element | None) -> str | None:
    if el is None:
        return None
    text = "".join(el.itertext()).strip()
    return text or None


def _entry(el: lxml.etree._Element, base_url: str) -> SitemapEntry | None:
    loc = lastmod = published = title = None
    alternates: list[str] = []
    for child in el:
        name = _local(child.tag)
        if name == "loc":
            loc = _text(child)
        elif name == "lastmod":
            lastmod = parse_w3c_datetime(_text(child))
        elif name == "link":
            href = (child.get("href") or "").strip()
            if href and (child.get("rel") or "alternate") == "alternate":
                alternates.append(urljoin(base_url, href))
        elif name == "news":
            for sub in child.iter():
                sub_name = _local(sub.tag)
                if sub_name == "publication_date":
                    published = parse_w3c_datetime(_text(sub))
                elif sub_name == "title" and _local(sub.getparent().tag) == "news":
                    title = _text(sub)
    if not loc:
        return None
    loc = urljoin(base_url, " ".join(loc.split()))
    if urlsplit(loc).scheme not in ("http", "https"):
        return None
    return SitemapEntry(loc=loc, lastmod=lastmod, news_published=published, news_title=title,
                        alternates=tuple(alternates))


def parse_sitemap(body: bytes, base_url: str, *, max_urls: int = MAX_URLS) -> ParsedSitemap:
    """Entries of a sitemap (``urlset``) or sitemap index (``sitemapindex``), in order.

    ``body`` must already be decompressed. Raises :class:`SitemapError` when the
    document is not XML or its root is neither ``urlset`` nor ``sitemapindex``.
    """
    if not body or not body.strip():
        raise SitemapError("the sitemap is empty")
    events = lxml.etree.iterparse(
        io.BytesIO(body), events=("start", "end"), recover=True, resolve_entities=False,
        no_network=True, huge_tree=False, remove_comments=True, remove_pis=True,
    )
    result: ParsedSitemap | None = None
    item_tag = ""
    try:
        for event, el in events:
            if result is None:
                kind = _local(el.tag)
                if kind not in ("urlset", "sitemapindex"):
                    raise SitemapError(
                        f"not a sitemap (root element <{kind or el.tag}>, "
                        "expected <urlset> or <sitemapindex>)"
                    )
                result = ParsedSitemap(kind=kind)
                item_tag = "url" if kind == "urlset" else "sitemap"
                continue
            if event != "end" or _local(el.tag) != item_tag:
                continue
            if len(result.entries) >= max_urls:
                result.over_limit += 1
            else:
                entry = _entry(el, base_url)
                if entry is None:
                    result.without_loc += 1
                else:
                    result.entries.append(entry)
            # Free what has been read: memory stays flat for 50,000-URL files.
            el.clear()
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
    except lxml.etree.XMLSyntaxError as exc:
        if result is None:
            raise SitemapError(f"not XML: {exc}") from exc
        # recover=True keeps what was read before the damage.
    if result is None:
        raise SitemapError("not XML: nothing could be parsed")
    return result


def is_gzip(body: bytes) -> bool:
    return body[:2] == b"\x1f\x8b"


def gunzip_bounded(body: bytes, max_size: int) -> bytes:
    """Decompress a gzip body (``sitemap.xml.gz``), refusing more than ``max_size`` bytes.

    A gzip bomb stops at ``max_size + 1`` bytes of output, whatever it claims.
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_size + 1)
    except zlib.error as exc:
        raise SitemapError(f"broken gzip: {exc}") from exc
    if len(out) > max_size:
        raise SitemapError(
            f"more than {max_size} bytes when decompressed (a gzip bomb, or raise "
            "CLAIMWATCH_SITEMAP_MAXSIZE)"
        )
    if not inflater.eof and not out:
        raise SitemapError("broken gzip: the data ends before any content")
    return out  # a truncated but readable stream is parsed as far as it goes


def sitemap_urls_from_robots(body: bytes, base_url: str) -> list[str]:
    """``Sitemap:`` lines of a robots.txt, resolved against its URL."""
    urls: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if line[:8].lower() != b"sitemap:":
            continue
        try:
            value = line[8:].strip().decode("utf-8")
        except UnicodeDecodeError:
            continue
        if value:
            urls.append(urljoin(base_url, value))
    return list(dict.fromkeys(urls))


def locs(entries: Iterable[SitemapEntry]) -> list[str]:
    return [e.loc for e in entries]
