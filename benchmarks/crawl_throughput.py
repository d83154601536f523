"""Crawl throughput against its limits (run by hand; prints figures, asserts nothing).

    .venv/bin/python benchmarks/crawl_throughput.py --repeat 3      # ~6 min: the target
    .venv/bin/python benchmarks/crawl_throughput.py --copies 6 --runs claimwatch  # memory
    .venv/bin/python benchmarks/crawl_throughput.py --runs claimwatch,trafilatura-pool,scrapy

The site: every distinct real page of ../shared/data (scrapinghub-aeb 181,
newspaper4k-testdata 30, mozilla-readability-testpages 130: 341 pages, no page twice)
under its own URL, with an RSS feed listing the first half and a sitemap the second,
a robots.txt, served from memory by a threaded HTTP server in this process
(``http.server``, HTTP/1.0). ``--copies N`` serves the set N times under distinct
URLs (N-1 exact copies of each page: for a memory run at 2,000 pages, not for the
ratio). Every run is a subprocess of its own (a Twisted reactor cannot be restarted;
each has its own memory peak), and the runs of a round are interleaved:

- ``trafilatura-pool``: the reference. trafilatura's ``bare_extraction`` with
  claimwatch's exact options (metadata, ``favor_precision``, tables, no comments) on
  the same pages, in a ``multiprocessing`` pool (spawn, as claimwatch's workers) of as
  many processes as claimwatch's worker pool (``--workers``; default one per CPU), no
  HTTP; its time includes the pool's start-up, as claimwatch's includes its workers';
- ``trafilatura``: the same in one process (the reference before issue 13);
- ``trafilatura-extract``: ``trafilatura.extract(html)`` with its defaults (no
  metadata), for reference;
- ``scrapy``: a bare Scrapy spider per source (feed, sitemap) fetching the same pages
  with claimwatch's politeness settings and no item pipeline;
- ``claimwatch``: ``run_crawl`` of a topic with those two sources, an empty query (every
  page goes through the whole pipeline) and the 20 seed claims of the demo topic, into
  a fresh SQLite file, with worker processes (``CLAIMWATCH_WORKERS``: one per CPU);
- ``claimwatch-inline``: the same with ``CLAIMWATCH_WORKERS=0`` (everything on the
  reactor thread, as before the worker pool);
- ``claimwatch-10k``: the same as ``claimwatch`` with 10,000 CLEF 2022 claims (their
  Snopes titles as aliases: 20,000 claim texts).

pages/s = article pages fetched / wall time of the crawl (trafilatura: pages / time of
the loop or of the pool); the crawl's time starts with ``run_crawl`` on an initialised
database and ends when it returns (worker start-up included). CPU per page is the
run's own process and, apart, its worker processes (``RUSAGE_CHILDREN`` once they
are reaped, and the CPU of children still running with what they reaped: claimwatch's
forkserver and the workers it forked). Peak memory is sampled every 0.1 s over the
run's process and all its descendants (the workers): the peak of the sum of RSS, and
of PSS (shared pages counted once), in MB (10^6 bytes). The load average is printed with
every run: on a shared machine, compare the ratios of interleaved runs (``--repeat``).
The last lines are ``RESULT <set> <metric> <value>``.
"""


from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# the shared data: CLAIMWATCH_SHARED_DATA (as the tests), else ../shared/data
SHARED = Path(os.environ.get("CLAIMWATCH_SHARED_DATA") or REPO.parent / "shared" / "data")
PAGES = SHARED / "scrapinghub-aeb" / "html"
# (set name, glob of gzipped pages under SHARED): every distinct real page of the data
PAGE_SETS = (
    ("aeb", "scrapinghub-aeb/html/*.html.gz"),
    ("np4k", "newspaper4k-testdata/html/*.html.gz"),
    ("readability", "mozilla-readability-testpages/test-pages/*/source.html.gz"),
)
CLEF_CLAIMS = SHARED / "clef2022-checkthat-task2a-en" / "vclaims.jsonl.gz"
SEED_CLAIMS = REPO / "config" / "topics" / "claims.csv"
RUNS = ("trafilatura-pool", "claimwatch", "trafilatura", "trafilatura-extract", "scrapy",
        "claimwatch-inline", "claimwatch-10k")
DEFAULT_RUNS = ("trafilatura-pool", "claimwatch", "trafilatura")
# what claimwatch passes to trafilatura.bare_extraction (pipeline/extract.py)
CLAIMWATCH_OPTIONS = {"with_metadata": True, "favor_precision": True,
                      "include_comments": False, "include_tables": True}
MB = 1e6

# claimwatch's politeness, also given to the bare Scrapy spiders (crawler/settings.py)
POLITENESS = {
    "ROBOTSTXT_OBEY": True,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 0.0,  # what `claimwatch crawl` sets for a local site
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 2.0,
    "DOWNLOAD_DELAY": 0.0,
    "COOKIES_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "LOG_LEVEL": "WARNING",
}


# --------------------------------------------------------------------------- the site


def _page_name(set_name: str, path: Path) -> str:
    stem = path.parent.name if path.name.startswith("source.") else path.name.split(".")[0]
    return f"{set_name}-{stem[:24]}"


def load_pages() -> list[tuple[str, bytes]]:
    """Every distinct real page of the shared data, as (name, HTML bytes)."""
    pages: dict[str, bytes] = {}
    seen: set[bytes] = set()
    for set_name, pattern in PAGE_SETS:
        for path in sorted(SHARED.glob(pattern)):
            body = gzip.decompress(path.read_bytes())
            if body not in seen:  # distinct pages only
                seen.add(body)
                pages[_page_name(set_name, path)] = body
    return list(pages.items())


def page_urls(pages: list[tuple[str, bytes]], copies: int) -> list[tuple[str, str]]:
    """(path, page name) of every page of the site, copy by copy."""
    return [(f"/a/{c:02d}/{name}.html", name) for c in range(copies) for name, _ in pages]


class Site:
    """The pages under /a/<copy>/<name>.html, a feed, a sitemap, robots.txt."""

    def __init__(self, pages: list[tuple[str, bytes]], copies: int) -> None:
        self.pages = dict(pages)
        self.paths = [path for path, _ in page_urls(pages, copies)]
        self.base = ""

    def docs(self) -> dict[str, tuple[bytes, str]]:
        half = len(self.paths) // 2
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = "".join(
            f"<item><title>Article {i}</title><link>{self.base}{p}</link></item>"
            for i, p in enumerate(self.paths[:half])
        )
        rss = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
               f"<title>bench</title><link>{self.base}/</link><description>bench</description>"
               f"{items}</channel></rss>")
        urls = "".join(f"<url><loc>{self.base}{p}</loc><lastmod>{now}</lastmod></url>"
                       for p in self.paths[half:])
        sitemap = ('<?xml version="1.0" encoding="UTF-8"?>'
                   '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                   f"{urls}</urlset>")
        return {
            "/rss.xml": (rss.encode(), "application/rss+xml"),
            "/sitemap.xml": (sitemap.encode(), "application/xml"),
            "/robots.txt": (b"User-agent: *\nAllow: /\n", "text/plain"),
        }

    def serve(self) -> ThreadingHTTPServer:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                found = docs.get(path)
                if found is None and path.startswith("/a/"):
                    name = path.rsplit("/", 1)[-1].removesuffix(".html")
                    page = site.pages.get(name)
                    found = (page, "text/html") if page is not None else None
                if found is None:
                    self.send_error(404)
                    return
                body, ctype = found
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        docs = self.docs()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def write_topic(directory: Path, claims: str, site: str) -> Path:
    claims_file = directory / f"claims-{claims}.csv"
    if claims == "seed":
        claims_file.write_bytes(SEED_CLAIMS.read_bytes())
    else:
        with gzip.open(CLEF_CLAIMS, "rt", encoding="utf-8") as fh:
            vclaims = [json.loads(line) for line in fh][: int(claims)]
        with open(claims_file, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "text", "aliases"])
            for v in vclaims:
                title = (v.get("title") or "").replace("|", " ")
                writer.writerow([v["vclaim_id"], v["vclaim"], title])
    topic = directory / f"topic-{claims}.yaml"
    topic.write_text(
        f"name: bench-{claims}\n"
        "query: {}\n"
        f"claims: {claims_file.name}\n"
        "sources:\n"
        f'  - {{name: bench-feed, kind: feed, url: "{site}/rss.xml"}}\n'
        f'  - {{name: bench-sitemap, kind: sitemap, url: "{site}/sitemap.xml", '
        "lastmod_days: null}\n",
        encoding="utf-8",
    )
    return topic


# --------------------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if "resource_tracker" in cmd:
        return "resource-tracker"
    return "worker" if "multiprocessing" in cmd else "child"


class MemorySampler(threading.Thread):
    """Peak RSS and PSS (MB) of a process and all its descendants, sampled every 0.1 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss = self.peak_pss = 0.0
        self.peak_procs = 0
        self.per_process: dict[str, float] = {}  # peak RSS (MB) of each process, by role
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            tree = _children()
            pids, todo = [], [self.pid]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo.extend(tree.get(pid, ()))
            rss = pss = 0
            for pid in pids:
                r, p = _memory_kb(pid)
                rss += r
                pss += p
                role = "crawl" if pid == self.pid else f"{_role(pid)}[{pid}]"
                self.per_process[role] = max(self.per_process.get(role, 0.0), r * 1024 / MB)
            self.peak_rss = max(self.peak_rss, rss * 1024 / MB)
            self.peak_pss = max(self.peak_pss, pss * 1024 / MB)
            self.peak_procs = max(self.peak_procs, len(pids))

    def stop(self) -> None:
        self.stopped.set()
        self.join()


# --------------------------------------------------------------------------- the runs


def _bare_extraction(page: tuple[str, bytes]) -> bool:
    """One page through trafilatura as claimwatch calls it (in the caller or a pool worker)."""
    import trafilatura

    url, body = page
    html = body.decode("utf-8", errors="replace")
    return trafilatura.bare_extraction(html, url=url, **CLAIMWATCH_OPTIONS) is not None


def _pool_ready(_: int) -> int:
    import trafilatura  # noqa: F401 - the worker's start-up, as claimwatch's workers import

    return os.getpid()


def _cpu(who: int) -> float:
    import resource

    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children (``RUSAGE_CHILDREN``) and of the
    children still running, with what they reaped: claimwatch's workers are forked by
    a forkserver that lives as long as this process and reaps them itself."""
    import resource

    total = _cpu(resource.RUSAGE_CHILDREN)
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _children().get(os.getpid(), ()):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), 12-15 after the state
        total += sum(int(v) for v in fields[11:15]) / tick
    return total


def child_trafilatura(args: argparse.Namespace) -> dict[str, Any]:
    import multiprocessing
    import resource

    pages = load_pages()
    docs = [(f"http://127.0.0.1{path}", body)
            for (path, _), (_, body) in zip(page_urls(pages, args.copies),
                                            pages * args.copies, strict=True)]
    extracted = 0
    cpu0, children0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    if args.run == "trafilatura-pool":
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers or default_workers()) as pool:
            pool.map(_pool_ready, range(args.workers or default_workers()))
            extracted = sum(pool.imap_unordered(_bare_extraction, docs, chunksize=1))
            pool.close()
            pool.join()
    else:
        import trafilatura

        for url, body in docs:
            if args.run == "trafilatura-extract":
                html = body.decode("utf-8", errors="replace")
                extracted += trafilatura.extract(html, url=url) is not None
            else:
                extracted += _bare_extraction((url, body))
    seconds = time.perf_counter() - start
    return {"pages": len(docs), "seconds": seconds, "extracted": extracted,
            "process_cpu": _cpu(resource.RUSAGE_SELF) - cpu0,
            "workers_cpu": _cpu(resource.RUSAGE_CHILDREN) - children0}


def default_workers() -> int:
    from pipeline.workers import default_workers as claimwatch_default

    return claimwatch_default()


def child_scrapy(args: argparse.Namespace) -> dict[str, Any]:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    fetched = {"n": 0}

    class Feed(scrapy.Spider):
        name = "bare-feed"

        async def start(self):
            yield scrapy.Request(f"{args.site}/rss.xml", callback=self.parse)

        def parse(self, response, **kwargs):
            for link in response.xpath("//item/link/text()").getall():
                yield scrapy.Request(link, callback=self.page)

        def page(self, response):
            fetched["n"] += 1

    class Sitemap(Feed):
        name = "bare-sitemap"

        async def start(self):
            yield scrapy.Request(f"{args.site}/sitemap.xml", callback=self.parse)

        def parse(self, response, **kwargs):
            response.selector.remove_namespaces()
            for link in response.xpath("//url/loc/text()").getall():
                yield scrapy.Request(link, callback=self.page)

    process = CrawlerProcess({
        **POLITENESS,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
    })
    process.crawl(Feed)
    process.crawl(Sitemap)
    import resource

    cpu0 = _cpu(resource.RUSAGE_SELF)
    start = time.perf_counter()
    process.start()
    return {"pages": fetched["n"], "seconds": time.perf_counter() - start,
            "process_cpu": _cpu(resource.RUSAGE_SELF) - cpu0, "workers_cpu": 0.0}


def child_claimwatch(args: argparse.Namespace) -> dict[str, Any]:
    import resource

    from crawler.runner import run_crawl
    from storage.db import init_db, make_engine
    from storage.repository import Store

    # reactor-side costs: the store and its dedup lookups (timed here, not in claimwatch)
    spent: dict[str, float] = {}

    def timed(name: str, method: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(*a, **kw)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    for name in ("save", "find_by_url", "find_root_by_hash", "band_candidates",
                 "texts", "mark_skipped"):
        setattr(Store, name, timed(name, getattr(Store, name)))
    engine = make_engine(args.db)
    init_db(engine)
    engine.dispose()
    settings = {
        **POLITENESS,
        "CLAIMWATCH_SITE_URL": args.site,
        "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": True,
    }
    if args.workers is not None:
        settings["CLAIMWATCH_WORKERS"] = args.workers
    cpu0, children0 = _cpu(resource.RUSAGE_SELF), _children_cpu()
    start = time.perf_counter()
    summary = run_crawl(args.topic, db_url=args.db, settings=settings, lease=False)
    seconds = time.perf_counter() - start
    cpu1, children1 = _cpu(resource.RUSAGE_SELF), _children_cpu()
    stats: dict[str, int] = {}
    for source in summary.sources:
        for key, value in source.stats.items():
            if key.startswith("claimwatch/") and isinstance(value, int):
                stats[key] = stats.get(key, 0) + value
    return {
        "pages": stats.get("claimwatch/fetched", 0),
        "seconds": seconds,
        "stored": stats.get("claimwatch/stored/new", 0),
        "status": [s.status for s in summary.sources],
        "process_cpu": cpu1 - cpu0,
        "workers_cpu": children1 - children0,
        "store_seconds": {k: round(v, 2) for k, v in spent.items()},
        "stats": {k: v for k, v in stats.items()
                  if k.split("/")[1] in ("workers", "extract", "stored", "dedup", "errors")},
    }


def run_child(run: str, args: argparse.Namespace, site: str, workdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", run, "--copies", str(args.copies),
           "--site", site]
    if run.startswith("claimwatch"):
        claims = "10000" if run == "claimwatch-10k" else "seed"
        topic = workdir / f"topic-{claims}.yaml"
        if not topic.exists():
            write_topic(workdir, claims, site)
        db = workdir / f"{run}-{time.monotonic_ns()}.sqlite"
        cmd += ["--topic", str(topic), "--db", f"sqlite:///{db}"]
        workers = 0 if run == "claimwatch-inline" else args.workers
        if workers is not None:
            cmd += ["--workers", str(workers)]
    elif run == "trafilatura-pool" and args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{run} failed ({proc.returncode}):\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result.update(run=run, peak_rss_mb=sampler.peak_rss, peak_pss_mb=sampler.peak_pss,
                  processes=sampler.peak_procs, pages_per_s=result["pages"] / result["seconds"],
                  rss_by_process={k: round(v) for k, v in sampler.per_process.items()})
    return result


def machine() -> str:
    import platform

    import scrapy
    import trafilatura

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs, {mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"Scrapy {scrapy.__version__}, trafilatura {trafilatura.__version__}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_run(round_: int, result: dict[str, Any]) -> None:
    run = result["run"]
    pages = max(result["pages"], 1)
    extra = ""
    if run.startswith("claimwatch"):
        extra = (f"; stored {result['stored']}, store/dedup calls "
                 f"{sum(result['store_seconds'].values()):.1f} s "
                 f"{result['store_seconds']}; {result['stats']}")
    print(f"[{round_ + 1}] {run:20s} {result['pages']:5d} pages in "
          f"{result['seconds']:6.1f} s = {result['pages_per_s']:6.1f} pages/s; CPU per page: "
          f"process {1000 * result['process_cpu'] / pages:.1f} ms, workers "
          f"{1000 * result['workers_cpu'] / pages:.1f} ms; peak RSS "
          f"{result['peak_rss_mb']:.0f} MB, PSS {result['peak_pss_mb']:.0f} MB "
          f"({result['processes']} processes: {result['rss_by_process']}); "
          f"load {result['load']}{extra}", flush=True)


def summarise(runs: list[str], results: dict[str, list[dict[str, Any]]], label: str) -> None:
    """Medians, the ratios of interleaved rounds, and the RESULT lines."""

    def median(run: str, key: str = "pages_per_s") -> float:
        return statistics.median(r[key] for r in results[run])

    def ratios(run: str, base: str) -> list[float]:
        return [c["pages_per_s"] / t["pages_per_s"]
                for c, t in zip(results[run], results[base], strict=True)]

    rounds = len(next(iter(results.values())))
    print(f"\nmedians of {rounds} round(s):")
    for run in runs:
        cpu = statistics.median((r["process_cpu"] + r["workers_cpu"]) / max(r["pages"], 1)
                                for r in results[run])
        print(f"  {run:20s} {median(run):7.1f} pages/s   CPU {1000 * cpu:5.1f} ms/page   "
              f"peak RSS {median(run, 'peak_rss_mb'):5.0f} MB   peak PSS "
              f"{median(run, 'peak_pss_mb'):5.0f} MB")
    lines = []
    for run in runs:
        if not run.startswith("claimwatch"):
            continue
        name = label if run == "claimwatch" else f"{label}-{run.removeprefix('claimwatch-')}"
        for base, metric, target in (("trafilatura-pool", "ratio-vs-pooled-trafilatura", 0.85),
                                     ("trafilatura", "ratio-vs-trafilatura-one-process", None),
                                     ("scrapy", "ratio-vs-bare-scrapy", None)):
            if base not in runs:
                continue
            found = ratios(run, base)
            aim = f"; target >= {target}x" if target else ""
            print(f"  {run} / {base}: {statistics.median(found):.2f}x "
                  f"(rounds: {', '.join(f'{r:.2f}' for r in found)}{aim})")
            lines.append(f"RESULT {name} {metric} {statistics.median(found):.2f}")
        lines.append(f"RESULT {name} pages-per-s {median(run):.1f}")
        lines.append(f"RESULT {name} peak-pss-mb {median(run, 'peak_pss_mb'):.0f}")
        lines.append(f"RESULT {name} peak-rss-mb {median(run, 'peak_rss_mb'):.0f}")
    if "trafilatura-pool" in runs:
        lines.append(f"RESULT {label} pages-per-s-pooled-trafilatura "
                     f"{median('trafilatura-pool'):.1f}")
    if "trafilatura-extract" in runs and "trafilatura" in runs:
        print(f"  trafilatura.extract (defaults) / bare_extraction as claimwatch calls it: "
              f"{median('trafilatura-extract') / median('trafilatura'):.2f}x")
    print(f"load average at the end: {load()}")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=1,
                        help="serve the distinct pages this many times (copies are exact "
                             "duplicates: for a memory run, not for the ratio)")
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS),
                        help=f"comma-separated, interleaved in each round: {RUNS}")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of interleaved runs")
    parser.add_argument("--workers", type=int, default=None,
                        help="CLAIMWATCH_WORKERS for the claimwatch runs and the size of the "
                             "trafilatura pool (default: one per CPU, as claimwatch)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--site", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        args.run = args.child
        runner = (child_trafilatura if args.child.startswith("trafilatura")
                  else child_scrapy if args.child == "scrapy" else child_claimwatch)
        print(json.dumps(runner(args)))
        return 0

    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {RUNS}")
    if not PAGES.is_dir():
        parser.error(f"the shared pages are not at {PAGES}")
    pages = load_pages()
    site = Site(pages, args.copies)
    server = site.serve()
    workers = args.workers if args.workers is not None else default_workers()
    print(f"machine: {machine()}; load {load()}")
    print(f"site: {len(site.paths):,} pages ({len(pages)} distinct real pages x {args.copies}), "
          f"{sum(len(b) for _, b in pages) * args.copies / MB:.0f} MB of HTML, at {site.base}; "
          f"claimwatch workers and trafilatura pool: {workers} processes")
    results: dict[str, list[dict[str, Any]]] = {r: [] for r in runs}
    with tempfile.TemporaryDirectory(prefix="claimwatch-bench-") as tmp:
        for round_ in range(args.repeat):
            for run in runs:
                before = load()
                result = run_child(run, args, site.base, Path(tmp))
                result["load"] = f"{before} -> {load()}"
                results[run].append(result)
                print_run(round_, result)
    server.shutdown()
    summarise(runs, results, f"crawl-{len(site.paths)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
