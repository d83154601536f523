"""The desk pages in a real headless Chromium: search, an export download, a claim's
timeline and the topic's chart, on the demo crawl (fixtures of tests/test_browser.py).

With ``CLAIMWATCH_SCREENSHOT_DIR`` set, the list and a claim's timeline are also saved
there (README's screenshots are made this way: ``docs/screenshots``).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMEDRIVER, CHROMIUM, DEMO_TOPIC, REPO, navigate

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run does it)",
)
TOPIC = "demo-twitter-child-safety"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo topic crawled once, as a user would (no hostile article: the screenshots
    show the demo; hostile input on these pages is tested in tests/test_browser.py)."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path_factory.mktemp('browser-desk') / 'demo.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-m", "claimwatch.cli", "crawl", str(DEMO_TOPIC), "--db", url,
         "--set", "CLAIMWATCH_SITE_PORT=0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return url


def screenshot(browser: Any, tmp_path: Path, name: str) -> None:
    browser.save_screenshot(str(tmp_path / name))
    folder = os.environ.get("CLAIMWATCH_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / name))


def test_search_in_chromium(site: tuple[str, Any], browser: Any,
                            tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, _ = site
    browser.get(base + "/")
    navigate(browser, browser.find_element(By.LINK_TEXT, "Search").click)
    box = browser.find_element(By.CSS_SELECTOR, "input[type=search][name=q]")
    # the hits of the results page, not the (hit-less) search page ENTER leaves
    navigate(browser, lambda: box.send_keys('"child sexual abuse" -Tesla', Keys.ENTER))
    assert "q=" in browser.current_url, browser.current_url
    hits = browser.find_elements(By.CSS_SELECTOR, "article.hit")
    assert hits, browser.find_element(By.TAG_NAME, "main").text
    marks = browser.find_elements(By.CSS_SELECTOR, "article.hit mark")
    marked = {word for m in marks for word in m.text.lower().split()}
    assert marks and marked <= {"child", "sexual", "abuse"}
    first_title = hits[0].find_element(By.CSS_SELECTOR, "h2 a").text
    navigate(browser, hits[0].find_element(By.CSS_SELECTOR, "h2 a").click)
    assert browser.find_element(By.ID, "title").text == first_title


def test_export_download_in_chromium(site: tuple[str, Any], browser: Any,
                                     tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base, _ = site
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(downloads)})
    browser.get(base + "/?status=all&flag=conflict")
    shown = {e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "article.item")}
    browser.find_element(By.CSS_SELECTOR, "p.downloads a[download]").click()
    deadline = time.monotonic() + 20
    files: list[Path] = []
    while time.monotonic() < deadline:
        files = [f for f in downloads.iterdir() if f.suffix == ".csv"]
        if files:
            break
        time.sleep(0.2)
    assert files, list(downloads.iterdir())
    with files[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {f"article-{r['article_id']}" for r in rows} == shown
    assert all("conflict" in r["flags"].split("|") for r in rows)
    assert any(r["conflict"] == "1" for r in rows)


def test_claim_timeline_in_chromium(site: tuple[str, Any], browser: Any,
                                    tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base, _ = site
    browser.set_window_size(1280, 1000)
    browser.get(base + "/")
    screenshot(browser, tmp_path, "list.png")
    browser.get(base + f"/claims?topic={TOPIC}")
    navigate(browser, browser.find_element(
        By.CSS_SELECTOR, 'a[href*="/claim/tns-staff-25-of-1600"]').click)
    svg = browser.find_element(By.CSS_SELECTOR, "svg.chart.timeline")
    assert svg.size["width"] > 600 and svg.size["height"] > 60
    marks = browser.find_elements(By.CSS_SELECTOR, "svg.chart.timeline a.mark")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.timeline-table tbody tr")
    assert len(marks) == len(rows) >= 3
    kinds = {m.get_attribute("class").split()[-1] for m in marks}
    assert "mark-first_report" in kinds and "mark-copy" in kinds
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart .mark-first_report")) == 1
    screenshot(browser, tmp_path, "claim-timeline.png")
    # Each mark leads to its article's review page.
    href = marks[0].get_dom_attribute("href")  # an SVG link: its attribute, not a property
    assert href.startswith("/article/")
    browser.get(base + href)
    assert browser.find_element(By.ID, "title").text
    browser.get(base + f"/topic/{TOPIC}?days=30")
    assert browser.find_element(By.CSS_SELECTOR, "svg.chart.daily").size["height"] > 100
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart.daily rect")


def test_desk_pages_fit_a_400px_screen(site: tuple[str, Any], browser: Any) -> None:
    base, _ = site
    browser.set_window_size(400, 900)
    try:
        for path in ("/search?q=twitter", f"/claim/tns-staff-25-of-1600?topic={TOPIC}",
                     f"/topic/{TOPIC}"):
            browser.get(base + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)
    finally:
        browser.set_window_size(1280, 1400)


def _status(sessions: Any, aid: int) -> str:
    from storage.models import Article

    with sessions() as session:
        return session.get(Article, aid).review_status


def test_keyboard_triage_in_place_with_undo(site: tuple[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, sessions = site
    browser.set_window_size(1280, 1000)
    browser.get(base + "/")
    browser.execute_script("window.__stayed = 'same page'")
    first = browser.find_elements(By.CSS_SELECTOR, "article.item")[0]
    aid = int(first.get_attribute("data-article"))
    labels = [b.get_attribute("aria-label") for b in
              browser.find_elements(By.CSS_SELECTOR, "article.item button")]
    assert len(labels) == len(set(labels)) and all(labels)  # a distinct name per button
    keys = ActionChains(browser)
    keys.send_keys("j").perform()
    assert "current" in first.get_attribute("class")
    keys.send_keys("r").perform()
    WebDriverWait(browser, 10).until(ec.staleness_of(first))
    toast = browser.find_element(By.CSS_SELECTOR, ".toast")
    assert "marked reviewed" in toast.text
    assert browser.execute_script("return window.__stayed") == "same page"  # no reload
    assert _status(sessions, aid) == "reviewed"
    ActionChains(browser).send_keys("u").perform()
    WebDriverWait(browser, 10).until(
        lambda b: b.find_elements(By.ID, f"article-{aid}") and "undone" in
        b.find_element(By.CSS_SELECTOR, ".toast").text)
    assert _status(sessions, aid) == "open"
    # Bulk: select two with x, then R.
    cards = browser.find_elements(By.CSS_SELECTOR, "article.item")
    picked = [int(c.get_attribute("data-article")) for c in cards[:2]]
    browser.execute_script("document.querySelectorAll('article.item').forEach("
                           "c => c.classList.remove('current'))")
    ActionChains(browser).send_keys("j").send_keys("x").send_keys("j").send_keys("x") \
        .send_keys("R").perform()
    WebDriverWait(browser, 10).until(
        lambda b: not any(b.find_elements(By.ID, f"article-{i}") for i in picked))
    assert [_status(sessions, i) for i in picked] == ["reviewed", "reviewed"]
    assert "2 articles marked reviewed" in browser.find_element(By.CSS_SELECTOR, ".toast").text
    assert browser.execute_script("return window.__stayed") == "same page"
    # Article page: c confirms the first open match.
    browser.get(base + f"/article/{aid}")
    open_matches = browser.find_elements(By.CSS_SELECTOR, "tr.match-open")
    assert open_matches
    ActionChains(browser).send_keys("c").perform()
    WebDriverWait(browser, 10).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "tr.match-open")) == len(open_matches) - 1)
    assert browser.find_elements(By.CSS_SELECTOR, "tr.match-confirmed")
    assert "local" in browser.find_element(By.ID, "history").text


def test_list_works_at_400px(site: tuple[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base, _ = site
    browser.set_window_size(400, 900)
    try:
        for path in ("/?status=all", "/article/1"):
            browser.get(base + path)
            width = browser.execute_script("return window.innerWidth")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)
            for button in browser.find_elements(By.CSS_SELECTOR, "main button"):
                if button.is_displayed():
                    rect = button.rect
                    assert rect["x"] >= 0 and rect["x"] + rect["width"] <= width + 1, \
                        (path, button.text, rect)
    finally:
        browser.set_window_size(1280, 1400)

def test_sign_in_in_chromium(site: tuple[str, Any], browser: Any) -> None:
    """Last in this module: once an account exists, every page asks to sign in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from claimwatch.accounts import add_user

    base, sessions = site
    add_user(sessions, "erin", "a long enough passphrase", "reviewer")
    browser.delete_all_cookies()
    browser.get(base + "/search?q=twitter")
    assert "/login" in browser.current_url, browser.current_url
    browser.find_element(By.NAME, "name").send_keys("erin")
    browser.find_element(By.NAME, "password").send_keys("wrong password!")
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    # the click starts a navigation: wait for the answer page, not the form it replaces
    alert = WebDriverWait(browser, 15).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
    assert "wrong name or password" in alert.text
    browser.find_element(By.NAME, "password").send_keys("a long enough passphrase")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click)
    assert browser.current_url.endswith("/search?q=twitter"), browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, "article.hit")
    assert "erin (reviewer)" in browser.find_element(By.TAG_NAME, "header").text
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    WebDriverWait(browser, 15).until(lambda b: "/login" in b.current_url)
