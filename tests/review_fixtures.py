"""A small reviewed-topic world for the review, web and browser tests.

A topic file with a CSV claims table in a temp directory, and a database holding:

* ``original``: a Northwire report repeating claim ``staff-25`` and contradicting
  ``engineers-half`` (a conflict), with one new-claim candidate sentence;
* ``copy``: a wire copy of it at The Capital Ledger (same candidate sentence);
* ``other``: an unrelated report at Civic Post, no copies;
* ``hostile``: an article whose title, outlet, URL, text, matched sentence and
  candidate carry ``<script>`` and ``onerror=`` payloads.

Everything goes through :class:`storage.repository.Store`, as the pipeline writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.loader import load_topic
from config.models import Topic
from storage.db import open_db
from storage.models import CrawlRun, utcnow
from storage.repository import ArticleRecord, CandidateRecord, MatchRecord, Store

TOPIC = "review-test"
XSS_TITLE = '<script>window.__pwned = "title"</script>Hostile <b>title</b>'
XSS_IMG = '<img src=x onerror="window.__pwned=\'img\'">'
XSS_SENTENCE = f"Officials said 25 of 1,600 staff remain {XSS_IMG} in the unit."
XSS_CANDIDATE = 'A new rule <svg onload="window.__pwned=1"> starts on Monday.'

CLAIMS_CSV = (
    "id,text\n"
    'staff-25,"25 of the 1,600 workers still employed by Twitter work in Trust and Safety."\n'
    'engineers-half,"Twitter\'s engineering staff was cut by more than half."\n'
    'never-repeated,"A claim no article repeats."\n'
)

TOPIC_YAML = f"""\
name: {TOPIC}
query: {{any: ["Twitter"]}}
claims: claims.csv
sources:
  - {{name: wire, kind: feed, url: "https://news.example/rss.xml", schedule: "*/30 * * * *"}}
  - {{name: ledger, kind: feed, url: "https://ledger.example/feed.xml"}}
"""

ORIGINAL_TEXT = (
    "Twitter has only 25 of 1,600 staff in Trust and Safety, records show.\n"
    "The engineering staff was cut by a third since October, people said.\n"
    "A new child-safety council will meet in January, the company said."
)
OTHER_TEXT = (
    "Advertisers paused spending on Twitter this week.\n"
    "Twitter's engineering staff was cut by more than half, former employees said."
)


@dataclass
class World:
    db_url: str
    topic: Topic
    topic_file: Path
    claims_file: Path
    ids: dict[str, int]
    candidate_ids: dict[str, int]


def make_world(tmp_path: Path, db_url: str | None = None) -> World:
    topic_dir = tmp_path / "topic"
    topic_dir.mkdir()
    claims_file = topic_dir / "claims.csv"
    claims_file.write_text(CLAIMS_CSV, encoding="utf-8")
    topic_file = topic_dir / "review-test.yaml"
    topic_file.write_text(TOPIC_YAML, encoding="utf-8")
    topic = load_topic(topic_file)
    db_url = db_url or f"sqlite:///{tmp_path / 'review.sqlite'}"
    engine, sessions = open_db(db_url)
    try:
        store = Store(sessions)
        store.sync_claims(TOPIC, topic.claims)
        now = utcnow()
        ids: dict[str, int] = {}
        published = datetime(2022, 12, 15, 10, 0, tzinfo=UTC)
        ids["original"] = store.save(ArticleRecord(
            topic=TOPIC, source="wire", url="https://northwire.example/2022/12/15/staff.html",
            canonical_url="https://northwire.example/2022/12/15/staff.html",
            title="Twitter's safety team is down to 25 people", outlet="Northwire",
            published=published, fetched_at=now - timedelta(hours=3),
            text=ORIGINAL_TEXT, content_hash="h-original",
            matches=[
                MatchRecord("staff-25", ORIGINAL_TEXT.splitlines()[0], 0, 93.5, "linked"),
                MatchRecord("engineers-half", ORIGINAL_TEXT.splitlines()[1], 1, 81.0, "linked",
                            conflict=True, claim_numbers=["half"], article_numbers=["third"]),
            ],
            candidates=[CandidateRecord(ORIGINAL_TEXT.splitlines()[2], 2, 0.81)],
        )).id
        ids["copy"] = store.save(ArticleRecord(
            topic=TOPIC, source="ledger", url="https://ledger.example/news/twitter-staff",
            canonical_url="https://ledger.example/news/twitter-staff",
            title="Twitter's safety team is down to 25 people (wire)", outlet="The Capital Ledger",
            published=published + timedelta(hours=5), fetched_at=now - timedelta(hours=2),
            text=ORIGINAL_TEXT, content_hash="h-copy",
            duplicate_of_id=ids["original"], duplicate_kind="copy", duplicate_similarity=0.98,
            matches=[MatchRecord("staff-25", ORIGINAL_TEXT.splitlines()[0], 0, 93.5, "linked")],
            candidates=[CandidateRecord(ORIGINAL_TEXT.splitlines()[2], 2, 0.81)],
        )).id
        ids["other"] = store.save(ArticleRecord(
            topic=TOPIC, source="wire", url="https://civicpost.example/advertisers",
            canonical_url="https://civicpost.example/advertisers",
            title="Advertisers pause Twitter spending", outlet="Civic Post",
            published=published + timedelta(days=2), fetched_at=now - timedelta(hours=1),
            text=OTHER_TEXT, content_hash="h-other",
            matches=[MatchRecord("engineers-half", OTHER_TEXT.splitlines()[1], 1, 95.0,
                                 "linked")],
        )).id
        hostile_text = (f"Intro line.\n{XSS_SENTENCE}\n{XSS_CANDIDATE}\n"
                        "</p></main><script>x()</script>")
        ids["hostile"] = store.save(ArticleRecord(
            topic=TOPIC, source="wire", url='javascript:window.__pwned="link"',
            canonical_url="https://evil.example/hostile",
            title=XSS_TITLE, outlet='Evil" onmouseover="window.__pwned=2',
            published=published + timedelta(days=3), fetched_at=now - timedelta(minutes=30),
            text=hostile_text, content_hash="h-hostile",
            matches=[MatchRecord("staff-25", XSS_SENTENCE, 1, 88.0, "linked")],
            candidates=[CandidateRecord(XSS_CANDIDATE, 2, 0.7)],
        )).id
        with sessions.begin() as session:
            session.add(CrawlRun(topic=TOPIC, source="wire", trigger="schedule",
                                 started=now - timedelta(minutes=40),
                                 finished=now - timedelta(minutes=39), status="ok",
                                 counts={"fetched": 4, "new": 4, "duplicates": 1, "errors": 0}))
            session.add(CrawlRun(topic=TOPIC, source="ledger", trigger="manual",
                                 started=now - timedelta(minutes=20),
                                 finished=now - timedelta(minutes=19), status="failed",
                                 counts={}, error="feed <b>unreachable</b>"))
        from sqlalchemy import select

        from storage.models import ClaimCandidate

        with sessions() as session:
            candidate_ids = {
                name: session.scalar(
                    select(ClaimCandidate.id).where(ClaimCandidate.article_id == ids[name])
                )
                for name in ("original", "copy", "hostile")
            }
    finally:
        engine.dispose()
    return World(db_url, topic, topic_file, claims_file, ids,
                 {k: int(v) for k, v in candidate_ids.items() if v is not None})
