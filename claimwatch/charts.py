"""Pictures of how a story spread, drawn on the server as SVG, each with its table.

- :func:`claim_timeline`: every outlet that carried one claim, on a time axis, one
  lane per outlet: the first report, copies, rewrites, conflicting figures and
  disputes marked with distinct shapes (not colour alone), each mark a link to the
  article's review page.
- :func:`daily_counts`: a topic's articles per day, stacked by flag (new reports,
  duplicates), with conflicts and new-claim candidates drawn as lines over them.

Both are plain SVG built here rather than a JavaScript charting library: they render
without JavaScript, in email and in a screenshot, and every text in them is escaped
by :func:`xml_escape` (outlet names and titles are scraped). Each picture comes with
a ``<table>`` of the same data, which a screen reader reads and a reader can copy.
The queries are bounded: a claim's links (indexed by claim id) and a topic's
articles fetched in a window (indexed by topic and fetch time), grouped in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape as xml_escape
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from storage.models import Article, ArticleClaim, ClaimCandidate
from storage.search import has_row

MAX_TIMELINE = 400  # articles on one claim's timeline (the newest are kept)
KINDS = ("first_report", "report", "copy", "rewrite", "conflict", "dispute")
KIND_LABELS = {"first_report": "first report", "report": "report", "copy": "copy",
               "rewrite": "rewrite", "conflict": "conflicting figures", "dispute": "disputes"}
KIND_PLURALS = {"first_report": "first reports", "report": "reports", "copy": "copies",
                "rewrite": "rewrites", "conflict": "conflicting figures", "dispute": "disputes"}


def counted(kind: str, n: int) -> str:
    return f"{n} {KIND_LABELS[kind] if n == 1 else KIND_PLURALS[kind]}"
KIND_COLOURS = {"first_report": "#1d4ed8", "report": "#1d4ed8", "copy": "#71717a",
                "rewrite": "#7c3aed", "conflict": "#b91c1c", "dispute": "#b45309"}


@dataclass(frozen=True)
class TimelinePoint:
    article_id: int
    when: datetime
    outlet: str
    title: str
    kind: str  # one of KINDS
    sentence: str
    score: float


@dataclass(frozen=True)
class DayCount:
    day: date
    new_reports: int
    duplicates: int
    conflicts: int
    candidates: int

    @property
    def total(self) -> int:
        return self.new_reports + self.duplicates


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def claim_timeline(session: Session, topic: str, claim_id: str) -> list[TimelinePoint]:
    """The articles that carry ``claim_id`` (rejected links left out), oldest first."""
    columns = [Article.id, Article.published, Article.fetched_at, Article.outlet, Article.url,
               Article.title, Article.duplicate_of_id, Article.duplicate_kind,
               ArticleClaim.sentence, ArticleClaim.score, ArticleClaim.conflict,
               ArticleClaim.stance]
    rows = session.execute(
        select(*columns)
        .join(ArticleClaim, ArticleClaim.article_id == Article.id)
        .where(ArticleClaim.claim_id == claim_id, Article.topic == topic,
               ArticleClaim.review != "rejected")
        .order_by(ArticleClaim.id.desc())
        .limit(MAX_TIMELINE)
    ).all()
    points = []
    for row in rows:
        if row.conflict:
            kind = "conflict"
        elif row.stance == "disputes":
            kind = "dispute"
        elif row.duplicate_of_id is not None:
            kind = "rewrite" if row.duplicate_kind == "rewrite" else "copy"
        else:
            kind = "report"
        points.append(TimelinePoint(
            article_id=row.id, when=_as_utc(row.published or row.fetched_at),
            outlet=row.outlet or "unknown outlet", title=row.title or row.url, kind=kind,
            sentence=row.sentence, score=float(row.score)))
    points.sort(key=lambda p: (p.when, p.article_id))
    for i, point in enumerate(points):
        if point.kind == "report":  # the earliest original report is the first report
            points[i] = TimelinePoint(**{**point.__dict__, "kind": "first_report"})
            break
    return points


def daily_counts(session: Session, topic: str, *, days: int = 30,
                 now: datetime | None = None) -> list[DayCount]:
    """Articles per day (by publication, else fetch date) of those fetched in ``days``."""
    now = now or datetime.now(UTC)
    when = func.coalesce(Article.published, Article.fetched_at)
    day = func.date(when).label("day")
    conflict = has_row(ArticleClaim.article_id == Article.id, ArticleClaim.conflict.is_(True),
                       ArticleClaim.review != "rejected")
    candidate = has_row(ClaimCandidate.article_id == Article.id, ClaimCandidate.status == "open")
    rows = session.execute(
        select(
            day,
            func.sum(case((Article.duplicate_of_id.is_(None), 1), else_=0)),
            func.sum(case((Article.duplicate_of_id.is_not(None), 1), else_=0)),
            func.sum(case((conflict, 1), else_=0)),
            # A copy's candidates are its original's (the digest folds them): originals only.
            func.sum(case((and_(Article.duplicate_of_id.is_(None), candidate), 1), else_=0)),
        )
        .where(Article.topic == topic, Article.fetched_at >= now - timedelta(days=days))
        .group_by(day)
        .order_by(day)
    ).all()
    result = []
    for row in rows:
        value = row[0]
        parsed = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        result.append(DayCount(parsed, int(row[1] or 0), int(row[2] or 0), int(row[3] or 0),
                               int(row[4] or 0)))
    return result


# -- drawing ---------------------------------------------------------------------------------

def _marker(kind: str, x: float, y: float) -> str:
    colour = KIND_COLOURS[kind]
    if kind == "first_report":
        return (f'<polygon points="{x:.1f},{y - 8:.1f} {x + 8:.1f},{y:.1f} {x:.1f},{y + 8:.1f} '
                f'{x - 8:.1f},{y:.1f}" fill="{colour}"/>')
    if kind == "report":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{colour}"/>'
    if kind == "copy":
        return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#fff" stroke="{colour}" '
                'stroke-width="2"/>')
    if kind == "rewrite":
        return (f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="#fff" '
                f'stroke="{colour}" stroke-width="2"/>')
    if kind == "conflict":
        return (f'<polygon points="{x:.1f},{y - 7:.1f} {x + 7:.1f},{y + 6:.1f} '
                f'{x - 7:.1f},{y + 6:.1f}" fill="{colour}"/>')
    return (f'<path d="M{x - 6:.1f},{y - 6:.1f} L{x + 6:.1f},{y + 6:.1f} M{x + 6:.1f},'
            f'{y - 6:.1f} L{x - 6:.1f},{y + 6:.1f}" stroke="{colour}" stroke-width="3"/>')


def _ticks(start: datetime, end: datetime, count: int = 5) -> list[datetime]:
    if end <= start:
        return [start]
    step = (end - start) / (count - 1)
    return [start + step * i for i in range(count)]


def _label(value: datetime, span: timedelta) -> str:
    return value.strftime("%d %b %H:%M" if span < timedelta(days=2) else "%d %b %Y")


def timeline_svg(points: Sequence[TimelinePoint], link: Callable[[int], str],
                 claim_id: str) -> str:
    """One lane per outlet (in order of first appearance), time left to right."""
    if not points:
        return ""
    lanes: list[str] = []
    for p in points:
        if p.outlet not in lanes:
            lanes.append(p.outlet)
    left, right, top, lane_h = 170, 48, 16, 30
    width = 860
    height = top + lane_h * len(lanes) + 44
    start, end = points[0].when, points[-1].when
    span = end - start
    usable = width - left - right

    def x_of(when: datetime) -> float:
        if span.total_seconds() <= 0:
            return left + usable / 2
        return left + usable * (when - start).total_seconds() / span.total_seconds()

    caption = f"Timeline of {claim_id}: {len(points)} articles in {len(lanes)} outlets"
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="tl-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="tl-title">{xml_escape(caption)}</title>',
    ]
    axis_y = top + lane_h * len(lanes) + 6
    for i, outlet in enumerate(lanes):
        y = top + lane_h * i + lane_h / 2
        shown = outlet if len(outlet) <= 24 else outlet[:23] + "…"
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e4e4e7"/>')
        parts.append(f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="12" fill="#18181b">{xml_escape(shown)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{axis_y}" y2="{axis_y}" '
                 'stroke="#52525b"/>')
    ticks = _ticks(start, end)
    for i, tick in enumerate(ticks):
        x = x_of(tick)
        anchor = "end" if i == len(ticks) - 1 and len(ticks) > 1 else "middle"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 5}" '
                     'stroke="#52525b"/>')
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 19}" text-anchor="{anchor}" '
                     f'font-size="11" fill="#52525b">{xml_escape(_label(tick, span))}</text>')
        if span.total_seconds() <= 0:
            break
    for p in points:
        y = top + lane_h * lanes.index(p.outlet) + lane_h / 2
        label = (f"{p.when:%Y-%m-%d %H:%M} · {p.outlet} · {KIND_LABELS[p.kind]} · {p.title}")
        parts.append(f'<a href="{xml_escape(link(p.article_id))}" class="mark mark-{p.kind}">'
                     f'<title>{xml_escape(label)}</title>{_marker(p.kind, x_of(p.when), y)}</a>')
    parts.append("</svg>")
    return "".join(parts)


def legend_html(kinds: Sequence[str]) -> str:
    items = []
    for kind in KINDS:
        if kind in kinds:
            icon = (f'<svg width="18" height="18" viewBox="0 0 18 18" aria-hidden="true">'
                    f'{_marker(kind, 9, 9)}</svg>')
            items.append(f'<li>{icon} {xml_escape(KIND_LABELS[kind])}</li>')
    return '<ul class="legend">' + "".join(items) + "</ul>"


def timeline_table(points: Sequence[TimelinePoint], link: Callable[[int], str]) -> str:
    rows = "".join(
        f'<tr class="kind-{p.kind}"><td>{xml_escape(f"{p.when:%Y-%m-%d %H:%M}")}</td>'
        f"<td>{xml_escape(p.outlet)}</td><td>{xml_escape(KIND_LABELS[p.kind])}</td>"
        f'<td><a href="{xml_escape(link(p.article_id))}">{xml_escape(p.title)}</a></td>'
        f'<td>{xml_escape(p.sentence)}</td><td class="num">{p.score:.1f}</td></tr>'
        for p in points
    )
    return ('<table class="timeline-table"><caption>Every article that carries the claim, '
            "oldest first</caption><thead><tr><th>When</th><th>Outlet</th><th>As</th>"
            "<th>Article</th><th>Sentence</th><th>Score</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


DAY_SERIES = (("new_reports", "new reports", "#1d4ed8"), ("duplicates", "duplicates", "#a1a1aa"))
DAY_LINES = (("conflicts", "conflicts", "#b91c1c"), ("candidates", "new-claim candidates",
                                                     "#b45309"))


def daily_svg(counts: Sequence[DayCount], topic: str) -> str:
    """Stacked bars per day (new reports, duplicates), conflicts and candidates as lines."""
    if not counts:
        return ""
    first, last = counts[0].day, counts[-1].day
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    by_day = {c.day: c for c in counts}
    peak = max(max(c.total, c.conflicts, c.candidates) for c in counts) or 1
    left, right, top, bottom, width, height = 44, 16, 14, 40, 860, 260
    usable_w, usable_h = width - left - right, height - top - bottom
    slot = usable_w / len(days)
    bar = max(2.0, slot * 0.72)

    def y_of(value: float) -> float:
        return top + usable_h * (1 - value / peak)

    parts = [
        f'<svg class="chart daily" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="daily-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="daily-title">{xml_escape(f"Articles per day on {topic}, {first} to {last}")}'
        "</title>",
    ]
    for tick in sorted({0, peak // 2, peak}):
        y = y_of(tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e4e4e7"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#52525b">{tick}</text>')
    label_every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        count = by_day.get(day)
        base = 0
        if count is not None:
            for attr, label, colour in DAY_SERIES:
                value = getattr(count, attr)
                if value:
                    y_top, y_bottom = y_of(base + value), y_of(base)
                    parts.append(
                        f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar:.1f}" '
                        f'height="{max(0.5, y_bottom - y_top):.1f}" fill="{colour}">'
                        f"<title>{xml_escape(f'{day}: {value} {label}')}</title></rect>")
                    base += value
        if i % label_every == 0:
            parts.append(f'<text x="{left + slot * i + slot / 2:.1f}" y="{height - bottom + 16}" '
                         f'text-anchor="middle" font-size="11" fill="#52525b">'
                         f"{xml_escape(day.strftime('%d %b'))}</text>")
    for attr, label, colour in DAY_LINES:
        points = " ".join(
            f"{left + slot * i + slot / 2:.1f},"
            f"{y_of(getattr(by_day[d], attr) if d in by_day else 0):.1f}"
            for i, d in enumerate(days))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     f'stroke-width="2"><title>{xml_escape(label)}</title></polyline>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true"><rect '
        f'width="14" height="14" fill="{colour}"/></svg> {xml_escape(label)}</li>'
        for _, label, colour in DAY_SERIES + DAY_LINES)
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def daily_table(counts: Sequence[DayCount]) -> str:
    rows = "".join(
        f"<tr><td>{c.day.isoformat()}</td><td class=num>{c.new_reports}</td>"
        f"<td class=num>{c.duplicates}</td><td class=num>{c.conflicts}</td>"
        f"<td class=num>{c.candidates}</td></tr>" for c in counts)
    return ('<table class="daily-table"><caption>Articles per day</caption><thead><tr>'
            "<th>Day</th><th>New reports</th><th>Duplicates</th><th>With conflicts</th>"
            f"<th>With candidates</th></tr></thead><tbody>{rows}</tbody></table>")


def as_dicts(points: Sequence[TimelinePoint]) -> list[dict[str, Any]]:
    return [{"article_id": p.article_id, "when": p.when.isoformat(), "outlet": p.outlet,
             "title": p.title, "kind": p.kind, "sentence": p.sentence,
             "score": round(p.score, 1)} for p in points]
