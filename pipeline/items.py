"""The item a page becomes on its way through the item pipelines, typed.

A spider yields a :class:`PageItem` (what was fetched); the analyse stage adds
``analysis``; the dedup stage ``canonical_url`` and ``duplicate``; the store stage
``article_id`` (and drops what is stored). It stays a dict (a ``TypedDict``) so
Scrapy's exporters and log formatter handle it as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NotRequired, TypedDict

if TYPE_CHECKING:
    from pipeline.analysis import Analysis


class Duplicate(TypedDict):
    """The stored original of a copy or rewrite."""

    root_id: int
    kind: str  # exact|declared|copy|rewrite
    similarity: float


class PageItem(TypedDict):
    """One fetched article page and what the stages found about it."""

    topic: str
    source: str
    url: str
    requested_url: str
    body: bytes | str
    encoding: str | None
    fetched_at: datetime
    listed_title: NotRequired[str | None]
    listed_published: NotRequired[datetime | None]
    # added by the stages
    analysis: NotRequired[Analysis]
    canonical_url: NotRequired[str]
    duplicate: NotRequired[Duplicate | None]
    article_id: NotRequired[int]
    # a revisit of a stored article (crawler/spiders/revisit.py)
    revisit_of: NotRequired[int]
    status: NotRequired[int | None]
    error: NotRequired[str | None]
    revisit_outcome: NotRequired[str]
