"""The web app on PostgreSQL: every page and /api/v1 route on the review world, the
review actions with undo, and keyboard triage in headless Chromium (the same app the
SQLite tests drive; here the store is the production one)."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from claimwatch.web import make_app, make_server
from storage.db import open_db
from storage.models import Article
from tests.conftest import CHROMEDRIVER, CHROMIUM
from tests.review_fixtures import TOPIC, World, make_world
from tests.test_web import Client
from tests.test_web_desk import assert_inert_with_charts


@pytest.fixture
def pg_world(tmp_path: Path, postgres_url: str) -> Iterator[tuple[World, Any]]:
    from tests.services import empty_tables

    empty_tables(postgres_url)
    world = make_world(tmp_path, postgres_url)
    engine, sessions = open_db(postgres_url)
    try:
        yield world, sessions
    finally:
        engine.dispose()


def _status(sessions: Any, aid: int) -> str:
    with sessions() as session:
        return str(session.get(Article, aid).review_status)


def test_every_page_and_api_route_on_postgresql(pg_world: tuple[World, Any]) -> None:
    world, sessions = pg_world
    client = Client(make_app(sessions, [world.topic]))
    aid = world.ids["original"]
    pages = ["/", "/?status=all&flag=conflict", f"/article/{aid}", "/claims",
             f"/claim/engineers-half?topic={quote(TOPIC)}", f"/topic/{quote(TOPIC)}",
             "/search?q=advertisers", "/sources", "/digest?since=2000-01-01"]
    for page in pages:
        reply = client.get(page)
        assert reply.status == 200, (page, reply.text[:300])
        assert_inert_with_charts(reply.text)  # hostile titles and outlets stay text
    assert "Advertisers pause Twitter spending" in client.get("/search?q=advertisers").text
    for path in ["/api/v1/articles", f"/api/v1/articles/{aid}", "/api/v1/claims",
                 "/api/v1/claims/engineers-half", "/api/v1/search?q=advertisers",
                 "/api/v1/runs", "/api/v1/session", "/api/v1/openapi.json"]:
        assert client.get(path).status == 200, path
    export = client.get(f"/export?format=csv&topic={quote(TOPIC)}")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert export.status == 200 and {int(r["article_id"]) for r in rows} >= {aid}
    other = world.ids["other"]
    csrf = client.csrf("/")
    done = client.post(f"/api/v1/articles/{other}/review", {"csrf": csrf, "status": "reviewed"},
                       headers={"Accept": "application/json"})
    assert done.status == 200 and _status(sessions, other) == "reviewed"
    undone = client.post("/undo", {"csrf": csrf}, headers={"Accept": "application/json"})
    assert undone.status == 200 and _status(sessions, other) == "open"
    bulk = client.request("POST", "/articles/review",
                          body=f"csrf={csrf}&status=dismissed&ids={aid}&ids={other}".encode())
    assert bulk.status == 303
    assert [_status(sessions, i) for i in (aid, other)] == ["dismissed", "dismissed"]


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="needs Debian's chromium and chromium-driver")
def test_keyboard_triage_on_postgresql_in_chromium(pg_world: tuple[World, Any],
                                                   browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    world, sessions = pg_world
    server = make_server("127.0.0.1", 0, make_app(sessions, [world.topic]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        first = browser.find_elements(By.CSS_SELECTOR, "article.item")[0]
        aid = int(first.get_attribute("data-article"))
        ActionChains(browser).send_keys("j").send_keys("r").perform()
        WebDriverWait(browser, 10).until(ec.staleness_of(first))
        assert _status(sessions, aid) == "reviewed"
        ActionChains(browser).send_keys("u").perform()
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, f"article-{aid}"))
        assert _status(sessions, aid) == "open"
        assert browser.execute_script("return window.__pwned") is None  # hostile card inert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
