"""The digest as GitHub-flavoured Markdown: scraped text cannot inject links, HTML or
emphasis."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from claimwatch.digest.render.document import (
    Span,
    _build_view,
    _document,
    _is_http,
    _quoted,
)

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!&$])")


def _md_escape(text: str) -> str:
    """Backslash-escape Markdown metacharacters in scraped text (GFM)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    """Percent-encode what may not appear inside ``<...>`` link destinations."""
    return quote(url, safe="!#$%&'()*+,-./:;=?@[]_~")


def _md_span(span: Span) -> str:
    kind = span[0]
    if kind == "k":
        return span[1]
    if kind == "t":
        return _md_escape(span[1])
    if kind == "b":
        return f"**{_md_escape(span[1])}**" if span[1] else ""
    if kind == "m":
        return f"*{_md_escape(span[1])}*" if span[1] else ""
    if kind == "q":
        return _md_escape(span[1]) if _quoted(span[1]) else f"“{_md_escape(span[1])}”"
    if kind == "a":
        label, url = span[1], span[2]
        if _is_http(url):
            return f"[{_md_escape(label)}](<{_md_url(url)}>)"
        return _md_escape(label)
    if kind == "u":
        url = span[1]
        if _is_http(url):
            return f"[{_md_escape(url)}](<{_md_url(url)}>)"
        return f"`{url.replace('`', '')}`" if url else ""
    if kind == "ux":
        return "" if _is_http(span[1]) else f"(link not shown: *{_md_escape(span[1])}*)"
    raise ValueError(f"unknown span kind {kind!r}")


def _md_spans(spans: Sequence[Span]) -> str:
    return "".join(_md_span(s) for s in spans).strip()


def render_markdown(digest: Mapping[str, Any]) -> str:
    """GitHub-flavoured Markdown; scraped text cannot inject links, HTML or emphasis."""
    v = _build_view(digest)
    out: list[str] = []
    for block in _document(v):
        kind = block[0]
        if kind == "h1":
            out += [f"# {_md_escape(block[1])}", ""]
        elif kind == "h2":
            while out and out[-1] == "":
                out.pop()
            out += ["", f"## {_md_escape(block[1])}", ""]
        elif kind == "p":
            text = _md_spans(block[1])
            if block[2] in ("summary", "alarm"):
                text = f"**{text}**"
            out += [text, ""]
        elif kind == "entry":
            _, head, lines = block
            rows = [f"- {_md_spans(head)}"]
            for level, spans, only in lines:
                if only == "text":
                    continue
                text = _md_spans(spans)
                if not text:
                    continue
                if level == 0:
                    rows[-1] += "\\"  # hard line break inside the list item
                    rows.append(f"  {text}")
                else:
                    rows.append("  " * level + f"- {text}")
            out += rows
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
