"""Export stored articles and their claim links as CSV or JSON Lines, streamed.

- CSV: one row per claim link (article columns repeated; the link's stance: repeats,
  disputes or discusses), and one row with empty
  claim columns for an article that links no claim; a spreadsheet can filter it
  either way. Every cell that a spreadsheet would run as a formula (starting with
  ``= + - @``, a tab or a carriage return) is neutralised with a leading ``'``: the
  texts are scraped from the web. Rejected links are exported with their review.
- JSON Lines: one digest entry (DESIGN.md's contract) per article and line.

Articles are read in pages of :data:`PAGE` by id (keyset), so memory stays bounded
whatever the size of the store; reviewed and dismissed articles are included
(an export is a record), unless ``status`` says otherwise.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from claimwatch.digest.builder import article_entry
from config.loader import csv_safe
from storage.models import Article
from storage.search import SearchFilters, apply_filters

PAGE = 200
FORMATS = ("csv", "jsonl")
ARTICLE_COLUMNS = (
    "article_id", "topic", "url", "canonical_url", "title", "outlet", "language", "published",
    "fetched_at", "source", "flags", "duplicate_of_id", "duplicate_kind", "similarity",
    "review_status", "review_note",
)
LINK_COLUMNS = (
    "claim_id", "tier", "score", "stance", "sentence", "conflict", "claim_numbers",
    "article_numbers", "link_review",
)
CSV_COLUMNS = ARTICLE_COLUMNS + LINK_COLUMNS


@dataclass(frozen=True)
class ExportQuery:
    topic: str | None = None
    since: datetime | None = None
    status: str | None = None  # open|reviewed|dismissed; None: all
    ids: tuple[int, ...] | None = None  # exactly these articles (a page's filtered list)
    flag: str | None = None  # new_report|duplicate|conflict|new_claim_candidate
    claim: str | None = None  # articles linked to this claim (rejected links left out)


def spreadsheet_safe(value: Any) -> Any:
    """``value`` as a spreadsheet shows it without running it (OWASP CSV injection; the
    one rule of config.loader.csv_safe, which the claims table uses too)."""
    return csv_safe(value) if isinstance(value, str) else value


def iter_articles(session: Session, query: ExportQuery) -> Iterator[Article]:
    """The matching articles, oldest first, loaded a page at a time with their links."""
    last_id = 0
    while True:
        statement = (
            select(Article)
            .where(Article.id > last_id)
            .options(selectinload(Article.claims), selectinload(Article.candidates),
                     selectinload(Article.duplicate_of))
            .order_by(Article.id)
            .limit(PAGE)
        )
        if query.topic:
            statement = statement.where(Article.topic == query.topic)
        if query.since:
            statement = statement.where(Article.fetched_at >= query.since)
        if query.status:
            statement = statement.where(Article.review_status == query.status)
        if query.ids is not None:
            statement = statement.where(Article.id.in_(query.ids))
        if query.flag or query.claim:
            statement = apply_filters(statement, SearchFilters(flag=query.flag,
                                                               claim=query.claim))
        page = list(session.scalars(statement))
        if not page:
            return
        yield from page
        last_id = page[-1].id
        session.expunge_all()  # what was yielded is done with: keep memory flat


def article_row(article: Article, entry: dict[str, Any]) -> dict[str, Any]:
    duplicate = entry["duplicate_of"] or {}
    return {
        "article_id": article.id, "topic": article.topic, "url": article.url,
        "canonical_url": article.canonical_url, "title": article.title,
        "outlet": article.outlet, "language": article.language,
        "published": entry["published"], "fetched_at": entry["fetched_at"],
        "source": article.source, "flags": "|".join(entry["flags"]),
        "duplicate_of_id": duplicate.get("id"), "duplicate_kind": duplicate.get("kind"),
        "similarity": duplicate.get("similarity"), "review_status": article.review_status,
        "review_note": article.review_note,
    }


def csv_rows(article: Article) -> Iterator[dict[str, Any]]:
    entry = article_entry(article)
    base = article_row(article, entry)
    links = sorted(article.claims, key=lambda c: (c.sentence_index, -c.score))
    if not links:
        yield base
        return
    for link in links:
        yield {
            **base, "claim_id": link.claim_id, "tier": link.tier,
            "score": round(link.score, 1), "stance": link.stance or "repeats",
            "sentence": link.sentence,
            "conflict": int(bool(link.conflict)),
            "claim_numbers": "|".join(link.claim_numbers or ()),
            "article_numbers": "|".join(link.article_numbers or ()),
            "link_review": link.review,
        }


def export_csv(session: Session, query: ExportQuery) -> Iterator[str]:
    """The CSV export as chunks of text (header first), ready to stream."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore",
                            lineterminator="\r\n")
    writer.writeheader()
    for article in iter_articles(session, query):
        for row in csv_rows(article):
            writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_jsonl(session: Session, query: ExportQuery) -> Iterator[str]:
    """One digest entry per line (with its topic), oldest article first."""
    for article in iter_articles(session, query):
        entry = {"topic": article.topic, **article_entry(article)}
        yield json.dumps(entry, ensure_ascii=False) + "\n"


def export(session: Session, query: ExportQuery, fmt: str) -> Iterator[str]:
    if fmt == "csv":
        return export_csv(session, query)
    if fmt == "jsonl":
        return export_jsonl(session, query)
    raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
