"""Initial schema: ticks, bars, quarantine, watermarks.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# key text columns compare bytewise on PostgreSQL: fast index maintenance, Python's order
Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticks",
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("symbol", Key, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("size", sa.Double, nullable=False),
        sa.Column("exchange", sa.Text, nullable=False, server_default=""),
        sa.Column("conditions", sa.Text, nullable=False, server_default=""),
        sa.Column("trade_id", Key, nullable=False, server_default=""),
        sa.Column("sequence", sa.BigInteger, nullable=False, server_default="-1"),
        sa.Column("source", Key, nullable=False),
        sa.Column("source_row", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_ticks_trade_id", "ticks", ["symbol", "ts", "trade_id"], unique=True,
                    sqlite_where=sa.text("trade_id <> ''"),
                    postgresql_where=sa.text("trade_id <> ''"))
    op.create_index("ux_ticks_source_row", "ticks", ["symbol", "ts", "source", "source_row"],
                    unique=True,
                    sqlite_where=sa.text("trade_id = ''"),
                    postgresql_where=sa.text("trade_id = ''"))

    op.create_table(
        "bars",
        sa.Column("symbol", Key, nullable=False),
        sa.Column("timeframe", Key, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("notional", sa.BigInteger, nullable=False),
        sa.Column("trade_count", sa.BigInteger, nullable=False),
        sa.Column("rule_set", sa.Text, nullable=False),
        sa.Column("source", Key, nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name="pk_bars"),
    )
    op.create_index("ix_bars_symbol_ts", "bars", ["symbol", "ts"])

    op.create_table(
        "quarantine",
        sa.Column("partition", Key, nullable=False),
        sa.Column("source", Key, nullable=False),
        sa.Column("source_row", sa.BigInteger, nullable=False),
        sa.Column("reason", Key, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.UniqueConstraint("partition", "source", "source_row", "reason",
                            name="uq_quarantine_row"),
    )

    op.create_table(
        "watermarks",
        sa.Column("source", Key, nullable=False),
        sa.Column("symbol", Key, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "symbol", name="pk_watermarks"),
    )


def downgrade() -> None:
    op.drop_table("watermarks")
    op.drop_table("quarantine")
    op.drop_index("ix_bars_symbol_ts", table_name="bars")
    op.drop_table("bars")
    op.drop_index("ux_ticks_source_row", table_name="ticks")
    op.drop_index("ux_ticks_trade_id", table_name="ticks")
    op.drop_table("ticks")
