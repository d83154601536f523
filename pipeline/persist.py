"""What the dedup and store stages do with the database, shared with re-analysis.

The crawl's dedup and store stages (pipeline/pipelines.py) and re-analysis
(pipeline/rematch.py, when a corrected query brings an off-topic page back) both
find a new article's original and store it through these functions, so an
article stored either way is stored the same way.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.analysis import Analysis
from pipeline.dedup import best_match, classify, find_original_reference
from pipeline.extract import Extracted
from pipeline.items import Duplicate
from pipeline.urls import canonical_url, cross_site_canonical
from storage.repository import ArticleRecord, CandidateRecord, MatchRecord, Store


def find_original(store: Store, topic: str, url: str, extracted: Extracted,
                  analysis: Analysis, max_candidates: int = 20) -> Duplicate | None:
    """The stored original of a copy or rewrite, or None for an original.

    Evidence, in order: the same normalised text, a rel=canonical or "originally
    published by" link to a stored article, then near-duplicate candidates from
    the LSH band index confirmed by :func:`pipeline.dedup.best_match`.
    """
    text = extracted.text
    root = store.find_root_by_hash(topic, analysis.content_hash or "")
    if root is not None:
        return Duplicate(root_id=root, kind="exact", similarity=1.0)
    declared = cross_site_canonical(url, extracted.declared_canonical)
    referenced = [declared] if declared else []
    if find_original_reference(text):
        referenced += [href for href, _ in extracted.links]
    canonicals = [canonical_url(ref) for ref in referenced]
    stored = store.find_by_urls(topic, canonicals) if canonicals else {}
    for canonical in canonicals:  # the page's own order: its declared original first
        referenced_id = stored.get(canonical)
        if referenced_id is not None:
            [original] = store.texts([referenced_id])
            # The page names its original; the similarity says how much it kept.
            similarity = classify(original.text, text).similarity
            return Duplicate(root_id=original.root_id, kind="declared",
                             similarity=float(similarity))
    candidates = store.band_candidates(topic, analysis.band_keys, limit=max_candidates)
    oldest_first = sorted(store.texts(candidates), key=lambda s: s.id)
    found = best_match(text, [(s, s.text) for s in oldest_first])
    if found is None:
        return None
    original, verdict = found
    return Duplicate(root_id=original.root_id, kind=str(verdict.kind),
                     similarity=float(verdict.similarity))


def match_records(analysis: Analysis) -> list[MatchRecord]:
    """The analysis's claim matches as the store takes them."""
    return [
        MatchRecord(
            claim_id=m.claim_id, sentence=m.sentence, sentence_index=m.sentence_index,
            score=float(m.score), tier=m.tier, conflict=m.conflict,
            claim_numbers=list(m.claim_numbers), article_numbers=list(m.article_numbers),
            stance=m.stance,
        )
        for m in analysis.matches
    ]


def candidate_records(analysis: Analysis) -> list[CandidateRecord]:
    return [CandidateRecord(sentence=c.sentence, sentence_index=c.sentence_index,
                            score=float(c.score))
            for c in analysis.candidates]


def article_record(*, topic: str, source: str, url: str, canonical: str, analysis: Analysis,
                   duplicate: Duplicate | None, fetched_at: datetime | None,
                   listed_title: str | None = None,
                   listed_published: datetime | None = None) -> ArticleRecord:
    """The :class:`ArticleRecord` of an analysed, on-topic page."""
    extracted = analysis.extracted
    assert extracted is not None and analysis.content_hash is not None
    return ArticleRecord(
        topic=topic,
        source=source,
        url=url,
        canonical_url=canonical,
        declared_canonical=extracted.declared_canonical,
        text=extracted.text,
        content_hash=analysis.content_hash,
        title=extracted.title or listed_title,
        author=extracted.author,
        outlet=extracted.outlet,
        language=extracted.language,
        published=extracted.published or listed_published,
        fetched_at=fetched_at,
        duplicate_of_id=duplicate["root_id"] if duplicate else None,
        duplicate_kind=duplicate["kind"] if duplicate else None,
        duplicate_similarity=duplicate["similarity"] if duplicate else None,
        matches=match_records(analysis),
        candidates=candidate_records(analysis),
        band_keys=analysis.band_keys,
        claims_version=analysis.claims_version,
    )
