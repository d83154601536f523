"""A long-lived crawl process: one Twisted reactor running crawl after crawl for the daemon.

    python -m crawler.crawlproc --db URL --result-fd 5 --parent-pid 4242 [--set NAME=VALUE ...]

A fresh Python + Scrapy process per crawl costs about 1.4 CPU-seconds before the
first request; checking a feed that has not changed (a conditional GET answered 304)
costs a few milliseconds. So the daemon keeps a few of these processes and feeds
them crawls, as ``claimwatch worker`` does with Redis jobs: each reads one batch per
line on stdin (JSON)::

    {"op": "crawl", "batch": 7, "topic_path": "...", "runs": [
        {"run_id": 12, "source": "wire", "trigger": "schedule"}, ...]}

(a run with ``"revisit": true`` fetches the source's recent articles again for edits,
as ``claimwatch crawl --revisit`` does: crawler/spiders/revisit.py),

crawls the batch's sources at once (the due sources of one topic, each with the
``crawl_runs`` row and lease the daemon took), writes each run's outcome into its
row as ``python -m crawler.run`` does (with the run's exit code, 0 ok or 1, in the
same write as ``finished``), and tells the daemon on ``--result-fd`` (JSON lines)::

    {"op": "started", "batch": 7}
    {"op": "run", "run_id": 12, "status": "ok", "error": null, "counts": {...}}
    {"op": "batch", "batch": 7, "rss": 123456789, "crawls": 41}

End of input (or ``{"op": "exit"}``) ends the process once its batch is done. SIGTERM
stops the running crawls as ``crawler.run`` does (their runs are ``interrupted``) and
ends the process; the daemon recycles a process after a number of crawls or when its
memory grew, and starts a new one when one dies, so a crash or leak never reaches it.
With ``--parent-pid`` the process dies with the daemon (as ``crawler.run``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from crawler.run import (
    EXIT_FAILED,
    EXIT_OK,
    _configure_logging,
    _die_with_parent,
    parse_with_settings,
)

logger = logging.getLogger(__name__)

STATISTICS_EVERY = 60.0  # seconds between planner-statistics checks (one per crawl in crawl.run)


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (this one by default), from /proc; 0 where unknown."""
    try:
        with open(f"/proc/{pid or 'self'}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Batch:
    """One line of input being crawled: its runs, crawlers and counts writer."""

    number: int
    topic: Any
    pending: set[int] = field(default_factory=set)  # run ids not finished yet
    writer: Any = None


class CrawlProcess:
    """The reactor side: batches in from a reader thread, outcomes out on ``out``."""

    def __init__(self, db_url: str, overrides: dict[str, Any], out: IO[str]) -> None:
        from crawler.runner import base_settings
        from storage.db import make_engine, session_factory
        from storage.repository import Store

        self.db_url = db_url
        # Scrapy's check for generator callbacks that return a value parses each callback's
        # source at every crawl (the spider instance, so its cache, is new each time): half
        # the CPU of checking an unchanged feed. claimwatch's spiders are the project's own.
        self.overrides = {"WARN_ON_GENERATOR_RETURN_VALUE": False, **overrides,
                          "CLAIMWATCH_DB_URL": db_url}
        self.settings = base_settings(self.overrides)
        self.settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
        self.engine = make_engine(db_url)
        self.store = Store(session_factory(self.engine))
        self.out = out
        self.crawls = 0
        self.batches: dict[int, Batch] = {}
        self.closing = False
        self.topics: dict[str, tuple[tuple[int, int], Any, Any]] = {}  # path -> stamp, topic,
        #                                                               settings
        self.claims_synced: dict[str, Any] = {}  # topic name -> the claims last mirrored
        self.sites: dict[str, str] = {}  # topic file -> URL of its served serve_dir
        self._stack = ExitStack()
        self._process: Any = None
        self._statistics_at = 0.0

    # -- life cycle ------------------------------------------------------------------------------

    def run(self, source: IO[str]) -> None:
        """Serve batches from ``source`` until it ends or a signal stops the reactor."""
        from scrapy.crawler import CrawlerProcess
        from scrapy.utils.reactor import install_reactor, is_reactor_installed

        if not is_reactor_installed():
            install_reactor(self.settings["TWISTED_REACTOR"], self.settings["ASYNCIO_EVENT_LOOP"])
        self._process = CrawlerProcess(self.settings)
        logging.getLogger("scrapy").setLevel(self.settings.get("LOG_LEVEL"))
        reader = threading.Thread(target=self._read, args=(source,), daemon=True,
                                  name="claimwatch-crawl-input")
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor
        reactor.callWhenRunning(reader.start)
        try:
            self._process.start(stop_after_crawl=False)
        finally:
            self._stack.close()
            self.engine.dispose()

    def _read(self, source: IO[str]) -> None:
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor
        for line in source:
            try:
                message = json.loads(line)
            except ValueError:
                logger.error("crawl process: unreadable input line %r", line[:200])
                continue
            if message.get("op") == "exit":
                break
            reactor.callFromThread(self.start_batch, message)
        reactor.callFromThread(self._close)

    def _close(self) -> None:
        self.closing = True
        self._stop_when_idle()

    def _stop_when_idle(self) -> None:
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor
        if self.closing and not self.batches and reactor.running:
            reactor.stop()

    def _send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    # -- batches ---------------------------------------------------------------------------------

    def start_batch(self, message: dict[str, Any]) -> None:
        """Start a crawler for each run of the batch; a batch that cannot start fails its runs."""
        from config.loader import ConfigError

        number = int(message.get("batch", 0))
        runs = list(message.get("runs") or [])
        try:
            topic, settings = self._topic(message["topic_path"])
            self._sync_claims(topic)
        except Exception as exc:  # noqa: BLE001 - a bad topic file, the database away: the
            # batch's runs fail with the reason, the process goes on with the next batch
            error = (str(exc) if isinstance(exc, ConfigError | OSError)
                     else f"{type(exc).__name__}: {exc}")
            logger.error("crawl process: batch %s could not start: %s", number, error)
            for run in runs:
                self._fail(int(run["run_id"]), str(run.get("source", "?")), error)
            self._send({"op": "batch", "batch": number, "rss": rss_bytes(),
                        "crawls": self.crawls})
            return
        batch = Batch(number, topic)
        self.batches[number] = batch
        self._send({"op": "started", "batch": number})  # its timeouts count from here
        started = (self._start_run(batch, settings, run) for run in runs)
        crawlers = [item for item in started if item is not None]
        if crawlers:
            from crawler.runner import _CountsWriter

            interval = settings.getfloat("CLAIMWATCH_RUN_COUNTS_INTERVAL", 2.0)
            batch.writer = _CountsWriter(self.store.sessions, crawlers, interval).__enter__()
        self._batch_done_if_empty(batch)

    def _start_run(self, batch: Batch, settings: Any, run: dict[str, Any]) -> Any:
        from scrapy.crawler import Crawler

        from crawler.runner import SourceSummary, _crawl_failed
        from crawler.spiders import SPIDERS_BY_KIND
        from crawler.spiders.revisit import RevisitSpider

        run_id, name = int(run["run_id"]), str(run["source"])
        try:
            source = batch.topic.source(name)
        except KeyError as exc:
            self._fail(run_id, name, str(exc.args[0]))
            return None
        spider_cls = RevisitSpider if run.get("revisit") else SPIDERS_BY_KIND.get(source.kind)
        if spider_cls is None:
            self._fail(run_id, name, f"source kind {source.kind!r} unsupported")
            return None
        summary = SourceSummary(source=name, kind=source.kind, run_id=run_id,
                                revisit=bool(run.get("revisit")))
        crawler: Any = Crawler(spider_cls, settings)
        crawler._claimwatch_store = self.store  # one engine for every crawl (pipeline/context.py)
        crawler._claimwatch_topic = batch.topic
        batch.pending.add(run_id)
        self.crawls += 1
        deferred = self._process.crawl(crawler, source=name)
        deferred.addErrback(_crawl_failed, summary)
        deferred.addBoth(lambda _: self._run_done(batch, summary, crawler))
        return (summary, crawler)

    def _run_done(self, batch: Batch, summary: Any, crawler: Any) -> None:
        from crawler.runner import conclude, record_outcome

        try:
            conclude(summary, crawler)
            record_outcome(self.store, batch.topic.name, summary,
                           exit_code=EXIT_OK if summary.status == "ok" else EXIT_FAILED)
        except Exception as exc:  # noqa: BLE001 - told to the daemon, which records the failure
            logger.exception("crawl run %s: outcome not recorded", summary.run_id)
            summary.status, summary.error = "failed", f"outcome not recorded: {exc}"
        self._send({"op": "run", "run_id": summary.run_id, "source": summary.source,
                    "status": summary.status, "error": summary.error, "counts": summary.counts})
        batch.pending.discard(summary.run_id)
        self._batch_done_if_empty(batch)

    def _batch_done_if_empty(self, batch: Batch) -> None:
        if batch.pending:
            return
        if batch.writer is not None:
            batch.writer.stop()
        self.batches.pop(batch.number, None)
        if time.monotonic() - self._statistics_at > STATISTICS_EVERY:
            from storage.db import refresh_statistics

            self._statistics_at = time.monotonic()
            refresh_statistics(self.engine)  # the crawls grew the tables: keep the plans flat
        self._send({"op": "batch", "batch": batch.number, "rss": rss_bytes(),
                    "crawls": self.crawls})
        self._stop_when_idle()

    def _fail(self, run_id: int, source: str, error: str) -> None:
        """A run that could not start: its row says why (as ``crawler.run`` does)."""
        from crawler.run import _fail_run

        logger.error("crawl run %s (%s): %s", run_id, source, error)
        try:
            _fail_run(self.db_url, run_id, error, exit_code=EXIT_FAILED)
        except Exception:  # noqa: BLE001 - the daemon records it from our message
            logger.exception("crawl run %s: failure not recorded", run_id)
        self._send({"op": "run", "run_id": run_id, "source": source, "status": "failed",
                    "error": error, "counts": {}})

    def _topic(self, path: str) -> tuple[Any, Any]:
        """The topic file's topic and crawl settings, parsed again only when it changed."""
        from config.loader import load_topic

        stat = os.stat(path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self.topics.get(path)
        if cached is None or cached[0] != stamp:
            topic = load_topic(path)
            cached = self.topics[path] = (stamp, topic, self._batch_settings(topic))
        return cached[1], cached[2]

    def _sync_claims(self, topic: Any) -> None:
        """Mirror the topic's claims into the store when they changed since the last crawl."""
        if self.claims_synced.get(topic.name) != topic.claims:
            self.store.sync_claims(topic.name, topic.claims)
            self.claims_synced[topic.name] = topic.claims

    def _batch_settings(self, topic: Any) -> Any:
        from crawler.runner import _local_site, base_settings

        overrides = {**self.overrides, "CLAIMWATCH_TOPIC_FILE": str(topic.path)}
        if topic.serve_dir is not None:
            key = str(topic.path)
            if key not in self.sites:  # served for the process's life, on the usual port
                port = int(base_settings(overrides).getint("CLAIMWATCH_SITE_PORT", 8765))
                self.sites[key] = self._stack.enter_context(_local_site(topic, port)) or ""
            overrides.setdefault("CLAIMWATCH_SITE_URL", self.sites[key])
            overrides.setdefault("CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES", True)
            overrides.setdefault("AUTOTHROTTLE_START_DELAY", 0.0)
        settings = base_settings(overrides)
        settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
        return settings


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m crawler.crawlproc",
        description="Run the daemon's crawls, one batch after another, in this process.",
    )
    parser.add_argument("--db", dest="db_url", required=True, help="database URL")
    parser.add_argument("--result-fd", type=int, required=True,
                        help="file descriptor the outcomes are written to (JSON lines)")
    parser.add_argument("--parent-pid", type=int, help="die when this process (the daemon) dies")
    return parse_with_settings(parser, argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.parent_pid:
        _die_with_parent(args.parent_pid)
    _configure_logging(args.verbose, f"process {os.getpid()}", None)
    out = os.fdopen(args.result_fd, "w", encoding="utf-8", buffering=1)
    # Scrapy's INFO lines (spider opened, stats dumps) cost real CPU per crawl, and each
    # crawler's log counter sees every line of every crawl running beside it: below -v
    # they are not even made.
    level = "WARNING" if args.verbose == 0 else "INFO" if args.verbose == 1 else "DEBUG"
    settings = {"LOG_LEVEL": level, **args.settings}
    CrawlProcess(args.db_url, settings, out).run(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
