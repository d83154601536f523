"""Every query the crawl, the review page, its JSON and the digest run uses an index.

A store of a few thousand articles of one topic is grown with bulk inserts; the
production code paths run against it (the crawl's Store lookups and save, the list
pages with their filters and pages, /articles.json, an article page, the digest) while
every SELECT they send is recorded; each is then EXPLAINed (EXPLAIN QUERY PLAN on
SQLite, EXPLAIN on PostgreSQL after ANALYZE) and the test fails when a plan reads a
whole table, walks a topic's articles to sort them, or (the duplicate lookup) starts
from the topic's articles instead of the band index. On SQLite the duplicate lookup
is checked without planner statistics too (nothing has run ANALYZE in a young store).

Not covered: a review that rejects a match recounts that one claim's matches.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from claimwatch.digest import build_digest
from claimwatch.web import make_app
from storage.db import make_engine, open_db, refresh_statistics, session_factory
from storage.models import (
    Article,
    ArticleBand,
    ArticleClaim,
    ClaimCandidate,
    CrawlRun,
)
from storage.repository import Store
from tests.test_web import Client

TOPIC = "big"
N_ARTICLES = 4000
BANDS = 12
PG_ARTICLES = 20_000
# Tables that grow with the articles and runs. (claim_coverage and claim_outlets hold a row
# per claim and per claim and outlet: the claims page reads them whole, by design.)
TABLES = ("articles", "article_bands", "article_claims", "claim_candidates", "crawl_runs",
          "skipped_urls")


def grow(engine: Engine, n: int = N_ARTICLES, bands_per: int = BANDS) -> dict[str, Any]:
    """Bulk-insert ``n`` articles of TOPIC (and a few of another topic) with their rows."""
    rng = random.Random(13)
    now = datetime.now(UTC)
    articles, bands, claims, candidates = [], [], [], []
    for i in range(1, n + 1):
        topic = TOPIC if i % 20 else "other"
        fetched = now - timedelta(minutes=(n - i) * 131)  # about a year, newest last
        dup = rng.randrange(1, i) if i > 10 and i % 10 == 0 else None
        articles.append({
            "id": i, "topic": topic, "source": f"s{i % 3}", "url": f"https://n.example/{i}",
            "canonical_url": f"https://n.example/{i}", "title": f"Article {i}",
            "outlet": f"outlet{i % 40}", "published": fetched - timedelta(hours=2),
            "fetched_at": fetched, "text": f"Text of article {i}. " * 20,
            "content_hash": f"{i:064x}", "duplicate_of_id": dup,
            "duplicate_kind": "copy" if dup else None, "duplicate_similarity": 0.9 if dup else None,
            "review_status": "open" if i % 5 else "reviewed",
        })
        bands += [{"article_id": i, "band_key": rng.getrandbits(62)} for _ in range(bands_per)]
        claims.append({"article_id": i, "claim_id": f"claim-{i % 20}", "sentence": "s",
                       "sentence_index": 1, "score": 90.0, "tier": "linked",
                       "conflict": i % 7 == 0, "claim_numbers": [], "article_numbers": [],
                       "review": "open"})
        candidates.append({"article_id": i, "sentence": f"Candidate {i}.", "sentence_index": 2,
                           "score": 0.5, "status": "open"})
    runs = [{"topic": TOPIC, "source": f"s{i % 3}", "trigger": "schedule",
             "started": now - timedelta(minutes=30 * i), "status": "ok", "counts": {}}
            for i in range(500)]
    with engine.begin() as conn:
        for model, rows in ((Article, articles), (ArticleBand, bands), (ArticleClaim, claims),
                            (ClaimCandidate, candidates), (CrawlRun, runs)):
            for start in range(0, len(rows), 5000):
                conn.execute(model.__table__.insert(), rows[start:start + 5000])
    # the newest article of TOPIC (n itself belongs to "other")
    return {"probe_keys": [b["band_key"] for b in bands[-2 * bands_per:-bands_per]],
            "last": n - 1}


class Recorder:
    """Every SELECT sent through ``engine`` with its parameters, by label; on PostgreSQL
    with its plan, EXPLAINed where it runs (in its transaction, with the planner settings
    the code set there: the search's ranges, storage.search._postgres_window)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.label = ""
        self.seen: list[tuple[str, str, Any]] = []
        self.plans: dict[int, list[str]] = {}
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            if conn.dialect.name == "postgresql":
                with conn.connection.driver_connection.cursor() as raw:
                    raw.execute("EXPLAIN " + statement, parameters)
                    self.plans[len(self.seen)] = [row[0] for row in raw.fetchall()]
            self.seen.append((self.label, statement, parameters))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def run_production_paths(engine: Engine, recorder: Recorder, grown: dict[str, Any]) -> None:
    sessions = session_factory(engine)
    store = Store(sessions)
    recorder.label = "Store.band_candidates"
    store.band_candidates(TOPIC, grown["probe_keys"], limit=20)
    recorder.label = "Store.find_root_by_hash"
    store.find_root_by_hash(TOPIC, "0" * 64)
    recorder.label = "Store.find_by_url"
    store.find_by_url(TOPIC, "https://n.example/5")
    recorder.label = "Store.find_by_urls"
    store.find_by_urls(TOPIC, ["https://n.example/5", "https://n.example/6"])
    recorder.label = "Store.known_among"  # the URLs a feed lists, stored or not
    store.known_among(TOPIC, ["https://n.example/5", "https://n.example/new"])
    recorder.label = "Store.texts"
    store.texts([1, 2, 3])
    client = Client(make_app(sessions, []))
    pages = ["/", f"/?topic={TOPIC}", f"/?topic={TOPIC}&status=all", "/?status=all",
             f"/?topic={TOPIC}&flag=conflict", f"/?topic={TOPIC}&flag=duplicate",
             f"/?topic={TOPIC}&flag=new_claim_candidate", f"/?topic={TOPIC}&flag=disputes",
             f"/?topic={TOPIC}&since=24h",
             f"/?topic={TOPIC}&claim=claim-3", f"/?topic={TOPIC}&before={grown['last'] - 200}",
             f"/articles.json?topic={TOPIC}", "/articles.json?status=reviewed",
             f"/article/{grown['last'] - 1}", f"/article/{grown['last'] - 10}.json",
             "/runs.json", f"/api/v1/runs?topic={TOPIC}", "/claims", f"/claims.json?topic={TOPIC}", "/digest?since=24h", f"/digest?since=24h&topic={TOPIC}&all=1",
             # the desk: full-text search, a claim's timeline, a topic's articles per day
             f"/search?q={grown['last']}&topic={TOPIC}", f"/search.json?q={grown['last'] - 3}",
             f"/search?q={grown['last']}+OR+{grown['last'] - 1}&flag=conflict",
             "/search?q=text+article",  # a word in every article
             f"/claim/claim-3?topic={TOPIC}", f"/topic/{TOPIC}?days=30"]
    for page in pages:
        recorder.label = page
        reply = client.get(page)
        assert reply.status == 200, (page, reply.text[:300])
    recorder.label = "build_digest"
    with sessions() as session:
        build_digest(session, topic=TOPIC)


def sqlite_problems(conn: Any, statement: str, parameters: Any) -> list[str]:
    plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                   parameters)]
    text_plan = " | ".join(plan)
    limited = re.search(r"\bLIMIT\b", statement) is not None
    problems = []
    for step in plan:
        match = re.match(r"SCAN (\w+)", step)
        if match and match.group(1) in TABLES:
            ordered_walk = "USING" in step and "INDEX" in step and limited \
                and "TEMP B-TREE FOR ORDER BY" not in text_plan
            # "SCAN t" of ORDER BY t.id LIMIT n is a walk of the rowid (the primary key)
            rowid_walk = limited and "TEMP B-TREE" not in text_plan and re.search(
                rf"ORDER BY {match.group(1)}\.id( DESC)?\s+LIMIT", statement) is not None
            ordered_walk = ordered_walk or rowid_walk
            if not ordered_walk:
                problems.append(step)
        if re.match(r"SEARCH (articles|crawl_runs) USING (COVERING )?INDEX \w+ \(topic=\?\)$",
                    step) and ("TEMP B-TREE" in text_plan or not limited):
            problems.append(f"{step} (walks the topic's rows)")
    return problems


def pg_problems(plan: list[str], statement: str) -> list[str]:
    problems = []
    for i, step in enumerate(plan):
        if not re.search(r"Seq Scan on ({})\b".format("|".join(TABLES)), step):
            continue
        indent = len(step) - len(step.lstrip(" ->"))
        parent = next((p for p in reversed(plan[:i])
                       if "->" in p or p is plan[0]
                       if len(p) - len(p.lstrip(" ->")) < indent), "")
        # A scan that feeds a LIMIT (the capped count of a list: most rows match) stops
        # after LIMIT rows; one that feeds a sort, a join or an aggregate reads the table.
        if parent.strip(" ->").startswith("Limit"):
            continue
        problems.append(step.strip())
    # A search's window: no walk of the primary key testing each article's text vector (a
    # plan priced by the planner's guess of how many match; 87,589 articles read for the
    # newest thousand matches of a word in one article of a hundred, at 1M stored).
    if "@@" in statement and "ts_rank_cd" not in statement:
        problems += [step.strip() for step in plan
                     if re.search(r"(?<!Bitmap )Index Scan.* on articles\b", step)
                     or re.search(r"Seq Scan on articles\b", step)]
    return problems


def check(engine: Engine, recorder: Recorder, dialect: str) -> list[str]:
    failures = []
    checked = 0
    with engine.connect() as conn:
        for i, (label, statement, parameters) in enumerate(recorder.seen):
            if not any(re.search(rf"\b{t}\b", statement) for t in TABLES):
                continue
            checked += 1
            problems = sqlite_problems(conn, statement, parameters) if dialect == "sqlite" \
                else pg_problems(recorder.plans[i], statement)
            for problem in problems:
                failures.append(f"{label}: {problem}\n    {' '.join(statement.split())[:300]}")
    assert checked > 20, checked
    return failures


def band_lookup_plan(engine: Engine, grown: dict[str, Any]) -> list[str]:
    recorder = Recorder(engine)
    try:
        Store(session_factory(engine)).band_candidates(TOPIC, grown["probe_keys"])
    finally:
        recorder.close()
    [(_, statement, parameters)] = recorder.seen
    with engine.connect() as conn:
        return [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                       parameters)]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Engine, dict[str, Any]]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.sqlite'}")
    from storage.schema import upgrade

    upgrade(engine)  # no statistics: init_db would analyse
    grown = grow(engine)
    yield engine, grown
    engine.dispose()


def test_band_lookup_starts_from_the_band_index_without_statistics(sqlite_store: Any) -> None:
    engine, grown = sqlite_store
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar() == 0
    plan = band_lookup_plan(engine, grown)
    joined = " | ".join(plan)
    assert "ix_article_bands_key_article" in joined, plan
    assert any(re.match(r"SEARCH articles USING INTEGER PRIMARY KEY", s) for s in plan), plan
    assert not any("topic" in s for s in plan), plan
    # and the answer is right: the article whose band keys were asked for comes first
    assert Store(session_factory(engine)).band_candidates(TOPIC, grown["probe_keys"]) \
        == [grown["last"]]


def test_statistics_are_refreshed_when_missing_or_stale(sqlite_store: Any) -> None:
    engine, grown = sqlite_store
    assert set(refresh_statistics(engine)) >= {"articles", "article_bands"}
    assert refresh_statistics(engine) == []  # current now: nothing to do
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sqlite_stat1 WHERE tbl = 'articles'"))
    assert refresh_statistics(engine) == ["articles"]


def test_no_production_query_scans_on_sqlite(sqlite_store: Any) -> None:
    engine, grown = sqlite_store
    for analysed in (False, True):
        if analysed:
            refresh_statistics(engine, force=True)
        recorder = Recorder(engine)
        try:
            run_production_paths(engine, recorder, grown)
        finally:
            recorder.close()
        failures = check(engine, recorder, "sqlite")
        assert not failures, f"(statistics: {analysed})\n" + "\n".join(failures)


def test_no_production_query_scans_on_postgresql() -> None:
    from tests.services import postgres_schema

    with postgres_schema(prefix="cw_plans") as url:
        engine, _ = open_db(url)
        try:
            # PostgreSQL reads small tables whole (cheaper than an index): realistic sizes
            grown = grow(engine, PG_ARTICLES, bands_per=3)
            assert set(refresh_statistics(engine)) >= {"articles", "article_bands"}
            recorder = Recorder(engine)
            try:
                run_production_paths(engine, recorder, grown)
            finally:
                recorder.close()
            failures = check(engine, recorder, "postgresql")
            assert not failures, "\n".join(failures)
        finally:
            engine.dispose()
