"""End to end: `claimwatch crawl` of the bundled demo site over real HTTP, then the digest.

The crawl runs in a subprocess (a Twisted reactor cannot be restarted inside
pytest) against a temporary SQLite database, exactly as a user would run it.
Ground truth: config/topics/demo-expected.json, written with the demo site.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import DEMO_TOPIC, REPO

EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (REPO / "config" / "topics" / "demo-expected.json").read_text(encoding="utf-8")
)


def claimwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claimwatch.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'demo.sqlite'}"
    port = f"CLAIMWATCH_SITE_PORT={free_port()}"
    first = claimwatch("crawl", str(DEMO_TOPIC), "--db", db, "--set", port)
    assert first.returncode == 0, first.stderr
    digest = claimwatch("digest", "--db", db, "--format", "json", "--since", "1h")
    assert digest.returncode == 0, digest.stderr
    data = json.loads(digest.stdout)
    articles = {urlparse(a["url"]).path: a for a in data["articles"]}
    return {"db": db, "port": port, "summary": first.stdout, "digest": data, "articles": articles,
            "by_id": {a["id"]: a for a in data["articles"]}}


def summary_row(output: str, source: str = "demo-wire") -> dict[str, str]:
    """One source's row of the crawl summary, by column name."""
    lines = output.splitlines()
    header = next(line for line in lines if line.startswith("source")).split()
    row = next(line for line in lines if line.startswith(source + " ")).split()
    return dict(zip(header, row, strict=False))


def on_topic() -> list[str]:
    return [path for path, exp in EXPECTED.items() if exp["role"] != "off_topic"]


def test_summary_counts(crawled: dict[str, Any]) -> None:
    row = summary_row(crawled["summary"])
    assert row["fetched"] == str(len(EXPECTED))
    assert row["new"] == str(len(on_topic()))
    assert row["duplicates"] == str(sum(1 for e in EXPECTED.values() if e["duplicate_of"]))
    assert row["off_topic"] == str(sum(1 for e in EXPECTED.values() if e["role"] == "off_topic"))
    assert row["errors"] == "0"
    assert row["status"] == "ok"


def test_crawl_and_digest_count_candidates_alike(crawled: dict[str, Any]) -> None:
    """The crawl's candidates column is the digest's count: a copy's candidates that its
    original's text already holds are offered (and counted) once, on the original."""
    shown = sum(len(a["candidates"]) for a in crawled["digest"]["articles"])
    copies_sharing = [a for a in crawled["digest"]["articles"] if a.get("duplicate_of")
                      and not a["candidates"]]
    assert copies_sharing, "the demo has copies whose candidates their originals hold"
    assert summary_row(crawled["summary"])["candidates"] == str(shown)


def test_off_topic_articles_are_absent(crawled: dict[str, Any]) -> None:
    off = [p for p, e in EXPECTED.items() if e["role"] == "off_topic"]
    assert off and not set(off) & set(crawled["articles"])
    assert set(on_topic()) == set(crawled["articles"])


@pytest.mark.parametrize("path", on_topic())
def test_flags_and_families(crawled: dict[str, Any], path: str) -> None:
    expected, article = EXPECTED[path], crawled["articles"][path]
    if expected["duplicate_of"] is None:
        assert "new_report" in article["flags"] and article["duplicate_of"] is None
    else:
        assert "duplicate" in article["flags"] and "new_report" not in article["flags"]
        original = crawled["by_id"][article["duplicate_of"]["id"]]
        assert urlparse(original["url"]).path == expected["duplicate_of"]
        assert urlparse(article["duplicate_of"]["url"]).path == expected["duplicate_of"]
        assert 0 < article["duplicate_of"]["similarity"] <= 1


@pytest.mark.parametrize("path", on_topic())
def test_planted_claims_are_matched_with_their_sentence(crawled: dict[str, Any], path: str) -> None:
    expected, article = EXPECTED[path], crawled["articles"][path]
    matched = {c["claim_id"]: c for c in article["claims"]}
    for claim_id, sentence in expected["claims"].items():
        assert claim_id in matched, f"{claim_id} not matched in {path}"
        assert matched[claim_id]["sentence"] == sentence, claim_id
        assert matched[claim_id]["score"] > 0


def test_one_claim_per_idea_no_false_links(crawled: dict[str, Any]) -> None:
    """The demo sentence on Musk's priority once linked three claims (one contrary, at
    99.0); only the claim it states remains, and every planted link stays (above)."""
    sentence = "Musk has said removing child exploitation from Twitter is his top priority."
    found = [c for a in crawled["articles"].values() for c in a["claims"]
             if c["sentence"] == sentence]
    assert found, "the demo sentence is not matched at all"
    assert {c["claim_id"] for c in found} == {"musk-priority-number-one"}
    for false_link in ("musk-no-significant-investment", "musk-crime-tweet"):
        assert not any(c["claim_id"] == false_link and c["sentence"] == sentence
                       for a in crawled["articles"].values() for c in a["claims"])


def test_every_claim_link_says_its_stance(crawled: dict[str, Any]) -> None:
    links = [c for a in crawled["articles"].values() for c in a["claims"]]
    assert links
    assert {c["stance"] for c in links} <= {"repeats", "disputes", "discusses"}
    for a in crawled["articles"].values():
        disputes = any(c["stance"] == "disputes" for c in a["claims"])
        assert ("disputes" in a["flags"]) == disputes


@pytest.mark.parametrize("path", on_topic())
def test_conflicting_figures(crawled: dict[str, Any], path: str) -> None:
    expected, article = EXPECTED[path], crawled["articles"][path]
    conflicts = {c["claim_id"]: c for c in article["conflicts"]}
    assert set(conflicts) == set(expected["conflicts"])
    assert ("conflict" in article["flags"]) == bool(expected["conflicts"])
    for claim_id, sentence in expected["conflicts"].items():
        assert conflicts[claim_id]["sentence"] == sentence
        assert conflicts[claim_id]["claim_numbers"] != conflicts[claim_id]["article_numbers"]


def test_new_claim_candidates(crawled: dict[str, Any]) -> None:
    for path, expected in EXPECTED.items():
        if expected["new_claims"]:
            sentences = {c["sentence"] for c in crawled["articles"][path]["candidates"]}
            for sentence in expected["new_claims"]:
                assert sentence in sentences, sentence


def test_second_crawl_fetches_and_stores_nothing_again(crawled: dict[str, Any]) -> None:
    again = claimwatch("crawl", str(DEMO_TOPIC), "--db", crawled["db"], "--set", crawled["port"])
    assert again.returncode == 0, again.stderr
    row = summary_row(again.stdout)
    assert (row["fetched"], row["new"], row["duplicates"]) == ("0", "0", "0")
    # The unchanged feed answers 304 to the conditional GET, so not even its entries are read.
    assert row["not_modified"] == "1"
    digest = json.loads(claimwatch("digest", "--db", crawled["db"], "--format", "json",
                                   "--since", "1h").stdout)
    assert len(digest["articles"]) == len(on_topic())
