"""The digest as GitHub-flavoured Markdown: scraped text cannot inject links, HTML or
emphasis."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from claimwatch.digest.render.document import Line, Span, _build_view, _RichWriter

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!&$])")


def _md_escape(text: str) -> str:
    """Backslash-escape Markdown metacharacters in scraped text (GFM)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    """Percent-encode what may not appear inside ``<...>`` link destinations."""
    return quote(url, safe="!#$%&'()*+,-./:;=?@[]_~")


class _Markdown(_RichWriter):
    """GitHub-flavoured Markdown: one list item per entry, details as hard line breaks."""

    def escape(self, text: str) -> str:
        return _md_escape(text)

    def fixed(self, text: str) -> str:
        return text

    def bold(self, escaped: str) -> str:
        return f"**{escaped}**"

    def muted(self, escaped: str) -> str:
        return f"*{escaped}*"

    def link(self, label: str, url: str) -> str:
        return f"[{_md_escape(label)}](<{_md_url(url)}>)"

    def code(self, url: str) -> str:
        return f"`{url.replace('`', '')}`"

    def not_shown(self, url: str) -> str:
        return f"(link not shown: *{_md_escape(url)}*)"

    def h1(self, text: str) -> list[str]:
        return [f"# {_md_escape(text)}", ""]

    def h2(self, text: str) -> list[str]:
        return ["", f"## {_md_escape(text)}", ""]

    def p(self, spans: list[Span], style: str) -> list[str]:
        text = self.spans(spans)
        return [f"**{text}**" if style in ("summary", "alarm") else text, ""]

    def entry(self, head: list[Span], lines: list[Line], section: str) -> list[str]:
        rows = [f"- {self.spans(head)}"]
        for level, text in self.shown(lines):
            if level == 0:
                rows[-1] += "\\"  # hard line break inside the list item
                rows.append(f"  {text}")
            else:
                rows.append("  " * level + f"- {text}")
        return rows


def render_markdown(digest: Mapping[str, Any]) -> str:
    """GitHub-flavoured Markdown; scraped text cannot inject links, HTML or emphasis."""
    return "\n".join(_Markdown().lines(_build_view(digest))) + "\n"
