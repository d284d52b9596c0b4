"""Check results: the latest verdict of each partition check (parity, quality, rejected
ratio), kept in the store of record so every reader (the read API, the dashboard) sees what
the pipeline judged, and whether the bars changed since.

Revision ID: 0003_check_results
Revises: 0002_tick_landings
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

revision = "0003_check_results"
down_revision = "0002_tick_landings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_results",
        sa.Column("partition", Key, nullable=False),
        sa.Column("check_name", Key, nullable=False),
        sa.Column("timeframe", Key, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("bars_sha256", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evaluated_ns", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("partition", "check_name", "timeframe",
                                name="pk_check_results"),
    )


def downgrade() -> None:
    op.drop_table("check_results")
