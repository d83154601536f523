"""Experiment (session 22): quality_claims.py with MiniLM cosine features in the re-ranker.

    CLAIMWATCH_SHARED_DATA=/work/shared/data .venv/bin/python benchmarks/minilm/run.py \
        --npz /tmp/s22-minilm/minilm.npz --extra cos_minilm,cos_minilm_margin -- --cv

``--extra``: the extra re-ranker columns (none: the baseline recipe, for comparison), any of
- ``cos_minilm``: cosine of the sentence's and the claim text's MiniLM vectors
  (precomputed by texts.py + embed.py; a text without a vector gets 0);
- ``cos_minilm_margin``: that minus the best ``cos_minilm`` of the sentence's candidates;
- ``cos_minilm_rank``: 0 for the sentence's best ``cos_minilm``, else 1 (how it ranks).
The product is untouched: this script appends the columns in its own process (it
replaces ``R.FEATURES`` and ``R.feature_matrix``). Everything after ``--`` goes to
benchmarks/quality_claims.py (``--cv``, ``--tune``, ...).
``--tune`` writes rerank.json with the extra features: restore it with git afterwards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KNOWN = ("cos_minilm", "cos_minilm_margin", "cos_minilm_rank")


def main() -> int:
    argv = sys.argv[1:]
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", default="/tmp/s22-minilm/minilm.npz")
    parser.add_argument("--seed-npz", default="/tmp/s22-minilm/minilm_seed.npz",
                        help="texts.py --seed's vectors, if the file exists (the seed checks)")
    parser.add_argument("--extra", default="")
    args = parser.parse_args(argv)
    extra = tuple(f for f in args.extra.split(",") if f)
    assert all(f in KNOWN for f in extra), extra
    for p in (REPO, REPO / "benchmarks", HERE):
        sys.path.insert(0, str(p))
    from pipeline.claims import rerank as R
    from pipeline.text import analyse

    if extra:
        from texts import seed_texts, texts

        data = np.load(args.npz)
        ids = [str(i) for i in data["ids"]]
        vecs = data["vecs"].astype(np.float64)
        got = texts()
        assert set(got) == set(ids), "the npz is not of texts.py's texts"
        if Path(args.seed_npz).is_file():
            seed = np.load(args.seed_npz)
            got.update(seed_texts())
            ids += [str(i) for i in seed["ids"]]
            vecs = np.vstack([vecs, seed["vecs"].astype(np.float64)])
            assert set(got) == set(ids), "the seed npz is not of texts.py --seed's texts"
        by_text: dict[str, np.ndarray] = {}
        for i, key in enumerate(ids):
            text = got[key]
            by_text.setdefault(text, vecs[i])
            if key.startswith(("q", "s")):
                # the re-ranker sees a sentence as analysed (its cleaned text)
                f = analyse(text)
                by_text.setdefault(f.cleaned or f.norm, vecs[i])
        dim = vecs.shape[1]
        zero = np.zeros(dim)
        misses = {"query": 0, "claim": 0, "pairs": 0}

        def hook(index, texts_, q, rows):  # type: ignore[no-untyped-def]
            nq = len(texts_)
            qv = np.array([by_text.get(t, zero) for t in texts_])
            misses["query"] += sum(t not in by_text for t in texts_)
            rv = np.array([by_text.get(index.row_texts[r], zero) for r in rows.tolist()])
            misses["claim"] += sum(index.row_texts[r] not in by_text for r in rows.tolist())
            misses["pairs"] += len(rows)
            cos = np.einsum("ij,ij->i", qv[q], rv)
            best = np.full(nq, -np.inf)
            np.maximum.at(best, q, cos)
            cols = {"cos_minilm": cos, "cos_minilm_margin": cos - best[q],
                    "cos_minilm_rank": (cos < best[q]).astype(np.float64)}
            return np.column_stack([cols[f] for f in extra])

        # the extra columns after the product's: the benchmark reads R.FEATURES and
        # scoring calls R.feature_matrix at run time, so this process sees both (the
        # product's feature_matrix sizes its rows by R.FEATURES: the extras come as zeros)
        base_matrix = R.feature_matrix
        n_base = len(R.FEATURES)
        R.FEATURES = (*R.FEATURES, *extra)

        def feature_matrix(index, texts_, contexts, q, rows, lexical, first_stage, words):  # type: ignore[no-untyped-def]
            feats = base_matrix(index, texts_, contexts, q, rows, lexical, first_stage, words)
            if len(rows):
                feats[:, n_base:] = hook(index, texts_, q, rows)
            return feats

        R.feature_matrix = feature_matrix
    import quality_claims

    rc = quality_claims.main(rest)
    if extra:
        print(f"MiniLM lookups: {misses['pairs']:,} pairs; sentences without a vector "
              f"{misses['query']:,}, claim texts without one {misses['claim']:,}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
