"""Pictures of how a story spread, drawn on the server as SVG, each with its table.

- :func:`claim_timeline`: every outlet that carried one claim, on a time axis, one
  lane per outlet: the first report, copies, rewrites, conflicting figures and
  disputes marked with distinct shapes (not colour alone), each mark a link to the
  article's review page.
- :func:`daily_counts`: a topic's articles per day, stacked by flag (new reports,
  duplicates), with conflicts and new-claim candidates drawn as lines over them.

Both are plain SVG drawn on the server rather than by a JavaScript charting library:
they render without JavaScript, in email and in a screenshot. This module computes the
geometry (numbers and plain strings); templates/charts.html draws it, so every text in
them (outlet names and titles are scraped) is escaped by Jinja's autoescape like the
rest of the page. Each picture comes with
a ``<table>`` of the same data, which a screen reader reads and a reader can copy.
The queries are bounded: a claim's links (indexed by claim id) and a topic's
articles fetched in a window (indexed by topic and fetch time), grouped in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


# -- geometry (the SVG itself is drawn by templates/charts.html) --------------------------------

TIMELINE_W, TIMELINE_LEFT, TIMELINE_RIGHT, TIMELINE_TOP, LANE_H = 860, 170, 48, 16, 30
DAILY_W, DAILY_H, DAILY_LEFT, DAILY_RIGHT, DAILY_TOP, DAILY_BOTTOM = 860, 260, 44, 16, 14, 40
DAY_SERIES = (("new_reports", "new reports", "#1d4ed8"), ("duplicates", "duplicates", "#a1a1aa"))
DAY_LINES = (("conflicts", "conflicts", "#b91c1c"), ("candidates", "new-claim candidates",
                                                     "#b45309"))


def _ticks(start: datetime, end: datetime, count: int = 5) -> list[datetime]:
    if end <= start:
        return [start]
    step = (end - start) / (count - 1)
    return [start + step * i for i in range(count)]


def _label(value: datetime, span: timedelta) -> str:
    return value.strftime("%d %b %H:%M" if span < timedelta(days=2) else "%d %b %Y")


def timeline_geometry(points: Sequence[TimelinePoint], claim_id: str) -> dict[str, Any]:
    """Where each mark of a claim's timeline goes: one lane per outlet (in order of first
    appearance), time left to right. Numbers and plain strings only; the template
    escapes every string."""
    lanes: list[str] = []
    for p in points:
        if p.outlet not in lanes:
            lanes.append(p.outlet)
    left, right, top, lane_h, width = (TIMELINE_LEFT, TIMELINE_RIGHT, TIMELINE_TOP, LANE_H,
                                       TIMELINE_W)
    height = top + lane_h * len(lanes) + 44
    start, end = (points[0].when, points[-1].when) if points else (datetime.now(UTC),) * 2
    span = end - start
    usable = width - left - right

    def x_of(when: datetime) -> float:
        if span.total_seconds() <= 0:
            return left + usable / 2
        return left + usable * (when - start).total_seconds() / span.total_seconds()

    axis_y = top + lane_h * len(lanes) + 6
    ticks = _ticks(start, end) if span.total_seconds() > 0 else [start]
    return {
        "width": width, "height": height, "left": left, "right": width - right,
        "axis_y": axis_y,
        "caption": f"Timeline of {claim_id}: {len(points)} articles in {len(lanes)} outlets",
        "lanes": [{"y": top + lane_h * i + lane_h / 2,
                   "label": o if len(o) <= 24 else o[:23] + "…"} for i, o in enumerate(lanes)],
        "ticks": [{"x": x_of(t), "label": _label(t, span),
                   "anchor": "end" if i == len(ticks) - 1 and len(ticks) > 1 else "middle"}
                  for i, t in enumerate(ticks)],
        "marks": [{"x": x_of(p.when), "y": top + lane_h * lanes.index(p.outlet) + lane_h / 2,
                   "kind": p.kind, "colour": KIND_COLOURS[p.kind], "article_id": p.article_id,
                   "label": f"{p.when:%Y-%m-%d %H:%M} · {p.outlet} · {KIND_LABELS[p.kind]} · "
                            f"{p.title}"} for p in points],
        "legend": [{"kind": k, "label": KIND_LABELS[k], "colour": KIND_COLOURS[k]}
                   for k in KINDS if any(p.kind == k for p in points)],
    }


def daily_geometry(counts: Sequence[DayCount], topic: str) -> dict[str, Any]:
    """Stacked bars per day (new reports, duplicates), conflicts and candidates as lines."""
    first, last = counts[0].day, counts[-1].day
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    by_day = {c.day: c for c in counts}
    peak = max(max(c.total, c.conflicts, c.candidates) for c in counts) or 1
    left, right, top, bottom = DAILY_LEFT, DAILY_RIGHT, DAILY_TOP, DAILY_BOTTOM
    width, height = DAILY_W, DAILY_H
    usable_w, usable_h = width - left - right, height - top - bottom
    slot = usable_w / len(days)
    bar = max(2.0, slot * 0.72)

    def y_of(value: float) -> float:
        return top + usable_h * (1 - value / peak)

    bars = []
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        count, base = by_day.get(day), 0
        for attr, label, colour in DAY_SERIES if count is not None else ():
            value = getattr(count, attr)
            if value:
                y_top, y_bottom = y_of(base + value), y_of(base)
                bars.append({"x": x, "y": y_top, "width": bar,
                             "height": max(0.5, y_bottom - y_top), "colour": colour,
                             "label": f"{day}: {value} {label}"})
                base += value
    label_every = max(1, len(days) // 8)
    return {
        "width": width, "height": height, "left": left, "right": width - right,
        "caption": f"Articles per day on {topic}, {first} to {last}",
        "grid": [{"y": y_of(t), "label": str(t)} for t in sorted({0, peak // 2, peak})],
        "bars": bars,
        "days": [{"x": left + slot * i + slot / 2, "y": height - bottom + 16,
                  "label": d.strftime("%d %b")}
                 for i, d in enumerate(days) if i % label_every == 0],
        "lines": [{"label": label, "colour": colour, "points": " ".join(
            f"{left + slot * i + slot / 2:.1f},"
            f"{y_of(getattr(by_day[d], attr) if d in by_day else 0):.1f}"
            for i, d in enumerate(days))} for attr, label, colour in DAY_LINES],
        "legend": [{"label": label, "colour": colour}
                   for _, label, colour in DAY_SERIES + DAY_LINES],
    }


def as_dicts(points: Sequence[TimelinePoint]) -> list[dict[str, Any]]:
    return [{"article_id": p.article_id, "when": p.when.isoformat(), "outlet": p.outlet,
             "title": p.title, "kind": p.kind, "sentence": p.sentence,
             "score": round(p.score, 1)} for p in points]
