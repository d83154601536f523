"""A revisit of a stored article, from the fetched page to the stored revision.

The fetch itself is the crawler's (politeness, robots.txt, the address guard);
this is what follows it: extract the page with the analysis chain, decide what the
revisit found (pipeline/revisions.py: removed, failed, redirected, a different
article, unchanged, or a revision), and keep it (storage/revisions.py): a revision
with its classified sentence diff, its claims and conflicts re-run on the new text,
in one transaction; anything else recorded only.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pipeline.analysis import AnalysisChain, ArticleJob, StoredJob
from pipeline.extract import ExtractionError
from pipeline.persist import candidate_records, match_records
from pipeline.revisions import Fetched, diff_revision, revisit_outcome
from storage.models import Article
from storage.repository import Store
from storage.revisions import record_revisit, store_revision

logger = logging.getLogger(__name__)


def apply_revisit(store: Store, chain: AnalysisChain, article_id: int, fetched: Fetched,
                  body: bytes | str | None = None, *, encoding: str | None = None,
                  fetched_at: datetime | None = None) -> str:
    """Keep what a revisit of ``article_id`` found; returns its outcome."""
    with store.sessions() as session:
        article = session.get(Article, article_id)
        if article is None:
            return "gone"
        old_title, old_text, canonical = article.title, article.text, article.canonical_url
        old_claims = [(m.claim_id, m.sentence) for m in article.claims]
        published, language = article.published, article.language
    new_title = new_text = declared = None
    error = fetched.error
    if body and fetched.status == 200:
        try:
            extracted = chain.extract(ArticleJob(url=fetched.final_url, body=body,
                                                 encoding=encoding))
            new_title, new_text = extracted.title, extracted.text
            declared = extracted.declared_canonical
        except ExtractionError as exc:
            error = str(exc)
    outcome, detail = revisit_outcome(Fetched(fetched.status, fetched.final_url, error),
                                      canonical, old_text, new_text, declared,
                                      (old_title, new_title))
    if outcome in ("not_modified", "unchanged"):
        return outcome
    if outcome != "revised" or new_text is None:
        with store.sessions.begin() as session:
            record_revisit(session, article_id, outcome, detail, fetched_at,
                           ["article_removed"] if outcome == "removed" else ())
        logger.info("revisit of article %s: %s (%s)", article_id, outcome, detail)
        return outcome
    analysis = chain.reanalyse(StoredJob(key=article_id, url=fetched.final_url, text=new_text,
                                         title=new_title or old_title, published=published,
                                         language=language, check_topic=False))
    diff = diff_revision(old_title, old_text, new_title or old_title, new_text,
                         old_claims=old_claims,
                         new_claims=[(m.claim_id, m.sentence) for m in analysis.matches])
    with store.sessions.begin() as session:
        store_revision(session, article_id, title=new_title, text=new_text,
                       content_hash=analysis.content_hash or "", band_keys=analysis.band_keys,
                       diff=diff, matches=match_records(analysis),
                       candidates=candidate_records(analysis),
                       claims_version=analysis.claims_version, fetched_at=fetched_at,
                       detail=detail)
    logger.info("article %s revised: %s", article_id, ", ".join(diff.changes) or "text")
    return outcome
