"""Storage: idempotent upserts, one transaction per article, story families."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from config.models import Claim
from storage.db import make_engine
from storage.models import Article, ArticleBand, ArticleClaim, ClaimCandidate, KnownClaim
from storage.repository import ArticleRecord, CandidateRecord, MatchRecord, Store

T0 = datetime(2022, 12, 15, 10, tzinfo=UTC)


def record(n: int, **kw: object) -> ArticleRecord:
    values: dict[str, object] = dict(
        topic="t", source="s", url=f"https://a.example/{n}", canonical_url=f"https://a.example/{n}",
        text=f"text {n}", content_hash=f"h{n}", title=f"Title {n}", published=T0 + timedelta(hours=n),
        matches=[MatchRecord("c1", "A sentence.", 0, 91.0, "linked", True, ["25", "1600"], ["30", "1600"])],
        candidates=[CandidateRecord("Someone said 44,000 accounts.", 3, 0.8)],
        band_keys=[n * 10 + 1, n * 10 + 2, 999],
    )
    values.update(kw)
    return ArticleRecord(**values)  # type: ignore[arg-type]


def count(store: Store, model: type) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_sqlite_is_in_wal_mode_with_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000


def test_save_twice_stores_once(store: Store) -> None:
    first = store.save(record(1))
    second = store.save(record(1, text="changed"))
    assert first.created and not second.created and first.id == second.id
    assert count(store, Article) == 1
    assert count(store, ArticleClaim) == 1
    assert count(store, ClaimCandidate) == 1
    assert count(store, ArticleBand) == 3


def test_failed_save_leaves_nothing_half_written(store: Store) -> None:
    bad = record(2, matches=[MatchRecord("c1", "x", 0, 1.0, "linked"),
                             MatchRecord("c1", "y", 1, 2.0, "linked")])  # violates uniqueness
    with pytest.raises(IntegrityError):
        store.save(bad)
    assert count(store, Article) == 0 and count(store, ArticleClaim) == 0
    assert store.save(record(2)).created


def test_lookups(store: Store) -> None:
    a = store.save(record(1)).id
    b = store.save(record(2)).id
    assert store.find_root_by_hash("t", "h2") == b  # an original is its own root
    assert store.find_root_by_hash("other-topic", "h2") is None
    copy = store.save(record(5, content_hash="h5", duplicate_of_id=a, duplicate_kind="copy",
                             published=None, band_keys=())).id
    assert store.find_root_by_hash("t", "h5") == a == store.texts([copy])[0].root_id
    assert store.find_by_url("t", "https://a.example/1") == a
    assert store.find_by_urls("t", ["https://x.example/none", "https://a.example/2",
                                    "https://a.example/1"]) == {
        "https://a.example/1": a, "https://a.example/2": b}
    assert store.find_by_urls("other-topic", ["https://a.example/1"]) == {}
    assert store.find_by_urls("t", []) == {}
    assert store.band_candidates("t", [11, 12, 999]) == [a, b]  # a shares 3 keys, b one
    assert store.band_candidates("t", [21]) == [b]
    assert store.band_candidates("t", []) == []
    c = store.save(record(3, url="https://a.example/3?utm_source=feed")).id
    store.mark_skipped("t", ["https://a.example/off-topic"], "off_topic")
    listed = ["https://a.example/1", "https://a.example/3?utm_source=feed", "https://a.example/3",
              "https://a.example/off-topic", "https://a.example/new"]
    assert store.known_among("t", listed) == set(listed) - {"https://a.example/new"}
    assert store.known_among("other-topic", listed) == set()
    assert store.known_among("t", []) == set()
    many = [f"https://a.example/{n}" for n in range(2000, 3200)] + ["https://a.example/2"]
    assert store.known_among("t", many) == {"https://a.example/2"}  # in the third batch
    assert c
    [stored] = store.texts([b])
    assert stored.text == "text 2" and stored.root_id == b


def test_lookups_in_one_session(store: Store) -> None:
    """Store.lookups() answers as the store does, from one connection checked out once,
    and refuses writes."""
    from sqlalchemy import event

    a = store.save(record(1)).id
    b = store.save(record(2)).id
    engine = store.sessions.kw["bind"]
    checkouts: list[object] = []

    def checked_out(connection: object, *args: object) -> None:
        checkouts.append(connection)

    event.listen(engine, "checkout", checked_out)
    try:
        with store.lookups() as reads:
            assert reads.find_by_url("t", "https://a.example/1") == a
            assert reads.find_root_by_hash("t", "h2") == b
            assert reads.find_by_urls("t", ["https://a.example/2"]) == {"https://a.example/2": b}
            assert reads.band_candidates("t", [11, 12, 999]) == [a, b]
            assert [t.text for t in reads.texts([b, a])] == ["text 2", "text 1"]
            with pytest.raises(TypeError):
                reads.save(record(3))
        assert len(checkouts) == 1
        assert store.find_by_url("t", "https://a.example/2") == b  # the store itself as before
    finally:
        event.remove(engine, "checkout", checked_out)
    assert count(store, Article) == 2


def test_earlier_published_duplicate_becomes_the_original(store: Store) -> None:
    root = store.save(record(5)).id
    copy = store.save(record(6, duplicate_of_id=root, duplicate_kind="copy",
                             duplicate_similarity=0.97)).id
    # An article published before the stored original arrives later and matches it.
    earlier = store.save(record(1, duplicate_of_id=root, duplicate_kind="rewrite",
                                duplicate_similarity=0.7)).id
    with store.sessions() as session:
        rows = {a.id: a for a in session.scalars(select(Article))}
    assert rows[earlier].duplicate_of_id is None
    assert rows[earlier].duplicate_kind is None and rows[earlier].duplicate_similarity is None
    assert rows[root].duplicate_of_id == earlier and rows[root].duplicate_kind == "rewrite"
    assert rows[root].duplicate_similarity == pytest.approx(0.7)
    assert rows[copy].duplicate_of_id == earlier
    assert rows[copy].duplicate_similarity == pytest.approx(0.97)  # measured against the old


def test_sync_claims_mirrors_the_table(store: Store) -> None:
    store.sync_claims("t", [Claim("a", "A"), Claim("b", "B", aliases=("bee",))])
    store.sync_claims("t", [Claim("b", "B2")])
    with store.sessions() as session:
        rows = session.scalars(select(KnownClaim)).all()
    assert [(r.claim_id, r.text, r.aliases) for r in rows] == [("b", "B2", [])]
