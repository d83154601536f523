"""Shared fixtures: paths to the shared data, a local HTTP server, temp databases."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# claims indexes cached on disk by the tests go to a temporary directory, not the user's
os.environ.setdefault("CLAIMWATCH_CACHE_DIR", tempfile.mkdtemp(prefix="claimwatch-test-cache-"))
SHARED_DATA = Path(os.environ.get("CLAIMWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
DEMO_TOPIC = REPO / "config" / "topics" / "demo.yaml"
DEMO_SITE = REPO / "config" / "topics" / "demo-site"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set CLAIMWATCH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_site_url() -> Iterator[str]:
    """The bundled demo site served over real HTTP on 127.0.0.1."""
    from crawler.localsite import serve_directory

    with serve_directory(DEMO_SITE) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'claimwatch.sqlite'}"


# -- PostgreSQL and Redis (tests/services.py): skipped with the reason when not reachable ------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL into this session's own PostgreSQL schema, migrated to head; dropped afterwards."""
    from tests.services import postgres_schema

    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a temp SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claimwatch.sqlite'}"
    from tests.services import empty_tables

    url: str = request.getfixturevalue("postgres_url")
    empty_tables(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Any]:
    """A migrated, empty store on each backend (SQLite, PostgreSQL: see ``db_url``)."""
    from storage.db import init_db, make_engine, session_factory
    from storage.repository import Store

    engine = make_engine(db_url)
    init_db(engine)
    yield Store(session_factory(engine))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    from tests.services import REDIS_URL, redis_error, unavailable

    error = redis_error()
    if error:
        unavailable("Redis", REDIS_URL, error)
    return REDIS_URL


# -- the reviewed-topic world of tests/review_fixtures.py and the review page on it ----------


@pytest.fixture
def world(tmp_path: Path) -> Any:
    from tests.review_fixtures import make_world

    return make_world(tmp_path)


@pytest.fixture
def sessions(world: Any) -> Iterator[Any]:
    from storage.db import open_db

    engine, factory = open_db(world.db_url)
    yield factory
    engine.dispose()


@pytest.fixture
def client(world: Any, sessions: Any) -> Any:
    """The review page (no crawl trigger) through an in-process WSGI client."""
    from claimwatch.web import make_app
    from tests.test_web import Client

    return Client(make_app(sessions, [world.topic]))


# -- headless Chromium (tests/test_browser*.py; a module gives its own ``demo_db`` URL) ---------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def site(demo_db: str) -> Iterator[tuple[str, Any]]:
    """The review app on the module's ``demo_db``, served on 127.0.0.1 in a thread."""
    from claimwatch.web import make_app, make_server
    from config.loader import load_topic
    from storage.db import open_db

    engine, sessions = open_db(demo_db)
    app = make_app(sessions, [load_topic(DEMO_TOPIC)])
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", sessions
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        engine.dispose()


def navigate(browser: Any, action: Any, timeout: float = 15) -> None:
    """Run ``action`` (a click or an ENTER that loads a new page) and wait until the new page
    has replaced the old one and finished loading. Looked up straight after the action,
    elements may still come from the page it replaces: the navigation starts after the
    key or click event, and WebDriver does not always wait for it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    action()
    wait = WebDriverWait(browser, timeout)
    wait.until(ec.staleness_of(old))
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's headless Chromium through its chromedriver (never a downloaded browser)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,1400",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager (which downloads drivers) is never run.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


