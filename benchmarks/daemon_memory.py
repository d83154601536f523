"""The daemon's memory over many scheduled crawls (run by hand; prints figures).

    .venv/bin/python benchmarks/daemon_memory.py                 # 500 crawls (~5-10 min)
    .venv/bin/python benchmarks/daemon_memory.py --runs 100 --sources 4 --parallel 2

Starts ``claimwatch daemon`` on a temporary SQLite database with ``--sources``
sources scheduled ``every 1s`` against a local site (a feed of two articles: after
the first crawl each crawl is a short incremental one), waits until ``--runs``
crawls have finished, and prints the daemon's resident memory (VmRSS), threads
and open file descriptors at the start and every ``--every`` runs, then stops it
with SIGTERM. Between crawls the review page (``/``) and ``/api/runs`` are requested
(``--pages`` each per half second), so the memory is the server's too. The crawls
run in the daemon's long-lived crawl processes, so the daemon's memory is the
scheduler, the API, the page and the supervision; it should stay flat however many
crawls run. The crawl processes are replaced after
``CLAIMWATCH_CRAWL_PROCESS_MAX_CRAWLS`` crawls (``--max-crawls``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from storage.db import make_engine, session_factory  # noqa: E402
from storage.models import CrawlRun  # noqa: E402

ARTICLE = (
    "<!doctype html><html><head><title>Twitter child safety {n}</title></head><body><article>"
    "<h1>Twitter child safety {n}</h1><p>Twitter said its child safety team had been cut, "
    "according to report {n}, and that reports of child sexual exploitation material were "
    "handled by fewer moderators than a year before.</p><p>Researchers and advocates said the "
    "company's tooling, hash matching and escalation queues needed more staff, and regulators "
    "asked for figures on removals, appeals and response times in report {n}.</p>"
    "</article></body></html>"
)


class Site(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        base = f"http://{self.headers['Host']}"
        if self.path == "/feed.xml":
            items = "".join(f"<item><title>t{n}</title><link>{base}/a/{n}</link></item>"
                            for n in (1, 2))
            body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                    f"<link>{base}/</link><description>d</description>{items}</channel></rss>")
            kind = "application/rss+xml"
        elif self.path.startswith("/a/"):
            body, kind = ARTICLE.format(n=self.path[3:]), "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def process_figures(pid: int) -> dict[str, float]:
    """RSS (MB), threads and open fds of a process (Linux /proc; RSS via ps elsewhere)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
                "threads": int(fields["Threads"]),
                "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    rss = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return {"rss_mb": int(rss.stdout.strip() or 0) / 1024, "threads": -1, "fds": -1}


def finished_runs(sessions: Any) -> Counter[str]:
    with sessions() as session:
        rows = session.scalars(select(CrawlRun.status).where(CrawlRun.status != "running"))
        return Counter(rows)


def run_errors(sessions: Any) -> Counter[str]:
    with sessions() as session:
        rows = session.scalars(select(CrawlRun.error).where(CrawlRun.status != "ok",
                                                            CrawlRun.status != "running"))
        return Counter(str(error)[:160] for error in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="crawls to wait for")
    parser.add_argument("--sources", type=int, default=8, help="scheduled sources")
    parser.add_argument("--parallel", type=int, default=max(os.cpu_count() or 2, 2),
                        help="the daemon's --max-parallel")
    parser.add_argument("--every", type=int, default=50, help="print figures every N runs")
    parser.add_argument("--pages", type=int, default=1,
                        help="requests of / and of /api/runs per half second")
    parser.add_argument("--max-crawls", type=int, default=100,
                        help="crawls per crawl process before it is replaced")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_address[1]}"

    with tempfile.TemporaryDirectory(prefix="claimwatch-bench-") as tmp:
        topic = Path(tmp) / "topic.yaml"
        lines = ["name: bench", 'query: {any: ["Twitter"], and_any: ["child"]}', "sources:"]
        lines += ["  - " + json.dumps({"name": f"s{i}", "kind": "feed", "url": f"{site}/feed.xml",
                                       "schedule": "every 1s"}) for i in range(args.sources)]
        topic.write_text("\n".join(lines) + "\n")
        db_url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        log_path = Path(tmp) / "daemon.log"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        command = [sys.executable, "-m", "claimwatch.cli", "daemon", str(topic), "--db", db_url,
                   "--listen", "127.0.0.1:0", "--max-parallel", str(args.parallel),
                   "--set", "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=True",
                   "--set", "AUTOTHROTTLE_ENABLED=False",
                   "--set", f"CLAIMWATCH_CRAWL_PROCESS_MAX_CRAWLS={args.max_crawls}"]
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while "API at http://" not in log_path.read_text(errors="replace"):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    print(log_path.read_text(errors="replace"), file=sys.stderr)
                    return 1
                time.sleep(0.1)
            api = re.search(r"API at (http://[^/\s]+)", log_path.read_text(errors="replace"))
            assert api is not None
            engine = make_engine(db_url)
            sessions = session_factory(engine)
            pages = 0
            start = time.monotonic()
            first = process_figures(daemon.pid)
            print(f"claimwatch daemon pid {daemon.pid}: {args.sources} sources every 1s, "
                  f"--max-parallel {args.parallel}, until {args.runs} crawls have finished")
            print(f"{'runs':>6} {'elapsed':>9} {'rss MB':>8} {'threads':>8} {'fds':>5}")
            print(f"{0:>6} {0:>8.0f}s {first['rss_mb']:>8.1f} {first['threads']:>8.0f} "
                  f"{first['fds']:>5.0f}   (start)")
            samples = [first]
            next_mark = args.every
            counts: Counter[str] = Counter()
            while True:
                counts = finished_runs(sessions)
                done = sum(counts.values())
                if done >= next_mark or done >= args.runs:
                    figures = process_figures(daemon.pid)
                    samples.append(figures)
                    print(f"{done:>6} {time.monotonic() - start:>8.0f}s {figures['rss_mb']:>8.1f} "
                          f"{figures['threads']:>8.0f} {figures['fds']:>5.0f}", flush=True)
                    next_mark = (done // args.every + 1) * args.every
                if done >= args.runs:
                    break
                if daemon.poll() is not None:
                    print("the daemon exited early:\n" + log_path.read_text(errors="replace"))
                    return 1
                for _ in range(args.pages):
                    for path in ("/", "/api/runs"):
                        with urllib.request.urlopen(api.group(1) + path, timeout=30) as page:
                            page.read()
                        pages += 1
                time.sleep(0.5)
            elapsed = time.monotonic() - start
            errors_by_kind = run_errors(sessions)
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
            engine.dispose()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            server.shutdown()
        last = samples[-1]
        print(f"\nruns by status: {dict(counts)}; {elapsed:.0f}s, "
              f"{sum(counts.values()) / elapsed:.2f} crawls/s; {pages} pages served")
        for error, n in errors_by_kind.most_common(5):
            print(f"  {n} x {error}")
        print(f"daemon RSS: start {first['rss_mb']:.1f} MB, end {last['rss_mb']:.1f} MB "
              f"({last['rss_mb'] - first['rss_mb']:+.1f} MB); after the first {args.every} runs "
              f"{samples[1]['rss_mb']:.1f} MB, "
              f"growth since then {last['rss_mb'] - samples[1]['rss_mb']:+.1f} MB")
        print(f"threads {first['threads']:.0f} -> {last['threads']:.0f}, "
              f"open fds {first['fds']:.0f} -> {last['fds']:.0f}; SIGTERM exit status {code}")
        errors = re.findall(r"^.* ERROR claimwatch\..*$", log_path.read_text(errors="replace"),
                            re.MULTILINE)
        print(f"daemon ERROR lines: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:5]))
    change = (last["rss_mb"] - samples[1]["rss_mb"]) / samples[1]["rss_mb"] * 100
    print(f"RESULT daemon_memory runs {sum(counts.values())}")
    print(f"RESULT daemon_memory rss_mb_early {samples[1]['rss_mb'] * 1.048576:.1f}")
    print(f"RESULT daemon_memory rss_mb_end {last['rss_mb'] * 1.048576:.1f}")
    print(f"RESULT daemon_memory rss_change_pct {change:+.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
