"""Experiment (session 22): how well MiniLM's cosine alone tells a tweet's own claim from
its dense-table neighbours (2A train; the tables dense_scores builds: the gold claim's
20 BM25-nearest claims). A claim's cosine is the best of its texts (claim, title).

    CLAIMWATCH_SHARED_DATA=/work/shared/data .venv/bin/python benchmarks/minilm/separability.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
for p in (HERE.parents[1], HERE.parents[1] / "benchmarks", HERE):
    sys.path.insert(0, str(p))

from claims_data import load_clef  # noqa: E402
from quality_claims import bm25_rank, clef_claims  # noqa: E402


def main(npz: str = "/tmp/s22-minilm/minilm.npz") -> None:
    data = np.load(npz)
    vec = {str(k): v for k, v in zip(data["ids"], data["vecs"], strict=True)}
    vclaims, queries, train, _ = load_clef()
    claims = clef_claims(vclaims)
    near_of = bm25_rank(claims, k=21)
    by_id = {c.id: c for c in claims}

    def cos(qid: str, cid: str) -> float:
        q = vec[f"q2a:{qid}"]
        return max(float(q @ vec[f"c2a:{cid}:{i}"]) for i in range(len(by_id[cid].texts))
                   if f"c2a:{cid}:{i}" in vec)

    gold_cos, near_best, near_gap = [], [], []
    examples = []
    for qid, gold in sorted(train.items()):
        g = sorted(gold)[0]
        near = [c for c in near_of(by_id[g].text) if c not in gold][:20]
        gc = cos(qid, g)
        nc = [cos(qid, c) for c in near]
        gold_cos.append(gc)
        near_best.append(max(nc))
        near_gap.append(gc - max(nc[:19]))
        examples.append((max(nc), gc, qid, near[int(np.argmax(nc))]))
    gold_cos, near_best, near_gap = map(np.array, (gold_cos, near_best, near_gap))
    n = len(gold_cos)
    print(f"{n} 2A train tweets: gold cosine median {np.median(gold_cos):.3f}; best absent-table "
          f"cosine median {np.median(near_best):.3f}; gold ranked first by MiniLM in its "
          f"table of 20: {np.mean(near_gap > 0):.3f}")
    for t in (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75):
        print(f"  cosine >= {t:.2f}: gold kept {np.mean(gold_cos >= t):.3f}, own-claim-absent "
              f"tables with a neighbour at it {np.mean(near_best >= t):.3f}")
    # the cosine at which 0.70 / 0.66 of the golds are kept, and the absent share there
    for r in (0.66, 0.70, 0.80, 0.90):
        t = float(np.quantile(gold_cos, 1 - r))
        print(f"  gold recall {r:.2f} at cosine >= {t:.3f}: absent-table best at it "
              f"{np.mean(near_best >= t):.3f}")
    print("hardest absent tables (best neighbour cosine, gold cosine, tweet, neighbour):")
    for nb, gc, qid, cid in sorted(examples, reverse=True)[:8]:
        print(f"  {nb:.3f} {gc:.3f} | {queries[qid][:90]!r} -> {by_id[cid].text[:80]!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
