"""full-text search over articles: SQLite FTS5 with triggers, PostgreSQL GIN on a tsvector

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:30:00

The statements are a frozen copy of storage/fts.py's (migrations never import code
that changes). Existing articles are indexed here; later writes by the triggers
(SQLite) or the expression index (PostgreSQL). A later migration that rebuilds the
``articles`` table on SQLite (batch mode "recreate") must re-create the triggers.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Only objects the models do not describe (tests/test_migrations.py reads this).
MODELS_UNCHANGED = True

_PG_DOCUMENT = (
    "to_tsvector('english'::regconfig, coalesce(articles.title, '') || ' ' || "
    "coalesce(articles.outlet, '') || ' ' || coalesce(articles.text, ''))"
)

_SQLITE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5("
    "title, text, outlet, content='articles', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_ai AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, title, text, outlet) "
    "VALUES (new.id, new.title, new.text, new.outlet); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_ad AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text, outlet) "
    "VALUES ('delete', old.id, old.title, old.text, old.outlet); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_au AFTER UPDATE OF title, text, outlet "
    "ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, text, outlet) "
    "VALUES ('delete', old.id, old.title, old.text, old.outlet); "
    "INSERT INTO articles_fts(rowid, title, text, outlet) "
    "VALUES (new.id, new.title, new.text, new.outlet); END",
    "INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_articles_fts ON articles "
                   f"USING gin (({_PG_DOCUMENT}))")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS articles_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS articles_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_articles_fts")
