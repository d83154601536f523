"""ix_articles_url: the crawl looks up the URLs a feed, sitemap or listing page lists
(Store.known_among) instead of reading every stored URL of the topic at its start (a hash
index on PostgreSQL, where a URL may be longer than a B-tree entry can be); on
PostgreSQL the search document is stored (articles.search_document, a generated
tsvector column with the GIN index) so that ranking does not parse each matching
article's text again; ix_crawl_runs_topic_id: a topic's runs, newest first (/api/v1/runs)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:40:00

The full-text statements are a frozen copy of storage/fts.py's (migrations never import
code that changes). Adding the column computes every stored article's vector once.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_DOCUMENT = ("to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || "
                "coalesce(outlet, '') || ' ' || coalesce(text, ''))")
_PG_DOCUMENT_0005 = (
    "to_tsvector('english'::regconfig, coalesce(articles.title, '') || ' ' || "
    "coalesce(articles.outlet, '') || ' ' || coalesce(articles.text, ''))"
)


def upgrade() -> None:
    op.create_index('ix_articles_url', 'articles', ['url'], unique=False,
                    postgresql_using='hash')
    op.create_index('ix_crawl_runs_topic_id', 'crawl_runs', ['topic', 'id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_articles_fts")
        op.execute("ALTER TABLE articles ADD COLUMN IF NOT EXISTS search_document tsvector "
                   f"GENERATED ALWAYS AS ({_PG_DOCUMENT}) STORED")
        op.execute("CREATE INDEX IF NOT EXISTS ix_articles_fts ON articles "
                   "USING gin (search_document)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_articles_fts")
        op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search_document")
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_articles_fts ON articles "
                   f"USING gin (({_PG_DOCUMENT_0005}))")
    op.drop_index('ix_crawl_runs_topic_id', table_name='crawl_runs')
    op.drop_index('ix_articles_url', table_name='articles')
