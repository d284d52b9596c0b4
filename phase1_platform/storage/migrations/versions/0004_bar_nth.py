"""Bars key ``(symbol, timeframe, ts, nth)``: information-driven bars (``t<N>``, ``v<V>``,
``d<X>``) are stamped with their first trade's time, which several bars of one symbol can
share (trades with one timestamp); ``nth`` numbers them 0, 1, ... in their tick order.
Time bars have ``nth`` 0, so every stored bar keeps its key.

Revision ID: 0004_bar_nth
Revises: 0003_check_results
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_bar_nth"
down_revision = "0003_check_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bars") as batch:
        batch.add_column(sa.Column("nth", sa.BigInteger, nullable=False, server_default="0"))
        batch.drop_constraint("pk_bars", type_="primary")
        batch.create_primary_key("pk_bars", ["symbol", "timeframe", "ts", "nth"])


def downgrade() -> None:
    op.execute("DELETE FROM bars WHERE nth <> 0")
    with op.batch_alter_table("bars") as batch:
        batch.drop_constraint("pk_bars", type_="primary")
        batch.create_primary_key("pk_bars", ["symbol", "timeframe", "ts"])
        batch.drop_column("nth")
