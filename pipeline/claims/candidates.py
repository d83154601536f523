"""New-claim candidates: sentences that look like checkable claims nobody has recorded."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.claims.figures import _claim_numbers, _figures, _new_figures, _other_figures
from pipeline.claims.index import ClaimIndex
from pipeline.claims.matching import ClaimMatch
from pipeline.claims.scoring import (
    CANDIDATE_GATE,
    DEFAULT_CANDIDATE_MIN,
    DEFAULT_CONFLICT_MIN,
    DEFAULT_SUGGESTED_MIN,
    _score,
    _score_queries,
)
from pipeline.text import TextFeatures, analyse


@dataclass(frozen=True)
class Candidate:
    """A sentence that looks like a checkable claim nobody has recorded yet."""

    sentence: str
    sentence_index: int
    score: float  # 0..1, how claim-like


_ATTRIBUTION = re.compile(
    r"\b(?:said|says|say|told|claimed|claims|claim|stated|states|alleged|alleges|according to|"
    r"reported|reports|announced|revealed|reveal|reveals|estimated|found|showed|shows|confirmed|"
    r"denied|admitted|insisted|argued|wrote|tweeted|posted)\b"
)
_COMPARATIVE = re.compile(
    r"\b(?:more|less|fewer|most|least|higher|lower|largest|biggest|smallest|first|only|"
    r"doubled|tripled|halved|increase[sd]?|decrease[sd]?|rose|fell|cut|reduced|raised|grew|"
    r"dropped|jumped|climbed|surged|plunged|record|best|worst|highest|lowest|greatest|"
    r"fastest|than)\b"
)
_BOILERPLATE = re.compile(
    r"^(?:read (?:also|more)|see also|related|advertisement|subscribe|sign up|follow us|"
    r"click here|share this|copyright|all rights reserved|photo|image|getty|reference|"
    r"source|editor'?s note|this article|updated|published)\b"
)
_QUOTE = re.compile(r"[\"\u201c\u201d]")


def _claimlikeness(sentence: str, feats: TextFeatures) -> float:
    norm = feats.norm
    if _BOILERPLATE.match(norm) or norm.endswith(":"):
        return 0.0
    n_words = len(norm.split())
    if n_words < 6 or n_words > 80 or norm.endswith("?"):
        return 0.0
    score = 0.15
    salient = [n for n in feats.numbers if n.kind != "year"]
    if salient:
        score += 0.35
    if _ATTRIBUTION.search(norm):
        score += 0.3
    if _QUOTE.search(sentence):
        score += 0.1
    if _COMPARATIVE.search(norm):
        score += 0.15
    if len(feats.words) >= 6:
        score += 0.05
    return round(min(score, 1.0), 3)


def find_candidates(
    sentences: Sequence[str],
    matches: Sequence[ClaimMatch],
    *,
    min_score: float = DEFAULT_CANDIDATE_MIN,
    index: ClaimIndex | None = None,
    suggested_min: float = DEFAULT_SUGGESTED_MIN,
    conflict_min: float = DEFAULT_CONFLICT_MIN,
) -> list[Candidate]:
    """Sentences that look like checkable claims and match no known claim.

    Claim-like means: a figure, an attribution ("said", "according to",
    "claimed"), a quotation or a comparative, in a sentence of ordinary length
    that is neither a heading nor boilerplate ("Read also: ..."). Sentences in
    ``matches`` are left out unless they state a figure the matched claims lack;
    with ``index``, so is every sentence that scores ``suggested_min`` with a
    known claim (``match_claims`` reports one sentence per claim, a second
    sentence repeating it is not new either), with the same exception.
    """
    known_figures: dict[int, set[str]] = {}
    conflicting = {m.sentence_index for m in matches if m.conflict}  # flagged as conflicts
    for m in matches:
        known_figures.setdefault(m.sentence_index, set()).update(m.claim_numbers)
    found: list[tuple[int, TextFeatures, float]] = []
    for si, sentence in enumerate(sentences):
        if si in conflicting:
            continue
        feats = analyse(sentence)
        if si in known_figures and not _new_figures(feats, known_figures[si]):
            continue
        score = _claimlikeness(sentence, feats)
        if score >= min_score:
            found.append((si, feats, score))
    if index is not None and len(index) and found:
        floor = min(max(suggested_min / 100.0, 0.0), 0.999) * 0.999
        scored = _score_queries(index, [f for _, f, _ in found], 5, CANDIDATE_GATE, floor)
        found = [
            item
            for item, pairs in zip(found, scored, strict=True)
            if not any(
                _score(p) >= suggested_min
                and not _other_figures(index, row, item[1], _score(p), conflict_min)
                and not _new_figures(item[1], set(_figures(_claim_numbers(index, row))))
                for row, p, _ in pairs
            )
        ]
    return [Candidate(sentences[si], si, round(score, 3)) for si, _, score in found]
