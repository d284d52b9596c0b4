"""Trade amendments: the log of vendor cancels and corrections, applied when ticks are
read for a build (``core.amendments``, ``storage.amendments``).

Revision ID: 0005_trade_amendments
Revises: 0004_bar_nth
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005_trade_amendments"
down_revision = "0004_bar_nth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trade_amendments",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("symbol", Key, nullable=False),
        sa.Column("trade_ts", sa.BigInteger, nullable=False),
        sa.Column("trade_id", Key, nullable=False),
        sa.Column("action", Key, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("size", sa.Double, nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("new_trade_id", Key, nullable=False),
        sa.Column("msg_ts", sa.BigInteger, nullable=False),
        sa.Column("vendor_id", Key, nullable=False),
        sa.Column("source", Key, nullable=False),
        sa.Column("source_row", sa.BigInteger, nullable=False),
        sa.Column("received_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("symbol", "msg_ts", "action", "vendor_id",
                            name="uq_trade_amendments_msg"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_trade_amendments_symbol_ts", "trade_amendments", ["symbol", "trade_ts"])


def downgrade() -> None:
    op.drop_index("ix_trade_amendments_symbol_ts", table_name="trade_amendments")
    op.drop_table("trade_amendments")
