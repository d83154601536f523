"""article_claims.stance: does a matched sentence repeat, dispute or discuss its claim;
claim_outlets.disputes: how many of an outlet's matches of a claim dispute it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('article_claims') as batch:
        batch.add_column(sa.Column('stance', sa.String(length=20), nullable=False,
                                   server_default='repeats'))
        batch.create_index('ix_article_claims_stance', ['stance', 'article_id'], unique=False)
    # Every stored match repeats its claim until re-analysed: no outlet disputes yet.
    with op.batch_alter_table('claim_outlets') as batch:
        batch.add_column(sa.Column('disputes', sa.Integer(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('claim_outlets') as batch:
        batch.drop_column('disputes')
    with op.batch_alter_table('article_claims') as batch:
        batch.drop_index('ix_article_claims_stance')
        batch.drop_column('stance')
