"""Many feeds, cheaply: the daemon's scheduling and crawl-process path over local feeds.

    .venv/bin/python benchmarks/feed_scheduling.py                       # 1,200 feeds in 3 min
    .venv/bin/python benchmarks/feed_scheduling.py --feeds 10000 --window 1800   # the real 30 min

Serves ``--feeds`` RSS feeds from a local HTTP server (a process of its own): each feed
answers a conditional GET with 304 when its ETag matches, except one in ``--changing``,
which has a new item (and a new ETag) at every fetch. The feeds are sources of
``--topics`` topic files; the daemon (:class:`claimwatch.daemon.Daemon`,
in this process, no web server) starts, every feed is crawled once to store its ETag,
then each job's next due time is spread evenly over one window (as in a daemon that has
run for a while) and the window runs: APScheduler fires each job, the supervisor
batches the due sources of a topic and feeds them to the long-lived crawl processes.

Prints the feeds checked per minute (and the rate extrapolated to 30 minutes when the
window is shorter), the CPU per checked feed, daemon and crawl processes together
(``resource`` for this process, ``/proc`` for the crawl processes; the feed server's
CPU is not counted), the lag from each feed's due time to the end of its crawl
(p50/p95), the crawl processes started, and the daemon's memory (VmRSS) before and
after the window. The reference figure, a fresh ``python -m crawler.run`` process
for one unchanged feed, is measured in the same run (``--reference`` times, median).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from claimwatch.daemon import Daemon, DaemonOptions  # noqa: E402
from storage.models import CrawlRun  # noqa: E402

SETTINGS = {"CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "True", "AUTOTHROTTLE_ENABLED": "False",
            "ROBOTSTXT_OBEY": "False", "CLAIMWATCH_WORKERS": "0"}
ARTICLE = ("<!doctype html><html><head><title>Twitter child safety {n}</title></head><body>"
           "<article><h1>Twitter child safety report {n}</h1><p>Twitter said its child safety "
           "team had been cut, according to report {n}, and that reports were handled by fewer "
           "moderators than a year before.</p><p>Researchers said the tooling and escalation "
           "queues needed more staff, and regulators asked for figures in report {n}.</p>"
           "</article></body></html>")


def serve(port_box: Any, changing: int) -> None:
    """The feed server (its own process): /feed/N.xml with ETags, /art/N/K articles."""
    fetches: dict[int, int] = {}

    class Feeds(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str, etag: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            base = f"http://{self.headers['Host']}"
            if self.path.startswith("/feed/"):
                n = int(self.path[6:].removesuffix(".xml"))
                new = changing and n % changing == 0
                k = fetches[n] = fetches.get(n, 0) + (1 if new else 0)
                etag = f'"f{n}-{k}"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", "application/rss+xml", etag)
                    return
                # An unchanged feed lists an article every feed of the topic lists (stored
                # once at the warm-up, seen after); a changing one a new article each time.
                links = ([f"{base}/art/{n}/{i}" for i in range(max(k - 1, 0), k + 1)] if new
                         else [f"{base}/art/common"])
                items = "".join(f"<item><title>Report {link}</title><link>{link}</link></item>"
                                for link in links)
                body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>f{n}</title>'
                        f"<link>{base}/</link><description>d</description>{items}"
                        "</channel></rss>").encode()
                self._send(200, body, "application/rss+xml", etag)
            elif self.path.startswith("/art/"):
                self._send(200, ARTICLE.format(n=self.path[5:]).encode(), "text/html")
            else:
                self._send(404, b"not found", "text/plain")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feeds)
    server.daemon_threads = True
    port_box.value = server.server_address[1]
    server.serve_forever()


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def write_topics(folder: Path, site: str, feeds: int, topics: int, every: int) -> list[Path]:
    paths = []
    per = -(-feeds // topics)
    for t in range(topics):
        lines = [f"name: feeds-{t}", 'query: {any: ["Twitter"], and_any: ["child"]}',
                 "sources:"]
        for n in range(t * per, min((t + 1) * per, feeds)):
            lines.append(f'  - {{"name": "f{n}", "kind": "feed", "url": "{site}/feed/{n}.xml", '
                         f'"schedule": "every {every}s"}}')
        path = folder / f"feeds-{t}.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def finished_runs(daemon: Daemon, after: int) -> list[CrawlRun]:
    with daemon.sessions() as session:
        return list(session.scalars(select(CrawlRun).where(CrawlRun.id > after,
                                                           CrawlRun.finished.is_not(None))))


def wait_idle(daemon: Daemon, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with daemon._lock:
            if not daemon._active:
                return
        time.sleep(0.2)


def crawl_proc_cpu(daemon: Daemon) -> float:
    with daemon._lock:
        pids = [item.pid for item in daemon._procs]
    total = 0.0
    for pid in pids:
        try:
            total += cpu_of(pid)
        except (OSError, IndexError):
            pass
    return total


def reference(topic: Path, db_url: str, times: int) -> float:
    """CPU seconds of a fresh ``python -m crawler.run`` process for one unchanged feed."""
    samples = []
    args = [a for name, value in SETTINGS.items() for a in ("--set", f"{name}={value}")]
    for _ in range(times):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "crawler.run", str(topic), "--source", "f1",
                        "--db", db_url, *args], cwd=REPO, check=False,
                       env=dict(os.environ, PYTHONPATH=str(REPO)),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(samples)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1200)
    parser.add_argument("--window", type=int, default=180, help="seconds; every feed is due "
                        "once in it")
    parser.add_argument("--topics", type=int, default=12)
    parser.add_argument("--changing", type=int, default=100,
                        help="one feed in this many has a new item at every fetch (0: none)")
    parser.add_argument("--parallel", type=int, default=2, help="crawl processes")
    parser.add_argument("--reference", type=int, default=3)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    port = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=serve, args=(port, args.changing), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.05)
    site = f"http://127.0.0.1:{port.value}"
    folder = Path(tempfile.mkdtemp(prefix="claimwatch-feeds-"))
    db_url = args.db or f"sqlite:///{folder / 'store.db'}"
    # Long enough that no job falls due on its own grid during the warm-up or the window:
    # in the window each feed is due once, at the time given below.
    every = 2 * args.window + 3600
    paths = write_topics(folder, site, args.feeds, args.topics, every)
    from storage.db import init_db, make_engine

    engine = make_engine(db_url)
    init_db(engine)
    engine.dispose()
    daemon = Daemon(DaemonOptions(topic_files=paths, db_url=db_url, listen=None,
                                  settings=SETTINGS, max_parallel=args.parallel,
                                  crawl_timeout=timedelta(minutes=10),
                                  misfire_grace=timedelta(seconds=args.window)))
    daemon.start()
    try:
        # Warm-up: every feed once (stores its ETag), as a daemon that has run a while.
        print(f"load average {os.getloadavg()[0]:.2f}; warm-up: {args.feeds} feeds once",
              flush=True)
        start = time.monotonic()
        for item in list(daemon.topics.values()):
            daemon.trigger(item.topic.name, None)
        wait_idle(daemon, 3600)
        print(f"warm-up took {time.monotonic() - start:.0f}s", flush=True)
        with daemon.sessions() as session:
            last = session.scalar(select(CrawlRun.id).order_by(CrawlRun.id.desc()).limit(1)) or 0

        # The window: each job due once, due times spread evenly over it.

        jobs = sorted(daemon.scheduler.get_jobs(), key=lambda j: j.id)
        t0 = datetime.now(UTC) + timedelta(seconds=2)
        due: dict[tuple[str, str], datetime] = {}
        for i, job in enumerate(jobs):
            when = t0 + timedelta(seconds=args.window * i / len(jobs))
            daemon.scheduler.modify_job(job.id, next_run_time=when)
            topic, source = job.id.split("/", 1)
            due[(topic, source)] = when
        rss_before = rss_mb(os.getpid())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        procs_before = crawl_proc_cpu(daemon)
        started = daemon.processes_started
        time.sleep(args.window + 2)
        wait_idle(daemon, 600)
        procs_after = crawl_proc_cpu(daemon)
        usage2 = resource.getrusage(resource.RUSAGE_SELF)
        children2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss_after = rss_mb(os.getpid())
        runs = [r for r in finished_runs(daemon, last) if r.trigger == "schedule"]
    finally:
        daemon.request_stop()
        daemon.shutdown()

    daemon_cpu = usage2.ru_utime + usage2.ru_stime - usage.ru_utime - usage.ru_stime
    # Crawl processes alive at both ends, plus those replaced in between (waited for).
    crawl_cpu = (procs_after - procs_before + children2.ru_utime + children2.ru_stime
                 - children.ru_utime - children.ru_stime)
    checked = len(runs)
    unchanged = [r for r in runs if (r.counts or {}).get("not_modified")]
    new = sum((r.counts or {}).get("new", 0) for r in runs)
    failed = [r for r in runs if r.status != "ok"]
    lags = [(r.finished.replace(tzinfo=UTC) - due[(r.topic, r.source)]).total_seconds()
            for r in runs if (r.topic, r.source) in due]
    # Over the window, or until the last crawl ended when a backlog outlived it.
    ended = max((r.finished.replace(tzinfo=UTC) for r in runs), default=t0)
    span = max(args.window, (ended - t0).total_seconds())
    per_minute = checked / (span / 60)
    cpu_per_feed = (daemon_cpu + crawl_cpu) / max(checked, 1)
    print(f"window {args.window}s (last crawl ended {span:.0f}s after its start): {checked} of "
          f"{args.feeds} feeds checked, {len(unchanged)} "
          f"unchanged (304), {new} new articles, {len(failed)} failed; "
          f"{daemon.processes_started - started} crawl process(es) started in the window")
    print(f"CPU: daemon {daemon_cpu:.1f}s + crawl processes {crawl_cpu:.1f}s = "
          f"{cpu_per_feed * 1000:.1f} ms per feed checked")
    print(f"lag due -> crawl finished: p50 {percentile(lags, 0.5):.2f}s, "
          f"p95 {percentile(lags, 0.95):.2f}s, max {max(lags, default=float('nan')):.2f}s")
    print(f"daemon VmRSS {rss_before:.0f} MB before the window, {rss_after:.0f} MB after")
    ref = reference(paths[0], db_url, args.reference)
    print(f"reference: a fresh crawl process for one unchanged feed: {ref * 1000:.0f} ms CPU "
          f"(median of {args.reference})")
    print(f"load average {os.getloadavg()[0]:.2f}")
    server.terminate()
    rate30 = per_minute * 30
    if span < 1800:
        print(f"(rate over {span:.0f}s, extrapolated to 30 minutes)")
    print(f"RESULT feed_scheduling feeds_per_minute {per_minute:.0f}")
    print(f"RESULT feed_scheduling feeds_per_30min {rate30:.0f}")
    print(f"RESULT feed_scheduling cpu_ms_per_feed {cpu_per_feed * 1000:.1f}")
    print(f"RESULT feed_scheduling lag_p50_s {percentile(lags, 0.5):.2f}")
    print(f"RESULT feed_scheduling lag_p95_s {percentile(lags, 0.95):.2f}")
    print(f"RESULT feed_scheduling reference_fresh_process_cpu_ms {ref * 1000:.0f}")
    print(f"RESULT feed_scheduling daemon_rss_change_pct "
          f"{(rss_after - rss_before) / rss_before * 100:+.1f}")
    return 0 if checked and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
