"""Does a duplicate lookup stay flat as the store grows? (run by hand; prints figures)

    .venv/bin/python benchmarks/dedup_scale.py                    # 1k .. 1M, ~4-5 min
    .venv/bin/python benchmarks/dedup_scale.py --sizes 1000,10000 # a quick version, ~15 s
    .venv/bin/python benchmarks/dedup_scale.py --stores sqlite    # one store only

For each size N the store holds the 181 real articles of scrapinghub-aeb (real band
keys, texts kept for confirmation) plus N - 181 synthetic articles. Synthetic articles
are represented by their band keys only: random 63-bit ints, 52 per article (as many as
``all_band_keys`` makes). That is what unrelated articles look like to the index: band
keys are hashes, so unrelated articles collide only by chance.

A lookup = ``signatures(probe)`` + band keys + candidate fetch + ``classify`` of the
candidates against their stored texts (cold: each stored text re-analysed), timed for
240 probes (exact copies, boilerplate copies, rewrites of the real articles). Stores:

- memory: a ``dict`` band_key -> article id (one dict probe per band key);
- numpy: the same as two sorted int64 arrays and ``np.searchsorted`` (16 bytes/band);
- SQLite: the production store (claimwatch's schema, ``init_db``) grown with N articles
  of one topic, and the production query ``Store.band_candidates`` (band rows grouped
  first, then each article checked for its topic by primary key), limit 50.

Figures are medians (per probe, then over 3 passes), not the best pass.

Each (size, store) runs in its own subprocess so "peak RSS" is its own peak.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_dedup import DEFAULT_DATA, make_copy, make_rewrite  # noqa: E402

from pipeline import dedup  # noqa: E402
from pipeline.dedup import SIGNATURE_SPECS, classify, signature_band_keys, signatures  # noqa: E402

BANDS_PER_ARTICLE = sum(s.bands for s in SIGNATURE_SPECS)
CANDIDATE_LIMIT = 50
CHUNK = 500_000


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _real_docs(data: Path) -> dict[int, str]:
    gt = json.loads((data / "scrapinghub-aeb" / "ground-truth.json").read_text("utf-8"))
    texts = [v["articleBody"] for _, v in sorted(gt.items())
             if (v.get("articleBody") or "").strip()]
    return dict(enumerate(texts))


def _probes(docs: dict[int, str], n: int) -> list[tuple[int, str]]:
    rng = random.Random(5)
    vocab = sorted({w for t in docs.values() for w in t.split() if w.isalpha() and w.islower()})
    keys = list(docs)
    out = []
    for i in range(n):
        k = keys[i % len(keys)]
        kind = i % 3
        text = docs[k] if kind == 0 else make_copy(docs[k], rng) if kind == 1 else make_rewrite(
            docs[k], rng, vocab
        )
        out.append((k, text))
    return out


def _synthetic_keys(n_articles: int, first_id: int, rng: np.random.Generator):
    """Chunks of (band_keys int64, article_ids int64) for n_articles synthetic articles."""
    per_chunk = max(1, CHUNK // BANDS_PER_ARTICLE)
    for start in range(0, n_articles, per_chunk):
        m = min(per_chunk, n_articles - start)
        keys = rng.integers(0, 2**63, size=m * BANDS_PER_ARTICLE, dtype=np.int64)
        ids = np.repeat(np.arange(first_id + start, first_id + start + m, dtype=np.int64),
                        BANDS_PER_ARTICLE)
        yield keys, ids


def _setup(size: int, data: Path, n_probes: int):
    docs = _real_docs(data)
    real_keys = {k: signature_band_keys(signatures(t)) for k, t in docs.items()}
    return docs, real_keys, _probes(docs, n_probes), max(0, size - len(docs))


def run_memory(size: int, data: Path, n_probes: int) -> dict:
    """dict band_key -> article id (a list when several articles share a band)."""
    docs, real_keys, probes, n_synth = _setup(size, data, n_probes)
    t0 = time.perf_counter()
    index: dict[int, int | list[int]] = {}
    for keys, ids in _synthetic_keys(n_synth, 10**7, np.random.default_rng(size)):
        index.update(zip(keys.tolist(), ids.tolist(), strict=True))
    for art, bks in real_keys.items():
        for bk in bks:
            prev = index.get(bk)
            if prev is None:
                index[bk] = art
            elif isinstance(prev, list):
                prev.append(art)
            else:
                index[bk] = [prev, art]
    build = time.perf_counter() - t0

    def lookup(bks: list[int]) -> list[int]:
        counts: dict[int, int] = {}
        for bk in bks:
            hit = index.get(bk)
            if hit is None:
                continue
            for art in hit if isinstance(hit, list) else (hit,):
                counts[art] = counts.get(art, 0) + 1
        return sorted(counts, key=lambda a: -counts[a])[:CANDIDATE_LIMIT]

    return {"build_s": build, **_time_lookups(probes, docs, lookup),
            "note": f"{len(index):,} keys", "peak_rss_mb": _peak_rss_mb()}


def run_numpy(size: int, data: Path, n_probes: int) -> dict:
    """Compact in-memory variant: sorted int64 band keys + int64 ids, binary search."""
    docs, real_keys, probes, n_synth = _setup(size, data, n_probes)
    t0 = time.perf_counter()
    parts_k, parts_i = [], []
    for keys, ids in _synthetic_keys(n_synth, 10**7, np.random.default_rng(size)):
        parts_k.append(keys)
        parts_i.append(ids)
    parts_k.append(np.array([bk for bks in real_keys.values() for bk in bks], dtype=np.int64))
    parts_i.append(np.array([a for a, bks in real_keys.items() for _ in bks], dtype=np.int64))
    all_k, all_i = np.concatenate(parts_k), np.concatenate(parts_i)
    del parts_k, parts_i
    order = np.argsort(all_k, kind="stable")
    keys_sorted, ids_sorted = all_k[order], all_i[order]
    del all_k, all_i, order
    build = time.perf_counter() - t0

    def lookup(bks: list[int]) -> list[int]:
        q = np.array(bks, dtype=np.int64)
        lo = np.searchsorted(keys_sorted, q, "left")
        hi = np.searchsorted(keys_sorted, q, "right")
        counts: dict[int, int] = {}
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            for art in ids_sorted[a:b].tolist():
                counts[art] = counts.get(art, 0) + 1
        return sorted(counts, key=lambda a: -counts[a])[:CANDIDATE_LIMIT]

    return {"build_s": build, **_time_lookups(probes, docs, lookup),
            "note": f"{keys_sorted.nbytes + ids_sorted.nbytes >> 20} MB of arrays",
            "peak_rss_mb": _peak_rss_mb()}


def run_sqlite(size: int, data: Path, n_probes: int) -> dict:
    """The production store: claimwatch's schema (``init_db``) in a SQLite file, grown
    with N articles of one topic (rows in ``articles`` and ``article_bands``), and the
    production query, ``Store.band_candidates``, from a fresh connection."""
    from storage.db import init_db, make_engine, refresh_statistics, session_factory
    from storage.repository import Store

    docs, real_keys, probes, n_synth = _setup(size, data, n_probes)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.sqlite"
        engine = make_engine(f"sqlite:///{db}")
        init_db(engine)
        engine.dispose()
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        article_sql = ("INSERT INTO articles (id, topic, source, url, canonical_url, text, "
                       "content_hash, fetched_at, review_status) VALUES "
                       "(?, 'scale', 'bench', ?, ?, ?, ?, '2026-01-01 00:00:00.000000', 'open')")
        t0 = time.perf_counter()
        band_indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                   "AND tbl_name = 'article_bands' AND sql IS NOT NULL").fetchall()
        with con:  # a bulk load: the band indexes are built once, after it
            for name, _ in band_indexes:
                con.execute(f"DROP INDEX {name}")
        with con:
            # real articles: ids 1..181 (doc k is article k + 1), their real band keys
            con.executemany(article_sql, [(k + 1, f"u{k}", f"u{k}", t, f"{k:064x}")
                                          for k, t in docs.items()])
            con.executemany("INSERT INTO article_bands (article_id, band_key) VALUES (?, ?)",
                            [(k + 1, bk) for k, bks in real_keys.items() for bk in bks])
            for keys, ids in _synthetic_keys(n_synth, 10**7, np.random.default_rng(size)):
                first, last = int(ids[0]), int(ids[-1])
                con.executemany(article_sql, [(i, f"s{i}", f"s{i}", "synthetic", f"s{i}")
                                              for i in range(first, last + 1)])
                con.executemany(
                    "INSERT INTO article_bands (article_id, band_key) VALUES (?, ?)",
                    zip(ids.tolist(), keys.tolist(), strict=True))
        with con:
            for _, sql in band_indexes:
                con.execute(sql)
        con.close()
        engine = make_engine(f"sqlite:///{db}")
        refresh_statistics(engine)  # as init_db does when a crawl opens the store
        build = time.perf_counter() - t0
        file_mb = db.stat().st_size / 2**20
        store = Store(session_factory(engine))

        def lookup(bks: list[int]) -> list[int]:
            found = store.band_candidates("scale", bks, limit=CANDIDATE_LIMIT)
            return [a - 1 for a in found]

        timings = _time_lookups(probes, docs, lookup)
        engine.dispose()
    return {"build_s": build, **timings, "note": f"file {file_mb:.0f} MB, production schema",
            "peak_rss_mb": _peak_rss_mb()}


STORES = {"memory": run_memory, "numpy": run_numpy, "sqlite": run_sqlite}


def _time_lookups(probes, docs, lookup, passes: int = 3) -> dict:
    """Per-component medians over the probes, then the median of ``passes`` interleaved
    passes (not the best: the machine may be shared, and the best hides the spread); each
    pass cold (every stored text re-analysed when confirmed)."""
    runs = []
    for _ in range(passes):
        dedup._analyse.cache_clear()
        runs.append(_one_pass(probes, docs, lookup))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _one_pass(probes, docs, lookup) -> dict:
    sign, fetch, confirm, total, n_cands = [], [], [], [], []
    found = 0
    for true_key, text in probes:
        t0 = time.perf_counter()
        bks = signature_band_keys(signatures(text))
        t1 = time.perf_counter()
        cands = lookup(bks)
        t2 = time.perf_counter()
        verdicts = {c: classify(docs[c], text) for c in cands if c in docs}
        t3 = time.perf_counter()
        found += bool(verdicts.get(true_key) and verdicts[true_key].kind)
        sign.append(t1 - t0)
        fetch.append(t2 - t1)
        confirm.append(t3 - t2)
        total.append(t3 - t0)
        n_cands.append(len(cands))
    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    return {
        "sign_ms": ms(sign), "fetch_ms": ms(fetch), "confirm_ms": ms(confirm),
        "total_ms": ms(total),
        "total_p95_ms": 1000 * sorted(total)[int(0.95 * (len(total) - 1))],
        "mean_total_ms": 1000 * statistics.fmean(total),
        "mean_candidates": statistics.fmean(n_cands), "found": found / len(probes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--probes", type=int, default=240)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--stores", default="memory,numpy,sqlite",
                    help="comma-separated subset of memory,numpy,sqlite")
    ap.add_argument("--one", nargs=2, metavar=("STORE", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        store, size = args.one[0], int(args.one[1])
        print(json.dumps(STORES[store](size, args.data, args.probes)))
        return
    print(f"{BANDS_PER_ARTICLE} band keys per article; {args.probes} probes "
          "(exact / boilerplate copy / rewrite of the 181 real articles); median ms per lookup")
    print(f"{'stored':>9} | {'store':6} | {'sign':>5} {'fetch':>6} {'confirm':>7} {'total':>6} "
          f"{'p95':>6} | {'cands':>5} {'found':>5} | build s | peak RSS MB | store size")
    t_all = time.perf_counter()
    for size in (int(s) for s in args.sizes.split(",")):
        for store in args.stores.split(","):
            cmd = [sys.executable, __file__, "--one", store, str(size),
                   "--probes", str(args.probes), "--data", str(args.data)]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                          text=True).stdout)
            print(f"{size:>9,} | {store:6} | {r['sign_ms']:5.2f} {r['fetch_ms']:6.3f} "
                  f"{r['confirm_ms']:7.2f} {r['total_ms']:6.2f} {r['total_p95_ms']:6.2f} | "
                  f"{r['mean_candidates']:5.2f} {r['found']:5.3f} | {r['build_s']:7.1f} | "
                  f"{r['peak_rss_mb']:8.0f} | {r['note']}")
            sys.stdout.flush()
    print(f"(total {time.perf_counter() - t_all:.0f} s)")


if __name__ == "__main__":
    main()
