"""Re-ranking: the lexical score, the semantic signal and the sentence's context, in one model.

The first stage (:mod:`pipeline.claims.scoring`) scores a (sentence, claim text)
pair on its words alone. This stage combines that score with what words miss:

==================  ==========================================================
``lexical``          the first stage's logit (clipped to -15..15)
``lexical_margin``   that logit minus the best one of the same sentence (<= 0)
``cos_text``         cosine of the sentence's and the claim text's embeddings
``cos_context``      cosine of the sentence's window (neighbours, title) and the claim
``cos_margin``       ``cos_text`` minus the best one of the same sentence (<= 0)
``date_gap``         log1p(days between the article and the claim's first report)
``date_known``       1 when both dates are known (``date_gap`` means something)
``speaker``          +1 the sentence's speaker is the claim's source or named in it,
                     -1 both are known and differ, 0 unknown
==================  ==========================================================

A logistic model over these (weights in ``rerank.json`` beside this file,
fitted on the train splits of CLEF CheckThat! 2022 2A and 2021 2B by
``benchmarks/quality_claims.py --tune``) gives the match probability; a score
is 100 times it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.claims.context import SentenceContext, readable
from pipeline.claims.semantic import embed

if TYPE_CHECKING:
    from pipeline.claims.index import ClaimIndex

FEATURES = (
    "lexical",
    "lexical_margin",
    "cos_text",
    "cos_context",
    "cos_margin",
    "date_gap",
    "date_known",
    "speaker",
)
(LEXICAL, LEXICAL_MARGIN, COS_TEXT, COS_CONTEXT, COS_MARGIN, DATE_GAP, DATE_KNOWN,
 SPEAKER) = range(len(FEATURES))
# the range of each feature (the model is defined on these, values are clipped)
RANGES = {
    LEXICAL: (-15.0, 15.0),
    LEXICAL_MARGIN: (-10.0, 0.0),
    COS_TEXT: (-1.0, 1.0),
    COS_CONTEXT: (-1.0, 1.0),
    COS_MARGIN: (-2.0, 0.0),
    DATE_GAP: (0.0, 12.0),
    DATE_KNOWN: (0.0, 1.0),
    SPEAKER: (-1.0, 1.0),
}
MODEL_FILE = Path(__file__).with_name("rerank.json")


@lru_cache(maxsize=1)
def _model() -> tuple[np.ndarray, float]:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{MODEL_FILE} was fitted on other features: {data['features']}")
    return np.asarray(data["weights"], dtype=np.float64), float(data["bias"])


_OVERRIDE: tuple[np.ndarray, float] | None = None


def set_model(weights: Sequence[float] | None, bias: float = 0.0) -> None:
    """Use these weights in this process (the benchmark's ``--tune``); ``None``: the file's."""
    global _OVERRIDE
    _OVERRIDE = None if weights is None else (np.asarray(weights, dtype=np.float64), float(bias))


def model() -> tuple[np.ndarray, float]:
    """``(weights, bias)`` of the re-ranker."""
    return _OVERRIDE if _OVERRIDE is not None else _model()


def lexical_floor(logit_floor: float) -> float:
    """The lowest first-stage logit from which a pair can still reach ``logit_floor``."""
    w, b = model()
    rest = 0.0
    for col, (lo, hi) in RANGES.items():
        if col != LEXICAL:
            rest += max(w[col] * lo, w[col] * hi)
    if w[LEXICAL] <= 0:
        return -np.inf
    return (logit_floor - b - rest) / w[LEXICAL]


def _speaker_feature(index: ClaimIndex, row: int, speaker: str | None) -> float:
    if not speaker:
        return 0.0
    surname = speaker.split()[-1].lower().strip(".,")
    if len(surname) < 3:
        return 0.0
    source = index.claim_sources[int(index.row_claim[row])]
    if surname in index.row_texts[row].lower():
        return 1.0
    if source:
        return 1.0 if surname in source.lower() else -1.0
    return 0.0


def feature_matrix(
    index: ClaimIndex,
    texts: Sequence[str],
    contexts: Sequence[SentenceContext | None] | None,
    q: np.ndarray,
    rows: np.ndarray,
    lexical: np.ndarray,
) -> np.ndarray:
    """The re-ranking features of each (query ``q``, claim text ``rows``) pair."""
    n = len(rows)
    feats = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return feats
    feats[:, LEXICAL] = np.clip(lexical, *RANGES[LEXICAL])
    nq = len(texts)
    best = np.full(nq, -np.inf)
    np.maximum.at(best, q, feats[:, LEXICAL])
    feats[:, LEXICAL_MARGIN] = np.maximum(feats[:, LEXICAL] - best[q], RANGES[LEXICAL_MARGIN][0])
    # embeddings of the sentences (and windows) that have pairs, only
    used = np.unique(q)
    sentence_text = [readable(texts[i]) for i in used.tolist()]
    windows = [readable(c.window) if contexts and (c := contexts[i]) is not None
               else sentence_text[k] for k, i in enumerate(used.tolist())]
    distinct_windows = [w for w, s in zip(windows, sentence_text, strict=True) if w != s]
    vecs = embed(sentence_text + distinct_windows)
    if vecs is not None and index.row_vectors is not None:
        local = np.full(nq, -1, dtype=np.int64)
        local[used] = np.arange(len(used))
        s_vec = vecs[: len(used)]
        w_vec = s_vec.copy()
        k = len(used)
        for j, (w, s) in enumerate(zip(windows, sentence_text, strict=True)):
            if w != s:
                w_vec[j] = vecs[k]
                k += 1
        r_vec = index.row_vectors[rows].astype(np.float32)
        li = local[q]
        feats[:, COS_TEXT] = np.einsum("ij,ij->i", s_vec[li], r_vec)
        feats[:, COS_CONTEXT] = np.einsum("ij,ij->i", w_vec[li], r_vec)
        best_cos = np.full(nq, -np.inf)
        np.maximum.at(best_cos, q, feats[:, COS_TEXT])
        feats[:, COS_MARGIN] = feats[:, COS_TEXT] - best_cos[q]
    if contexts:
        days = np.array([-1 if c is None or c.day is None else c.day for c in contexts],
                        dtype=np.int64)[q]
        c_days = index.claim_days[index.row_claim[rows]]
        known = (days >= 0) & (c_days >= 0)
        gap = np.log1p(np.abs(days - c_days).astype(np.float64))
        feats[:, DATE_GAP] = np.where(known, np.minimum(gap, RANGES[DATE_GAP][1]), 0.0)
        feats[:, DATE_KNOWN] = known
        for i, (qi, r) in enumerate(zip(q.tolist(), rows.tolist(), strict=True)):
            c = contexts[qi]
            speaker = c.speaker if c is not None else None
            if speaker:
                feats[i, SPEAKER] = _speaker_feature(index, r, speaker)
    return feats


def probability(feats: np.ndarray) -> np.ndarray:
    w, b = model()
    z = feats @ w + b
    return 1.0 / (1.0 + np.exp(-z))
