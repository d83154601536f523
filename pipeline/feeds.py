"""Pure feed parsing: RSS 0.9x/2.0, RSS 1.0 (RDF) and Atom 0.3/1.0 into entries.

Tolerant of real-world feeds (lxml's recovering parser, missing dates,
relative links resolved against xml:base or the feed URL); a document that
is not a feed at all raises :class:`FeedError` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import lxml.etree

ATOM = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RSS1 = "http://purl.org/rss/1.0/"
DC = "http://purl.org/dc/elements/1.1/"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


class FeedError(ValueError):
    """The document is not a parseable RSS or Atom feed."""


@dataclass(frozen=True)
class FeedEntry:
    link: str | None
    title: str | None
    published: datetime | None
    guid: str | None = None
    summary: str | None = None


def parse_date(value: str | None) -> datetime | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, dc:date) into an aware UTC datetime."""
    if not value or not value.strip():
        return None
    value = value.strip()
    parsed: datetime | None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _child(el: lxml.etree._Element, *names: str) -> lxml.etree._Element | None:
    for child in el:
        if _local(child.tag) in names:
            return child
    return None


def _text(el: lxml.etree._Element | None) -> str | None:
    if el is None:
        return None
    text = "".join(el.itertext()).strip()
    return text or None


def _base(el: lxml.etree._Element, feed_url: str) -> str:
    """The xml:base in force at ``el``, resolved up the tree against the feed URL."""
    bases = []
    node: lxml.etree._Element | None = el
    while node is not None:
        if node.get(XML_BASE):
            bases.append(node.get(XML_BASE))
        node = node.getparent()
    base = feed_url
    for value in reversed(bases):
        base = urljoin(base, value)
    return base


def _atom_link(entry: lxml.etree._Element, feed_url: str) -> str | None:
    best = None
    for child in entry:
        if _local(child.tag) != "link":
            continue
        href = (child.get("href") or "").strip()
        if not href:
            continue
        rel = (child.get("rel") or "alternate").strip()
        mime = child.get("type") or "text/html"
        html_type = mime.startswith(("text/html", "application/xhtml"))
        if rel == "alternate" and html_type:
            return urljoin(_base(child, feed_url), href)
        if best is None and rel == "alternate":
            best = urljoin(_base(child, feed_url), href)
    return best


def _rss_link(item: lxml.etree._Element, feed_url: str) -> str | None:
    link = _text(_child(item, "link"))
    if link:
        return urljoin(_base(item, feed_url), link)
    # An Atom link inside an RSS item (some generators), else a permalink guid.
    atom = _atom_link(item, feed_url)
    if atom:
        return atom
    guid = _child(item, "guid")
    if guid is not None and (guid.get("isPermaLink") or "true").lower() == "true":
        value = _text(guid)
        if value and value.startswith(("http://", "https://")):
            return value
    return None


# libxml2 errors after which the recovering parser stops reading the document (an entity
# expansion bomb, an entity loop, a nesting or size limit): what follows is lost, so the
# feed is reported as broken instead of looking like a short, healthy one.
_GAVE_UP_TYPES = {"ERR_RESOURCE_LIMIT", "ERR_ENTITY_LOOP", "ERR_ENTITY_AMPLIFICATION",
                  "ERR_INTERNAL_ERROR", "ERR_NO_MEMORY", "ERR_USER_STOP"}
_GAVE_UP_WORDS = ("amplification", "entity reference loop", "excessive depth", "huge input")


def _gave_up(parser: lxml.etree.XMLParser) -> str | None:
    """Why the recovering parser stopped before the end of the document, or None."""
    for error in parser.error_log:
        message = str(error.message or "")
        if error.type_name in _GAVE_UP_TYPES or any(
            word in message.lower() for word in _GAVE_UP_WORDS
        ):
            return f"line {error.line}: {message.strip()}"
    return None


def parse_feed(body: bytes, base_url: str, problems: list[str] | None = None) -> list[FeedEntry]:
    """Entries of an RSS or Atom feed, in document order.

    When the parser had to stop early (an entity bomb such as "billion laughs"), the
    entries read so far are returned and the reason is appended to ``problems``; without
    a ``problems`` list, or with no entry read, :class:`FeedError` is raised instead.
    """
    if not body or not body.strip():
        raise FeedError("the feed is empty")
    parser = lxml.etree.XMLParser(recover=True, resolve_entities=False, no_network=True,
                                  huge_tree=False)
    try:
        root = lxml.etree.fromstring(body, parser=parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise FeedError(f"not XML: {exc}") from exc
    if root is None:
        raise FeedError("not XML: nothing could be parsed")
    stopped = _gave_up(parser)
    if stopped is not None:
        why = f"the parser stopped reading the feed early ({stopped}); later entries are lost"
        if problems is None:
            raise FeedError(why)
        problems.append(why)
    entries = _entries(root, base_url)
    if stopped is not None and not entries:
        raise FeedError(f"the parser stopped reading the feed early ({stopped})")
    return entries


def _entries(root: lxml.etree._Element, base_url: str) -> list[FeedEntry]:
    kind = _local(root.tag)
    entries: list[FeedEntry] = []
    if kind == "feed":
        for entry in root:
            if _local(entry.tag) != "entry":
                continue
            published = None
            for name in ("published", "issued", "updated", "modified", "created"):
                published = parse_date(_text(_child(entry, name)))
                if published:
                    break
            entries.append(
                FeedEntry(
                    link=_atom_link(entry, base_url),
                    title=_text(_child(entry, "title")),
                    published=published,
                    guid=_text(_child(entry, "id")),
                    summary=_text(_child(entry, "summary", "content")),
                )
            )
        return entries
    if kind in ("rss", "rdf"):
        items = [el for el in root.iter() if _local(el.tag) == "item"]
        for item in items:
            date_el = _child(item, "pubdate", "date", "published")
            entries.append(
                FeedEntry(
                    link=_rss_link(item, base_url),
                    title=_text(_child(item, "title")),
                    published=parse_date(_text(date_el)),
                    guid=_text(_child(item, "guid")),
                    summary=_text(_child(item, "description")),
                )
            )
        return entries
    raise FeedError(f"not an RSS or Atom feed (root element <{kind or root.tag}>)")
