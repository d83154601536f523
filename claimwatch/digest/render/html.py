"""The digest as one self-contained HTML document for email clients (inline CSS, no
scripts, no external resources)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from claimwatch.digest.render.document import Line, Span, _build_view, _RichWriter

_FONT = "font-family:Arial,Helvetica,sans-serif;"
_STYLE = {
    "body": "margin:0;padding:0;background:#f4f4f5;",
    "outer": "background:#f4f4f5;",
    "card": "max-width:700px;background:#ffffff;border:1px solid #e4e4e7;",
    "cell": _FONT + "padding:20px 24px;font-size:15px;line-height:1.45;color:#18181b;",
    "h1": _FONT + "font-size:20px;margin:0 0 6px;color:#18181b;",
    "h2": _FONT + "font-size:17px;margin:22px 0 8px;padding-bottom:4px;"
    "border-bottom:2px solid #e4e4e7;color:#18181b;",
    "p": "margin:0 0 8px;",
    "muted": "margin:0 0 8px;color:#52525b;font-size:13px;",
    "summary": "margin:10px 0 8px;font-weight:bold;",
    "alarm": "margin:8px 0;padding:8px 10px;background:#fef2f2;color:#991b1b;"
    "border:1px solid #fecaca;font-weight:bold;",
    "entry": "margin:0 0 14px;padding:6px 0 6px 12px;border-left:3px solid #2563eb;",
    "head": "font-weight:bold;font-size:15px;",
    "line": "font-size:13px;color:#3f3f46;margin-top:2px;",
    "ul": "margin:4px 0 0;padding:0 0 0 18px;font-size:13px;color:#3f3f46;",
    "ul2": "margin:2px 0 0;padding:0 0 0 16px;font-size:13px;color:#52525b;",
    "a": "color:#1d4ed8;text-decoration:underline;",
    "q": "font-style:italic;color:#18181b;",
    "m": "color:#71717a;",
    "foot": "margin:18px 0 0;font-size:12px;color:#71717a;",
}
_SECTION_COLOURS = {
    "Stories": "#2563eb",
    "Conflicting figures": "#dc2626",
    "Disputes": "#d97706",
    "Revised articles": "#0891b2",
    "Claims: who repeats, who disputes": "#059669",
    "Copies of earlier articles": "#71717a",
    "Other articles": "#71717a",
    "Source health": "#7c3aed",
}


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_link(label: str, url: str) -> str:
    return f'<a href="{_h(url)}" style="{_STYLE["a"]}">{_h(label)}</a>'


class _Html(_RichWriter):
    """Email HTML: inline styles only; each section's entries in its own colour."""

    marks = ("&ldquo;", "&rdquo;")

    def escape(self, text: str) -> str:
        return _h(text)

    def bold(self, escaped: str) -> str:
        return f"<strong>{escaped}</strong>"

    def muted(self, escaped: str) -> str:
        return f'<span style="{_STYLE["m"]}">{escaped}</span>'

    def quote(self, escaped: str) -> str:
        return f'<span style="{_STYLE["q"]}">{escaped}</span>'

    def link(self, label: str, url: str) -> str:
        return _html_link(label, url)

    def code(self, url: str) -> str:
        return f'<code style="{_STYLE["m"]}">{_h(url)}</code>'

    def not_shown(self, url: str) -> str:
        return self.muted(f"(link not shown: {_h(url)})")

    def h1(self, text: str) -> list[str]:
        return [f'<h1 style="{_STYLE["h1"]}">{_h(text)}</h1>']

    def h2(self, text: str) -> list[str]:
        return [f'<h2 style="{_STYLE["h2"]}">{_h(text)}</h2>']

    def p(self, spans: list[Span], style: str) -> list[str]:
        return [f'<p style="{_STYLE.get(style, _STYLE["p"])}">{self.spans(spans)}</p>']

    def entry(self, head: list[Span], lines: list[Line], section: str) -> list[str]:
        colour = _SECTION_COLOURS.get(section, "#2563eb")
        style = _STYLE["entry"].replace("#2563eb", colour)
        parts = [f'<div style="{style}">',
                 f'<div style="{_STYLE["head"]}">{self.spans(head)}</div>']
        open_lists = 0
        for level, body in self.shown(lines):
            while open_lists > level:
                parts.append("</ul>")
                open_lists -= 1
            if level == 0:
                parts.append(f'<div style="{_STYLE["line"]}">{body}</div>')
                continue
            while open_lists < level:
                open_lists += 1
                parts.append(f'<ul style="{_STYLE["ul" if open_lists == 1 else "ul2"]}">')
            parts.append(f"<li>{body}</li>")
        parts += ["</ul>"] * open_lists
        parts.append("</div>")
        return ["\n".join(parts)]


def render_html(digest: Mapping[str, Any]) -> str:
    """One self-contained HTML document for email clients: inline CSS, no scripts,
    no external resources, table layout capped at 700px."""
    v = _build_view(digest)
    body = _Html().lines(v)
    body.append(
        f'<p style="{_STYLE["foot"]}">Sent by claimwatch. Review and dismiss items in the '
        "review page or with <code>claimwatch review</code>.</p>"
    )
    title = _h(f"claimwatch digest: {v.topic}")
    content = "\n".join(body)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n"
        f'<body style="{_STYLE["body"]}">\n'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="{_STYLE["outer"]}">\n<tr><td align="center" style="padding:16px 8px;">\n'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="{_STYLE["card"]}">\n<tr><td align="left" style="{_STYLE["cell"]}">\n'
        f"{content}\n"
        "</td></tr>\n</table>\n</td></tr>\n</table>\n</body>\n</html>\n"
    )
