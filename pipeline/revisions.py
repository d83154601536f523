"""What changed between two versions of an article: a sentence diff, classified.

A revisit of a stored article (a later fetch of its URL) either finds the page
as it was, a new revision of it, or something that is not a revision at all
(:func:`revisit_outcome`): a failed fetch, a redirect to another address, a
different article at the same address (recorded, never stored as a revision),
or a page that is gone (404/410: ``article_removed``).

A new revision is diffed at sentence level (:func:`diff_revision`, difflib over
the sentences of pipeline/analysis.py's splitter) and its changes classified:

- ``headline_changed``: the title differs (whitespace and case aside);
- ``figure_changed``: a sentence replaced by one that says the same with other
  figures (the words without the figures alike, the figures not);
- ``claim_sentence_added`` / ``claim_sentence_removed``: an added sentence that
  matches a known claim now, a removed one that matched one before (with the claim);
- ``correction_added``: an added correction, clarification or editor's note.

Pure; the store (storage/revisions.py) keeps the revision and re-runs claims.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pipeline.dedup import classify, numbers
from pipeline.text import split_sentences
from pipeline.urls import canonical_url

HEADLINE_CHANGED = "headline_changed"
FIGURE_CHANGED = "figure_changed"
CLAIM_SENTENCE_ADDED = "claim_sentence_added"
CLAIM_SENTENCE_REMOVED = "claim_sentence_removed"
CORRECTION_ADDED = "correction_added"
ARTICLE_REMOVED = "article_removed"

_CORRECTION = re.compile(
    r"\b(correction|corrected|clarification|editor['\u2019]?s note|an earlier version of "
    r"this (article|story|report)|this (article|story|report) (has been|was) (updated|amended|"
    r"corrected))\b", re.IGNORECASE)
_NUMBER_MASK = re.compile(r"\d[\d,.]*")
# Below this similarity to the stored text, the page at the address is another article.
SAME_ARTICLE_MIN = 0.3
# Two sentences "say the same with other figures" at this similarity with figures masked.
FIGURE_SENTENCE_MIN = 0.8


@dataclass(frozen=True)
class RevisionDiff:
    """The changes between two versions and the sentences that changed."""

    changes: tuple[str, ...]
    removed: tuple[str, ...]  # sentences of the old version not in the new one
    added: tuple[str, ...]  # sentences of the new version not in the old one
    claims: tuple[dict[str, str], ...] = field(default=())  # {change, claim_id, sentence}

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.removed or self.added)


def _masked(sentence: str) -> str:
    return _NUMBER_MASK.sub("#", " ".join(sentence.lower().split()))


def _figure_changed(old: str, new: str) -> bool:
    if numbers(old) == numbers(new):
        return False
    ratio = difflib.SequenceMatcher(None, _masked(old), _masked(new)).ratio()
    return ratio >= FIGURE_SENTENCE_MIN


def _same_title(old: str | None, new: str | None) -> bool:
    return " ".join((old or "").split()).casefold() == " ".join((new or "").split()).casefold()


def diff_revision(old_title: str | None, old_text: str, new_title: str | None, new_text: str,
                  *, old_claims: Iterable[tuple[str, str]] = (),
                  new_claims: Iterable[tuple[str, str]] = ()) -> RevisionDiff:
    """Diff two versions. ``old_claims``/``new_claims``: (claim id, matched sentence)."""
    old_sents, new_sents = split_sentences(old_text), split_sentences(new_text)
    matcher = difflib.SequenceMatcher(None, old_sents, new_sents, autojunk=False)
    removed: list[str] = []
    added: list[str] = []
    changes: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        gone, new = old_sents[i1:i2], new_sents[j1:j2]
        removed += gone
        added += new
        if op == "replace" and any(_figure_changed(a, b) for a in gone for b in new):
            changes.append(FIGURE_CHANGED)
    if not _same_title(old_title, new_title):
        changes.insert(0, HEADLINE_CHANGED)
    if any(_CORRECTION.search(s) for s in added):
        changes.append(CORRECTION_ADDED)
    claims = _claim_changes(set(removed), set(added), old_claims, new_claims)
    for change in (CLAIM_SENTENCE_ADDED, CLAIM_SENTENCE_REMOVED):
        if any(c["change"] == change for c in claims):
            changes.append(change)
    return RevisionDiff(tuple(dict.fromkeys(changes)), tuple(removed), tuple(added),
                        tuple(claims))


def _claim_changes(removed: set[str], added: set[str], old_claims: Iterable[tuple[str, str]],
                   new_claims: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """A claim whose sentence went and which the new version no longer matches (removed),
    or whose sentence came and which the old version did not match (added); a claim
    still matched by an edited sentence is a figure change or nothing, not both."""
    old_claims, new_claims = list(old_claims), list(new_claims)
    old_ids, new_ids = {cid for cid, _ in old_claims}, {cid for cid, _ in new_claims}
    out = [{"change": CLAIM_SENTENCE_REMOVED, "claim_id": cid, "sentence": s}
           for cid, s in old_claims if s in removed and cid not in new_ids]
    out += [{"change": CLAIM_SENTENCE_ADDED, "claim_id": cid, "sentence": s}
            for cid, s in new_claims if s in added and cid not in old_ids]
    return out


@dataclass(frozen=True)
class Fetched:
    """What a revisit got back for a stored article's URL."""

    status: int | None  # HTTP status; None: no response (DNS, timeout, refused)
    final_url: str  # after redirects
    error: str | None = None


def revisit_outcome(fetched: Fetched, stored_canonical: str, stored_text: str,
                    new_text: str | None, declared_canonical: str | None = None,
                    titles: tuple[str | None, str | None] = (None, None)) -> tuple[str, str]:
    """(outcome, detail) of a revisit, before any diff.

    ``removed`` (404/410), ``failed`` (no response, another error status, no article
    extracted), ``redirected`` (the address now leads to another canonical URL),
    ``different`` (another article at the address), ``not_modified`` (304),
    ``unchanged`` (the same text and ``titles``: stored, new), or ``revised``.
    """
    if fetched.status in (404, 410):
        return "removed", f"HTTP {fetched.status}"
    if fetched.status == 304:
        return "not_modified", "HTTP 304"
    if fetched.status is None or fetched.status >= 400:
        return "failed", fetched.error or f"HTTP {fetched.status}"
    now_at = canonical_url(fetched.final_url, declared=declared_canonical)
    if now_at != stored_canonical and canonical_url(fetched.final_url) != stored_canonical:
        return "redirected", f"now at {now_at}"
    if not new_text:
        return "failed", fetched.error or "no article text extracted"
    if new_text == stored_text:
        if titles[1] is None or _same_title(*titles):
            return "unchanged", ""
        return "revised", "headline only"
    similarity = float(classify(stored_text, new_text).similarity)
    if similarity < SAME_ARTICLE_MIN:
        return "different", f"similarity {similarity:.2f} to the stored text"
    return "revised", f"similarity {similarity:.2f}"


def sentence_pairs(removed: Sequence[str], added: Sequence[str]) -> list[tuple[str, str]]:
    """Removed and added sentences paired for a readable before/after view."""
    pairs = []
    left = list(added)
    for old in removed:
        best = max(left, key=lambda new: difflib.SequenceMatcher(None, old, new).ratio(),
                   default=None)
        if best is not None and difflib.SequenceMatcher(None, old, best).ratio() >= 0.5:
            left.remove(best)
            pairs.append((old, best))
        else:
            pairs.append((old, ""))
    pairs += [("", new) for new in left]
    return pairs
