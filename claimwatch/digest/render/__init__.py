"""Digest renderers: plain text, Markdown, HTML (email), JSON and Atom.

One module per format over the document every human format shares
(:mod:`~claimwatch.digest.render.document`): the same sections, in the same order, with the
same counts, whatever the format. ``render(digest, fmt)`` picks the renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from claimwatch.digest.render.atom import render_atom
from claimwatch.digest.render.document import (
    FLAG_LABELS,
    digest_subject,
    flagged_count,
    summary_line,
)
from claimwatch.digest.render.html import render_html
from claimwatch.digest.render.json import render_json
from claimwatch.digest.render.markdown import render_markdown
from claimwatch.digest.render.text import render_text

__all__ = [
    "FLAG_LABELS",
    "FORMATS",
    "digest_subject",
    "flagged_count",
    "render",
    "render_atom",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "summary_line",
]

FORMATS = ("text", "md", "html", "json", "atom")

_RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "md": render_markdown,
    "markdown": render_markdown,
    "html": render_html,
    "json": render_json,
    "atom": render_atom,
}


def render(digest: Mapping[str, Any], fmt: str, *, width: int = 100) -> str:
    """Render ``digest`` as ``text``, ``md``, ``html``, ``json`` or ``atom``."""
    fmt = (fmt or "").strip().lower()
    if fmt in ("text", "txt"):
        return render_text(digest, width=width)
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown digest format {fmt!r}; choose one of: {', '.join(FORMATS)}"
        ) from None
    return renderer(digest)
