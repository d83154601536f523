"""An article's revision history as plain data, for the review page (and any other view).

Each revisit that found something, newest first: when, its outcome (revised,
removed, failed, redirected, different), the classified changes, the claims whose
sentences came or went, and the changed sentences paired before/after
(pipeline/revisions.py's :func:`sentence_pairs`) for a readable diff. The page
escapes every string (scraped text is hostile).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pipeline.revisions import sentence_pairs
from storage.revisions import revisit_log


def revision_history(session: Session, article_id: int) -> list[dict[str, Any]]:
    """The article's revisits, newest first (the original text's row last, if kept)."""
    return [{"fetched_at": row.fetched_at, "outcome": row.outcome, "detail": row.detail or "",
             "changes": list(row.changes), "claims": list(row.claims),
             "pairs": sentence_pairs(row.removed, row.added)}
            for row in revisit_log(session, article_id)]
