"""The digest as one self-contained HTML document for email clients (inline CSS, no
scripts, no external resources)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from claimwatch.digest.render.document import (
    Line,
    Span,
    _build_view,
    _document,
    _is_http,
    _quoted,
)

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


def _html_span(span: Span) -> str:
    kind = span[0]
    if kind in ("k", "t"):
        return _h(span[1])
    if kind == "b":
        return f"<strong>{_h(span[1])}</strong>" if span[1] else ""
    if kind == "m":
        return f'<span style="{_STYLE["m"]}">{_h(span[1])}</span>' if span[1] else ""
    if kind == "q":
        text = _h(span[1]) if _quoted(span[1]) else f"&ldquo;{_h(span[1])}&rdquo;"
        return f'<span style="{_STYLE["q"]}">{text}</span>'
    if kind == "a":
        label, url = span[1], span[2]
        return _html_link(label, url) if _is_http(url) else _h(label)
    if kind == "u":
        url = span[1]
        if _is_http(url):
            return _html_link(url, url)
        return f'<code style="{_STYLE["m"]}">{_h(url)}</code>' if url else ""
    if kind == "ux":
        if _is_http(span[1]):
            return ""
        return f'<span style="{_STYLE["m"]}">(link not shown: {_h(span[1])})</span>'
    raise ValueError(f"unknown span kind {kind!r}")


def _html_spans(spans: Sequence[Span]) -> str:
    return "".join(_html_span(s) for s in spans).strip()


def _html_entry(head: list[Span], lines: list[Line], colour: str) -> str:
    style = _STYLE["entry"].replace("#2563eb", colour)
    parts = [f'<div style="{style}">', f'<div style="{_STYLE["head"]}">{_html_spans(head)}</div>']
    open_lists = 0
    for level, spans, only in lines:
        if only == "text":
            continue
        body = _html_spans(spans)
        if not body:
            continue
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
    return "\n".join(parts)


def render_html(digest: Mapping[str, Any]) -> str:
    """One self-contained HTML document for email clients: inline CSS, no scripts,
    no external resources, table layout capped at 700px."""
    v = _build_view(digest)
    body: list[str] = []
    colour = _SECTION_COLOURS["Stories"]
    for block in _document(v):
        kind = block[0]
        if kind == "h1":
            body.append(f'<h1 style="{_STYLE["h1"]}">{_h(block[1])}</h1>')
        elif kind == "h2":
            name = block[1].split(" (")[0]
            colour = _SECTION_COLOURS.get(name, "#2563eb")
            body.append(f'<h2 style="{_STYLE["h2"]}">{_h(block[1])}</h2>')
        elif kind == "p":
            style = _STYLE.get(block[2], _STYLE["p"])
            body.append(f'<p style="{style}">{_html_spans(block[1])}</p>')
        elif kind == "entry":
            body.append(_html_entry(block[1], block[2], colour))
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
