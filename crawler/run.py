"""One crawl in its own process: what the daemon runs for every scheduled or manual crawl.

    python -m crawler.run TOPIC_FILE --source NAME --db URL --trigger schedule \\
        --run-id 17 --parent-pid 4242 [--set NAME=VALUE ...] [-v]

As scrapyd does, the daemon runs each crawl in a subprocess, so a crash, hang or
leak in one crawl never harms the daemon (and a Twisted reactor, which cannot be
restarted, lives exactly once per process). The daemon has already taken the
source's lease and written the ``crawl_runs`` row (``--run-id``); this process
crawls and writes the row's outcome. Without ``--run-id`` it behaves like
``claimwatch crawl``: it takes the lease and writes the row itself.

With ``--parent-pid`` the process dies with its parent (the daemon): on Linux the
kernel sends it SIGKILL when the parent goes, elsewhere a watchdog thread notices.
A crawl killed that way is marked ``interrupted`` when the daemon starts again.

Exit status: 0 the crawl succeeded, 1 it failed or was interrupted (the reason is
in ``crawl_runs``), 2 it could not start (bad arguments, topic file or source),
3 the source is being crawled by someone else.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
EXIT_BUSY = 3

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Get SIGKILL when the parent dies (Linux), and watch for it everywhere."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            logger.debug("prctl(PR_SET_PDEATHSIG) unavailable; relying on the watchdog")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(EXIT_FAILED)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="claimwatch-parent-watch", daemon=True).start()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m crawler.run",
        description="Crawl one source of a topic once, in this process (the daemon's worker).",
    )
    parser.add_argument("topic_file")
    parser.add_argument("--source", required=True, help="the source's name in the topic file")
    parser.add_argument("--db", dest="db_url", help="database URL (default: $CLAIMWATCH_DB)")
    parser.add_argument("--trigger", choices=("schedule", "manual"), default="manual")
    parser.add_argument("--run-id", type=int, help="the crawl_runs row the daemon wrote")
    parser.add_argument("--parent-pid", type=int, help="die when this process (the daemon) dies")
    return parse_with_settings(parser, argv)


def parse_with_settings(parser: argparse.ArgumentParser,
                        argv: Sequence[str] | None) -> argparse.Namespace:
    """Add the options every crawl process takes (``--set NAME=VALUE``, ``-v``) to
    ``parser``, parse ``argv``, and give the ``--set`` values as ``args.settings``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE", help="override a setting (repeatable)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    settings: dict[str, str] = {}
    for item in args.overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            parser.error(f"--set {item!r} is not NAME=VALUE")
        settings[name.strip()] = value
    args.settings = settings
    return args


def _configure_logging(verbose: int, source: str, run_id: int | None) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    tag = f"crawl {source}" + (f" run {run_id}" if run_id is not None else "")
    logging.basicConfig(
        level=level, stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s [{tag}] %(name)s: %(message)s",
    )
    # Scrapy resets the root logger's level when a CrawlerProcess starts: filter at the handler.
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
    if verbose < 2:
        for noisy in ("scrapy", "twisted", "trafilatura", "htmldate", "courlan", "filelock"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _fail_run(db_url: str | None, run_id: int, error: str, exit_code: int | None = None) -> None:
    """The crawl could not start: record why in the daemon's run row (with the exit
    code a daemon's crawl process reports for it, in the same write)."""
    from sqlalchemy import update

    from storage.db import make_engine, session_factory
    from storage.models import CrawlRun, utcnow

    engine = make_engine(db_url)
    try:
        with session_factory(engine).begin() as session:
            session.execute(
                update(CrawlRun).where(CrawlRun.id == run_id, CrawlRun.status == "running")
                .values(status="failed", finished=utcnow(), error=error,
                        **({} if exit_code is None else {"exit_code": exit_code}))
            )
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.parent_pid:
        _die_with_parent(args.parent_pid)
    _configure_logging(args.verbose, args.source, args.run_id)

    from config.loader import ConfigError
    from crawler.runner import CrawlError, SourcesBusy, run_crawl

    try:
        summary = run_crawl(
            args.topic_file,
            sources=[args.source],
            db_url=args.db_url,
            settings=args.settings,
            trigger=args.trigger,
            run_ids={args.source: args.run_id} if args.run_id is not None else None,
            lease=args.run_id is None,
        )
    except (ConfigError, CrawlError) as exc:
        logger.error("%s", exc)
        if args.run_id is not None:
            _fail_run(args.db_url, args.run_id, str(exc))
        return EXIT_BUSY if isinstance(exc, SourcesBusy) else EXIT_ERROR
    result = summary.sources[0]
    logger.info("%s/%s: %s %s%s", summary.topic, result.source, result.status, result.counts,
                f" ({result.error})" if result.error else "")
    return EXIT_OK if result.status == "ok" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
