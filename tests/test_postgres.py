"""PostgreSQL parity: every storage path behaves on PostgreSQL as on SQLite.

The storage unit tests (tests/test_storage.py) and the migration tests run on both
backends through the ``db_url`` fixture (tests/conftest.py); here are the paths they
do not cover: concurrent upserts, values one backend accepts and the other does not,
and a whole crawl + digest through the CLI, compared between the two backends.
PostgreSQL is the local server (127.0.0.1:5432, database ``test``), in a schema of
this test session's own; without it these tests are skipped, with the reason.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from storage.db import make_engine, session_factory
from storage.models import Article, ArticleBand, ArticleClaim, CrawlRun, SourceState
from storage.repository import SaveResult, Store
from tests.conftest import DEMO_TOPIC, REPO
from tests.test_storage import record


def count(store: Store, model: type) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_concurrent_saves_of_one_article_store_it_once(store: Store) -> None:
    """Two crawls (or two workers) storing the same page at once: one row, one 'created'."""
    results: list[SaveResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def save() -> None:
        try:
            barrier.wait(10)
            results.append(store.save(record(1)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(r.created for r in results) == 1
    assert len({r.id for r in results}) == 1
    assert count(store, Article) == 1
    assert count(store, ArticleClaim) == 1 and count(store, ArticleBand) == 3


def test_datetimes_come_back_as_the_same_aware_utc_instant(store: Store) -> None:
    published = datetime(2022, 12, 15, 11, 30, tzinfo=timezone(timedelta(hours=-5)))
    naive = datetime(2022, 12, 16, 8, 0)  # naive means UTC
    a = store.save(record(1, published=published)).id
    b = store.save(record(2, published=naive)).id
    with store.sessions() as session:
        rows = {r.id: r for r in session.scalars(select(Article))}
    stored = rows[a].published
    assert stored == published and stored is not None and stored.tzinfo == UTC
    assert rows[b].published == naive.replace(tzinfo=UTC)


def test_values_one_backend_would_refuse_are_stored_on_both(store: Store) -> None:
    # PostgreSQL text cannot hold NUL characters; band keys use the whole signed 64 bits.
    saved = store.save(record(1, text="before\x00after", title="Title\x00",
                              band_keys=[2**63 - 1, 0, 1])).id
    [stored] = store.texts([saved])
    assert stored.text.replace("\x00", "") == "beforeafter"
    assert store.band_candidates("t", [2**63 - 1]) == [saved]


def test_source_state_upsert(store: Store) -> None:
    store.update_source_state("t", "s", etag='"v1"', items_seen=3)
    store.update_source_state("t", "s", etag='"v2"')
    state = store.source_state("t", "s")
    assert state is not None and (state.etag, state.items_seen) == ('"v2"', 3)
    assert count(store, SourceState) == 1


# -- a whole crawl and digest through the CLI, on both backends --------------------------------


def claimwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "claimwatch.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def normalised_digest(db: str) -> dict[str, dict[str, Any]]:
    """The digest by URL path, without ids and times (which differ between runs)."""
    from click.testing import CliRunner

    from claimwatch.cli import main

    result = CliRunner().invoke(main, ["digest", "--db", db, "--format", "json", "--since", "1h"])
    assert result.exit_code == 0, result.output
    articles = json.loads(result.stdout)["articles"]
    path_of = {a["id"]: urlparse(a["url"]).path for a in articles}
    out = {}
    for a in articles:
        dup = a["duplicate_of"]
        out[urlparse(a["url"]).path] = {
            "title": a["title"], "outlet": a["outlet"], "published": a["published"],
            "flags": sorted(a["flags"]),
            "duplicate_of": path_of.get(dup["id"]) if dup else None,
            "claims": sorted((c["claim_id"], c["sentence"]) for c in a["claims"]),
            "conflicts": sorted((c["claim_id"], tuple(c["article_numbers"]))
                                for c in a["conflicts"]),
            "candidates": sorted(c["sentence"] for c in a["candidates"]),
            "review": a["review"]["status"],
        }
    return out


@pytest.mark.skipif(not DEMO_TOPIC.is_file(), reason="the demo topic is not in this checkout")
def test_crawl_and_digest_are_the_same_on_sqlite_and_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    from tests.services import empty_tables

    empty_tables(postgres_url)
    sqlite = f"sqlite:///{tmp_path / 'parity.sqlite'}"
    port = f"CLAIMWATCH_SITE_PORT={free_port()}"
    digests = {}
    for db in (sqlite, postgres_url):
        crawl = claimwatch("crawl", str(DEMO_TOPIC), "--db", db, "--set", port)
        assert crawl.returncode == 0, crawl.stderr
        digests[db] = normalised_digest(db)
    assert digests[sqlite], "the demo crawl stored articles"
    assert any(a["duplicate_of"] for a in digests[sqlite].values())
    assert digests[postgres_url] == digests[sqlite]

    again = claimwatch("crawl", str(DEMO_TOPIC), "--db", postgres_url, "--set", port)
    assert again.returncode == 0, again.stderr
    assert normalised_digest(postgres_url) == digests[sqlite]  # nothing stored twice
    engine = make_engine(postgres_url)
    try:
        with session_factory(engine)() as session:
            runs = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
            states = session.scalars(select(SourceState)).all()
        assert [r.status for r in runs] == ["ok", "ok"]
        assert runs[0].counts["new"] == len(digests[sqlite]) and runs[1].counts["new"] == 0
        assert len(states) == 1 and states[0].last_success is not None
    finally:
        engine.dispose()
