"""The living store: off_topic_pages (pages the topic query rejected, kept with their
text: a corrected query brings them back on `claimwatch rematch`); articles.claims_version
and article_claims.claims_version (the claims table a match was made against);
article_revisions (every revisit of an article: its revisions with their classified
changes, the original text, and revisits that were not revisions) and articles.revised

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:30:13

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('off_topic_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('requested_url', sa.Text(), nullable=True),
    sa.Column('canonical_url', sa.String(length=2000), nullable=False),
    sa.Column('declared_canonical', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('author', sa.Text(), nullable=True),
    sa.Column('outlet', sa.String(length=300), nullable=True),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.Column('published', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'canonical_url', name='uq_off_topic_pages_topic_canonical')
    )
    with op.batch_alter_table('off_topic_pages', schema=None) as batch_op:
        batch_op.create_index('ix_off_topic_pages_topic_fetched', ['topic', 'fetched_at', 'id'], unique=False)

    op.create_table('article_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('removed', sa.JSON(), nullable=False),
    sa.Column('added', sa.JSON(), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('article_revisions', schema=None) as batch_op:
        batch_op.create_index('ix_article_revisions_article', ['article_id', 'fetched_at', 'id'], unique=False)

    with op.batch_alter_table('article_claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims_version', sa.String(length=16), nullable=True))

    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims_version', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('revised', sa.Boolean(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_column('revised')
        batch_op.drop_column('claims_version')

    with op.batch_alter_table('article_claims', schema=None) as batch_op:
        batch_op.drop_column('claims_version')

    with op.batch_alter_table('article_revisions', schema=None) as batch_op:
        batch_op.drop_index('ix_article_revisions_article')

    op.drop_table('article_revisions')
    with op.batch_alter_table('off_topic_pages', schema=None) as batch_op:
        batch_op.drop_index('ix_off_topic_pages_topic_fetched')

    op.drop_table('off_topic_pages')
