"""What the crawl's saves cost in a grown SQLite store (run by hand; prints RESULT lines).

    .venv/bin/python benchmarks/store_save.py                       # 0 and 100k, 4 rounds, ~6 min
    .venv/bin/python benchmarks/store_save.py --sizes 0,10000 --rounds 2

Grows a store of each size once (``store_growth.grow``: real texts, the band-key index
filled by inserts as crawls fill it; ``--band-index bulk`` for every page full), then, in
each round, for each checkpoint interval (0: SQLite checkpoints in the committing save, as
before; 1 s: :class:`storage.db.WalCheckpoints`, as the crawl's store stage runs it) and
each size: copies the grown file and stores ``--records`` new articles into it with the
production ``Store.save`` (real texts, a match, a candidate and 52 random band keys each),
``--gap`` seconds apart as a crawl's pages come. Reports the seconds the saves held their
caller (the crawl's reactor thread) per size and interval: medians over the rounds, and
the difference to the empty store. Prints the machine load before and after.
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


def save_all(path: Path, batch: list[Any], interval: float, gap: float) -> float:
    """Seconds the saves of ``batch`` held the caller, checkpoints every ``interval``."""
    from storage.db import WalCheckpoints, init_db, make_engine, session_factory
    from storage.repository import Store

    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    store = Store(session_factory(engine))
    checkpoints = WalCheckpoints(engine, interval).start()
    held = 0.0
    try:
        for record in batch:
            t0 = time.perf_counter()
            store.save(record)
            held += time.perf_counter() - t0
            time.sleep(gap)
    finally:
        checkpoints.stop()
        engine.dispose()
    return held


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0,100000")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--gap", type=float, default=0.015, help="seconds between saves")
    ap.add_argument("--intervals", default="0,1", help="checkpoint intervals (s) to compare")
    ap.add_argument("--band-index", choices=("bulk", "crawled"), default="crawled")
    args = ap.parse_args()
    import csv

    from storage.db import init_db, make_engine, refresh_statistics

    print("load before:", growth.load())
    texts = growth.load_texts()
    with open(growth.SEED_CLAIMS, encoding="utf-8") as fh:
        claim_ids = [row["id"] for row in csv.DictReader(fh)]
    sizes = [int(s) for s in args.sizes.split(",")]
    intervals = [float(s) for s in args.intervals.split(",")]
    held: dict[tuple[float, int], list[float]] = {(i, s): [] for i in intervals for s in sizes}
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
            for interval in intervals:
                for size in sizes:
                    copy = Path(tmp) / "copy.sqlite"
                    shutil.copyfile(grown[size], copy)
                    held[interval, size].append(save_all(copy, batch, interval, args.gap))
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{copy}{suffix}").unlink(missing_ok=True)
                    print(f"round {r} checkpoints every {interval:g} s, {size:>7,}: "
                          f"{held[interval, size][-1]:.2f} s", flush=True)
    print("load after:", growth.load())
    for interval in intervals:
        base = statistics.median(held[interval, sizes[0]])
        for size in sizes:
            median = statistics.median(held[interval, size])
            print(f"RESULT checkpoint-{interval:g}s {size // 1000}k save-held-s-per-"
                  f"{args.records} {median:.2f} (+{median - base:.2f}) "
                  f"{' '.join(f'{v:.2f}' for v in held[interval, size])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
