"""Cross-validated re-ranker experiments of 2026-12-06 (branch quality2), train splits only.

    .venv/bin/python benchmarks/rerank_cv.py ROWS.npz ["config;config..."]

Collects the --tune training rows once (2A and 2B train candidate pairs, dense 2A train
tables; every candidate feature of pipeline/claims/rerank.py as of this commit) into
ROWS.npz, then for each configuration (a subset of those columns, optionally the dense
rows weighted 5x) prints the 5-fold cross-validated figures of quality_claims.py's
``cross_validate`` (2A by tweet, 2B by debate; no dev figure). ~2 min for the rows and
2-4 min per configuration at load 7-9. This commit is an experiment; the next reverts it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402

import quality_claims as Q  # noqa: E402
from pipeline import claims as C  # noqa: E402
from pipeline.claims import rerank as R  # noqa: E402

BASE = ["lexical", "lexical_margin", "cos_text", "cos_context", "cos_margin", "date_gap",
        "date_known", "speaker", "window_cover"]
RL = [*BASE, "rival_lead"]
FIRST = ["cov_claim", "cov_query", "names_missing"]


def swap(cfg: list[str], new: list[str]) -> list[str]:
    """``cfg`` with date_gap replaced by ``new``."""
    out: list[str] = []
    for f in cfg:
        out.extend(new if f == "date_gap" else [f])
    return out


CONFIGS = {
    "base": BASE,
    "base+rival_lead": RL,
    "date_rel instead of date_gap": swap(BASE, ["date_rel"]),
    "base+date_rel": [*BASE, "date_rel"],
    "date_rel instead+rival_lead": swap(RL, ["date_rel"]),
    "rl+first3": RL + FIRST,
    "rl+coslead": [*RL, "rival_cos_lead"],
    "rl+coslead+first3": [*RL, "rival_cos_lead", *FIRST],
    "rl w5": RL,
    "rl signed": swap(RL, ["date_before", "date_after"]),
    "rl before only": swap(RL, ["date_before"]),
    "rl signed late": swap(RL, ["date_before", "date_after_late"]),
    "base signed late": swap(BASE, ["date_before", "date_after_late"]),
}


def main() -> int:
    t0 = time.time()
    vclaims, queries, train, _ = Q.load_clef()
    claims = Q.clef_claims(vclaims)
    index = C.ClaimIndex.build(claims)
    v2b, q2b, train2b, _, ctx2b = Q.load_clef2b()
    index2b = C.ClaimIndex.build(Q.clef2b_claims(v2b))

    def ctx2a(q: str) -> Q.SentenceContext:
        return Q.tweet_context(queries[q])

    near = Q.bm25_rank(claims, k=21)
    cache = Path(sys.argv[1])
    if cache.exists():
        z = np.load(cache)
        parts = [(z["ax"], z["ay"], z["ag"]), (z["bx"], z["by"], z["bg"])]
        dense = (z["dx"], z["dy"], z["dg"])
    else:
        R.set_model(R.Forest([{"feature": [], "threshold": [], "left": [], "right": [],
                               "leaf_value": [0.0]}], 0.0))
        a = Q.rerank_rows(index, queries, train, ctx2a, depth=60)
        b = Q.rerank_rows(index2b, q2b, train2b, lambda q: ctx2b[q], depth=60)
        dense = Q.dense_pairs(near, claims, queries, train)
        parts = [a, b]
        np.savez(cache, ax=a[0], ay=a[1], ag=a[2], bx=b[0], by=b[1], bg=b[2],
                 dx=dense[0], dy=dense[1], dg=dense[2])
    print(f"rows {time.time() - t0:.0f} s", flush=True)
    sets = ((index, queries, train, ctx2a, str),
            (index2b, q2b, train2b, lambda q: ctx2b[q], lambda q: q.rpartition("_")[0]))
    col = {f: i for i, f in enumerate(R.FEATURES)}
    for name in (sys.argv[2].split(";") if len(sys.argv) > 2 else list(CONFIGS)):
        t1 = time.time()
        cv = Q.cross_validate(sets, parts, dense, near, claims,
                              columns=[col[f] for f in CONFIGS[name]],
                              dense_weight=5.0 if name.endswith(" w5") else 1.0)
        Q.cv_report(name, cv)
        print(f"   ({time.time() - t1:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
