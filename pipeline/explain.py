"""Why the analysis chain decided what it did about one text: the steps, made visible.

``claimwatch explain`` and the article page's "why?" panel show this. Each
function re-runs one step of pipeline/analysis.py and returns plain data
(dicts and lists of str/float/bool) instead of only its verdict: which query
terms the text contains, and each sentence's best claims with their scores
against the tier thresholds. Pure: the database part (near-duplicates, why a page
was not stored) is in the app's claimwatch/explain.py.
"""

from __future__ import annotations

from typing import Any

from pipeline.analysis import AnalysisChain
from pipeline.claims import rank_claims
from pipeline.query import fold, term_pattern

# A sentence is listed when its best claim scores at least this (0..100): lower
# scores are noise that no threshold comes near.
LIST_FLOOR = 20.0
MAX_SENTENCES = 8


def query_report(chain: AnalysisChain, title: str | None, text: str) -> dict[str, Any]:
    """Each query term, whether the title or text contains it, and the verdict with why."""
    query = chain.config.query
    haystack = fold("\n".join(t for t in (title, text) if t))
    groups: dict[str, list[dict[str, Any]]] = {}
    for group in ("any", "all", "none", "and_any"):
        groups[group] = [{"term": term, "found": bool(term_pattern(term).search(haystack))}
                         for term in getattr(query, group)]
    reasons = []
    if any(t["found"] for t in groups["none"]):
        reasons.append("contains an excluded term: " + ", ".join(
            t["term"] for t in groups["none"] if t["found"]))
    if groups["any"] and not any(t["found"] for t in groups["any"]):
        reasons.append("contains none of the `any` terms")
    if groups["and_any"] and not any(t["found"] for t in groups["and_any"]):
        reasons.append("contains none of the `and_any` terms")
    missing_all = [t["term"] for t in groups["all"] if not t["found"]]
    if missing_all:
        reasons.append("lacks `all` terms: " + ", ".join(missing_all))
    return {"on_topic": chain.topic_filter(title, text), "terms": groups, "why_not": reasons}


def tier_of(chain: AnalysisChain, score: float) -> dict[str, Any]:
    """The tier a score reaches, or the threshold it missed and by how much."""
    if score >= chain.linked_min:
        return {"tier": "linked", "missed": None}
    if score >= chain.suggested_min:
        return {"tier": "suggested", "missed": "linked", "needs": chain.linked_min}
    return {"tier": None, "missed": "suggested", "needs": chain.suggested_min}


def claim_report(chain: AnalysisChain, text: str, k: int = 3) -> dict[str, Any]:
    """Each sentence's best claims (scored on its own) and the tier each reaches or misses.

    The crawl's matcher also keeps one best sentence per claim and weighs the
    article's context, so a sentence listed as ``linked`` here may have lost its
    claim to a better sentence of the same article.
    """
    sentences = chain.sentences(text)
    rows = []
    if len(chain.index):
        for i, sentence in enumerate(sentences):
            ranked = [(cid, score) for cid, score in rank_claims(sentence, chain.index, k=k)
                      if score >= LIST_FLOOR]
            if ranked:
                rows.append({"sentence_index": i, "sentence": sentence,
                             "claims": [{"claim_id": cid, "score": round(score, 2),
                                         **tier_of(chain, score)} for cid, score in ranked]})
    rows.sort(key=lambda r: -r["claims"][0]["score"])
    return {"sentences": len(sentences), "claims_in_table": len(chain.index),
            "claims_version": chain.claims_version,
            "thresholds": {"linked": chain.linked_min, "suggested": chain.suggested_min,
                           "candidate": chain.candidate_min},
            "best": rows[:MAX_SENTENCES]}


def extraction_report(chain: AnalysisChain, text: str) -> dict[str, Any]:
    """How long the text is and which extractor settings made it."""
    return {"chars": len(text), "words": len(text.split()),
            "favor_precision": chain.config.favor_precision,
            "min_chars": chain.config.min_chars}
