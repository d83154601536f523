"""What the crawl's saves cost in a grown SQLite store (run by hand; prints RESULT lines).

    .venv/bin/python benchmarks/store_save.py                       # 0 and 100k, 4 rounds, ~3 min
    .venv/bin/python benchmarks/store_save.py --sizes 0,10000 --rounds 2

Grows a store of each size once (``store_growth.grow``: real texts, the band-key index
filled by inserts as crawls fill it; ``--band-index bulk`` for every page full), then, in
each round and for each size: copies the grown file and stores ``--records`` new articles
into it with the production ``Store.save`` (real texts, a match, a candidate and 52 random
band keys each), ``--gap`` seconds apart as a crawl's pages come. Reports the seconds the
saves held their caller (in a crawl: the reactor thread) per size, the medians over the
rounds and the difference to the empty store, and the process's CPU seconds. Prints the
machine load before and after. (The crawl itself: ``store_growth.py``.)
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmarks.store_growth as growth  # noqa: E402


def records(texts: list[str], claim_ids: list[str], seed: int, count: int) -> list[Any]:
    from storage.repository import ArticleRecord, CandidateRecord, MatchRecord

    rng = random.Random(seed)
    out = []
    for j in range(count):
        body = (texts[(j * 7 + seed) % len(texts)] + "\n"
                + growth.distinct_sentence(seed * 10**5 + j))
        url = f"https://saved.example/{seed}/{j}"
        out.append(ArticleRecord(
            topic=growth.TOPIC, source="bench", url=url, canonical_url=url, text=body,
            content_hash=hashlib.sha256(body.encode()).hexdigest(), title=body[:60],
            outlet="saved.example", language="en",
            matches=[MatchRecord(claim_ids[j % len(claim_ids)], body[:120], 0, 88.0, "linked")],
            candidates=[CandidateRecord(body[:100], 1, 0.6)],
            band_keys=[rng.getrandbits(63) for _ in range(growth.BANDS_PER_ARTICLE)]))
    return out


def save_all(path: Path, batch: list[Any], gap: float) -> tuple[float, float]:
    """Seconds the saves of ``batch`` held the caller, and the CPU seconds they took."""
    from storage.db import init_db, make_engine, session_factory
    from storage.repository import Store

    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    store = Store(session_factory(engine))
    held = cpu = 0.0
    try:
        for record in batch:
            t0, c0 = time.perf_counter(), time.process_time()
            store.save(record)
            held += time.perf_counter() - t0
            cpu += time.process_time() - c0
            time.sleep(gap)
    finally:
        engine.dispose()
    return held, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0,100000")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--gap", type=float, default=0.015, help="seconds between saves")
    ap.add_argument("--band-index", choices=("bulk", "crawled"), default="crawled")
    args = ap.parse_args()
    import csv

    from storage.db import init_db, make_engine, refresh_statistics

    print("load before:", growth.load())
    texts = growth.load_texts()
    with open(growth.SEED_CLAIMS, encoding="utf-8") as fh:
        claim_ids = [row["id"] for row in csv.DictReader(fh)]
    sizes = [int(s) for s in args.sizes.split(",")]
    held: dict[int, list[float]] = {s: [] for s in sizes}
    cpu: dict[int, list[float]] = {s: [] for s in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        grown = {}
        for size in sizes:
            grown[size] = Path(tmp) / f"grown-{size}.sqlite"
            engine = make_engine(f"sqlite:///{grown[size]}")
            init_db(engine)
            seconds = growth.grow(engine, size, texts, claim_ids, args.band_index)
            refresh_statistics(engine)
            engine.dispose()  # the last connection closed: the WAL is in the file
            print(f"grown {size:,} in {seconds:.0f} s", flush=True)
        for r in range(args.rounds):
            batch = records(texts, claim_ids, r + 1, args.records)
            for size in sizes:
                copy = Path(tmp) / "copy.sqlite"
                shutil.copyfile(grown[size], copy)
                seconds, used = save_all(copy, batch, args.gap)
                held[size].append(seconds)
                cpu[size].append(used)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{copy}{suffix}").unlink(missing_ok=True)
                print(f"round {r} {size:>7,}: held {seconds:.2f} s, CPU {used:.2f} s", flush=True)
    print("load after:", growth.load())
    base = statistics.median(held[sizes[0]])
    for size in sizes:
        median = statistics.median(held[size])
        print(f"RESULT sqlite-{size // 1000}k save-held-s-per-{args.records} {median:.2f} "
              f"(+{median - base:.2f}) {' '.join(f'{v:.2f}' for v in held[size])}")
        print(f"RESULT sqlite-{size // 1000}k save-cpu-s-per-{args.records} "
              f"{statistics.median(cpu[size]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
