"""Full-text search index DDL: SQLite FTS5 and PostgreSQL tsvector + GIN.

The index is the database's own, kept in step with every write by the database
itself (SQLite triggers; PostgreSQL maintains an expression index on each
INSERT/UPDATE), so no code path that writes an article can forget it.

- SQLite: an external-content FTS5 table ``articles_fts`` over ``articles``
  (title, text, outlet), porter-stemmed unicode61 tokens without diacritics,
  filled by AFTER INSERT/UPDATE/DELETE triggers.
- PostgreSQL: a stored generated column ``search_document``, the
  ``to_tsvector('english', title, outlet, text)`` of each article, with a GIN index
  on it; queries match and rank on the column. Ranking reads the stored vector
  instead of parsing each matching article's text again (0.7 ms an article: a page
  of results ranked among a thousand matches took most of a second).

The migrations that add the index to existing databases (0005, 0011) carry their own
copy of these statements: migrations never import code that changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event

FTS_TABLE = "articles_fts"
PG_INDEX = "ix_articles_fts"

PG_COLUMN = "search_document"
#: The document every article is searched as (PostgreSQL), stored in :data:`PG_COLUMN`.
PG_DOCUMENT = ("to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || "
               "coalesce(outlet, '') || ' ' || coalesce(text, ''))")

SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "title, text, outlet, content='articles', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON articles BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, title, text, outlet) "
    "VALUES (new.id, new.title, new.text, new.outlet); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON articles BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, text, outlet) "
    "VALUES ('delete', old.id, old.title, old.text, old.outlet); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE OF title, text, outlet "
    f"ON articles BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, text, outlet) "
    "VALUES ('delete', old.id, old.title, old.text, old.outlet); "
    f"INSERT INTO {FTS_TABLE}(rowid, title, text, outlet) "
    "VALUES (new.id, new.title, new.text, new.outlet); END",
)

PG_DDL = (
    f"ALTER TABLE articles ADD COLUMN IF NOT EXISTS {PG_COLUMN} tsvector "
    f"GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED",
    f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON articles USING gin ({PG_COLUMN})",
)


def _create(target: Table, connection: Any, **kw: Any) -> None:
    name = connection.dialect.name
    statements = SQLITE_DDL if name == "sqlite" else PG_DDL if name == "postgresql" else ()
    for statement in statements:
        connection.exec_driver_sql(statement)


def attach(articles: Table) -> None:
    """Create the search index whenever the ``articles`` table is created (``create_all``)."""
    event.listen(articles, "after_create", _create)


def is_search_object(name: str | None) -> bool:
    """Objects of the search index, which the models do not describe (schema comparisons)."""
    return bool(name) and (name in (PG_INDEX, PG_COLUMN) or str(name).startswith(FTS_TABLE))
