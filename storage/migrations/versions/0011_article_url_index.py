"""ix_articles_url: the crawl looks up the URLs a feed, sitemap or listing page lists
(Store.known_among) instead of reading every stored URL of the topic at its start (a hash
index on PostgreSQL, where a URL may be longer than a B-tree entry can be)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:40:00

"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_articles_url', 'articles', ['url'], unique=False,
                    postgresql_using='hash')


def downgrade() -> None:
    op.drop_index('ix_articles_url', table_name='articles')
