"""What every digest renderer shares: the scraped-text cleaner, the view of a digest and
the document built from it, so all formats show the same sections in the same order.

Every renderer is a pure function of the digest dict described in DESIGN.md
("Digest JSON"); nothing here touches the database, the network or the clock
(the Atom renderer falls back to the current time only when ``generated_at``
cannot be parsed).

The human formats (text, md, html) share one document model built by
:func:`_document`, so they always show the same sections in the same order:

* a header with the summary line (``12 articles: 3 new reports, ...``) and
  the source alarms in words,
* "Conflicting figures", "Disputes", "Revised articles",
* "Stories": original articles, each with its copies folded under it
  ("carried by 4 outlets: A, B, C, D") and the claims it repeats or disputes,
* "Claims: who repeats, who disputes": per claim, the outlets on each side,
* "Copies of earlier articles": duplicates whose original is not in this digest,
* "Other articles": originals without the ``new_report`` flag, if any,
* "Source health", when the builder adds ``sources``.

All scraped text (titles, outlets, sentences, URLs) is treated as hostile:
control and bidi-override characters are removed everywhere, Markdown
metacharacters are backslash-escaped, HTML and XML are escaped, and only
``http(s)`` URLs ever become links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from claimwatch.cleaner import clean_line, is_http

FLAG_LABELS = {
    "new_report": "new report",
    "duplicate": "duplicate",
    "conflict": "conflicting figures",
    "new_claim_candidate": "new claim candidate",
    "disputes": "disputes a claim",
}

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


def _outlets_spans(verb: str, articles: Iterable[Mapping[str, Any]]) -> list[Span]:
    """``Carried by 3 outlets: A, B, C``: each outlet once, in the stories' order."""
    outlets = list(dict.fromkeys(_outlet(a) for a in articles))
    return [("k", f"{verb} by {_plural(len(outlets), 'outlet')}: "), ("t", ", ".join(outlets))]


def _copies_lines(v: _View, original: dict[str, Any]) -> list[Line]:
    copies = v.copies_of.get(_key(original.get("id")), [])
    if not copies:
        return []
    lines: list[Line] = [(0, _outlets_spans("Carried", [original, *copies]), None)]
    lines += [(1, _copy_item(original, c), None) for c in copies]
    return lines


def _orphan_entry(v: _View, group: _Orphans) -> tuple:
    dup_url = _clean(group.dup_of.get("url"))
    head: list[Span] = [("k", f"Earlier article #{_clean(group.dup_of.get('id'))}")]
    if dup_url:
        head += [("k", " "), ("u", dup_url)]
    lines: list[Line] = [(0, _outlets_spans("Copied", group.copies), None)]
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


def _figures(conflict: Mapping[str, Any], key: str) -> str:
    """The figures of one side of a conflict (``claim_numbers`` or ``article_numbers``)."""
    return ", ".join(_clean(n) for n in _as_list(conflict.get(key))) or "-"


def _conflict_block(v: _View, a: dict[str, Any], c: Mapping[str, Any],
                    also: list[dict]) -> tuple:
    cid = _clean(c.get("claim_id"))
    lines: list[Line] = [(0, _meta_spans(a), None), *_links(v, a)]
    known: list[Span] = [("k", "Known claim: "), ("q", v.claim_text.get(cid) or cid)]
    lines.append((0, known, None))
    lines.append((0, [("k", "Article says: "), ("q", _clean(c.get("sentence")))], None))
    figures = (f"Figures: the claim says {_figures(c, 'claim_numbers')}, "
               f"the article {_figures(c, 'article_numbers')}")
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


def _section(title: str, blocks: list[tuple], count: int | None = None) -> list[tuple]:
    """``title (count)`` over its blocks (count: the blocks'), or nothing without blocks."""
    if not blocks:
        return []
    return [("h2", f"{title} ({len(blocks) if count is None else count})"), *blocks]


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
        doc += _section("Conflicting figures",
                        [_conflict_block(v, a, c, also) for a, c, also in _conflict_groups(v)])
        doc += _section("Disputes", [_dispute_block(v, a, m) for a, m in _disputes(v)])
        doc += _section("Revised articles", [_revision_block(v, a) for a in _revised(v)])
        doc += _section("Stories", [_story_entry(v, a) for a in v.new_reports])
        doc += _section("Claims: who repeats, who disputes",
                        [_claim_sides_entry(v, g) for g in v.claims])
        doc += _section("Copies of earlier articles", [_orphan_entry(v, g) for g in v.orphans],
                        count=sum(len(g.copies) for g in v.orphans))
        doc += _section("Other articles", [_story_entry(v, a) for a in v.others])
    if v.sources:
        doc.append(("h2", "Source health"))
        doc += [_source_entry(s) for s in v.sources]
    return doc


# --------------------------------------------------------------------------- spans as text


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


# --------------------------------------------------------------------------- writers


def _trim_blank(out: list[str]) -> None:
    while out and out[-1] == "":
        out.pop()


class _Writer:
    """One human format: how it writes each kind of block. :meth:`lines` walks the document
    the same way for every format (a section starts after trimming blank lines, none end
    the output), so the formats cannot drift apart in order or spacing."""

    def h1(self, text: str) -> list[str]:
        raise NotImplementedError

    def h2(self, text: str) -> list[str]:
        raise NotImplementedError

    def p(self, spans: list[Span], style: str) -> list[str]:
        raise NotImplementedError

    def entry(self, head: list[Span], lines: list[Line], section: str) -> list[str]:
        raise NotImplementedError

    def lines(self, v: _View) -> list[str]:
        out: list[str] = []
        section = ""
        for block in _document(v):
            kind = block[0]
            if kind == "h1":
                out += self.h1(block[1])
            elif kind == "h2":
                _trim_blank(out)
                section = block[1].split(" (")[0]
                out += self.h2(block[1])
            elif kind == "p":
                out += self.p(block[1], block[2])
            elif kind == "entry":
                out += self.entry(block[1], block[2], section)
        _trim_blank(out)
        return out


class _RichWriter(_Writer):
    """A format with markup (Markdown, HTML). The span rules are :meth:`span`'s, once for
    both: only http(s) URLs ever become links, a sentence keeps its own quotation marks,
    empty emphasis disappears; the subclass only says how to write each piece."""

    marks = ("“", "”")

    def escape(self, text: str) -> str:
        """Scraped text, made inert."""
        raise NotImplementedError

    def fixed(self, text: str) -> str:
        """Our own text (never scraped)."""
        return self.escape(text)

    def bold(self, escaped: str) -> str:
        raise NotImplementedError

    def muted(self, escaped: str) -> str:
        raise NotImplementedError

    def quote(self, escaped: str) -> str:
        return escaped

    def link(self, label: str, url: str) -> str:
        """A link to an http(s) ``url`` (both raw)."""
        raise NotImplementedError

    def code(self, url: str) -> str:
        """A URL that is not http(s), shown and never linked (raw)."""
        raise NotImplementedError

    def not_shown(self, url: str) -> str:
        """A URL that is not http(s) where the label would have been its link (raw)."""
        raise NotImplementedError

    def span(self, span: Span) -> str:
        kind, text = span[0], span[1]
        if kind == "k":
            return self.fixed(text)
        if kind == "t":
            return self.escape(text)
        if kind == "b":
            return self.bold(self.escape(text)) if text else ""
        if kind == "m":
            return self.muted(self.escape(text)) if text else ""
        if kind == "q":
            inner = self.escape(text)
            return self.quote(inner if _quoted(text) else self.marks[0] + inner + self.marks[1])
        if kind == "a":
            return self.link(text, span[2]) if _is_http(span[2]) else self.escape(text)
        if kind == "u":
            if _is_http(text):
                return self.link(text, text)
            return self.code(text) if text else ""
        if kind == "ux":
            return "" if _is_http(text) else self.not_shown(text)
        raise ValueError(f"unknown span kind {kind!r}")

    def spans(self, spans: Sequence[Span]) -> str:
        return "".join(self.span(s) for s in spans).strip()

    def shown(self, lines: list[Line]) -> Iterator[tuple[int, str]]:
        """``(level, written text)`` of each detail line a rich format shows (not the
        text-only ones, nor those that come out empty)."""
        for level, spans, only in lines:
            text = self.spans(spans) if only != "text" else ""
            if text:
                yield level, text
