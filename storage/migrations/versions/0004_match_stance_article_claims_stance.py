"""article_claims.stance: does a matched sentence repeat, dispute or discuss its claim

Revision ID: 0004_match_stance
Revises: 0003
Create Date: 2026-12-06 05:00:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0004_match_stance'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('article_claims') as batch:
        batch.add_column(sa.Column('stance', sa.String(length=20), nullable=False,
                                   server_default='repeats'))


def downgrade() -> None:
    with op.batch_alter_table('article_claims') as batch:
        batch.drop_column('stance')
