"""Tick landings and volume-only intervals: what incremental bar recompute needs.

Ticks landed before this revision may not be in the stored bars yet: one landing row
per symbol covering all its stored ticks marks them, so the first build of each of
their partitions after the upgrade is a full one.

Revision ID: 0002_tick_landings
Revises: 0001_initial
Create Date: 2026-11-25
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002_tick_landings"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tick_landings",
        sa.Column("id", Serial, primary_key=True, autoincrement=True),
        sa.Column("symbol", Key, nullable=False),
        sa.Column("lo_ts", sa.BigInteger, nullable=False),
        sa.Column("hi_ts", sa.BigInteger, nullable=False),
        sa.Column("ticks", sa.BigInteger, nullable=False),
        sa.Column("landed_ns", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,  # ids are never reused: a build compares the ids it read
    )
    op.create_index("ix_tick_landings_symbol_lo", "tick_landings", ["symbol", "lo_ts"])
    op.create_table(
        "volume_only_bars",
        sa.Column("symbol", Key, nullable=False),
        sa.Column("timeframe", Key, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("notional", sa.BigInteger, nullable=False),
        sa.Column("trade_count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name="pk_volume_only_bars"),
    )
    op.execute(sa.text(
        "INSERT INTO tick_landings (symbol, lo_ts, hi_ts, ticks, landed_ns) "
        "SELECT symbol, MIN(ts), MAX(ts), COUNT(*), :now FROM ticks GROUP BY symbol"
    ).bindparams(now=time.time_ns()))


def downgrade() -> None:
    op.drop_table("volume_only_bars")
    op.drop_index("ix_tick_landings_symbol_lo", table_name="tick_landings")
    op.drop_table("tick_landings")
