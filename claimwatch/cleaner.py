"""The one cleaner of scraped text and URLs for everything that shows them to a person:
the review page (claimwatch/web/) and the digest renderers (claimwatch/digest/render/).

Scraped titles, texts, outlet names and URLs are hostile input. Before any escaping,
they lose the characters that can disguise or break what a reader sees: C0/C1 controls
(so no ANSI sequences in a terminal digest), bidi embeddings, overrides and isolates
(no reversed file names), zero-width characters, BOMs, lone surrogates and the XML
non-characters. A URL becomes a link only when it is ``http(s)`` with a host and holds
no whitespace (the same test everywhere: two copies of this code used to accept
different URLs). Quotes and angle brackets in a URL are escaped where it is written
(Jinja's autoescape in an ``href``, percent-encoding in Markdown), never trusted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

__all__ = ["clean", "clean_line", "is_http"]

_UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\ud800-\udfff\ufffe\uffff]"
)
_SPACES = re.compile(r"\s+")
_HTTP_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def clean(value: Any) -> str:
    """Scraped value -> text without control, zero-width or bidi-override characters
    (newlines and tabs are kept: an article's paragraphs stay paragraphs)."""
    if value is None:
        return ""
    return _UNSAFE_CHARS.sub("", str(value))


def clean_line(value: Any) -> str:
    """Scraped value -> one line of safe text (no controls, no newlines, trimmed); a
    control that is whitespace (a vertical tab, a form feed) becomes a space."""
    if value is None:
        return ""
    text = _UNSAFE_CHARS.sub(lambda m: " " if m.group().isspace() else "", str(value))
    return _SPACES.sub(" ", text).strip()


def is_http(url: Any) -> bool:
    """An ``http(s)`` URL with a host that is safe to put in an ``href``."""
    if not isinstance(url, str) or not _HTTP_URL.fullmatch(url):
        return False
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:
        return False
