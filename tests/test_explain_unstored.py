"""``claimwatch explain URL`` says why a page a crawl met was not stored.

A copy of the demo site gains a page robots.txt forbids, a link to a private address,
a page with too little text, a missing page (a download error) and a copy of a stored
article that declares the stored one canonical; two crawls run in subprocesses (a
Twisted reactor cannot be restarted inside pytest), and ``explain`` names the reason of
each URL. The record never stops a later crawl fetching the page: the missing page,
written before the second crawl, is stored by it and its record removed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from storage.db import init_db, make_engine, session_factory
from storage.models import SkippedUrl, UnstoredPage
from tests.conftest import DEMO_TOPIC
from tests.test_end_to_end import claimwatch, free_port

ORIGINAL = "/civicpost/2022/12/21/twitter-irwin-account-removals-automation.html"
ROBOTS = "/private/2022/12/20/memo.html"
SHORT = "/northwire/2022/12/20/short-note.html"
MISSING = "/northwire/2022/12/20/late-story.html"
COPY = "/capitalledger/2022/12/22/irwin-copy.html"
PRIVATE = "http://10.255.255.1/2022/12/20/internal.html"


def _item(link: str) -> str:
    return (f"<item><title>Twitter child safety {link}</title><link>{link}</link>"
            "<pubDate>Tue, 20 Dec 2022 10:00:00 +0000</pubDate></item>\n")


def _add_to_feed(site: Path, links: list[str]) -> None:
    feed = site / "rss.xml"
    text = feed.read_text(encoding="utf-8")
    feed.write_text(text.replace("<item>", "".join(map(_item, links)) + "<item>", 1),
                    encoding="utf-8")


def _page(site: Path, path: str, html: str) -> None:
    target = site / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")


def _crawl(world: dict[str, Any]) -> None:
    result = claimwatch("crawl", str(world["topic"]), "--db", world["db"], "--no-progress",
                        "--set", world["port"], "--set", "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=False",
                        "--set", f"CLAIMWATCH_ALLOWED_PRIVATE_HOSTS=127.0.0.1:{world['n']}")
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("unstored")
    demo = DEMO_TOPIC.parent
    site = root / "demo-site"
    shutil.copytree(demo / "demo-site", site)
    shutil.copy(demo / "claims.csv", root / "claims.csv")
    shutil.copy(DEMO_TOPIC, root / "demo.yaml")
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
    article = (site / ORIGINAL.lstrip("/")).read_text(encoding="utf-8")
    _page(site, ROBOTS, article.replace(ORIGINAL, ROBOTS))
    _page(site, SHORT, "<html><head><title>Twitter note</title></head><body><article>"
                       "<p>Twitter said little about child safety today.</p>"
                       "</article></body></html>")
    _add_to_feed(site, [ROBOTS, PRIVATE, SHORT, MISSING])
    port = free_port()
    world = {"root": root, "site": site, "topic": root / "demo.yaml", "n": port,
             "db": f"sqlite:///{root / 'store.sqlite'}", "port": f"CLAIMWATCH_SITE_PORT={port}",
             "base": f"http://127.0.0.1:{port}"}
    _crawl(world)
    world["first"] = {path: explain(world, path) for path in (ROBOTS, PRIVATE, SHORT, MISSING)}
    world["first_rows"] = _rows(world)
    # Second crawl: the missing page now exists (an ordinary article) and a copy of a
    # stored article, declaring it canonical, is linked.
    _page(site, MISSING, article.replace(ORIGINAL, MISSING)
          .replace("Ella Irwin cites new figures", "Late story: Ella Irwin cites figures"))
    _page(site, COPY, article)  # its <link rel=canonical> names the stored original
    _add_to_feed(site, [COPY])
    _crawl(world)
    world["second"] = {path: explain(world, path) for path in (ROBOTS, COPY, MISSING)}
    world["second_rows"] = _rows(world)
    return world


def _url(world: dict[str, Any], path: str) -> str:
    return path if path.startswith("http") else world["base"] + path


def explain(world: dict[str, Any], path: str) -> str:
    """``claimwatch explain URL`` as a user runs it (no --topic-file: found from the record)."""
    from claimwatch.cli import main

    result = CliRunner().invoke(main, ["explain", _url(world, path), "--db", world["db"]])
    assert result.exit_code == 0, result.output
    return result.output


def _rows(world: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    engine = make_engine(world["db"])
    try:
        with session_factory(engine)() as session:
            rows = session.execute(select(UnstoredPage.url, UnstoredPage.reason,
                                          UnstoredPage.detail)).all()
            skipped = set(session.scalars(select(SkippedUrl.url)))
    finally:
        engine.dispose()
    base = world["base"]
    found = {url.removeprefix(base): (reason, detail) for url, reason, detail in rows}
    assert not {url.removeprefix(base) for url in skipped} & set(found), \
        "a page recorded as unstored must not be in skipped_urls (it is fetched again)"
    return found


def _why(output: str) -> str:
    match = re.search(r"^why not stored: (.*)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_robots_txt_refusal_is_named(world: dict[str, Any]) -> None:
    why = _why(world["first"][ROBOTS])
    assert why.startswith("robots.txt forbids fetching it"), why
    assert re.search(r"last met by a crawl on \d{4}-\d\d-\d\d \d\d:\d\d UTC", why)
    assert world["first_rows"][ROBOTS][0] == "robots"


def test_a_private_address_is_named_as_refused(world: dict[str, Any]) -> None:
    why = _why(world["first"][PRIVATE])
    assert why.startswith("its address was refused"), why
    assert "10.255.255.1 is a private address" in why


def test_too_little_text_is_named_with_its_length(world: dict[str, Any]) -> None:
    why = _why(world["first"][SHORT])
    assert why.startswith("too little text was extracted from it"), why
    assert re.search(r"it \(only \d+ characters of text;", why)


def test_a_download_error_names_the_http_status(world: dict[str, Any]) -> None:
    why = _why(world["first"][MISSING])
    assert why.startswith("it could not be downloaded (HTTP 404"), why


def test_an_already_stored_canonical_url_names_the_stored_article(
        world: dict[str, Any]) -> None:
    why = _why(world["second"][COPY])
    assert why.startswith("its canonical URL is already stored"), why
    assert re.search(r"already stored as article #\d+ \(" + re.escape(world["base"] + ORIGINAL),
                     why)


def test_the_record_keeps_one_row_per_url_and_later_crawls_retry(
        world: dict[str, Any]) -> None:
    first, second = world["first_rows"], world["second_rows"]
    assert {ROBOTS, PRIVATE, SHORT, MISSING} <= set(first)
    # the second crawl fetched the once-missing page and stored it: its record is gone,
    # and explain shows the stored article
    assert MISSING not in second
    assert world["second"][MISSING].startswith("article #")
    # the refusals were met again and overwritten, not added to
    assert second[ROBOTS] == first[ROBOTS] and second[PRIVATE] == first[PRIVATE]
    assert second[COPY][0] == "seen"


def test_a_url_no_crawl_met_says_so(world: dict[str, Any]) -> None:
    from claimwatch.cli import main

    result = CliRunner().invoke(main, [
        "explain", world["base"] + "/nowhere/2022/12/01/never.html", "--db", world["db"],
        "--topic-file", str(world["topic"])])
    assert result.exit_code == 0, result.output
    assert "never fetched by a crawl of this topic" in _why(result.output)


# -- the store's side, on SQLite and PostgreSQL ----------------------------------------------


def test_unstored_records_are_one_upsert_per_batch_and_removed_by_a_store(db_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from pipeline.unstored import UnstoredLog
    from storage.repository import MAX_UNSTORED_DETAIL, Store, UnstoredRecord
    from tests.test_storage import record

    engine = make_engine(db_url)
    init_db(engine)
    try:
        store = Store(session_factory(engine))
        log = UnstoredLog(store, "t", batch=3)
        log.add("https://a.example/1", "error", "HTTP 500")
        log.add("https://a.example/2", "robots", "forbidden by robots.txt")
        log.add("https://a.example/1", "error", "x" * 5000)  # the same URL: one row, latest
        assert len(log.pending) == 2
        log.add("https://a.example/3", "too_short", "only 12 characters of text")
        assert not log.pending  # the batch was written in one statement
        aged = UnstoredLog(store, "t", batch=100, max_age=0.0)
        aged.add("https://a.example/4", "error", "HTTP 503")
        assert not aged.pending  # a long-lived crawl does not hold records back
        later = datetime.now(UTC) + timedelta(hours=1)
        store.record_unstored("t", [UnstoredRecord("https://a.example/2", "error",
                                                   "ConnectionRefusedError", later)])
        with store.sessions() as session:
            rows = {u: (r, d, s) for u, r, d, s in session.execute(select(
                UnstoredPage.url, UnstoredPage.reason, UnstoredPage.detail,
                UnstoredPage.seen_at))}
        assert set(rows) == {f"https://a.example/{n}" for n in (1, 2, 3, 4)}
        assert rows["https://a.example/1"][1] == "x" * MAX_UNSTORED_DETAIL
        assert rows["https://a.example/2"][:2] == ("error", "ConnectionRefusedError")
        assert abs((rows["https://a.example/2"][2] - later).total_seconds()) < 1
        store.save(record(3))  # stored after all: its record goes
        with store.sessions() as session:
            left = set(session.scalars(select(UnstoredPage.url)))
        assert left == {"https://a.example/1", "https://a.example/2", "https://a.example/4"}
    finally:
        engine.dispose()
