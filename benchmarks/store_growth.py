"""Does claimwatch stay flat as its store grows? (run by hand; prints figures and RESULT lines)

    .venv/bin/python benchmarks/store_growth.py                        # 0/10k/100k, both DBs
    .venv/bin/python benchmarks/store_growth.py --sizes 0,10000 --dbs sqlite   # quick
    .venv/bin/python benchmarks/store_growth.py --sizes 0,100000,1000000       # 1M: long

For each database (SQLite file; PostgreSQL: a fresh schema on the local server, dropped
afterwards) and each size N, a store is pre-grown with N articles of ONE topic by bulk
inserts of realistic rows: real article texts (../shared/data: scrapinghub-aeb ground
truth, FNC-1 bodies, newspaper4k) each made distinct by a sentence of its own, 52 band
keys per article (random: unrelated articles share none), a match and a candidate per
article, some copies, one crawl run per 10 articles, fetched over the last year. Then:

- lookup: the production ``Store.band_candidates`` for the band keys of 100 of the
  crawl's pages, median and p95 ms;
- crawl: ``run_crawl`` (a subprocess, worker pool as configured) of a local site of
  ``--pages`` DISTINCT pages (real texts, a distinct sentence each; every tenth page a
  copy of an earlier one with a paragraph dropped, so the dedup path finds copies), one
  RSS feed, into that store: pages/s and the ratio to the crawl into the empty store.
  New pages each of ``--rounds`` rounds; within a round every size is crawled in turn,
  and the ratio is the median of the rounds' ratios;
- pages: the review app (WSGI, in process) - the list ``/``, a deep list page
  (``/?before=``), an article page, the claims page, one claim's page, the list of one
  claim, full-text search (``/search?q=``: one or two words drawn from the real texts,
  rare and common alike), ``/digest?since=24h``; the API's lists ``/api/v1/articles``
  (newest and a deep page), ``/api/v1/claims``, ``/api/v1/runs``, ``/api/v1/search``
  and one article ``/api/v1/articles/<id>`` - ``--requests`` interleaved rounds,
  p50/p95 ms;
- known URLs: ``Store.known_among`` for a feed's URLs against reading every stored URL
  of the topic into a set (what the start of a crawl did before), ms;
- digest: ``claimwatch digest --since 24h --format json`` as a subprocess: wall time and
  peak RSS in MB (10^6 bytes);
- memory while serving: this process's RSS (MB) after the warm-up requests and after
  all of them ("rss-MB before/after": flat when the pages load what they show).

Growing a store is a bulk load: rows go in by multi-row inserts (COPY for the band keys
on PostgreSQL) with the secondary indexes and the full-text index dropped, and those are
built once at the end, but for the band-key index, which takes the keys as they go in
(in the articles' order, as crawls fill it; ``--band-index bulk`` builds it at the end
too, as after a VACUUM: see :func:`grow`); the store is then the production
schema, and its planner statistics are refreshed as production refreshes them
(``storage.db.refresh_statistics``). ``--keep`` leaves the grown stores in place and
prints their URLs (to measure them again without growing them again).

Prints the machine load (``uptime``) before and after, and RESULT lines.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, create_engine, select, text  # noqa: E402

SHARED = Path(os.environ.get("CLAIMWATCH_SHARED_DATA") or next(
    (p / "shared" / "data" for p in REPO.parents if (p / "shared" / "data").is_dir()),
    REPO.parent / "shared" / "data"))
PG_URL = os.environ.get("CLAIMWATCH_BENCH_POSTGRES",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOPIC = "growth"
SEED_CLAIMS = REPO / "config" / "topics" / "claims.csv"
BANDS_PER_ARTICLE = 52
CHUNK = 2000
WORDS = ("harbour council ministry river school clinic bridge union court station market "
         "airport factory village museum hospital stadium library railway port").split()


# --------------------------------------------------------------------------- real texts


def load_texts() -> list[str]:
    texts: list[str] = []
    gt = json.loads((SHARED / "scrapinghub-aeb" / "ground-truth.json").read_text("utf-8"))
    texts += [v["articleBody"] for v in gt.values() if len(v.get("articleBody") or "") > 800]
    csv.field_size_limit(10**9)
    with open(SHARED / "fnc1-stance" / "train_bodies.csv", encoding="utf-8") as fh:
        texts += [r["articleBody"] for r in csv.DictReader(fh) if len(r["articleBody"]) > 800]
    for p in sorted((SHARED / "newspaper4k-testdata" / "txt").glob("*.txt")):
        body = p.read_text("utf-8", errors="replace")
        if len(body) > 800:
            texts.append(body)
    return [t.replace("\r", "") for t in texts]


def distinct_sentence(i: int) -> str:
    rng = random.Random(i)
    a, b, c = rng.sample(WORDS, 3)
    return (f"Report {i}: officials at the {a} near the {b} said {rng.randint(2, 9999)} "
            f"people visited the {c} on day {rng.randint(1, 365)} of the year.")


def paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.split("\n") if len(p.strip()) > 40]


# --------------------------------------------------------------------------- growing a store


def grow(engine: Engine, n: int, texts: list[str], claim_ids: list[str],
         band_index: str = "crawled") -> float:
    """Bulk-insert ``n`` articles of TOPIC with their rows; returns seconds.

    ``band_index``: "crawled" (the default) keeps the band-key index while the rows go
    in, in the articles' order, so its pages fill and split as a store's do when crawls
    grow it (SQLite: ~90 % full). "bulk" builds it once at the end, as SQLite's VACUUM or
    a restore from a dump does: every page full, so that each random key a crawl inserts
    splits a page (4x the WAL frames per stored article) until every leaf has split once
    (~500 stored articles at 100k). claimwatch never rebuilds an index, so "bulk" is the
    first days after a VACUUM, not a store grown by crawls. The other indexes and the
    full-text index are built at the end either way (full pages: dearer inserts for the
    crawls, not cheaper)."""
    from storage.models import Article, ArticleBand, ArticleClaim, ClaimCandidate, CrawlRun

    t0 = time.perf_counter()
    rng = random.Random(n)
    now = datetime.now(UTC)
    # A bulk load into a fresh store, as a restore does it: the secondary indexes (and the
    # full-text index) are dropped and built once at the end, instead of a B-tree insert
    # per row and index (52 random band keys per article). The store is the same afterwards.
    loaded = [Article, ArticleBand, ArticleClaim, ClaimCandidate]
    indexes = [ix for model in loaded for ix in model.__table__.indexes
               if band_index == "bulk" or ix.name != "ix_article_bands_key_article"]
    if n:
        with engine.begin() as conn:
            for ix in indexes:
                ix.drop(conn)
            drop_search_index(conn)
    year = timedelta(days=365).total_seconds()
    pg = engine.dialect.name == "postgresql"
    for start in range(1, n + 1, CHUNK):
        ids = range(start, min(start + CHUNK, n + 1))
        arts, claims, cands, bands, runs = [], [], [], [], []
        for i in ids:
            fetched = now - timedelta(seconds=year * (n - i) / max(n, 1) + 600)
            dup = rng.randrange(1, i) if i > 20 and i % 12 == 0 else None
            body = texts[i % len(texts)] + "\n" + distinct_sentence(10**7 + i)
            arts.append({
                "id": i, "topic": TOPIC, "source": f"src{i % 5}",
                "url": f"https://outlet{i % 300}.example/story/{i}",
                "canonical_url": f"https://outlet{i % 300}.example/story/{i}",
                "title": f"Story {i}: " + body[:60].replace("\n", " "),
                "author": "A. Writer", "outlet": f"outlet{i % 300}.example", "language": "en",
                "published": fetched - timedelta(hours=3), "fetched_at": fetched,
                "text": body, "content_hash": f"{i:064x}", "duplicate_of_id": dup,
                "duplicate_kind": "copy" if dup else None,
                "duplicate_similarity": 0.91 if dup else None,
                "review_status": "open" if i % 4 else "reviewed",
            })
            claims.append({"article_id": i, "claim_id": claim_ids[i % len(claim_ids)],
                           "sentence": body[:120], "sentence_index": 0, "score": 88.0,
                           "tier": "linked", "conflict": i % 9 == 0, "claim_numbers": ["20"],
                           "article_numbers": ["25"] if i % 9 == 0 else ["20"],
                           "review": "open"})
            cands.append({"article_id": i, "sentence": distinct_sentence(10**7 + i),
                          "sentence_index": 5, "score": 0.61, "status": "open"})
            bands += [(i, rng.getrandbits(63)) for _ in range(BANDS_PER_ARTICLE)]
            if i % 10 == 0:
                runs.append({"topic": TOPIC, "source": f"src{i % 5}", "trigger": "schedule",
                             "started": fetched, "finished": fetched, "status": "ok",
                             "counts": {"fetched": 10, "new": 10}})
        with engine.begin() as conn:
            if pg:  # rows valid by construction: no per-row foreign-key triggers (a restore's
                conn.execute(text("SET LOCAL session_replication_role = replica"))  # way)
            conn.execute(Article.__table__.insert(), arts)
            conn.execute(ArticleClaim.__table__.insert(), claims)
            conn.execute(ClaimCandidate.__table__.insert(), cands)
            if runs:
                conn.execute(CrawlRun.__table__.insert(), runs)
            raw = conn.connection.driver_connection
            if pg:
                with raw.cursor() as cur, cur.copy(
                        "COPY article_bands (article_id, band_key) FROM STDIN") as copy:
                    for row in bands:
                        copy.write_row(row)
            else:
                if band_index != "bulk":  # the random inserts without reading pages back
                    raw.execute("PRAGMA cache_size = -1000000")
                raw.executemany("INSERT INTO article_bands (article_id, band_key) VALUES (?, ?)",
                                bands)
    if n:
        with engine.begin() as conn:
            if pg:
                conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
            for ix in indexes:
                ix.create(conn)
            create_search_index(conn)
            # the claims' coverage counters, as Store.save keeps them (the 0004 backfill)
            conn.execute(text(
                "INSERT INTO claim_coverage (topic, claim_id, articles, conflicts, first_seen, "
                "last_seen) SELECT a.topic, c.claim_id, count(*), "
                "sum(CASE WHEN c.conflict THEN 1 ELSE 0 END), "
                "min(coalesce(a.published, a.fetched_at)), max(coalesce(a.published, "
                "a.fetched_at)) FROM article_claims c JOIN articles a ON a.id = c.article_id "
                "WHERE c.review <> 'rejected' GROUP BY a.topic, c.claim_id"))
            conn.execute(text(
                "INSERT INTO claim_outlets (topic, claim_id, outlet, articles, disputes) "
                "SELECT a.topic, c.claim_id, coalesce(a.outlet, a.source), count(*), "
                "sum(CASE WHEN c.stance = 'disputes' THEN 1 ELSE 0 END) "
                "FROM article_claims c JOIN articles a ON a.id = c.article_id "
                "WHERE c.review <> 'rejected' "
                "GROUP BY a.topic, c.claim_id, coalesce(a.outlet, a.source)"))
    if pg and n:
        with engine.begin() as conn:  # ids were given: move the sequences past them
            for table in ("articles", "article_claims", "claim_candidates", "crawl_runs"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    return time.perf_counter() - t0


def drop_search_index(conn: Any) -> None:
    """Drop the full-text index (SQLite: its triggers; the FTS5 table is rebuilt)."""
    from storage.fts import FTS_TABLE, PG_INDEX

    if conn.dialect.name == "postgresql":
        conn.execute(text(f"DROP INDEX {PG_INDEX}"))
    else:
        for suffix in ("ai", "ad", "au"):
            conn.execute(text(f"DROP TRIGGER {FTS_TABLE}_{suffix}"))


def create_search_index(conn: Any) -> None:
    """The full-text index over every article, as storage/fts.py creates it."""
    from storage.fts import FTS_TABLE, PG_DDL, SQLITE_DDL

    if conn.dialect.name == "postgresql":
        for statement in PG_DDL:
            conn.execute(text(statement))
    else:
        conn.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
        for statement in SQLITE_DDL:
            conn.execute(text(statement))


# --------------------------------------------------------------------------- the site


def make_pages(texts: list[str], count: int, round_: int = 0) -> list[tuple[str, str, bytes]]:
    """(path, text, html): distinct pages (distinct from other rounds' too); every tenth a
    copy of one five pages back."""
    pages: list[tuple[str, str, bytes]] = []
    now = datetime.now(UTC)
    bodies: list[list[str]] = []
    for j in range(count):
        i = j + round_ * 100_000
        if j % 10 == 9:
            paras = list(bodies[j - 5])
            del paras[len(paras) // 2]
        else:
            paras = paragraphs(texts[(j * 7 + 3 + round_ * 331) % len(texts)])[:30]
            paras.insert(min(2, len(paras)), distinct_sentence(i))
        bodies.append(paras)
        title = f"Page {i}: " + paras[0][:70]
        published = (now - timedelta(minutes=5 * j)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = "".join(f"<p>{p}</p>\n" for p in paras)
        html = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
                f'<meta property="article:published_time" content="{published}">'
                f'<meta name="author" content="Staff"></head><body><header><nav>'
                f'<a href="/">Home</a></nav></header><article><h1>{title}</h1>'
                f"<p class=byline>By Staff</p>{body}</article><footer>Copyright site"
                "</footer></body></html>")
        pages.append((f"/r{round_}/news/{j:05d}.html", "\n".join(paras), html.encode()))
    return pages


def serve(rounds: list[list[tuple[str, str, bytes]]]) -> tuple[ThreadingHTTPServer, str]:
    """Every round's pages, and a feed per round (/rss-<round>.xml) listing its pages."""
    docs = {path: (html, "text/html") for pages in rounds for path, _, html in pages}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            found = docs.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", found[1])
            self.send_header("Content-Length", str(len(found[0])))
            self.end_headers()
            self.wfile.write(found[0])

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for r, pages in enumerate(rounds):
        items = "".join(f"<item><title>Page {i}</title><link>{base}{p}</link></item>"
                        for i, (p, _, _) in enumerate(pages))
        docs[f"/rss-{r}.xml"] = (
            (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
             f"<title>growth</title><link>{base}/</link><description>d</description>"
             f"{items}</channel></rss>").encode(), "application/rss+xml")
    docs["/robots.txt"] = (b"User-agent: *\nAllow: /\n", "text/plain")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, base


def write_topic(directory: Path, site: str, round_: int) -> Path:
    """The topic (one name for every round), its source the round's feed."""
    claims = directory / "claims.csv"
    claims.write_bytes(SEED_CLAIMS.read_bytes())
    topic = directory / f"topic-{round_}.yaml"
    topic.write_text(f"name: {TOPIC}\nquery: {{}}\nclaims: claims.csv\nsources:\n"
                     f'  - {{name: growth-feed, kind: feed, url: "{site}/rss-{round_}.xml"}}\n',
                     encoding="utf-8")
    return topic


# --------------------------------------------------------------------------- measuring


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def wsgi_get(app: Any, url: str) -> tuple[int, int]:
    path, _, query = url.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8750",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_HOST": "127.0.0.1:8750", "wsgi.input": io.BytesIO(b""),
               "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": "0"}
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h: status.append(s)))
    return int(status[0].split()[0]), len(body)


def search_queries(texts: list[str], count: int = 50) -> list[str]:
    """What people type into the search box: one or two words of the stored texts (drawn
    at random, so rare and common words alike)."""
    rng = random.Random(11)
    queries = []
    while len(queries) < count:
        words = [w for w in re.findall(r"[A-Za-z]{5,}", rng.choice(texts))]
        if len(words) >= 2:
            picked = rng.sample(words, rng.choice((1, 2)))
            queries.append(" ".join(w.lower() for w in picked))
    return queries


def time_pages(url: str, topic_file: Path, rounds: int, claim: str,
               queries: list[str]) -> dict[str, dict]:
    from urllib.parse import quote

    from claimwatch.web import make_app
    from config.loader import load_topic
    from storage.db import make_engine, session_factory

    engine = make_engine(url)
    app = make_app(session_factory(engine), [load_topic(topic_file)])
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(id) FROM articles")).scalar() or 1
    rng = random.Random(7)
    requests = {
        "list": lambda: "/",
        "list-deep": lambda: f"/?before={rng.randrange(1, top + 1)}",
        "article": lambda: f"/article/{rng.randrange(1, top + 1)}",
        "claims": lambda: f"/claims?topic={TOPIC}",
        "claim-page": lambda: f"/claim/{claim}?topic={TOPIC}",
        "claim-list": lambda: f"/?topic={TOPIC}&claim={claim}&status=all",
        "search": lambda: f"/search?q={quote(rng.choice(queries))}&topic={TOPIC}",
        "digest-page": lambda: "/digest?since=24h&format=json",
        "api-articles": lambda: f"/api/v1/articles?topic={TOPIC}",
        "api-articles-deep": lambda: f"/api/v1/articles?before={rng.randrange(1, top + 1)}",
        "api-article": lambda: f"/api/v1/articles/{rng.randrange(1, top + 1)}",
        "api-claims": lambda: f"/api/v1/claims?topic={TOPIC}",
        "api-runs": lambda: f"/api/v1/runs?topic={TOPIC}",
        "api-search": lambda: f"/api/v1/search?q={quote(rng.choice(queries))}",
    }
    times: dict[str, list[float]] = {k: [] for k in requests}
    for make in requests.values():  # warm-up: one of each
        wsgi_get(app, make())
    rss_before = rss_mb()
    for _ in range(rounds):
        for name, make in requests.items():
            t0 = time.perf_counter()
            status, _ = wsgi_get(app, make())
            times[name].append(1000 * (time.perf_counter() - t0))
            if status != 200:
                raise SystemExit(f"{name}: HTTP {status}")
    rss_after = rss_mb()
    engine.dispose()
    out = {k: {"p50": pct(v, 0.5), "p95": pct(v, 0.95)} for k, v in times.items()}
    out["rss-MB"] = {"p50": rss_before, "p95": rss_after}  # before / after the requests
    return out


def rss_mb() -> float:
    """This process's resident memory in MB (10^6 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def time_lookups(url: str, pages: list[tuple[str, str, bytes]],
                 warm: list[tuple[str, str, bytes]]) -> dict[str, float]:
    """``Store.band_candidates`` for the band keys of ``pages`` (100), after 30 lookups of
    other pages (``warm``: a store just grown is not in the page cache yet)."""
    from pipeline.dedup import all_band_keys
    from storage.db import make_engine, session_factory
    from storage.repository import Store

    engine = make_engine(url)
    store = Store(session_factory(engine))
    probes = [all_band_keys(body) for _, body, _ in pages[:100]]
    for _, body, _ in warm[:30]:
        store.band_candidates(TOPIC, all_band_keys(body))
    times = []
    for keys in probes:
        t0 = time.perf_counter()
        store.band_candidates(TOPIC, keys)
        times.append(1000 * (time.perf_counter() - t0))
    engine.dispose()
    return {"p50": statistics.median(times), "p95": pct(times, 0.95)}


#: Runs a command and prints its peak RSS (KiB, from wait4) on stderr's last line. The
#: command is started from this small process, not from the benchmark's: a child's
#: ru_maxrss counts the memory it had between fork and exec, the parent's size.
PEAK_WRAPPER = ("import os, subprocess, sys\n"
                "p = subprocess.Popen(sys.argv[1:])\n"
                "_, status, usage = os.wait4(p.pid, 0)\n"
                "print('peak-kib', usage.ru_maxrss, file=sys.stderr)\n"
                "sys.exit(os.waitstatus_to_exitcode(status))\n")


def time_known(url: str, site: str, pages: list[tuple[str, str, bytes]]) -> dict[str, float]:
    """The crawl's question "which of the feed's URLs are stored?": ``Store.known_among``
    for the URLs of a feed of ``pages`` (as listed and canonical), median ms of 5, against
    reading every stored URL of the topic into a set (what a crawl did at its start
    before), median of 3."""
    from pipeline.urls import canonical_url
    from storage.db import make_engine, session_factory
    from storage.models import Article, SkippedUrl
    from storage.repository import Store

    engine = make_engine(url)
    store = Store(session_factory(engine))
    listed = [site + path for path, _, _ in pages]
    listed += [canonical_url(u) for u in listed]
    among, whole = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        store.known_among(TOPIC, listed)
        among.append(1000 * (time.perf_counter() - t0))
    for _ in range(3):
        t0 = time.perf_counter()
        with store.sessions() as session:
            known = set()
            for stored, canonical in session.execute(
                    select(Article.url, Article.canonical_url).where(Article.topic == TOPIC)):
                known.update((stored, canonical))
            known.update(session.scalars(select(SkippedUrl.url).where(SkippedUrl.topic == TOPIC)))
        whole.append(1000 * (time.perf_counter() - t0))
    engine.dispose()
    return {"among": statistics.median(among), "whole": statistics.median(whole)}


def digest_peak(url: str) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, articles) of ``claimwatch digest --since 24h``."""
    env = {**os.environ, "CLAIMWATCH_DB": url}
    command = [str(Path(sys.executable).parent / "claimwatch"), "digest", "--since", "24h",
               "--format", "json"]
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *command], cwd=REPO,
                              env=env, stdout=out, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"digest failed: {proc.stderr.decode()[-2000:]}")
        peak_kib = int(proc.stderr.decode().strip().splitlines()[-1].split()[1])
        out.seek(0)
        articles = len(json.loads(out.read())["articles"])
    return seconds, peak_kib * 1024 / 1e6, articles


def crawl(url: str, topic_file: Path, site: str, workers: int | None) -> dict[str, Any]:
    cmd = [sys.executable, str(REPO / "benchmarks" / "crawl_throughput.py"), "--child",
           "claimwatch", "--site", site, "--topic", str(topic_file), "--db", url]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["pages_per_s"] = result["pages"] / result["seconds"]
    return result


# --------------------------------------------------------------------------- databases


class Database:
    def __init__(self, kind: str, workdir: Path, size: int) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / f'store-{size}-{uuid.uuid4().hex[:6]}.sqlite'}"
            self.schema = None
        else:
            from sqlalchemy.engine import make_url

            self.schema = f"cw_growth_{uuid.uuid4().hex[:10]}"
            with create_engine(PG_URL).begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            parsed = make_url(PG_URL)
            self.url = parsed.set(query={**parsed.query,
                                         "options": f"-csearch_path={self.schema}"}) \
                .render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.schema:
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            admin.dispose()
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(self.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0,10000,100000")
    ap.add_argument("--dbs", default="sqlite,postgresql")
    ap.add_argument("--pages", type=int, default=300, help="distinct pages a crawl fetches")
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved crawl rounds (new distinct pages each round)")
    ap.add_argument("--requests", type=int, default=20, help="rounds of page requests")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--band-index", choices=("bulk", "crawled"), default="crawled",
                    help="build the band-key index while the rows go in (crawled: as crawls "
                         "grow it; the default) or at the end (bulk: every page full, as "
                         "after VACUUM or a restore from a dump)")
    ap.add_argument("--keep", action="store_true",
                    help="leave the grown stores in place (prints their URLs)")
    args = ap.parse_args()
    from config.loader import load_topic
    from storage.db import init_db, make_engine, refresh_statistics

    t_all = time.perf_counter()
    print("load before:", load())
    texts = load_texts()
    rounds = [make_pages(texts, args.pages, r) for r in range(args.rounds)]
    warm = make_pages(texts, 30, 99)  # pages never crawled: lookups before measuring
    queries = search_queries(texts)
    server, site = serve(rounds)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = tempfile.mkdtemp(prefix="store-growth-") if args.keep else tmp_dir
        topics = [write_topic(Path(tmp), site, r) for r in range(args.rounds)]
        claim_ids = [c.id for c in load_topic(topics[0]).claims]
        print(f"{len(texts)} real texts; {args.rounds} rounds of {args.pages} distinct pages; "
              f"{len(claim_ids)} claims; crawl workers: {args.workers or 'default'}; band-key "
              f"index: {args.band_index}")
        for kind in args.dbs.split(","):
            dbs: dict[int, Database] = {}
            try:
                rows: dict[int, dict[str, Any]] = {}
                for size in sizes:
                    db = dbs[size] = Database(kind, Path(tmp), size)
                    engine = make_engine(db.url)
                    init_db(engine)
                    grow_s = grow(engine, size, texts, claim_ids, args.band_index)
                    refresh_statistics(engine)
                    engine.dispose()
                    rows[size] = {"db": kind, "size": size, "grow_s": grow_s,
                                  "lookup": time_lookups(db.url, rounds[0], warm),
                                  "crawls": []}
                    print(f"{kind} {size:,}: grown in {grow_s:.1f} s; band_candidates "
                          f"p50 {rows[size]['lookup']['p50']:.3f} ms, p95 "
                          f"{rows[size]['lookup']['p95']:.3f} ms", flush=True)
                for r in range(args.rounds):  # interleaved: every size once per round
                    for size in sizes:
                        crawled = crawl(dbs[size].url, topics[r], site, args.workers)
                        rows[size]["crawls"].append(crawled)
                        print(f"  round {r} {kind} {size:>7,}: {crawled['pages']} pages in "
                              f"{crawled['seconds']:.1f} s = {crawled['pages_per_s']:.1f}/s; "
                              f"CPU s crawl process {crawled['process_cpu']:.1f}, workers "
                              f"{crawled['workers_cpu']:.1f}; stored {crawled['stored']}; "
                              "reactor-side store s "
                              f"{crawled['store_seconds']}", flush=True)
                base = sizes[0]
                for size in sizes:
                    row = rows[size]
                    # again after the crawls (the store in use): the lookups of pages it holds
                    row["lookup_after"] = time_lookups(dbs[size].url, rounds[0], warm)
                    row["pages_per_s"] = statistics.median(c["pages_per_s"] for c in row["crawls"])
                    row["ratio"] = statistics.median(
                        c["pages_per_s"] / b["pages_per_s"]
                        for c, b in zip(row["crawls"], rows[base]["crawls"], strict=True))
                    row["known"] = time_known(dbs[size].url, site, rounds[0])
                    row["requests"] = time_pages(dbs[size].url, topics[0], args.requests,
                                                 claim_ids[0], queries)
                    row["digest_s"], row["digest_mb"], row["digest_articles"] = \
                        digest_peak(dbs[size].url)
                    shown = " ".join(f"{k} {v['p50']:.0f}/{v['p95']:.0f}"
                                     for k, v in row["requests"].items())
                    print(f"{kind} {size:,}: known URLs of a {args.pages}-item feed: "
                          f"Store.known_among {row['known']['among']:.1f} ms; every stored "
                          f"URL of the topic into a set {row['known']['whole']:.0f} ms",
                          flush=True)
                    print(f"{kind} {size:,}: band_candidates after the crawls p50 "
                          f"{row['lookup_after']['p50']:.3f} ms, p95 "
                          f"{row['lookup_after']['p95']:.3f} ms", flush=True)
                    print(f"{kind} {size:,}: crawl {row['pages_per_s']:.1f} pages/s, ratio "
                          f"{row['ratio']:.2f} (median of {args.rounds} interleaved rounds); "
                          f"digest --since 24h {row['digest_s']:.2f} s, "
                          f"{row['digest_mb']:.0f} MB, {row['digest_articles']} articles; "
                          f"requests p50/p95 ms: {shown}", flush=True)
                    results.append(row)
            finally:
                for db in dbs.values():
                    if args.keep:
                        print(f"kept: {db.url}", flush=True)
                    else:
                        db.drop()
    server.shutdown()
    print("load after:", load())
    print(f"(total {time.perf_counter() - t_all:.0f} s)")
    for r in results:
        name = f"{r['db']}-{r['size'] // 1000}k" if r["size"] else f"{r['db']}-0"
        print(f"RESULT {name} grow-s {r['grow_s']:.0f}")
        print(f"RESULT {name} lookup-ms-p50 {r['lookup']['p50']:.3f}")
        print(f"RESULT {name} lookup-after-crawl-ms-p50 {r['lookup_after']['p50']:.3f}")
        print(f"RESULT {name} known-among-ms {r['known']['among']:.1f}")
        print(f"RESULT {name} known-whole-topic-ms {r['known']['whole']:.0f}")
        print(f"RESULT {name} crawl-pages-per-s {r['pages_per_s']:.1f}")
        print(f"RESULT {name} crawl-ratio {r['ratio']:.2f}")
        for k, v in r["requests"].items():
            if k == "rss-MB":
                print(f"RESULT {name} serving-rss-MB-before-after {v['p50']:.0f} {v['p95']:.0f}")
            else:
                print(f"RESULT {name} {k}-p95-ms {v['p95']:.0f}")
        print(f"RESULT {name} digest-24h-s {r['digest_s']:.2f}")
        print(f"RESULT {name} digest-24h-peak-MB {r['digest_mb']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
