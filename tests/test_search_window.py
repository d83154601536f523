"""PostgreSQL search reads its window range by range: the same pages as one query did.

The window of a search is the newest ``RANK_WINDOW`` articles that match. It was one
statement (``... WHERE search_document @@ q ORDER BY id DESC LIMIT window``), whose plan
the planner chose from its estimate of how many articles match; it is now the newest ranges
of ids searched in turn (storage.search._postgres_window). Here both run on a store of
a few thousand articles whose words range from one article in a thousand to most of them,
with the window and the first range made small so that a search crosses many ranges, and
every page (hits, order, snippets) must be the same; and the ranges' plans are checked.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, literal_column, select, text

import storage.search as search
from storage.db import open_db, refresh_statistics, session_factory
from storage.fts import PG_COLUMN
from storage.models import Article
from storage.search import SearchFilters, apply_filters, search_articles

N = 6000
SYLLABLES = "ka lo mi re tu san vel dor pim ques nar bo fi lu zen".split()
VOCABULARY = sorted({a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:6]})
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def grow(engine: Engine) -> list[str]:
    """N articles of two topics; each word's frequency follows Zipf's law (the first words
    are in most articles, the last in a few); returns the vocabulary by frequency."""
    rng = random.Random(5)
    words = VOCABULARY[:]
    rng.shuffle(words)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    rows = []
    for i in range(1, N + 1):
        body = " ".join(rng.choices(words, weights, k=60))
        rows.append({
            "id": i, "topic": "a" if i % 7 else "b", "source": "s",
            "url": f"https://w.example/{i}", "canonical_url": f"https://w.example/{i}",
            "title": " ".join(rng.choices(words, weights, k=4)), "outlet": f"o{i % 9}",
            "published": T0 + timedelta(hours=i), "fetched_at": T0 + timedelta(hours=i),
            "text": body, "content_hash": f"{i:064x}",
            "duplicate_of_id": i - 1 if i % 11 == 0 else None,
            "review_status": "open" if i % 3 else "reviewed",
        })
    with engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(Article.__table__.insert(), rows[start:start + 2000])
    return words


def one_statement_page(session: Any, query: str, filters: SearchFilters, limit: int,
                       offset: int) -> list[Any]:
    """The window as one statement: the query every PostgreSQL search ran before."""
    document = literal_column(f"articles.{PG_COLUMN}")
    tsquery = func.websearch_to_tsquery(literal_column("'english'::regconfig"), query)
    newest = apply_filters(
        select(Article.id.label("id")).where(document.op("@@")(tsquery)), filters
    ).order_by(Article.id.desc()).limit(max(search.RANK_WINDOW, offset + limit)) \
        .subquery("newest")
    rank = func.ts_rank_cd(document, tsquery).label("rank")
    page = (select(Article.id.label("id"), rank)
            .select_from(newest).join(Article.__table__, Article.id == newest.c.id)
            .order_by(literal_column("rank").desc(), Article.id.desc())
            .limit(limit).offset(offset).subquery("page"))
    headline = func.ts_headline(
        literal_column("'english'::regconfig"),
        func.coalesce(Article.title, "") + " — " + Article.text, tsquery,
        "StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=12, MaxFragments=2, "
        "FragmentDelimiter=\" … \"",
    ).label("snippet")
    return list(session.execute(
        select(Article.id, page.c.rank, headline).select_from(page)
        .join(Article.__table__, Article.id == page.c.id)
        .order_by(page.c.rank.desc(), Article.id.desc())))


@pytest.fixture(scope="module")
def pg_store() -> Iterator[tuple[Engine, list[str]]]:
    from tests.services import postgres_schema

    with postgres_schema(prefix="cw_window") as url:
        engine, _ = open_db(url)
        try:
            words = grow(engine)
            refresh_statistics(engine, force=True)
            # as autovacuum does after many inserts: the GIN index's pending list (fast
            # update) moved into the index, which the planner then prices as it is
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM articles")
            yield engine, words
        finally:
            engine.dispose()


def queries(words: list[str]) -> list[str]:
    common, middle, rare = words[:3], words[40:43], words[-3:]
    return [*common, *middle, *rare, f"{common[0]} {middle[0]}", f"{middle[1]} {rare[0]}",
            f"{rare[1]} OR {rare[2]}", f"{common[1]} -{common[2]}",
            f'"{common[0]} {common[1]}"', f"{middle[2]} OR {common[2]}", "absentword"]


@pytest.mark.parametrize(("window", "first_span"), [(1000, 4096), (40, 16), (7, 1)])
def test_the_ranges_give_the_pages_one_statement_gave(pg_store: Any, monkeypatch: Any,
                                                      window: int, first_span: int) -> None:
    engine, words = pg_store
    monkeypatch.setattr(search, "RANK_WINDOW", window)
    monkeypatch.setattr(search, "FIRST_SPAN", first_span)
    filter_sets = [SearchFilters(), SearchFilters(topic="b"), SearchFilters(review="reviewed"),
                   SearchFilters(flag="duplicate", topic="a"),
                   SearchFilters(until=T0 + timedelta(hours=N // 2)),
                   SearchFilters(since=T0 + timedelta(hours=N - 300))]
    compared = matched = 0
    with session_factory(engine)() as session:
        for query in queries(words):
            for filters in filter_sets:
                for limit, offset in ((20, 0), (20, 40), (5, window - 2)):
                    expected = one_statement_page(session, query, filters, limit + 1, offset)
                    page = search_articles(session, query, filters, limit=limit, offset=offset)
                    assert [h.id for h in page.hits] == [r[0] for r in expected[:limit]], \
                        (query, filters, limit, offset)
                    assert [h.snippet for h in page.hits] == \
                        [" ".join(r[2].split()) for r in expected[:limit]]
                    assert (page.next_offset is not None) == (len(expected) > limit)
                    compared += 1
                    matched += bool(expected)
    assert compared == len(queries(words)) * len(filter_sets) * 3
    assert matched > compared // 2  # most searches find something to compare


def test_the_window_is_read_through_the_text_index_in_ranges(pg_store: Any) -> None:
    """Every range is planned without a walk of the primary key testing each article's
    vector and without a sequential scan; a rare or a middling word's ranges read the GIN
    index. The plans are taken in the search's own transaction, with its settings."""
    engine, words = pg_store
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if "@@" in statement and "LIMIT" in statement and "ts_rank_cd" not in statement:
            with conn.connection.driver_connection.cursor() as raw:
                raw.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in raw.fetchall()))

    event.listen(engine, "before_cursor_execute", explain)
    try:
        with session_factory(engine)() as session:
            for query in (words[-1], words[40], words[0]):
                plans.clear()
                search_articles(session, query, SearchFilters(topic="a"))
                assert plans, query
                for plan in plans:
                    assert not re.search(r"(?<!Bitmap )Index (Only )?Scan", plan), plan
                    assert "Seq Scan" not in plan, plan
                    if query != words[0]:
                        assert "Bitmap Index Scan on ix_articles_fts" in plan, plan
                if query == words[-1]:  # a rare word: the ranges reach the oldest article
                    assert len(plans) >= 2
            # the settings were the window's only: the page's own statement walks the key
            plan = "\n".join(r[0] for r in session.execute(
                text("EXPLAIN SELECT id FROM articles WHERE id = 5")))
            assert "Index" in plan and "Bitmap" not in plan, plan
    finally:
        event.remove(engine, "before_cursor_execute", explain)
