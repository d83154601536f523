"""Full-text search over stored articles (title, text, outlet), with filters.

The query language is the one people type into a search box (PostgreSQL's
``websearch_to_tsquery``): words are all required, ``"a phrase"`` must appear as
written, ``OR`` between words accepts either, ``-word`` excludes, ``word*`` matches
a prefix (SQLite). Words are stemmed on both backends ("reports" finds "reported").

On SQLite the words are translated into an FTS5 expression in which every word is
quoted, so no input can inject FTS5 syntax; on PostgreSQL the text goes to
``websearch_to_tsquery`` as a bound parameter. Results are ranked (bm25 on SQLite,
``ts_rank_cd`` on PostgreSQL), newest first among equals, and paged by offset: a
page of results ranks only the rows that match, through the index
(storage/fts.py), never a scan of the articles.

What is ranked is the newest :data:`RANK_WINDOW` matches (more when the page asked for
lies deeper): a word that half of a million articles contain is ranked among its
newest thousand, in the same time as a rare word, not by reading half a million rows.
A search narrowed by dates (``until``) reaches older articles. PostgreSQL reads the window
off the GIN index range of ids by range, newest first (:func:`_postgres_window`), so a
search reads the matches it ranks, whatever the planner estimates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, literal, literal_column, select, table, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from storage.fts import FTS_TABLE, PG_COLUMN
from storage.models import Article, ArticleClaim, ClaimCandidate

MAX_QUERY_CHARS = 500
MAX_TERMS = 32
MAX_OFFSET = 10_000
MAX_LIMIT = 500
#: The newest matches a search ranks (at least offset + limit of them).
RANK_WINDOW = 1000
#: PostgreSQL: the ids the first range of a search spans (the newest), and the least
#: factor by which each next range grows (see :func:`_postgres_window`).
FIRST_SPAN = 4096
SPAN_GROWTH = 4
#: Snippet markers: control characters no stored text contains; renderers replace them
#: (after escaping) with their own highlight, e.g. ``<mark>``.
MARK_START, MARK_END = "\x02", "\x03"
FLAGS = ("new_report", "duplicate", "conflict", "new_claim_candidate", "disputes")
REVIEW_STATUSES = ("open", "reviewed", "dismissed")

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[\w]+(?:['’.][\w]+)*\*?", re.UNICODE)


class SearchError(ValueError):
    """A search the user must change: the message names the field and what is wrong."""


@dataclass(frozen=True)
class SearchFilters:
    topic: str | None = None
    flag: str | None = None
    claim: str | None = None
    outlet: str | None = None
    language: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    review: str | None = None

    def __post_init__(self) -> None:
        if self.flag is not None and self.flag not in FLAGS:
            raise SearchError(f"flag: {self.flag!r} is not one of {', '.join(FLAGS)}")
        if self.review is not None and self.review not in REVIEW_STATUSES:
            raise SearchError(
                f"review: {self.review!r} is not one of {', '.join(REVIEW_STATUSES)}")
        if self.since and self.until and self.since > self.until:
            raise SearchError("since: the start of the date range is after its end")


@dataclass(frozen=True)
class SearchHit:
    id: int
    topic: str
    title: str | None
    url: str
    outlet: str | None
    language: str | None
    published: datetime | None
    fetched_at: datetime
    review_status: str
    duplicate_of_id: int | None
    snippet: str  # with MARK_START / MARK_END around matched words

    @property
    def when(self) -> datetime:
        return self.published or self.fetched_at


@dataclass
class SearchPage:
    query: str
    hits: list[SearchHit] = field(default_factory=list)
    offset: int = 0
    next_offset: int | None = None  # None: this is the last page


@dataclass(frozen=True)
class _Term:
    text: str  # a word, a word with * (prefix) or several words (phrase)
    phrase: bool = False
    negated: bool = False


def parse_query(query: str) -> list[_Term | str]:
    """Words, phrases, ``-exclusions`` and ``OR`` (as the string "OR"), validated."""
    query = (query or "").strip()
    if not query:
        raise SearchError("query: type at least one word to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchError(f"query: longer than {MAX_QUERY_CHARS} characters")
    parts: list[_Term | str] = []
    for match in _TOKEN.finditer(query):
        negated_phrase, phrase, bare = match.groups()
        if phrase is not None:
            words = _WORD.findall(phrase.replace("*", " "))
            if words:
                parts.append(_Term(" ".join(words), phrase=True, negated=bool(negated_phrase)))
            continue
        if bare == "OR":
            if parts and parts[-1] != "OR":
                parts.append("OR")
            continue
        negated = bare.startswith("-") and len(bare) > 1
        for word in _WORD.findall(bare[1:] if negated else bare):
            parts.append(_Term(word, negated=negated))
    while parts and parts[-1] == "OR":
        parts.pop()
    terms = [p for p in parts if isinstance(p, _Term)]
    if not any(not t.negated for t in terms):
        raise SearchError("query: needs at least one word that is not excluded with '-'")
    if len(terms) > MAX_TERMS:
        raise SearchError(f"query: more than {MAX_TERMS} words")
    return parts


def fts5_expression(query: str) -> str:
    """The SQLite FTS5 MATCH expression for ``query`` (every word quoted: no injection)."""
    positive: list[str] = []
    negative: list[str] = []
    pending_or = False
    for part in parse_query(query):
        if part == "OR":
            pending_or = bool(positive)
            continue
        assert isinstance(part, _Term)
        word = part.text
        prefix = word.endswith("*") and not part.phrase
        quoted = '"' + word.rstrip("*").replace('"', '""') + '"' + ("*" if prefix else "")
        if part.negated:
            negative.append(quoted)
        elif pending_or:
            positive[-1] = f"{positive[-1]} OR {quoted}"
            pending_or = False
        else:
            positive.append(quoted)
    expression = " AND ".join(f"({p})" if " OR " in p else p for p in positive)
    for word in negative:
        expression = f"({expression}) NOT {word}"
    return expression


def has_row(*conditions: Any) -> Any:
    """``(SELECT 1 ... LIMIT 1) IS NOT NULL``: a per-article index probe. (A plain EXISTS
    is turned by PostgreSQL into a hashed subplan that reads the whole table.)"""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


def apply_filters(statement: Any, filters: SearchFilters) -> Any:
    """``statement`` (over articles) narrowed by ``filters``: shared with the export."""
    if filters.topic:
        statement = statement.where(Article.topic == filters.topic)
    if filters.outlet:
        statement = statement.where(func.lower(Article.outlet) == filters.outlet.lower())
    if filters.language:
        statement = statement.where(func.lower(Article.language) == filters.language.lower())
    if filters.review:
        statement = statement.where(Article.review_status == filters.review)
    when = func.coalesce(Article.published, Article.fetched_at)
    if filters.since:
        statement = statement.where(when >= filters.since)
    if filters.until:
        statement = statement.where(when <= filters.until)
    if filters.claim:
        statement = statement.where(has_row(
            ArticleClaim.article_id == Article.id, ArticleClaim.claim_id == filters.claim,
            ArticleClaim.review != "rejected"))
    if filters.flag == "duplicate":
        statement = statement.where(Article.duplicate_of_id.is_not(None))
    elif filters.flag == "new_report":
        statement = statement.where(Article.duplicate_of_id.is_(None))
    elif filters.flag == "conflict":
        statement = statement.where(has_row(
            ArticleClaim.article_id == Article.id, ArticleClaim.conflict.is_(True),
            ArticleClaim.review != "rejected"))
    elif filters.flag == "disputes":
        statement = statement.where(has_row(
            ArticleClaim.article_id == Article.id, ArticleClaim.stance == "disputes",
            ArticleClaim.review != "rejected"))
    elif filters.flag == "new_claim_candidate":
        statement = statement.where(has_row(
            ClaimCandidate.article_id == Article.id, ClaimCandidate.status == "open"))
    return statement


_COLUMNS = (Article.id, Article.topic, Article.title, Article.url, Article.outlet,
            Article.language, Article.published, Article.fetched_at, Article.review_status,
            Article.duplicate_of_id)


def search_articles(session: Session, query: str, filters: SearchFilters | None = None, *,
                    limit: int = 50, offset: int = 0) -> SearchPage:
    """One page of the articles matching ``query`` and ``filters``, best match first."""
    filters = filters or SearchFilters()
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit: must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise SearchError(f"offset: must be between 0 and {MAX_OFFSET} (narrow the search)")
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        rows = _sqlite_page(session, query, filters, limit + 1, offset)
    elif dialect == "postgresql":
        rows = _postgres_page(session, query, filters, limit + 1, offset)
    else:  # pragma: no cover - only the two supported stores
        raise SearchError(f"search is not available on {dialect}")
    hits = [SearchHit(*row[:10], snippet=_tidy(row[10] or "")) for row in rows[:limit]]
    more = len(rows) > limit and offset + limit <= MAX_OFFSET
    return SearchPage(query=query, hits=hits, offset=offset,
                      next_offset=offset + limit if more else None)


def _tidy(snippet: str) -> str:
    return " ".join(snippet.split())


def _sqlite_page(session: Session, query: str, filters: SearchFilters, limit: int,
                 offset: int) -> list[Any]:
    fts = table(FTS_TABLE, literal_column("rowid"))
    expression = fts5_expression(query)
    rowid = literal_column(f"{FTS_TABLE}.rowid")
    # FTS5 hands out its matches newest (highest rowid) first: the window is read off
    # the index in order, and bm25 is computed for its rows only.
    newest = apply_filters(
        select(Article.id.label("id"), literal_column(f"{FTS_TABLE}.rank").label("rank"))
        .select_from(fts)
        .join(Article.__table__, Article.id == rowid)
        .where(text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=expression))
        , filters,
    ).order_by(rowid.desc()).limit(max(RANK_WINDOW, offset + limit)).subquery("newest")
    page = (select(newest.c.id, newest.c.rank)
            .order_by(newest.c.rank, newest.c.id.desc()).limit(limit).offset(offset)
            .subquery("page"))
    snippet = literal_column(
        f"snippet({FTS_TABLE}, -1, char(2), char(3), '…', 24)").label("snippet")
    statement = (
        select(*_COLUMNS, snippet)
        .select_from(page)
        .join(Article.__table__, Article.id == page.c.id)
        .join(fts, rowid == page.c.id)
        .where(text(f"{FTS_TABLE} MATCH :fts_query2").bindparams(fts_query2=expression))
        .order_by(page.c.rank, Article.id.desc())
    )
    from sqlalchemy.exc import OperationalError

    try:
        return list(session.execute(statement))
    except OperationalError as exc:  # an FTS5 expression it cannot run
        if "fts5" in str(exc.orig).lower() or "syntax" in str(exc.orig).lower():
            raise SearchError(f"query: cannot search for {query!r} ({exc.orig})") from exc
        raise


def _postgres_page(session: Session, query: str, filters: SearchFilters, limit: int,
                   offset: int) -> list[Any]:
    parse_query(query)  # the same validation as SQLite
    document = literal_column(f"articles.{PG_COLUMN}")
    tsquery = func.websearch_to_tsquery(literal_column("'english'::regconfig"), query)
    # Every plan below is chosen for its own parameters (psycopg prepares a statement
    # run five times; PostgreSQL may then plan it once for any parameters).
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    window = _postgres_window(session, document, tsquery, filters,
                              max(RANK_WINDOW, offset + limit))
    if not window:
        return []
    rank = func.ts_rank_cd(document, tsquery).label("rank")
    page = (select(Article.id.label("id"), rank)
            .where(Article.id == func.any(literal(window, ARRAY(Integer))))
            .order_by(literal_column("rank").desc(), Article.id.desc())
            .limit(limit).offset(offset).subquery("page"))
    headline = func.ts_headline(
        literal_column("'english'::regconfig"),
        func.coalesce(Article.title, "") + " — " + Article.text,
        func.websearch_to_tsquery(literal_column("'english'::regconfig"), query),
        "StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=12, MaxFragments=2, "
        "FragmentDelimiter=\" … \"",
    ).label("snippet")
    statement = (
        select(*_COLUMNS, headline)
        .select_from(page)
        .join(Article.__table__, Article.id == page.c.id)
        .order_by(page.c.rank.desc(), Article.id.desc())
    )
    return list(session.execute(statement))


#: PostgreSQL plans of the window's ranges: no plain index scan (a walk of the primary key
#: testing each article's vector), no sequential scan; what is left is a bitmap of the GIN
#: index ANDed with the range's bitmap of the primary key (or the GIN bitmap alone).
_RANGE_PLANS = {"enable_indexscan": "off", "enable_seqscan": "off"}


def _postgres_window(session: Session, document: Any, tsquery: Any, filters: SearchFilters,
                     window: int) -> list[int]:
    """The ids of the newest ``window`` articles that match, newest first: the newest
    ranges of ids searched in turn, each through the GIN index ANDed with the primary key's
    range, until the window is full.

    One query ``ORDER BY id DESC LIMIT window`` let the planner walk the primary key
    backwards testing each article's vector (read off TOAST), a plan it prices by its
    estimate of how many articles match and without the cost of reading the vectors: for a
    word in one article of a hundred it read 87,589 articles (380,000 buffers) for the
    newest thousand matches at 1M stored, where the index lists only the ~7,000 that match.
    Each range is planned without plain index scans and sequential scans
    (:data:`_RANGE_PLANS`, for these statements only), so its matches come from the GIN
    index and only they are read from the table; a range is sized from the matches found so
    far (a word in most articles is done in the first range, a rare one reaches the oldest
    article in a few), so no range reads many more matches than the window still needs.
    """
    top = session.scalar(select(func.max(Article.id)))
    ids: list[int] = []
    high, span, covered = top or 0, FIRST_SPAN, 0
    saved = _set_planner(session, _RANGE_PLANS)
    while high > 0 and len(ids) < window:
        low = max(high - span, 0)
        statement = apply_filters(
            select(Article.id)
            .where(document.op("@@")(tsquery), Article.id > low, Article.id <= high), filters,
        ).order_by(Article.id.desc()).limit(window - len(ids))
        ids += session.scalars(statement).all()
        covered += high - low
        high = low
        # enough ids for twice the matches still wanted at the density seen so far
        wanted = 2 * (window - len(ids)) * covered // max(len(ids), 1)
        span = max(SPAN_GROWTH * span, wanted)
    _set_planner(session, saved)
    return ids


def _set_planner(session: Session, settings: dict[str, str]) -> dict[str, str]:
    """Set planner settings for the rest of the transaction (``SET LOCAL``); returns the
    values they had."""
    names = {f"name{i}": name for i, name in enumerate(settings)}
    values = {f"value{i}": value for i, value in enumerate(settings.values())}
    before = session.execute(text(
        "SELECT " + ", ".join(f"current_setting(:{key})" for key in names)), names).one()
    session.execute(text("SELECT " + ", ".join(
        f"set_config(:{key}, :{value}, true)" for key, value in zip(names, values, strict=True))),
        {**names, **values})
    return dict(zip(settings, before, strict=True))


def highlight(snippet: str, escape: Any, start: str = "<mark>", end: str = "</mark>") -> str:
    """``snippet`` escaped by ``escape`` (e.g. html.escape) with its marks as ``start``/``end``
    (the marks are put in after escaping, between escaped pieces)."""
    pieces = []
    for piece in re.split(f"([{MARK_START}{MARK_END}])", snippet):
        if piece == MARK_START:
            pieces.append(start)
        elif piece == MARK_END:
            pieces.append(end)
        elif piece:
            pieces.append(escape(piece))
    return "".join(pieces)


def plain(snippet: str, start: str = "[", end: str = "]") -> str:
    return snippet.replace(MARK_START, start).replace(MARK_END, end)


