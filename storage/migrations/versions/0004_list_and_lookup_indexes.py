"""indexes for flat lookups and paged lists (issue 13)

Coverage counters per claim (claim_coverage, claim_outlets), filled from the stored
matches, so the claims page reads one row per claim. The near-duplicate lookup reads (band_key, article_id) from one index; the review
list, /articles.json and the digest page newest first by (fetched_at, id) per topic
and status; the list filtered by a claim starts from the claim's matches.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 04:30:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('claim_coverage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('claim_id', sa.String(length=200), nullable=False),
    sa.Column('articles', sa.Integer(), nullable=False),
    sa.Column('conflicts', sa.Integer(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'claim_id', name='uq_claim_coverage_topic_claim')
    )
    op.create_table('claim_outlets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('claim_id', sa.String(length=200), nullable=False),
    sa.Column('outlet', sa.String(length=300), nullable=False),
    sa.Column('articles', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'claim_id', 'outlet', name='uq_claim_outlets_topic_claim')
    )
    # The counters of the matches stored so far (later writes keep them).
    op.execute(
        "INSERT INTO claim_coverage (topic, claim_id, articles, conflicts, first_seen, last_seen) "
        "SELECT a.topic, c.claim_id, count(*), sum(CASE WHEN c.conflict THEN 1 ELSE 0 END), "
        "min(coalesce(a.published, a.fetched_at)), max(coalesce(a.published, a.fetched_at)) "
        "FROM article_claims c JOIN articles a ON a.id = c.article_id "
        "WHERE c.review <> 'rejected' GROUP BY a.topic, c.claim_id"
    )
    op.execute(
        "INSERT INTO claim_outlets (topic, claim_id, outlet, articles) "
        "SELECT a.topic, c.claim_id, coalesce(a.outlet, a.source), count(*) "
        "FROM article_claims c JOIN articles a ON a.id = c.article_id "
        "WHERE c.review <> 'rejected' GROUP BY a.topic, c.claim_id, coalesce(a.outlet, a.source)"
    )
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
    op.drop_table('claim_outlets')
    op.drop_table('claim_coverage')
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
