"""The digest as an Atom 1.0 feed: one entry per flagged story."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from claimwatch.digest.render.document import (
    FLAG_LABELS,
    _as_list,
    _build_view,
    _clean,
    _copy_of_spans,
    _figures,
    _flag_text,
    _flags,
    _fmt_dt,
    _fmt_score,
    _is_http,
    _key,
    _nothing_new,
    _outlet,
    _outlets_spans,
    _q,
    _rfc3339,
    _spans_text,
    _summary,
    _title,
    _url,
    _View,
)

ATOM_NS = "http://www.w3.org/2005/Atom"
TAG_AUTHORITY = "tag:claimwatch,2024:"


def _atom_entry_summary(v: _View, a: dict[str, Any]) -> str:
    rows = [f"Flags: {_flag_text(a) or 'none'}", f"Outlet: {_outlet(a)}"]
    linked = [m for m in _as_list(a.get("claims")) if isinstance(m, dict)]
    if linked:
        rows.append("Matched claims:")
        for m in linked:
            cid = _clean(m.get("claim_id"))
            tier = "suggested, " if _clean(m.get("tier")) == "suggested" else ""
            if _clean(m.get("stance")) in ("disputes", "discusses"):
                tier += _clean(m.get("stance")) + ", "
            text = v.claim_text.get(cid)
            rows.append(
                f"- {cid} ({tier}score {_fmt_score(m.get('score'))})"
                + (f" {text}" if text else "")
                + f": {_q(_clean(m.get('sentence')))}"
            )
    for c in _as_list(a.get("conflicts")):
        if isinstance(c, dict):
            rows.append(
                f"Conflicting figures with {_clean(c.get('claim_id'))}: claim "
                f"{_figures(c, 'claim_numbers')} vs article {_figures(c, 'article_numbers')}: "
                f"{_q(_clean(c.get('sentence')))}"
            )
    for c in _as_list(a.get("candidates")):
        if isinstance(c, dict):
            rows.append(f"New claim candidate: {_q(_clean(c.get('sentence')))}")
    dup = a.get("duplicate_of")
    if isinstance(dup, dict):
        rows.append(_spans_text(_copy_of_spans(v, dup)))
    copies = v.copies_of.get(_key(a.get("id")), [])
    if copies:
        rows.append(_spans_text(_outlets_spans("Carried", [a, *copies])))
    return "\n".join(rows)


def _atom_entry_id(v: _View, a: Mapping[str, Any]) -> str:
    canonical = _clean(a.get("canonical_url")) or _clean(a.get("url"))
    if _is_http(canonical):
        return canonical
    return f"{TAG_AUTHORITY}{quote(v.topic, safe='')}/article/{quote(_key(a.get('id')), safe='')}"


def render_atom(digest: Mapping[str, Any]) -> str:
    """An Atom 1.0 feed: one entry per flagged article that is not folded under an
    original in this digest (copies are listed in their original's summary)."""
    v = _build_view(digest)
    updated = _rfc3339(v.generated_at) or datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, tag, attrs)
        if text is not None:
            el.text = text
        return el

    # Unqualified tags plus a literal xmlns: every element lands in the Atom namespace
    # without touching ElementTree's global prefix registry.
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "en"})
    sub(feed, "id", f"{TAG_AUTHORITY}{quote(v.topic, safe='')}/digest")
    sub(feed, "title", f"claimwatch digest: {v.topic}")
    sub(
        feed,
        "subtitle",
        _nothing_new(v)
        if v.empty
        else f"{_summary(v)} (since {_fmt_dt(v.since, missing='the last digest')})",
    )
    sub(feed, "updated", updated)
    author = sub(feed, "author")
    sub(author, "name", "claimwatch")
    sub(feed, "generator", "claimwatch")

    folded = {_key(c.get("id")) for copies in v.copies_of.values() for c in copies}
    for a in v.articles:
        if _key(a.get("id")) in folded or not _flags(a):
            continue
        entry = sub(feed, "entry")
        sub(entry, "id", _atom_entry_id(v, a))
        sub(entry, "title", _title(a))
        published = _rfc3339(a.get("published"))
        sub(entry, "updated", published or updated)
        if published:
            sub(entry, "published", published)
        entry_author = sub(entry, "author")
        sub(entry_author, "name", _outlet(a))
        url = _url(a)
        summary = _atom_entry_summary(v, a)
        if _is_http(url):
            sub(entry, "link", rel="alternate", type="text/html", href=url)
        for flag in _flags(a):
            sub(entry, "category", term=flag, label=FLAG_LABELS.get(flag, flag))
        sub(entry, "summary", summary, type="text")
        if not _is_http(url):
            # Atom requires content when there is no alternate link.
            sub(entry, "content", f"{summary}\nLink not shown (not http/https): {url}", type="text")

    ET.indent(feed, space="  ")
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"
