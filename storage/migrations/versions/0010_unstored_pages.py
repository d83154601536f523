"""unstored_pages: why a page a crawl met was not stored (robots.txt, a refused address,
a download error, too little text, a canonical URL already stored), one row per (topic,
URL), for `claimwatch explain`; it never stops a later crawl fetching the page

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:20:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('unstored_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'url', name='uq_unstored_pages_topic_url')
    )


def downgrade() -> None:
    op.drop_table('unstored_pages')
