"""Faults injected into a test crawl (a subprocess), switched on by settings.

Add ``EXTENSIONS = {"tests.fault_hooks.Faults": 0}`` to a test crawl's settings, then:

- ``CLAIMWATCH_TEST_KILL_STAGE = "dedup"|"store"`` with ``CLAIMWATCH_TEST_KILL_AT = N``:
  the crawl process SIGKILLs itself in that stage of its N-th article: after the dedup
  stage did its work (nothing stored yet), or inside the store transaction after the
  article's rows were flushed and before the commit;
- ``CLAIMWATCH_TEST_SQLITE_PAGES = K``: the SQLite file may grow by K pages from its size
  when the crawl opens it (``PRAGMA max_page_count``), then every write that needs a
  new page fails with SQLITE_FULL, "database or disk is full", as on a full disk;
- ``CLAIMWATCH_TEST_SITEMAP_PARSE_SLEEP = S``: every sitemap parse takes S seconds longer
  (a sleep wherever the parse runs), and the stats count the reactor's ticks (a 0.05 s
  LoopingCall) during that sleep, ``claimwatch/test/reactor_ticks_during_parse``: 0 when
  the parse holds the reactor thread.
"""

from __future__ import annotations

import os
import signal
from typing import Any


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Faults:
    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        stage = settings.get("CLAIMWATCH_TEST_KILL_STAGE")
        at = settings.getint("CLAIMWATCH_TEST_KILL_AT", 0)
        if stage == "dedup":
            self._kill_in_dedup(at)
        elif stage == "store":
            self._kill_in_store(at)
        pages = settings.getint("CLAIMWATCH_TEST_SQLITE_PAGES", 0)
        if pages:
            self._limit_sqlite(pages)
        parse_sleep = settings.getfloat("CLAIMWATCH_TEST_SITEMAP_PARSE_SLEEP", 0)
        if parse_sleep:
            self._slow_sitemap_parse(crawler, parse_sleep)

    @classmethod
    def from_crawler(cls, crawler: Any) -> Faults:
        return cls(crawler)

    @staticmethod
    def _kill_in_dedup(at: int) -> None:
        from pipeline.pipelines import DedupPipeline

        original = DedupPipeline._dedup
        seen = [0]

        def dedup(self: Any, item: dict[str, Any]) -> dict[str, Any]:
            result = original(self, item)
            seen[0] += 1
            if seen[0] == at:
                _die()
            return result

        DedupPipeline._dedup = dedup  # type: ignore[method-assign]

    @staticmethod
    def _kill_in_store(at: int) -> None:
        from sqlalchemy import Engine, event
        from sqlalchemy.orm import Session

        pending = [False]
        seen = [0]

        @event.listens_for(Engine, "after_cursor_execute")
        def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO ARTICLES "):
                pending[0] = True

        @event.listens_for(Session, "before_commit")
        def before_commit(session: Session) -> None:
            if pending[0]:  # the article and its rows are written, not committed
                pending[0] = False
                seen[0] += 1
                if seen[0] == at:
                    _die()

    @staticmethod
    def _slow_sitemap_parse(crawler: Any, seconds: float) -> None:
        import time

        from scrapy import signals
        from twisted.internet import task

        import crawler.spiders.sitemap as sitemap_spider

        ticks = [0]
        loop = task.LoopingCall(lambda: ticks.__setitem__(0, ticks[0] + 1))
        original = sitemap_spider.parse_sitemap

        def parse(*args: Any, **kwargs: Any) -> Any:
            before = ticks[0]
            time.sleep(seconds)
            crawler.stats.inc_value("claimwatch/test/reactor_ticks_during_parse",
                                    ticks[0] - before)
            return original(*args, **kwargs)

        def opened() -> None:  # not the loop's Deferred: the spider would wait for it
            loop.start(0.05)

        def closed() -> None:
            loop.stop()

        sitemap_spider.parse_sitemap = parse
        crawler.signals.connect(opened, signal=signals.spider_opened, weak=False)
        crawler.signals.connect(closed, signal=signals.spider_closed, weak=False)

    @staticmethod
    def _limit_sqlite(pages: int) -> None:
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        limit: list[int] = []

        @event.listens_for(Pool, "checkout")  # connections opened before the crawl, too
        def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not limit:
                cursor.execute("PRAGMA page_count")
                limit.append(int(cursor.fetchone()[0]) + pages)
            cursor.execute(f"PRAGMA max_page_count = {limit[0]}")
            cursor.close()
