"""The digest as plain text for a terminal: wrapped by terminal cells, no ANSI codes."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from claimwatch.digest.render.document import Line, Span, _build_view, _spans_text, _Writer


def _cells(text: str) -> int:
    """Terminal columns: wide/fullwidth characters take two (never fewer than len)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _is_url_token(word: str) -> bool:
    return "://" in word


def _split_long(word: str, room: int) -> list[str]:
    parts: list[str] = []
    cur = ""
    for ch in word:
        if cur and _cells(cur + ch) > room:
            parts.append(cur)
            cur = ""
        cur += ch
    if cur:
        parts.append(cur)
    return parts


def _wrap(text: str, width: int, first: str = "", rest: str | None = None) -> list[str]:
    """Greedy word wrap by terminal cells; only URL tokens may exceed ``width``."""
    rest = first if rest is None else rest
    lines: list[str] = []
    cur, prefix = "", first
    for word in text.split(" "):
        if not word:
            continue
        room = width - _cells(prefix)
        if not _is_url_token(word) and _cells(word) > max(room, 1):
            pieces = _split_long(word, max(width - _cells(rest), 8))
        else:
            pieces = [word]
        for piece in pieces:
            candidate = f"{cur} {piece}" if cur else piece
            if cur and _cells(prefix + candidate) > width:
                lines.append(prefix + cur)
                prefix, cur = rest, piece
            else:
                cur = candidate
    lines.append(prefix + cur)
    return [line.rstrip() for line in lines]

class _Text(_Writer):
    """Wrapped to ``width`` terminal columns; details indented under each item."""

    def __init__(self, width: int) -> None:
        self.width = width

    def h1(self, text: str) -> list[str]:
        return _wrap(text, self.width)

    def h2(self, text: str) -> list[str]:
        return ["", *_wrap(text, self.width), "=" * min(_cells(text), self.width), ""]

    def p(self, spans: list[Span], style: str) -> list[str]:
        return _wrap(_spans_text(spans), self.width)

    def entry(self, head: list[Span], lines: list[Line], section: str) -> list[str]:
        out = _wrap(_spans_text(head), self.width, "", "    ")
        for level, spans, only in lines:
            if only == "rich":
                continue
            text = _spans_text(spans)
            if level == 0:
                out += _wrap(text, self.width, "    ", "      ")
            else:
                pad = "    " + "  " * (level - 1)
                out += _wrap(text, self.width, pad + "- ", pad + "  ")
        return [*out, ""]


def render_text(digest: Mapping[str, Any], *, width: int = 100) -> str:
    """Plain text for a terminal: wrapped to ``width`` columns, no ANSI codes."""
    return "\n".join(_Text(max(int(width), 30)).lines(_build_view(digest))) + "\n"
