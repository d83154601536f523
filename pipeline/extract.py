"""Article extraction: trafilatura text and metadata, plus the page's own link hints.

Pure: takes bytes or text and a URL, returns an :class:`Extracted` or raises
:class:`ExtractionError` with a reason. Knows nothing of Scrapy.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import lxml.etree
import lxml.html
import trafilatura
from htmldate import find_date
from trafilatura import metadata as trafilatura_metadata
from trafilatura.settings import DEFAULT_CONFIG, set_date_params

logger = logging.getLogger(__name__)

MIN_TEXT_CHARS = 200


class ExtractionError(ValueError):
    """The page has no extractable article (empty, binary, not HTML, too short)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason  # a short stats key: empty, binary, not_html, no_text, too_short
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Extracted:
    url: str
    title: str | None
    author: str | None
    published: datetime | None
    outlet: str | None
    language: str | None
    text: str
    description: str | None
    declared_canonical: str | None  # rel=canonical or og:url, resolved, as the page says
    links: tuple[tuple[str, str], ...] = ()  # (href, anchor text) of in-body links


# the bytes that are not control characters (0-8 and 14-31 are)
_NOT_CONTROL = bytes(b for b in range(256) if not (b < 9 or 13 < b < 32))


def _looks_binary(data: bytes) -> bool:
    head = data[:2048]
    if not head:
        return False
    if b"\x00" in head:
        return True
    control = len(head.translate(None, _NOT_CONTROL))
    return control / len(head) > 0.05


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# compiled once (``tree.xpath(text)`` compiles its expression on every call)
_PUBLISHED_XPATHS = tuple(lxml.etree.XPath(xpath) for xpath in (
    '//meta[@property="article:published_time"]/@content',
    '//meta[@name="article:published_time"]/@content',
    '//meta[@itemprop="datePublished"]/@content',
    '//time[@datetime][1]/@datetime',
))
_CANONICAL_XPATHS = tuple(lxml.etree.XPath(xpath) for xpath in (
    '//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'))
_BODY_ANCHORS = lxml.etree.XPath("//article//a[@href] | //main//a[@href]")


def _meta_published(tree: lxml.html.HtmlElement) -> datetime | None:
    """A full timestamp from the page's own metadata (trafilatura keeps only the day)."""
    for xpath in _PUBLISHED_XPATHS:
        for value in xpath(tree):
            parsed = _parse_date(str(value))
            if parsed is not None:
                return parsed
    return None


def _declared_canonical(tree: lxml.html.HtmlElement, url: str) -> str | None:
    for xpath in _CANONICAL_XPATHS:
        for value in xpath(tree):
            value = str(value).strip()
            if value:
                return urljoin(url, value)
    return None


def _body_links(tree: lxml.html.HtmlElement, url: str) -> tuple[tuple[str, str], ...]:
    links = []
    for anchor in _BODY_ANCHORS(tree):
        href = urljoin(url, str(anchor.get("href")).strip())
        if href.startswith(("http://", "https://")):
            links.append((href, " ".join(anchor.text_content().split())))
    return tuple(links)


# the date search trafilatura's bare_extraction runs with its default configuration
_DATE_PARAMS = set_date_params(DEFAULT_CONFIG.getboolean("DEFAULT", "EXTENSIVE_DATE_SEARCH"))
_KEPT_METADATA = ("title", "author", "url", "hostname", "date", "sitename", "description")


def _page_metadata(tree: lxml.html.HtmlElement, url: str, *, with_date: bool) -> dict:
    """The metadata fields claimwatch keeps, as trafilatura's ``extract_metadata`` finds them.

    Its steps for these fields, in its order, minus the ones whose results claimwatch
    discards: categories, tags and licence (~4 ms a page), and the date search when the
    page's own metadata already gave a full timestamp (``with_date=False``).
    tests/test_extract.py holds the fields equal to ``extract_metadata``'s on real pages.
    """
    found = trafilatura_metadata.examine_meta(tree)
    if found.author and " " not in found.author:
        found.author = None
    try:
        found = trafilatura_metadata.extract_meta_json(tree, found)
    except Exception as exc:  # noqa: BLE001 - as trafilatura: bugs in its JSON-LD reader
        logger.debug("JSON-LD metadata of %s unreadable: %s", url, exc)
    if not found.title:
        found.title = trafilatura_metadata.extract_title(tree)
    if not found.author:
        found.author = trafilatura_metadata.extract_author(tree)
    if not found.url:
        found.url = trafilatura_metadata.extract_url(tree, url)
    if found.url:
        found.hostname = trafilatura_metadata.extract_domain(found.url, fast=True)
    if with_date:
        found.date = find_date(tree, **{**_DATE_PARAMS, "url": found.url})
    if not found.sitename:
        found.sitename = trafilatura_metadata.extract_sitename(tree)
    if found.sitename:
        found.sitename = found.sitename.lstrip("@")
        if found.sitename and "." not in found.sitename and not found.sitename[0].isupper():
            found.sitename = found.sitename.title()
    elif found.url:
        match = trafilatura_metadata.META_URL.match(found.url)
        if match:
            found.sitename = match[1]
    found.clean_and_trim()  # as extract_metadata ends: lengths, entities, spaces
    return {name: getattr(found, name) for name in _KEPT_METADATA}


_WS = re.compile(r"[ \t\u00a0]+")


def _clean_text(text: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def extract_article(
    body: bytes | str,
    url: str,
    *,
    encoding: str | None = None,
    favor_precision: bool = True,
    min_chars: int = MIN_TEXT_CHARS,
) -> Extracted:
    """Extract the main text and metadata of one article page.

    ``encoding`` is the charset the HTTP layer decided on (Scrapy's
    ``response.encoding``); bytes are decoded with it, falling back to what
    lxml detects.
    """
    if isinstance(body, bytes):
        if not body or body.isspace():  # not body.strip(): no copy of the page
            raise ExtractionError("empty", "the response body is empty")
        if _looks_binary(body):
            raise ExtractionError("binary", "the body is binary, not HTML")
        text_body = body.decode(encoding or "utf-8", errors="replace")
    else:
        text_body = body
        if not text_body or text_body.isspace():
            raise ExtractionError("empty", "the response body is empty")
    # lxml refuses str input that carries an XML encoding declaration.
    text_body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text_body, count=1)
    try:
        tree = lxml.html.document_fromstring(text_body)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ExtractionError("not_html", str(exc)) from exc

    declared = _declared_canonical(tree, url)
    published = _meta_published(tree)
    links = _body_links(tree, url)
    lang_attr = tree.get("lang") or None

    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=False,  # _page_metadata: only the fields kept
        favor_precision=favor_precision,
        include_comments=False,
        include_tables=True,
    )
    if document is None:
        raise ExtractionError("no_text", "trafilatura found no main text")
    text = _clean_text(document.text or "")
    if len(text) < min_chars:
        raise ExtractionError("too_short", f"only {len(text)} characters of text")
    data = _page_metadata(tree, url, with_date=published is None)
    if published is None:
        published = _parse_date(data.get("date"))
    language = lang_attr.split("-")[0].lower() if lang_attr else None
    return Extracted(
        url=url,
        title=(data.get("title") or None),
        author=(data.get("author") or None),
        published=published,
        outlet=(data.get("sitename") or data.get("hostname") or None),
        language=language,
        text=text,
        description=(data.get("description") or None),
        declared_canonical=declared,
        links=links,
    )
