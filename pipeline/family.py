"""A story family's rule that both the crawl and the digest count with (no heavy imports:
``claimwatch digest`` reads it without loading the extraction or the claims matcher)."""

from __future__ import annotations

from collections.abc import Iterable


def new_to_family(sentences: Iterable[str], original_text: str | None) -> list[str]:
    """The candidate sentences a copy does not share with its original's text (those are
    offered on the original already). The crawl's ``candidates`` count and the digest both
    count with this rule, so their figures agree."""
    sentences = list(sentences)
    if original_text is None or not sentences:
        return sentences
    folded = " ".join(original_text.split())
    return [s for s in sentences if " ".join(s.split()) not in folded]
