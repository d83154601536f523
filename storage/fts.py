"""Full-text search index DDL: SQLite FTS5 and PostgreSQL tsvector + GIN.

The index is the database's own, kept in step with every write by the database
itself (SQLite triggers; PostgreSQL maintains an expression index on each
INSERT/UPDATE), so no code path that writes an article can forget it.

- SQLite: an external-content FTS5 table ``articles_fts`` over ``articles``
  (title, text, outlet), porter-stemmed unicode61 tokens without diacritics,
  filled by AFTER INSERT/UPDATE/DELETE triggers.
- PostgreSQL: a GIN index on :data:`PG_DOCUMENT`, an immutable
  ``to_tsvector('english', ...)`` expression; queries use the same expression so
  the planner uses the index.

The migration that adds the index to existing databases (0004) carries its own
copy of these statements: migrations never import code that changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event

FTS_TABLE = "articles_fts"
PG_INDEX = "ix_articles_fts"

#: The document every article is searched as (PostgreSQL). Queries repeat it verbatim.
PG_DOCUMENT = (
    "to_tsvector('english'::regconfig, coalesce(articles.title, '') || ' ' || "
    "coalesce(articles.outlet, '') || ' ' || coalesce(articles.text, ''))"
)

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

PG_DDL = (f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON articles USING gin (({PG_DOCUMENT}))",)


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
    return bool(name) and (name == PG_INDEX or str(name).startswith(FTS_TABLE))
