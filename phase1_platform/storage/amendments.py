"""``AmendmentRepository``: the log of trade cancels and corrections (``tables.trade_amendments``).

Kept apart from the tick store on purpose: whichever store holds the ticks (this SQL
store, or another behind ``TickRepository``'s interface), the amendments stay here, and
every build reads the ticks through ``app.tick_log``, which applies them. What a vendor
message targets is resolved by ``app.amendments`` with the primitives below, inside one
``Store.transaction``; ``add`` records the resolved amendments and a ``tick_landings`` row
at each amended trade's time, so the partition's bars are built (and the live path's
bars verified) again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, func, select

from ..core.amendments import CANCEL, CORRECT, LOG_COLUMNS
from ..core.partition import Partition
from ..core.schema import empty_frame
from ._base import Repository, rows_frame, window
from .tables import tick_landings as landings_t
from .tables import trade_amendments as amend_t

# what ``add`` records per amendment (besides its id and the wall clock)
RECORD_FIELDS = ("symbol", "trade_ts", "trade_id", "action", "price", "size", "conditions",
                 "new_trade_id", "msg_ts", "vendor_id", "source", "source_row")


class AmendmentRepository(Repository):
    """The trade amendments log: resolved cancels and corrections, in the order recorded."""

    def seen(self, symbol: str, msg_ts: int, action: str, vendor_id: str) -> bool:
        """Whether this vendor message (symbol, time, action, trade id) is recorded."""
        c = amend_t.c
        query = select(c.id).where(c.symbol == symbol, c.msg_ts == int(msg_ts),
                                   c.action == action, c.vendor_id == vendor_id).limit(1)
        return self._run(lambda conn: conn.execute(query).first(), write=False) is not None

    def renamed(self, symbol: str, vendor_id: str, start_ns: int, end_ns: int
                ) -> tuple[int, str] | None:
        """The stored trade (ts, trade_id) of ``symbol`` in [start, end) that the latest
        correction gave the vendor id ``vendor_id``, if any."""
        c = amend_t.c
        query = select(c.trade_ts, c.trade_id).where(
            c.symbol == symbol, c.trade_ts >= int(start_ns), c.trade_ts < int(end_ns),
            c.action == CORRECT, c.new_trade_id == vendor_id).order_by(c.id.desc()).limit(1)
        row = self._run(lambda conn: conn.execute(query).first(), write=False)
        return None if row is None else (int(row[0]), str(row[1]))

    def cancelled(self, symbol: str, trade_ts: int, trade_id: str) -> bool:
        """Whether the stored trade (symbol, ts, trade_id) is cancelled."""
        c = amend_t.c
        query = select(c.id).where(c.symbol == symbol, c.trade_ts == int(trade_ts),
                                   c.trade_id == trade_id, c.action == CANCEL).limit(1)
        return self._run(lambda conn: conn.execute(query).first(), write=False) is not None

    def add(self, rows: list[dict]) -> int:
        """Record resolved amendments (``RECORD_FIELDS`` each) and one landing per amended
        trade; returns the rows recorded."""
        if not rows:
            return 0
        now = time.time_ns()
        records = [{**{k: r[k] for k in RECORD_FIELDS}, "received_ns": now} for r in rows]
        landings = [{"symbol": r["symbol"], "lo_ts": int(r["trade_ts"]),
                     "hi_ts": int(r["trade_ts"]), "ticks": 0, "landed_ns": now} for r in rows]

        def add(conn: Connection) -> int:
            conn.execute(amend_t.insert(), records)
            conn.execute(landings_t.insert(), landings)
            return len(records)

        return self._run(add)

    def read(self, symbols: str | Iterable[str], start_ns: int, end_ns: int) -> pd.DataFrame:
        """The amendments (``LOG_COLUMNS``, in the order recorded) of trades of ``symbols``
        with ts in [start_ns, end_ns)."""
        start_ns, end_ns = window(start_ns, end_ns)
        symbols = [symbols] if isinstance(symbols, str) else sorted(set(symbols))
        c = amend_t.c
        query = select(c.symbol, c.trade_ts, c.trade_id, c.action, c.price, c.size,
                       c.conditions).where(c.symbol.in_(symbols), c.trade_ts >= start_ns,
                                           c.trade_ts < end_ns).order_by(c.id)
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        if not rows:
            return empty_frame(LOG_COLUMNS)
        return rows_frame(rows, list(LOG_COLUMNS)).astype(LOG_COLUMNS)

    def count(self, part: Partition) -> int:
        """How many amendments target trades of the partition."""
        c = amend_t.c
        query = select(func.count()).where(c.symbol == part.symbol, c.trade_ts >= part.start_ns,
                                           c.trade_ts < part.end_ns)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), write=False))


__all__ = ["RECORD_FIELDS", "AmendmentRepository"]
