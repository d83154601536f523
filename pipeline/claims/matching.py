"""Matching: which known claims an article repeats, one best sentence per claim."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.claims import rerank
from pipeline.claims.context import ArticleContext, LazyContexts
from pipeline.claims.figures import _claim_numbers, _figures, _other_figures, numbers_conflict
from pipeline.claims.index import ClaimIndex
from pipeline.claims.language import analyse_lang, detect_language, normalise_lang
from pipeline.claims.scoring import (
    CANDIDATE_GATE,
    DEFAULT_CONFLICT_MIN,
    DEFAULT_LINKED_MIN,
    DEFAULT_SUGGESTED_MIN,
    _score,
    _score_queries,
)
from pipeline.claims.stance import link_stance
from pipeline.text import analyse


@dataclass(frozen=True)
class ClaimMatch:
    """A sentence of an article that repeats (or contradicts) a known claim."""

    claim_id: str
    sentence: str
    sentence_index: int
    score: float  # 0..100
    tier: str  # "linked" | "suggested"
    conflict: bool
    claim_numbers: tuple[str, ...]
    article_numbers: tuple[str, ...]
    # "repeats" | "disputes" | "discusses" (pipeline.claims.stance); never "repeats"
    # for a sentence that negates or disputes the claim
    stance: str = "repeats"



# One claim per idea: a second claim stays on a sentence only when at least this
# share of what the sentence shares with it (IDF mass) is words no claim kept
# before it on that sentence has (it states a distinct part of the sentence).
DISTINCT_SHARE = 0.5


def _claim_words(index: ClaimIndex, ci: int) -> frozenset[str]:
    """The content words of every text (claim and aliases) of claim ``ci``."""
    found = index.claim_words_cache.get(ci)
    if found is None:
        first = int(index.claim_first_row[ci])
        words: set[str] = set()
        row = first
        while row < index.n_rows and int(index.row_claim[row]) == ci:
            text = index.row_texts[row]
            words.update(analyse_lang(text, detect_language(text)).words)
            row += 1
        found = index.claim_words_cache[ci] = frozenset(words)
    return found


def _one_claim_per_idea(
    index: ClaimIndex, words: frozenset[str], pairs: list[tuple[int, float, bool]]
) -> list[tuple[int, float, bool]]:
    """The claims a sentence really states, of the ``(row, score, other)`` it matches.

    The best-scoring claim is kept. Each next one (by score) is kept only if it
    states a distinct part of the sentence: at least ``DISTINCT_SHARE`` of the
    IDF mass the sentence shares with it lies in words that none of the claims
    already kept contain. "Musk said removing child exploitation is his top
    priority" then keeps *musk-priority-number-one* and drops *musk-has-not-invested
    in removing child exploitation*, whose shared words (Musk, removing, child
    exploitation) the first claim already accounts for; "Musk fired half the
    staff and dissolved the Trust and Safety Council" keeps both its claims.
    """
    if len(pairs) < 2:
        return pairs
    ordered = sorted(pairs, key=lambda p: (-p[1], p[0]))
    kept = [ordered[0]]
    covered = set(_claim_words(index, int(index.row_claim[ordered[0][0]])))
    kept_claims = {int(index.row_claim[ordered[0][0]])}
    for row, score, other in ordered[1:]:
        ci = int(index.row_claim[row])
        if ci in kept_claims:
            continue
        cw = _claim_words(index, ci)
        shared = words & cw
        if not shared:
            continue
        total = sum(index.word_weight(w) for w in shared)
        fresh = sum(index.word_weight(w) for w in shared - covered)
        if total > 0 and fresh >= DISTINCT_SHARE * total:
            kept.append((row, score, other))
            kept_claims.add(ci)
            covered |= cw
    return kept


def match_claims(
    sentences: Sequence[str],
    index: ClaimIndex,
    *,
    linked_min: float = DEFAULT_LINKED_MIN,
    suggested_min: float = DEFAULT_SUGGESTED_MIN,
    top_k: int = 5,
    conflict_min: float = DEFAULT_CONFLICT_MIN,
    context: ArticleContext | None = None,
) -> list[ClaimMatch]:
    """Known claims repeated in an article: the best sentence for each claim.

    Each sentence is compared with the texts of the ``top_k`` claims with the
    highest BM25 among those sharing at least ``CANDIDATE_GATE`` of their IDF
    mass with it, and scored with its context (``context``: the article's title,
    date, language, speakers; see :mod:`pipeline.claims.context`). A sentence
    keeps only the claims it really states (:func:`_one_claim_per_idea`).
    Returns one :class:`ClaimMatch` per claim that scores at least
    ``suggested_min`` (``linked`` from ``linked_min``) in some sentence, with its
    best sentence, ordered by score (then sentence, then claim id). A sentence
    matches several claims only when each states a distinct part of it.
    """
    if len(index) == 0 or not sentences:
        return []
    # the article's language (declared, else guessed from its sentences) decides the
    # stemmer and the stop words
    lang = normalise_lang(context.lang if context else None) or detect_language(
        " ".join(sentences[:20]))
    feats = ([analyse(s) for s in sentences] if lang == "en"
             else [analyse_lang(s, lang) for s in sentences])
    contexts = LazyContexts(sentences, context)  # made for the sentences that need one
    # pairs that cannot reach suggested_min are not fuzzy-scored (a tiny margin
    # keeps rounding from dropping a pair that lands exactly on it)
    floor = min(max(suggested_min / 100.0, 0.0), 0.999) * 0.999
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    scored = _score_queries(index, feats, top_k, CANDIDATE_GATE, floor, contexts,
                            keep_features=kept)
    # each pair's first-stage (lexical) logit: what the sentence's own words say
    lexical = ({(qi, r): z for qi, r, z in zip(kept[0][0].tolist(), kept[0][1].tolist(),
                                               kept[0][2][:, rerank.LEXICAL].tolist(),
                                               strict=True)} if kept else {})
    # claim -> (key, score, sentence, row, other); the key prefers a linked sentence,
    # then the one whose own words state the claim best (the re-ranker's context
    # features also lift a matching sentence's neighbours), then the score
    best: dict[int, tuple[tuple[bool, float, float], float, int, int, bool]] = {}
    for si, pairs in enumerate(scored):
        # pairs under suggested_min are no match, nor can they be the linked top one
        pairs = [(row, score, other) for row, score, other in
                 ((row, _score(p), other) for row, p, other in pairs)
                 if score >= suggested_min
                 and not _other_figures(index, row, feats[si], score, conflict_min)]
        if not pairs:
            continue
        # the claims it really states: the best, and others only as distinct parts
        pairs = _one_claim_per_idea(index, frozenset(feats[si].words), pairs)
        for row, score, other in pairs:
            ci = int(index.row_claim[row])
            key = (score >= linked_min, lexical.get((si, row), 0.0), score)
            current = best.get(ci)
            if current is None or key > current[0]:
                best[ci] = (key, score, si, row, other)
    matches: list[ClaimMatch] = []
    for ci, (_, score, si, row, other) in best.items():
        claim_nums = _claim_numbers(index, row)
        sent_nums = feats[si].numbers
        # Stance against the claim's own wording (an alias may word it as a denial of
        # something else: "Dorsey denied Musk's claim that ..." for "This is false").
        stance, _ = link_stance(sentences[si], index.claims[ci].text or index.row_texts[row],
                                context=contexts[si].window, lang=lang)
        matches.append(
            ClaimMatch(
                claim_id=index.claims[ci].id,
                sentence=sentences[si],
                sentence_index=si,
                score=score,
                tier="linked" if score >= linked_min else "suggested",
                # a sentence about someone else does not contradict the claim
                conflict=not other and numbers_conflict(claim_nums, sent_nums),
                claim_numbers=_figures(claim_nums),
                article_numbers=_figures(sent_nums),
                stance=stance,
            )
        )
    matches.sort(key=lambda m: (-m.score, m.sentence_index, m.claim_id))
    return matches
