"""Digest renderers: plain text, Markdown, HTML (email), JSON and Atom.

Every renderer is a pure function of the digest dict described in DESIGN.md
("Digest JSON"); nothing here touches the database, the network or the clock
(the Atom renderer falls back to the current time only when ``generated_at``
cannot be parsed).

The human formats (text, md, html) share one document model built by
:func:`_document`, so they always show the same sections in the same order:

* a header with the summary line (``12 articles: 3 new reports, ...``),
* "New reports": original articles, each with its copies folded under it
  ("carried by 4 outlets: A, B, C, D"),
* "Conflicting figures", "New claim candidates",
* "Known claims repeated": per claim, the articles repeating it with the
  sentence that says it (copies with the same sentence folded),
* "Copies of earlier articles": duplicates whose original is not in this digest,
* "Other articles": originals without the ``new_report`` flag, if any,
* "Source health", when the builder adds ``sources``.

All scraped text (titles, outlets, sentences, URLs) is treated as hostile:
control and bidi-override characters are removed everywhere, Markdown
metacharacters are backslash-escaped, HTML and XML are escaped, and only
``http(s)`` URLs ever become links.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from claimwatch.cleaner import clean_line, is_http

__all__ = [
    "FORMATS",
    "render",
    "render_text",
    "render_markdown",
    "render_html",
    "render_json",
    "render_atom",
    "digest_subject",
    "summary_line",
    "flagged_count",
]

FORMATS = ("text", "md", "html", "json", "atom")

FLAG_LABELS = {
    "new_report": "new report",
    "duplicate": "duplicate",
    "conflict": "conflicting figures",
    "new_claim_candidate": "new claim candidate",
    "disputes": "disputes a claim",
}

ATOM_NS = "http://www.w3.org/2005/Atom"
TAG_AUTHORITY = "tag:claimwatch,2024:"

# --------------------------------------------------------------------------- cleaning

# One cleaner for the digest and the review page (claimwatch/cleaner.py).
_clean = clean_line
_is_http = is_http


def _host(url: str) -> str:
    if not _is_http(url):
        return ""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def _key(value: Any) -> str:
    return "" if value is None else str(value)


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


# --------------------------------------------------------------------------- dates


def _parse_dt(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _fmt_dt(value: Any, *, missing: str = "unknown date") -> str:
    """Human date: ``2022-12-05 14:03 UTC`` (aware values are shown in UTC)."""
    text = _clean(value)
    dt = _parse_dt(text)
    if dt is None:
        return text or missing
    if len(text) == 10:  # a bare date
        return dt.strftime("%Y-%m-%d")
    if dt.tzinfo is None:
        return dt.strftime("%Y-%m-%d %H:%M")
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _rfc3339(value: Any) -> str | None:
    dt = _parse_dt(_clean(value))
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fmt_score(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return _clean(value) or "?"


# --------------------------------------------------------------------------- view model


@dataclass
class _Match:
    article: dict[str, Any]
    sentence: str
    score: Any
    tier: str
    stance: str = "repeats"


@dataclass
class _ClaimGroup:
    claim_id: str
    text: str
    # families: list of lists of matches; each inner list is one story family
    families: list[list[_Match]] = field(default_factory=list)

    @property
    def n_articles(self) -> int:
        return sum(len(f) for f in self.families)


@dataclass
class _Orphans:
    dup_of: dict[str, Any]
    copies: list[dict[str, Any]]


@dataclass
class _View:
    digest: Mapping[str, Any]
    topic: str
    generated_at: str
    since: str
    articles: list[dict[str, Any]]
    by_id: dict[str, dict[str, Any]]
    copies_of: dict[str, list[dict[str, Any]]]
    orphans: list[_Orphans]
    new_reports: list[dict[str, Any]]
    others: list[dict[str, Any]]
    conflicts: list[tuple[dict[str, Any], dict[str, Any]]]
    candidates: list[tuple[dict[str, Any], dict[str, Any]]]
    claims: list[_ClaimGroup]
    claim_text: dict[str, str]
    sources: list[dict[str, Any]]
    counts: dict[str, int]

    @property
    def empty(self) -> bool:
        return not self.articles

    @property
    def alarms(self) -> list[dict[str, Any]]:
        return [s for s in self.sources if s.get("alarm")]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _flags(article: Mapping[str, Any]) -> list[str]:
    return [str(f) for f in _as_list(article.get("flags"))]


def _build_view(digest: Mapping[str, Any]) -> _View:
    if not isinstance(digest, Mapping):
        raise TypeError(f"digest must be a dict, not {type(digest).__name__}")
    articles = [a for a in _as_list(digest.get("articles")) if isinstance(a, dict)]
    by_id: dict[str, dict[str, Any]] = {}
    for a in articles:
        by_id.setdefault(_key(a.get("id")), a)

    # Resolve every duplicate to the root of its family: an original in this digest
    # (folded under it) or an article outside the digest (an "orphan" group).
    root_of: dict[str, str] = {}  # article key -> original key, or "orphan:<id>"
    orphan_groups: dict[str, _Orphans] = {}
    copies_of: dict[str, list[dict[str, Any]]] = {}
    originals: list[dict[str, Any]] = []
    for a in articles:
        akey = _key(a.get("id"))
        cur, seen, root = a, {akey}, None
        while True:
            dup = cur.get("duplicate_of")
            if not isinstance(dup, dict):
                root = _key(cur.get("id")) if cur is not a else None
                break
            target_key = _key(dup.get("id"))
            if target_key in seen:  # a cycle: show the article as an original
                root = None
                break
            seen.add(target_key)
            target = by_id.get(target_key)
            if target is None:
                root = "orphan:" + target_key
                orphans = orphan_groups.setdefault(root, _Orphans(dict(dup), []))
                orphans.copies.append(a)
                break
            cur = target
        if root is None:
            originals.append(a)
            root_of[akey] = akey
        else:
            root_of[akey] = root
            if not root.startswith("orphan:"):
                copies_of.setdefault(root, []).append(a)

    new_reports = [a for a in originals if "new_report" in _flags(a)]
    others = [a for a in originals if "new_report" not in _flags(a)]

    claim_text: dict[str, str] = {}
    top_claims = digest.get("claims")
    if isinstance(top_claims, Mapping):
        for cid, text in top_claims.items():
            if isinstance(text, Mapping):  # tolerate {"id": {"text": ...}}
                text = text.get("text")
            claim_text[_key(cid)] = _clean(text)

    conflicts: list[tuple[dict[str, Any], dict[str, Any]]] = []
    candidates: list[tuple[dict[str, Any], dict[str, Any]]] = []
    groups: dict[str, _ClaimGroup] = {}
    family_index: dict[tuple[str, str], int] = {}
    for a in articles:
        for c in _as_list(a.get("conflicts")):
            if isinstance(c, dict):
                conflicts.append((a, c))
        for c in _as_list(a.get("candidates")):
            if isinstance(c, dict):
                candidates.append((a, c))
        best: dict[str, dict[str, Any]] = {}
        for m in _as_list(a.get("claims")):
            if not isinstance(m, dict):
                continue
            cid = _key(m.get("claim_id"))
            if m.get("claim_text") and not claim_text.get(cid):
                claim_text[cid] = _clean(m.get("claim_text"))
            prev = best.get(cid)
            if prev is None or _num(m.get("score")) > _num(prev.get("score")):
                best[cid] = m
        for cid, m in best.items():
            group = groups.setdefault(cid, _ClaimGroup(cid, ""))
            fam = root_of.get(_key(a.get("id")), _key(a.get("id")))
            idx = family_index.get((cid, fam))
            match = _Match(a, _clean(m.get("sentence")), m.get("score"), _clean(m.get("tier")),
                           _clean(m.get("stance")) or "repeats")
            if idx is None:
                family_index[(cid, fam)] = len(group.families)
                group.families.append([match])
            else:
                group.families[idx].append(match)
    for group in groups.values():
        group.text = claim_text.get(group.claim_id, "")
        for members in group.families:  # the family's original first, then digest order
            members.sort(key=lambda m: isinstance(m.article.get("duplicate_of"), dict))
    claims = sorted(groups.values(), key=lambda g: -g.n_articles)  # stable: ties keep order

    sources = [s for s in _as_list(digest.get("sources")) if isinstance(s, dict)]
    sources.sort(key=lambda s: not s.get("alarm"))

    counts = {
        flag: sum(1 for a in articles if flag in _flags(a))
        for flag in ("new_report", "duplicate", "conflict", "new_claim_candidate")
    }
    counts["articles"] = len(articles)
    counts["flagged"] = sum(1 for a in articles if _flags(a))

    return _View(
        digest=digest,
        topic=_clean(digest.get("topic")) or "untitled topic",
        generated_at=_clean(digest.get("generated_at")),
        since=_clean(digest.get("since")),
        articles=articles,
        by_id=by_id,
        copies_of=copies_of,
        orphans=list(orphan_groups.values()),
        new_reports=new_reports,
        others=others,
        conflicts=conflicts,
        candidates=candidates,
        claims=claims,
        claim_text=claim_text,
        sources=sources,
        counts=counts,
    )


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def summary_line(digest: Mapping[str, Any]) -> str:
    """``12 articles: 3 new reports, 5 duplicates, 1 conflict, 2 candidates``."""
    return _summary(_build_view(digest))


def _summary(v: _View) -> str:
    """Counts that match the sections: conflicts per story and claim, candidate sentences."""
    c = v.counts
    parts = [_plural(c["new_report"], "new report"), _plural(c["duplicate"], "duplicate"),
             _plural(len(_conflict_groups(v)), "conflict")]
    disputes = len(_disputes(v))
    if disputes:
        parts.append(_plural(disputes, "dispute"))
    revised = len(_revised(v))
    if revised:
        parts.append(_plural(revised, "revision"))
    parts.append(_plural(sum(len(_as_list(a.get("candidates"))) for a in v.articles),
                         "candidate"))
    return f"{_plural(c['articles'], 'article')}: " + ", ".join(parts)


def flagged_count(digest: Mapping[str, Any]) -> int:
    """Number of articles carrying at least one flag."""
    return _build_view(digest).counts["flagged"]


def digest_subject(digest: Mapping[str, Any]) -> str:
    """``claimwatch digest: <topic> — N flagged since <date>`` (one line, for email)."""
    v = _build_view(digest)
    return (
        f"claimwatch digest: {v.topic} — {v.counts['flagged']} flagged "
        f"since {_fmt_dt(v.since, missing='the last digest')}"
    )


def _nothing_new(v: _View) -> str:
    return f"Nothing new since {_fmt_dt(v.since, missing='the last digest')}."


# --------------------------------------------------------------------------- document model
#
# Spans (inline pieces) are tuples:
#   ("k", text)         our own fixed text (never scraped; not escaped in Markdown)
#   ("t", text)         scraped text (escaped)
#   ("b", text)         scraped text, bold
#   ("q", text)         a quoted sentence
#   ("m", text)         muted scraped text
#   ("a", label, url)   a link if the url is http(s), else just the label
#   ("u", url)          a URL shown as itself (linked if http(s))
#   ("ux", url)         text format: the URL; rich formats: only if NOT http(s),
#                       because there the title/outlet is already the link
# Blocks:
#   ("h1", text) / ("h2", text) / ("p", spans, style) / ("entry", head_spans, lines)
#   where lines are (level, spans, only) with level 0 = detail line, 1/2 = list items,
#   only = None | "text" | "rich".

Span = tuple[str, ...]
Line = tuple[int, list[Span], str | None]


def _outlet(a: Mapping[str, Any]) -> str:
    return _clean(a.get("outlet")) or _host(_clean(a.get("url"))) or "unknown outlet"


def _title(a: Mapping[str, Any]) -> str:
    return _clean(a.get("title")) or "(untitled)"


def _url(a: Mapping[str, Any]) -> str:
    return _clean(a.get("url")) or _clean(a.get("canonical_url"))


def _aid(a: Mapping[str, Any]) -> str:
    return f"#{_clean(a.get('id'))}"


def _joined(parts: Iterable[list[Span]], sep: str = " · ") -> list[Span]:
    out: list[Span] = []
    for part in parts:
        if not part:
            continue
        if out:
            out.append(("k", sep))
        out.extend(part)
    return out


def _meta_spans(a: Mapping[str, Any]) -> list[Span]:
    parts: list[list[Span]] = [[("t", _outlet(a))], [("k", _fmt_dt(a.get("published")))]]
    review = _as_dict(a.get("review"))
    status = _clean(review.get("status"))
    if status and status != "open":
        note = _clean(review.get("note"))
        review_spans: list[Span] = [("k", status)]
        if note:
            review_spans += [("k", ": "), ("m", note)]
        parts.append(review_spans)
    return _joined(parts)


def _unsafe_url_line(url: str) -> Line | None:
    if url and not _is_http(url):
        return (0, [("k", "link not shown (not http/https): "), ("m", url)], None)
    return None


def _flag_text(a: Mapping[str, Any]) -> str:
    return ", ".join(FLAG_LABELS.get(f, f.replace("_", " ")) for f in _flags(a))


def _copy_of_spans(v: _View, dup: Mapping[str, Any]) -> list[Span]:
    target = v.by_id.get(_key(dup.get("id")))
    spans: list[Span] = [("k", f"Copy of #{_clean(dup.get('id'))}")]
    if target is not None:
        spans += [("k", " ("), ("t", _outlet(target)), ("k", ")")]
    elif _clean(dup.get("url")):
        spans += [("k", " "), ("u", _clean(dup.get("url")))]
    if dup.get("similarity") is not None:
        spans.append(("k", f", similarity {_score100(dup.get('similarity'))}"))
    return spans


def _copy_item(original: Mapping[str, Any] | None, c: Mapping[str, Any]) -> list[Span]:
    url = _url(c)
    spans: list[Span] = [("k", _aid(c) + " "), ("a", _outlet(c), url)]
    dup = _as_dict(c.get("duplicate_of"))
    if dup.get("similarity") is not None:
        spans.append(("k", f" · similarity {_score100(dup.get('similarity'))}"))
    if original is None or _title(c) != _title(original):
        spans += [("k", " · "), ("t", _title(c))]
    extra = [f for f in _flags(c) if f != "duplicate"]
    if extra:
        spans.append(("k", " · " + ", ".join(FLAG_LABELS.get(f, f) for f in extra)))
    if url:
        spans += [("k", " "), ("ux", url)]
    return spans


def _copies_lines(v: _View, original: dict[str, Any]) -> list[Line]:
    copies = v.copies_of.get(_key(original.get("id")), [])
    if not copies:
        return []
    outlets: list[str] = []
    for a in [original, *copies]:
        name = _outlet(a)
        if name not in outlets:
            outlets.append(name)
    label = f"Carried by {_plural(len(outlets), 'outlet')}: "
    lines: list[Line] = [(0, [("k", label), ("t", ", ".join(outlets))], None)]
    lines += [(1, _copy_item(original, c), None) for c in copies]
    return lines


def _orphan_entry(v: _View, group: _Orphans) -> tuple:
    dup_url = _clean(group.dup_of.get("url"))
    head: list[Span] = [("k", f"Earlier article #{_clean(group.dup_of.get('id'))}")]
    if dup_url:
        head += [("k", " "), ("u", dup_url)]
    outlets: list[str] = []
    for c in group.copies:
        if _outlet(c) not in outlets:
            outlets.append(_outlet(c))
    label = f"Copied by {_plural(len(outlets), 'outlet')}: "
    lines: list[Line] = [(0, [("k", label), ("t", ", ".join(outlets))], None)]
    lines += [(1, _copy_item(None, c), None) for c in group.copies]
    return ("entry", head, lines)


def _alarm_words(s: Mapping[str, Any]) -> str:
    """A source alarm in words: ``failing: failed 3 times in a row (last error: ...)``."""
    alarm = s.get("alarm")
    if not alarm:
        return ""
    if isinstance(alarm, Mapping):
        kind = _clean(alarm.get("kind"))
        message = _clean(alarm.get("message"))
        since = _fmt_dt(alarm.get("since"), missing="")
        text = ": ".join(p for p in (kind, message) if p) or "needs attention"
        return text + (f" (since {since})" if since else "")
    return "needs attention" if alarm is True else _clean(alarm)


def _source_status(s: Mapping[str, Any]) -> str:
    if s.get("alarm"):
        return _alarm_words(s)
    status = _clean(s.get("status"))
    if status and status != "unknown":
        return status
    failures = s.get("consecutive_failures")
    if isinstance(failures, int) and failures > 0:
        return f"last crawl failed ({_plural(failures, 'failure')} in a row)"
    return "healthy" if s.get("last_success") else "not crawled yet"


def _source_entry(s: Mapping[str, Any]) -> tuple:
    name = _clean(s.get("name")) or "unnamed source"
    head: list[Span] = [("b", name), ("k", " — "), ("t", _source_status(s))]
    details: list[list[Span]] = []
    topic = _clean(s.get("topic"))
    if topic:
        details.append([("k", "topic "), ("t", topic)])
    details.append([("k", "last success " + _fmt_dt(s.get("last_success"), missing="never"))])
    error = _clean(s.get("last_error")) or _clean(s.get("error"))
    if error:
        details.append([("k", "last error: "), ("t", error)])
    return ("entry", head, [(0, _joined(details), None)])


def _review_url(v: _View, a: Mapping[str, Any]) -> str:
    """The article's review page when the digest knows the page's address, else ''."""
    base = _clean(v.digest.get("review_base"))
    aid = _clean(a.get("id"))
    if base and _is_http(base) and aid:
        return f"{base.rstrip('/')}/article/{quote(aid, safe='')}"
    return ""


def _head(v: _View, a: Mapping[str, Any]) -> list[Span]:
    """``#id Title``, linked to the review page (or, without one, to the article)."""
    return [("k", _aid(a) + " "), ("a", _title(a), _review_url(v, a) or _url(a))]


def _links(v: _View, a: Mapping[str, Any]) -> list[Line]:
    """Where to read it (and, in text, where to review it)."""
    url = _url(a)
    lines: list[Line] = []
    review = _review_url(v, a)
    if review:
        lines.append((0, [("k", "Review: "), ("u", review)], "text"))
        if _is_http(url):
            lines.append((0, [("k", "Read at "), ("a", _outlet(a), url)], None))
    elif url and _is_http(url):
        lines.append((0, [("u", url)], "text"))
    bad = _unsafe_url_line(url)
    if bad:
        lines.append(bad)
    return lines


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _claim_label(v: _View, cid: str) -> str:
    """A claim by its short text (its id only when the digest has no text for it)."""
    text = v.claim_text.get(cid)
    return _short(text) if text else cid


def _score100(value: Any) -> str:
    """One scale everywhere: 0-100 (candidate scores and similarities are 0-1 in JSON)."""
    number = _num(value)
    if number == float("-inf"):
        return "?"
    if number <= 1.0:
        number *= 100
    return f"{number:.0f}"


def _stance(m: Mapping[str, Any]) -> str:
    return _clean(m.get("stance")) or "repeats"


def _story_claim_lines(v: _View, a: Mapping[str, Any]) -> list[Line]:
    lines: list[Line] = []
    conflicted = {_clean(c.get("claim_id")) for c in _as_list(a.get("conflicts"))
                  if isinstance(c, dict)}
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    seen: set[str] = set()
    for m in sorted((m for m in _as_list(a.get("claims")) if isinstance(m, dict)),
                    key=lambda m: -_num(m.get("score"))):
        cid = _clean(m.get("claim_id"))
        if not cid or cid in seen or cid in conflicted:
            continue
        seen.add(cid)
        stance = _stance(m)
        if stance == "disputes":
            label = "Disputes"
        elif stance == "discusses":
            label = "Discusses"
        elif _clean(m.get("tier")) == "suggested":
            label = "Possibly repeats"
        else:
            label = "Repeats"
        groups.setdefault(label, []).append((cid, m))
    for label in ("Repeats", "Disputes", "Discusses", "Possibly repeats"):
        for cid, m in groups.get(label, []):
            lines.append((0, [("k", f"{label}: "), ("q", _claim_label(v, cid)),
                              ("k", f" (match {_score100(m.get('score'))})")], None))
    for cid in sorted(conflicted):
        lines.append((0, [("k", "Conflicting figures on: "), ("q", _claim_label(v, cid))], None))
    return lines


def _story_entry(v: _View, a: dict[str, Any]) -> tuple:
    """One story family: the original, its copies folded, what it says."""
    lines: list[Line] = [(0, _meta_spans(a), None), *_links(v, a)]
    dup = a.get("duplicate_of")
    if isinstance(dup, dict):
        lines.append((0, _copy_of_spans(v, dup), None))
    lines.extend(_copies_lines(v, a))
    lines.extend(_story_claim_lines(v, a))
    for c in _as_list(a.get("candidates")):
        if isinstance(c, dict):
            lines.append((0, [("k", "New claim? "), ("q", _clean(c.get("sentence"))),
                              ("k", f" ({_score100(c.get('score'))})")], None))
    return ("entry", _head(v, a), lines)


def _conflict_groups(v: _View) -> list[tuple[dict[str, Any], dict[str, Any], list[dict]]]:
    """Conflicts, one per story family and claim (copies saying the same folded)."""
    groups: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any], list[dict]]] = {}
    folded = {_key(c.get("id")): root for root, copies in v.copies_of.items() for c in copies}
    for a, c in v.conflicts:
        family = folded.get(_key(a.get("id")), _key(a.get("id")))
        key = (family, _clean(c.get("claim_id")))
        if key in groups:
            groups[key][2].append(a)
        else:
            groups[key] = (a, c, [])
    return list(groups.values())


def _conflict_block(v: _View, a: dict[str, Any], c: Mapping[str, Any],
                    also: list[dict]) -> tuple:
    cid = _clean(c.get("claim_id"))
    lines: list[Line] = [(0, _meta_spans(a), None), *_links(v, a)]
    known: list[Span] = [("k", "Known claim: "), ("q", v.claim_text.get(cid) or cid)]
    lines.append((0, known, None))
    lines.append((0, [("k", "Article says: "), ("q", _clean(c.get("sentence")))], None))
    cn = [_clean(n) for n in _as_list(c.get("claim_numbers"))]
    an = [_clean(n) for n in _as_list(c.get("article_numbers"))]
    figures = f"Figures: the claim says {', '.join(cn) or '-'}, the article {', '.join(an) or '-'}"
    lines.append((0, [("t", figures)], None))
    if also:
        spans: list[Span] = [("k", "Also in ")]
        for i, other in enumerate(also):
            if i:
                spans.append(("k", ", "))
            spans += [("a", _outlet(other), _review_url(v, other) or _url(other)),
                      ("k", " " + _aid(other))]
        lines.append((0, spans, None))
    return ("entry", _head(v, a), lines)


def _disputes(v: _View) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    folded = {_key(c.get("id")) for copies in v.copies_of.values() for c in copies}
    return [(a, m) for a in v.articles if _key(a.get("id")) not in folded
            for m in _as_list(a.get("claims"))
            if isinstance(m, dict) and _stance(m) == "disputes"]


def _dispute_block(v: _View, a: dict[str, Any], m: Mapping[str, Any]) -> tuple:
    cid = _clean(m.get("claim_id"))
    lines: list[Line] = [(0, _meta_spans(a), None), *_links(v, a),
                         (0, [("k", "Disputes: "), ("q", v.claim_text.get(cid) or cid)], None),
                         (0, [("k", "Article says: "), ("q", _clean(m.get("sentence")))], None)]
    return ("entry", _head(v, a), lines)


def _revised(v: _View) -> list[dict[str, Any]]:
    return [a for a in v.articles if _as_list(a.get("revisions"))]


def _revision_block(v: _View, a: dict[str, Any]) -> tuple:
    lines: list[Line] = [(0, _meta_spans(a), None), *_links(v, a)]
    for rev in _as_list(a.get("revisions")):
        if not isinstance(rev, dict):
            continue
        changes = ", ".join(_clean(c).replace("_", " ") for c in _as_list(rev.get("changes")))
        lines.append((1, [("k", f"{_fmt_dt(rev.get('fetched_at'))}: {changes or 'changed'}")],
                      None))
        for before in _as_list(rev.get("removed"))[:3]:
            lines.append((2, [("k", "was: "), ("q", _clean(before))], None))
        for after in _as_list(rev.get("added"))[:3]:
            lines.append((2, [("k", "now: "), ("q", _clean(after))], None))
    return ("entry", _head(v, a), lines)


def _claim_sides_entry(v: _View, group: _ClaimGroup) -> tuple:
    """One claim: the outlets that repeat it and those that dispute (or discuss) it."""
    sides: dict[str, list[str]] = {"repeats": [], "disputes": [], "discusses": [],
                                   "conflict": []}
    for family in group.families:
        for m in family:
            conflicting = any(isinstance(c, dict) and _clean(c.get("claim_id")) == group.claim_id
                              for c in _as_list(m.article.get("conflicts")))
            side = sides["conflict"] if conflicting else sides.get(m.stance, sides["repeats"])
            outlet = _outlet(m.article)
            if outlet not in side:
                side.append(outlet)
    head: list[Span] = [("q", _claim_label(v, group.claim_id))]
    lines: list[Line] = []
    for stance, label in (("repeats", "Repeated by"), ("disputes", "Disputed by"),
                          ("conflict", "Other figures from"), ("discusses", "Discussed by")):
        if sides[stance]:
            lines.append((0, [("k", f"{label} {_plural(len(sides[stance]), 'outlet')}: "),
                              ("t", ", ".join(sides[stance]))], None))
    return ("entry", head, lines)


def _document(v: _View) -> list[tuple]:
    """Conflicts, disputes, alarms and revisions first; then one block per story."""
    doc: list[tuple] = [("h1", f"claimwatch digest: {v.topic}")]
    meta = (
        f"Generated {_fmt_dt(v.generated_at)}, covering articles since "
        f"{_fmt_dt(v.since, missing='the last digest')}"
    )
    doc.append(("p", [("t", meta)], "muted"))
    doc.append(("p", [("k", _nothing_new(v) if v.empty else _summary(v))], "summary"))
    for s in v.alarms:
        doc.append(("p", [("k", "Source alarm: "), ("b", _clean(s.get("name")) or "?"),
                          ("k", " — "), ("t", _alarm_words(s))], "alarm"))
    if not v.empty:
        conflicts = _conflict_groups(v)
        if conflicts:
            doc.append(("h2", f"Conflicting figures ({len(conflicts)})"))
            doc += [_conflict_block(v, a, c, also) for a, c, also in conflicts]
        disputes = _disputes(v)
        if disputes:
            doc.append(("h2", f"Disputes ({len(disputes)})"))
            doc += [_dispute_block(v, a, m) for a, m in disputes]
        revised = _revised(v)
        if revised:
            doc.append(("h2", f"Revised articles ({len(revised)})"))
            doc += [_revision_block(v, a) for a in revised]
        if v.new_reports:
            doc.append(("h2", f"Stories ({len(v.new_reports)})"))
            doc += [_story_entry(v, a) for a in v.new_reports]
        if v.claims:
            doc.append(("h2", f"Claims: who repeats, who disputes ({len(v.claims)})"))
            doc += [_claim_sides_entry(v, g) for g in v.claims]
        if v.orphans:
            n = sum(len(g.copies) for g in v.orphans)
            doc.append(("h2", f"Copies of earlier articles ({n})"))
            doc += [_orphan_entry(v, g) for g in v.orphans]
        if v.others:
            doc.append(("h2", f"Other articles ({len(v.others)})"))
            doc += [_story_entry(v, a) for a in v.others]
    if v.sources:
        doc.append(("h2", "Source health"))
        doc += [_source_entry(s) for s in v.sources]
    return doc


# --------------------------------------------------------------------------- text


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


def _quoted(text: str) -> bool:
    """Does the sentence already come with its own quotation marks?"""
    return len(text) > 1 and text[0] in '“"«„' and text[-1] in '”"»“'


def _q(text: str) -> str:
    return text if _quoted(text) else f"“{text}”"


def _span_text(span: Span) -> str:
    if span[0] == "q" and not _quoted(span[1]):
        return f"“{span[1]}”"
    return span[1]


def _spans_text(spans: Sequence[Span]) -> str:
    return "".join(_span_text(s) for s in spans)


def render_text(digest: Mapping[str, Any], *, width: int = 100) -> str:
    """Plain text for a terminal: wrapped to ``width`` columns, no ANSI codes."""
    width = max(int(width), 30)
    v = _build_view(digest)
    out: list[str] = []
    for block in _document(v):
        kind = block[0]
        if kind == "h1":
            out += _wrap(block[1], width)
        elif kind == "h2":
            while out and out[-1] == "":
                out.pop()
            out += ["", *_wrap(block[1], width), "=" * min(_cells(block[1]), width), ""]
        elif kind == "p":
            out += _wrap(_spans_text(block[1]), width)
        elif kind == "entry":
            _, head, lines = block
            out += _wrap(_spans_text(head), width, "", "    ")
            for level, spans, only in lines:
                if only == "rich":
                    continue
                text = _spans_text(spans)
                if level == 0:
                    out += _wrap(text, width, "    ", "      ")
                else:
                    pad = "    " + "  " * (level - 1)
                    out += _wrap(text, width, pad + "- ", pad + "  ")
            out.append("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown

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


# --------------------------------------------------------------------------- html

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


# --------------------------------------------------------------------------- json

_TOP_ORDER = ("topic", "generated_at", "since", "articles")
_ARTICLE_ORDER = (
    "id",
    "url",
    "canonical_url",
    "title",
    "outlet",
    "published",
    "flags",
    "duplicate_of",
    "claims",
    "conflicts",
    "candidates",
    "review",
)
_NESTED_ORDER = {
    "duplicate_of": ("id", "url", "similarity"),
    "claims": ("claim_id", "score", "sentence", "tier", "stance", "claim_text"),
    "conflicts": ("claim_id", "sentence", "claim_numbers", "article_numbers"),
    "candidates": ("sentence", "score"),
    "review": ("status", "note"),
}
_SOURCE_ORDER = ("name", "status", "last_success", "alarm")


def _ordered(obj: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """Contract keys in contract order, then any extra keys sorted by name."""
    out = {k: obj[k] for k in order if k in obj}
    for k in sorted((k for k in obj if k not in out), key=str):
        out[k] = obj[k]
    return out


def _ordered_nested(value: Any, order: Sequence[str]) -> Any:
    if isinstance(value, Mapping):
        return _ordered(value, order)
    if isinstance(value, list):
        return [_ordered(x, order) if isinstance(x, Mapping) else x for x in value]
    return value


def render_json(digest: Mapping[str, Any]) -> str:
    """The digest exactly as the contract: same keys and values, contract key order
    (unknown keys kept, sorted after the known ones), UTF-8 text, 2-space indent."""
    top = _ordered(digest, _TOP_ORDER)
    if isinstance(top.get("articles"), list):
        articles = []
        for a in top["articles"]:
            if isinstance(a, Mapping):
                a = _ordered(a, _ARTICLE_ORDER)
                for key, order in _NESTED_ORDER.items():
                    if key in a:
                        a[key] = _ordered_nested(a[key], order)
            articles.append(a)
        top["articles"] = articles
    if isinstance(top.get("sources"), list):
        top["sources"] = _ordered_nested(top["sources"], _SOURCE_ORDER)
    return json.dumps(top, ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------- atom


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
            cn = ", ".join(_clean(n) for n in _as_list(c.get("claim_numbers")))
            an = ", ".join(_clean(n) for n in _as_list(c.get("article_numbers")))
            rows.append(
                f"Conflicting figures with {_clean(c.get('claim_id'))}: claim {cn or '-'} vs "
                f"article {an or '-'}: {_q(_clean(c.get('sentence')))}"
            )
    for c in _as_list(a.get("candidates")):
        if isinstance(c, dict):
            rows.append(f"New claim candidate: {_q(_clean(c.get('sentence')))}")
    dup = a.get("duplicate_of")
    if isinstance(dup, dict):
        rows.append(_spans_text(_copy_of_spans(v, dup)))
    copies = v.copies_of.get(_key(a.get("id")), [])
    if copies:
        outlets: list[str] = []
        for x in [a, *copies]:
            if _outlet(x) not in outlets:
                outlets.append(_outlet(x))
        rows.append(f"Carried by {_plural(len(outlets), 'outlet')}: {', '.join(outlets)}")
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


# --------------------------------------------------------------------------- dispatch

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
