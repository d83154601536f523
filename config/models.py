"""Typed configuration objects: topics, sources, queries and known claims.

These are plain frozen dataclasses so that every stage (crawler, pipeline,
storage, app) can share them without importing Scrapy or SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SOURCE_KINDS = ("feed", "sitemap", "listing")


@dataclass(frozen=True)
class Claim:
    """One known claim. Numbers in ``text`` are part of its meaning."""

    id: str
    text: str
    source: str | None = None
    first_reported: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def texts(self) -> tuple[str, ...]:
        """The claim text followed by its aliases: every wording that counts as this claim."""
        return (self.text, *self.aliases)


@dataclass(frozen=True)
class Query:
    """Boolean topic query.

    An article is on topic when it contains at least one ``any`` term (if any are
    given), every ``all`` term, at least one ``and_any`` term (if any are given)
    and no ``none`` term.
    """

    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    and_any: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.any or self.all or self.none or self.and_any)


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # one of SOURCE_KINDS
    url: str
    schedule: str | None = None  # cron expression or "every 30m"; None for manual only
    options: dict[str, object] = field(default_factory=dict, hash=False, compare=False)


#: What a notification target can be told about (claimwatch/digest/notify.py).
NOTIFY_EVENTS = ("conflict", "dispute", "new_report", "source_alarm")


@dataclass(frozen=True)
class NotifyTarget:
    """Where a topic's alerts go: an Apprise URL (Slack, Matrix, Telegram, Discord,
    mailto, json://...), the events it wants, and the claims it watches for new reports
    (empty: every claim). The URL may hold a secret: show it only through ``shown``."""

    url: str = field(repr=False)
    events: tuple[str, ...] = NOTIFY_EVENTS
    claims: tuple[str, ...] = ()
    shown: str = ""  # the URL as written in the topic file (``${VAR}`` unexpanded)


@dataclass(frozen=True)
class Topic:
    name: str
    path: Path  # the topic file it was loaded from
    query: Query
    claims_path: Path | None
    claims: tuple[Claim, ...]
    sources: tuple[Source, ...]
    # Directory served over a local HTTP server for the crawl (the offline demo
    # and tests); source URLs may then use the ``${SITE}`` placeholder.
    serve_dir: Path | None = None
    notify: tuple[NotifyTarget, ...] = ()

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources)
        raise KeyError(f"topic {self.name!r} has no source {name!r} (sources: {known})")
