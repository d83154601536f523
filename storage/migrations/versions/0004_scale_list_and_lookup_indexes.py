"""indexes for flat lookups and paged lists (issue 13)

The near-duplicate lookup reads (band_key, article_id) from one index; the review
list, /articles.json and the digest page newest first by (fetched_at, id) per topic
and status; the list filtered by a claim starts from the claim's matches.

Revision ID: 0004_scale
Revises: 0003
Create Date: 2026-12-06 04:30:00

"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0004_scale'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('article_bands', schema=None) as batch_op:
        batch_op.create_index('ix_article_bands_key_article', ['band_key', 'article_id'],
                              unique=False)
        batch_op.drop_index('ix_article_bands_key')
    with op.batch_alter_table('article_claims', schema=None) as batch_op:
        batch_op.create_index('ix_article_claims_claim_review',
                              ['claim_id', 'review', 'article_id'], unique=False)
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index('ix_articles_topic_status_fetched',
                              ['topic', 'review_status', 'fetched_at', 'id'], unique=False)
        batch_op.create_index('ix_articles_status_fetched',
                              ['review_status', 'fetched_at', 'id'], unique=False)
        batch_op.create_index('ix_articles_fetched', ['fetched_at', 'id'], unique=False)
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.create_index('ix_crawl_runs_started', ['started', 'id'], unique=False)
        batch_op.create_index('ix_crawl_runs_topic_started', ['topic', 'started', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_crawl_runs_topic_started')
        batch_op.drop_index('ix_crawl_runs_started')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_fetched')
        batch_op.drop_index('ix_articles_status_fetched')
        batch_op.drop_index('ix_articles_topic_status_fetched')
    with op.batch_alter_table('article_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_article_claims_claim_review')
    with op.batch_alter_table('article_bands', schema=None) as batch_op:
        batch_op.create_index('ix_article_bands_key', ['band_key'], unique=False)
        batch_op.drop_index('ix_article_bands_key_article')
