"""The re-ranker's fit is reproducible, and the committed model is what the fit writes.

The full refit (``benchmarks/quality_claims.py --check``: the CLEF train rows, five
cross-validation forests and the final one) takes ~5 minutes, too long for the suite;
here the same code path (rows through ``rerank_rows``, the forest through
``fit_forest``, the file through ``model_json``) runs on the seed topic's labelled
sentences, in two processes with different string-hash seeds, and must write the same
bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.claims import rerank, scoring
from tests.conftest import REPO

# the fit of benchmarks/quality_claims.py on the seed set's labelled sentences, as JSON
_FIT = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
import quality_claims as Q
from pipeline import claims as C
from pipeline.claims import rerank as R

data = json.loads(Q.SEED_SET.read_text(encoding="utf-8"))
claims, _ = Q.seed_claims(data)
index = C.ClaimIndex.build(claims)
labelled = [s for s in data["sentences"] if s["claim"]]
queries = {f"s{i:03d}": s["text"] for i, s in enumerate(labelled)}
qrels = {f"s{i:03d}": {s["claim"]} for i, s in enumerate(labelled)}
R.set_model(R.Forest([{"feature": [], "threshold": [], "left": [], "right": [],
                       "leaf_value": [0.0]}], 0.0))
x, y, _ = Q.rerank_rows(index, queries, qrels, lambda q: None, depth=20)
forest, _ = Q.fit_forest(x, y)
model = {"features": list(R.FEATURES), "bias": 0.0, "trees": forest.trees}
sys.stdout.write(Q.model_json(model, (50.0, 20.0)))
"""


def _fit(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", _FIT, str(REPO)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_fit_writes_the_same_model_in_any_process() -> None:
    pytest.importorskip("lightgbm")
    first, second = _fit("1"), _fit("2")
    model = json.loads(first)
    assert model["features"] == list(rerank.FEATURES)
    assert len(model["trees"]) > 100 and any(t["feature"] for t in model["trees"])
    assert first == second


def test_the_committed_tiers_are_the_model_files() -> None:
    """--tune writes the tiers it chose into rerank.json; scoring.py's are the same."""
    data = json.loads(rerank.MODEL_FILE.read_text(encoding="utf-8"))
    assert data["features"] == list(rerank.FEATURES)
    assert data["tiers"] == {"linked": scoring.DEFAULT_LINKED_MIN,
                             "suggested": scoring.DEFAULT_SUGGESTED_MIN}


def test_a_refitted_model_puts_stored_matches_behind(tmp_path, monkeypatch) -> None:
    """claims_version names the re-ranker too: the same table under another model file is
    another version, so ``claimwatch rematch`` re-matches what the old model scored."""
    from config.models import Claim
    from pipeline.analysis import claims_version

    table = [Claim(id="c1", text="Twitter dissolved its Trust and Safety Council.")]
    before = claims_version(table)
    refit = tmp_path / "rerank.json"
    data = json.loads(rerank.MODEL_FILE.read_text(encoding="utf-8"))
    data["bias"] = float(data["bias"]) + 0.5
    refit.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(rerank, "MODEL_FILE", refit)
    rerank.model_version.cache_clear()
    try:
        assert claims_version(table) != before
    finally:
        monkeypatch.undo()
        rerank.model_version.cache_clear()
    assert claims_version(table) == before
