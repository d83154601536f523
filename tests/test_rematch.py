"""Re-analysis end to end: crawl a copy of the demo site, promote a candidate, fix a query.

The crawl and the commands run in subprocesses (a Twisted reactor cannot be
restarted inside pytest) against a temporary SQLite database, as a user runs them.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from storage.db import make_engine, session_factory
from storage.models import Article, ArticleClaim, OffTopicPage
from tests.conftest import DEMO_TOPIC
from tests.test_end_to_end import claimwatch, free_port

WRONG = "Dorsey"  # the query's typo: it rules out the article about the Musk-Dorsey exchange
BACK = "/civicpost/2022/12/16/musk-dorsey-child-exploitation-exchange.html"
OFF_TOPIC = {"city-council-approves-2023-budget.html",
             "tesla-recall-model-y-child-seat-anchors.html",
             "spacex-starlink-launch-booster-record.html"}


def _topic_copy(root: Path, none: list[str]) -> Path:
    """The demo topic, its claims table and site in ``root`` (the test edits them)."""
    demo = DEMO_TOPIC.parent
    shutil.copytree(demo / "demo-site", root / "demo-site")
    shutil.copy(demo / "claims.csv", root / "claims.csv")
    text = DEMO_TOPIC.read_text(encoding="utf-8")
    text = text.replace('none: ["Tesla recall"]', f"none: {json.dumps(none)}")
    (root / "demo.yaml").write_text(text, encoding="utf-8")
    return root / "demo.yaml"


def _digest(db: str) -> dict[str, dict[str, Any]]:
    result = claimwatch("digest", "--db", db, "--format", "json", "--since", "3650d", "--all")
    assert result.returncode == 0, result.stderr
    return {urlparse(a["url"]).path: a for a in json.loads(result.stdout)["articles"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("rematch")
    topic = _topic_copy(root, ["Tesla recall", WRONG])
    db = f"sqlite:///{root / 'store.sqlite'}"
    port = f"CLAIMWATCH_SITE_PORT={free_port()}"  # the revisit serves the site there again
    crawl = claimwatch("crawl", str(topic), "--db", db, "--set", port, "--no-progress")
    assert crawl.returncode == 0, crawl.stderr
    return {"root": root, "topic": topic, "db": db, "port": port}


def test_an_off_topic_page_is_kept_with_its_text(store: dict[str, Any]) -> None:
    assert BACK not in _digest(store["db"])
    engine = make_engine(store["db"])
    try:
        with session_factory(engine)() as session:
            pages = {urlparse(p.url).path: p for p in session.scalars(select(OffTopicPage))}
    finally:
        engine.dispose()
    assert BACK in pages and "Dorsey" in pages[BACK].text
    # the three off-topic stories and those the typo rules out
    assert len(pages) > 4 and all(WRONG in p.text or "Dorsey" in (p.title or "") or
                                  p.url.rsplit("/", 1)[-1] in OFF_TOPIC for p in pages.values())
    store["off_topic"] = len(pages)


def test_promoting_a_candidate_matches_the_stored_articles_at_once(
        store: dict[str, Any]) -> None:
    articles = _digest(store["db"])
    path, article = next((p, a) for p, a in articles.items() if a["candidates"])
    candidate = article["candidates"][0]
    promoted = claimwatch("claims", "promote", str(candidate["id"]), "--id", "promoted-one",
                          "--topic-file", str(store["topic"]), "--db", store["db"])
    assert promoted.returncode == 0, promoted.stderr
    assert "matches: " in promoted.stdout and "added" in promoted.stdout
    after = _digest(store["db"])
    matched = {c["claim_id"]: c for c in after[path]["claims"]}
    assert "promoted-one" in matched, after[path]
    assert matched["promoted-one"]["sentence"] == candidate["sentence"]
    # the same sentence in another article (a wire copy) is matched too, or was not there
    for other, data in after.items():
        if other != path and candidate["sentence"] in json.dumps(data["candidates"]):
            pytest.fail(f"{other} still lists the promoted sentence as a candidate")


def test_a_review_decision_stays_with_a_match_that_still_holds(store: dict[str, Any]) -> None:
    engine = make_engine(store["db"])
    sessions = session_factory(engine)
    try:
        with sessions.begin() as session:
            row = session.scalars(select(ArticleClaim).order_by(ArticleClaim.id)).first()
            assert row is not None
            row.review = "confirmed"
            kept_id, claim_id, article_id = row.id, row.claim_id, row.article_id
        result = claimwatch("rematch", str(store["topic"]), "--db", store["db"], "--all",
                            "--workers", "1")
        assert result.returncode == 0, result.stderr
        assert "reviews kept: 1" in result.stdout, result.stdout
        with sessions() as session:
            row = session.get(ArticleClaim, kept_id)
            assert row is not None and row.review == "confirmed" and row.claim_id == claim_id
            article = session.get(Article, article_id)
            assert article is not None and article.claims_version == row.claims_version
            assert row.claims_version
    finally:
        engine.dispose()


def test_a_fixed_query_brings_the_off_topic_page_back(store: dict[str, Any]) -> None:
    topic: Path = store["topic"]
    topic.write_text(topic.read_text(encoding="utf-8").replace(f', "{WRONG}"', ""),
                     encoding="utf-8")
    result = claimwatch("rematch", str(topic), "--db", store["db"], "--workers", "0")
    assert result.returncode == 0, result.stderr
    back = store["off_topic"] - 3
    assert f"off-topic pages: {back} back on topic of {store['off_topic']} checked" \
        in result.stdout, result.stdout
    articles = _digest(store["db"])
    assert BACK in articles
    assert articles[BACK]["claims"], "the page that came back is matched to its claims"
    again = claimwatch("rematch", str(topic), "--db", store["db"], "--workers", "0")
    assert "off-topic pages: 0 back on topic of 3 checked" in again.stdout
    assert "0 changed of 0 checked" in again.stdout  # nothing behind the claims table


EDITED = "/northwire/2022/12/15/twitter-child-safety-staff.html"
CLAIM = "tns-staff-25-of-1600"


def test_a_revisit_finds_an_edited_figure_and_a_correction(store: dict[str, Any]) -> None:
    """The issue's "done when": edit a figure and add a correction note in one page of the
    served site, revisit, and find the article revised with the conflict re-evaluated."""
    before = _digest(store["db"])[EDITED]
    assert CLAIM in {c["claim_id"] for c in before["claims"]}
    assert CLAIM not in {c["claim_id"] for c in before["conflicts"]}
    page = store["root"] / "demo-site" / EDITED.lstrip("/")
    html = page.read_text(encoding="utf-8")
    assert html.count("25 of the 1,600") == 1
    last = "work specifically on child safety.</p>"
    assert html.count(last) == 1
    html = html.replace("25 of the 1,600", "30 of the 1,600").replace(
        last, last + "\n<p>Correction: An earlier version of this article misstated the "
        "number of Trust and Safety staff.</p>")
    page.write_text(html, encoding="utf-8")
    result = claimwatch("crawl", str(store["topic"]), "--revisit", "--db", store["db"],
                        "--set", store["port"], "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "revisits: " in result.stdout and "1 revised" in result.stdout, result.stdout
    assert "not_modified" in result.stdout  # the unchanged pages: conditional GET, 304
    after = _digest(store["db"])
    article = after[EDITED]
    assert "revised" in article["flags"]
    [revision] = article["revisions"]
    assert {"figure_changed", "correction_added"} <= set(revision["changes"])
    assert any("25 of the 1,600" in s for s in revision["removed"])
    assert any("30 of the 1,600" in s for s in revision["added"])
    conflicts = {c["claim_id"]: c for c in article["conflicts"]}
    assert CLAIM in conflicts and "30" in conflicts[CLAIM]["article_numbers"]
    assert "conflict" in article["flags"]
    unchanged = [a for p, a in after.items() if p != EDITED]
    assert not any("revised" in a["flags"] for a in unchanged)


def test_the_daemon_revisits_as_crawl_runs_under_the_source_lease(
        store: dict[str, Any], tmp_path: Path) -> None:
    """The daemon's revisits are crawl runs of its own (trigger ``revisit``): recorded in
    /api/runs, crawled in its crawl processes, and never while someone else holds the
    source's lease (skipped, revisited next time)."""
    from storage import leases
    from storage.models import CrawlRun
    from tests.test_daemon import DB, Daemon, assert_never_overlapping, wait_for

    page_path = "/civicpost/2022/12/21/twitter-irwin-account-removals-automation.html"
    page = store["root"] / "demo-site" / page_path.lstrip("/")
    html = page.read_text(encoding="utf-8")
    headline = "Twitter’s safety chief points to automation as account removals climb"
    assert html.count(headline) >= 2  # og:title and h1
    page.write_text(html.replace(headline, "Twitter’s safety chief credits automation for "
                                 "a surge in account removals"), encoding="utf-8")
    db = DB(store["db"])
    engine = make_engine(store["db"])
    sessions = session_factory(engine)
    source = ("demo-twitter-child-safety", "demo-wire")
    holder = leases.Holder.new("crawl")  # as `claimwatch crawl` crawling the source
    leases.acquire(sessions, *source, holder)
    daemon = Daemon(tmp_path, [store["topic"]], store["db"], "--set", store["port"],
                    "--set", "CLAIMWATCH_REVISIT_INTERVAL=2").wait_ready()
    try:
        def revisits_skipped() -> int:
            jobs = daemon.health()["scheduler"]["revisits"]
            assert [job["topic"] for job in jobs] == [source[0]], jobs
            return int(jobs[0]["skipped"])

        wait_for(lambda: revisits_skipped() >= 2, 30, "two revisits skipped (busy)", daemon)
        assert not [r for r in db.runs() if r.trigger == "revisit"]
        leases.release(sessions, *source, holder)

        def revisited() -> list[CrawlRun]:
            return [r for r in db.runs() if r.trigger == "revisit" and r.finished]

        run = wait_for(revisited, 60, "a revisit run", daemon)[0]
        assert (run.source, run.status, run.exit_code) == ("demo-wire", "ok", 0), run.error
        assert run.pid and run.pid != daemon.proc.pid and run.holder.startswith("daemon:")
        status, data = daemon.request("GET", "/api/runs?trigger=revisit")
        assert status == 200 and run.id in [r["id"] for r in data["runs"]]
        with urllib.request.urlopen(daemon.url + "/sources", timeout=10) as response:
            runs_page = response.read().decode("utf-8")
        assert f'<td class=num>{run.id}</td>' in runs_page and "<td>revisit</td>" in runs_page
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        engine.dispose()
    assert_never_overlapping(db.runs("demo-wire"))
    article = _digest(store["db"])[page_path]
    assert "revised" in article["flags"]
    assert "headline_changed" in article["revisions"][-1]["changes"]


def test_rematch_names_a_bad_topic_file(tmp_path: Path) -> None:
    result = claimwatch("rematch", str(tmp_path / "missing.yaml"), "--db",
                        f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert result.returncode == 1
    assert "missing.yaml" in result.stderr and "Traceback" not in result.stderr


def test_the_daemon_rematches_when_a_claims_file_changes(store: dict[str, Any]) -> None:
    from types import SimpleNamespace

    class Daemon:
        """What the watch reads of the daemon (weakly referenced, hashed by identity)."""

        def __init__(self, topics: dict[str, Any], sessions: Any) -> None:
            self.topics, self.sessions = topics, sessions

    from claimwatch.rematch import wait_for_background, watch_claims_files
    from config.loader import load_topic

    topic = load_topic(store["topic"])
    engine = make_engine(store["db"])
    try:
        daemon = Daemon(topics={str(store["topic"]): SimpleNamespace(topic=topic)},
                                 sessions=session_factory(engine))
        assert watch_claims_files(daemon) == []  # the first look notes the files
        assert watch_claims_files(daemon) == []  # unchanged
        claims = store["root"] / "claims.csv"
        with claims.open("a", encoding="utf-8") as out:
            out.write('daemon-added,"Twitter dissolved its Trust and Safety Council."\n')
        assert watch_claims_files(daemon) == [str(store["topic"])]
        wait_for_background(60)
        with daemon.sessions() as session:
            versions = set(session.scalars(select(Article.claims_version)))
        from pipeline.analysis import claims_version

        assert versions == {claims_version(load_topic(store["topic"]).claims)}
    finally:
        engine.dispose()


def test_explain_says_why_for_a_stored_article_and_an_unstored_url(
        store: dict[str, Any]) -> None:
    articles = _digest(store["db"])
    matched = next(a for a in articles.values() if a["claims"])
    result = claimwatch("explain", str(matched["id"]), "--topic-file", str(store["topic"]),
                        "--db", store["db"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"article #{matched['id']}" in out and "extracted text:" in out
    assert "topic query: matches" in out and "(found)" in out
    claim_id = matched["claims"][0]["claim_id"]
    assert f"{claim_id}: " in out and ("-> linked" in out or "-> suggested" in out)
    assert "near-duplicate candidates:" in out

    off = "/metroherald/2022/12/14/city-council-approves-2023-budget.html"
    engine = make_engine(store["db"])
    try:
        with session_factory(engine)() as session:
            url = next(p.url for p in session.scalars(select(OffTopicPage))
                       if p.url.endswith(off))
    finally:
        engine.dispose()
    why = claimwatch("explain", url, "--db", store["db"], "--topic-file", str(store["topic"]))
    assert why.returncode == 0, why.stderr
    assert "why not stored: off-topic" in why.stdout
    assert "contains none of the `any` terms" in why.stdout or "excluded term" in why.stdout

    never = claimwatch("explain", "https://nowhere.example/x.html", "--db", store["db"],
                       "--topic-file", str(store["topic"]))
    assert never.returncode == 0 and "never fetched by a crawl" in never.stdout
    unknown = claimwatch("explain", "99999", "--db", store["db"])
    assert unknown.returncode == 1 and "not in the store" in unknown.stderr


def test_the_why_panel_escapes_scraped_text(world: Any, client: Any) -> None:
    from tests.review_fixtures import XSS_IMG

    aid = world.ids["hostile"]
    page = client.get(f"/article/{aid}/why").text  # the panel's own page (without script)
    why = page[page.index('id="why"'):]
    assert "Why?" in why and "extracted text:" in why and "topic query:" in why
    assert XSS_IMG not in page[page.index('id="why"'):]
    assert "<img" not in why
    # what static/review.js fetches when the panel is opened: plain lines (set as text)
    reply = client.get(f"/article/{aid}/why.json")
    assert reply.status == 200 and "application/json" in (reply.header("Content-Type") or "")
    lines = reply.json()["lines"]
    assert any(line.startswith("extracted text:") for line in lines)
    assert any(line.startswith("topic query:") for line in lines)
    assert client.get("/article/999999/why.json").status == 404
    assert client.get("/article/999999/why").status == 404


def test_the_article_page_does_not_work_out_why(world: Any, client: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The explain report (tens of ms) is made only when its panel is opened."""
    import claimwatch.explain

    calls: list[int] = []
    real = claimwatch.explain.explain_article

    def counted(sessions: Any, topic: Any, article_id: int) -> Any:
        calls.append(article_id)
        return real(sessions, topic, article_id)

    monkeypatch.setattr(claimwatch.explain, "explain_article", counted)
    aid = world.ids["hostile"]
    page = client.get(f"/article/{aid}")
    assert page.status == 200 and calls == []
    why = page.text[page.text.index('id="why"'):page.text.index('id="history"')]
    assert "Why?" in why and "extracted text:" not in why
    assert f'data-why-url="/article/{aid}/why.json"' in why
    assert f'href="/article/{aid}/why"' in why
    assert client.get(f"/article/{aid}/why.json").status == 200 and calls == [aid]


def test_the_why_panel_without_the_topic_file(world: Any, sessions: Any) -> None:
    from claimwatch.web import make_app
    from tests.test_web import Client

    bare = Client(make_app(sessions, []))  # serving the store without its topic file
    aid = world.ids["hostile"]
    assert bare.get(f"/article/{aid}/why.json").json() == {
        "article_id": aid, "lines": None, "message": "The topic file is not loaded here."}
    assert "The topic file is not loaded here." in bare.get(f"/article/{aid}/why").text


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import pipeline.rematch as rematch
from config.loader import load_topic
from storage.db import open_db
from storage.repository import Store

original = rematch.apply_rematch
seen = [0]

def apply_then_die(session, *args, **kwargs):
    result = original(session, *args, **kwargs)
    seen[0] += 1
    if seen[0] == int(sys.argv[3]):
        session.flush()  # the article's new rows are written, not committed
        os.kill(os.getpid(), signal.SIGKILL)
    return result

rematch.apply_rematch = apply_then_die
engine, sessions = open_db(sys.argv[1])
rematch.rematch_topic(load_topic(Path(sys.argv[2])), Store(sessions), workers=0, every=True)
"""


def test_a_rematch_killed_half_way_leaves_each_article_rematched_or_as_it_was(
        world: Any, sessions: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    from pipeline.analysis import claims_version
    from tests.conftest import REPO

    with sessions() as session:
        before = {a.id: (a.claims_version, sorted((c.claim_id, c.score, c.sentence)
                                                  for c in a.claims))
                  for a in session.scalars(select(Article).order_by(Article.id))}
    assert len(before) >= 3
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    killed = subprocess.run([sys.executable, str(script), world.db_url, str(world.topic_file),
                             "2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    current = claims_version(world.topic.claims)
    with sessions() as session:
        after = {a.id: (a.claims_version, sorted((c.claim_id, c.score, c.sentence)
                                                 for c in a.claims))
                 for a in session.scalars(select(Article).order_by(Article.id))}
    ids = sorted(before)
    assert after[ids[0]][0] == current  # committed before the kill
    for aid in ids[1:]:  # the one killed in its transaction, and those after it: as they were
        assert after[aid] == before[aid]
    done = claimwatch("rematch", str(world.topic_file), "--db", world.db_url, "--workers", "0")
    assert done.returncode == 0, done.stderr
    assert f"of {len(ids) - 1} checked" in done.stdout  # the rest, not the one already done
