"""Digest renderers: plain text, Markdown, HTML (email), JSON and Atom."""

from claimwatch.digest.render.document import (
    FLAG_LABELS,
    FORMATS,
    digest_subject,
    flagged_count,
    render,
    render_atom,
    render_html,
    render_json,
    render_markdown,
    render_text,
    summary_line,
)

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
