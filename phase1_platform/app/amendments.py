"""Record trade cancels and corrections: the one "amend trades" use case (the live
service calls it for what a vendor stream sends; ``core.amendments`` says what they do).

Each vendor message names its trade by vendor id (``trade_id``) within its symbol and
the trading date of its time. ``record_amendments`` resolves it, in arrival order, to one
stored trade and records it (``storage.AmendmentRepository``):

- the trade: the one a correction recorded before gave this id (a chain of corrections,
  Alpaca's ``ci``), else the stored tick with this trade id on that trading date;
- a message recorded before (same symbol, time, action and id) is a **duplicate**: a
  redelivered cancel does nothing twice (counted, not quarantined);
- a message whose trade is not stored (yet) is quarantined with ``UNKNOWN_TRADE`` and its
  raw text: the decision for a cancel that arrives before its trade. Alpaca sends a
  cancel or correction after its trade on the same connection, and the live service
  lands a flush's trades before its amendments, so such a message names a trade this
  store never received (another feed, before the subscription): it stays in the
  quarantine, never applied silently to a later trade and never lost;
- an amendment of a cancelled trade is quarantined (``CANCELLED_TRADE``): a cancel is
  final; an id held by two stored trades of the day is quarantined (``AMBIGUOUS_TRADE``);
- a message that cannot be used (``core.amendments.check``) is quarantined with its reason.

Everything runs in one ``Store.transaction`` (the caller's, when it has one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.amendments import CANCEL, CORRECT, check
from ..core.calendar import DEFAULT_CALENDAR, is_session, trading_date_of, trading_day_window
from ..core.schema import QUARANTINE_COLUMNS, empty_quarantine
from ..storage import AmendmentRepository, Store
from .land import partition_keys

UNKNOWN_TRADE = "amendment of a trade not stored (unknown trade id, or not landed yet)"
AMBIGUOUS_TRADE = "amendment of a trade id held by several trades of the day"
CANCELLED_TRADE = "amendment of a cancelled trade"


@dataclass
class Recorded:
    """What ``record_amendments`` did with a frame of amendments."""

    applied: pd.DataFrame  # symbol, ts, trade_id (the stored trades amended), action
    duplicates: int  # messages recorded before (or earlier in the frame)
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    partitions: np.ndarray  # the partition key of each quarantine row


def record_amendments(store: Store, amendments: pd.DataFrame, *,
                      calendar: str = DEFAULT_CALENDAR) -> Recorded:
    """Resolve and record ``amendments`` (``AMENDMENT_COLUMNS``, arrival order); see the
    module for what is applied, counted or quarantined (under ``<date>|<SYMBOL>`` of the
    message)."""
    reasons = check(amendments)
    amend, ticks = AmendmentRepository(store), store.ticks
    rows: list[dict] = []
    bad: list[tuple[int, str]] = []
    duplicates = 0
    seen: set[tuple] = set()  # messages of this frame
    renamed: dict[tuple, tuple[int, str]] = {}  # (symbol, date, id) -> trade, this frame
    cancelled: set[tuple] = set()  # trades cancelled by this frame
    with store.transaction():
        for i, a in enumerate(amendments.itertuples(index=False)):
            if reasons[i] is not None:
                bad.append((i, reasons[i]))
                continue
            symbol, vid, ts = str(a.symbol), str(a.trade_id), int(a.ts)
            message = (symbol, ts, a.action, vid)
            if message in seen or amend.seen(*message):
                duplicates += 1
                continue
            seen.add(message)
            date = trading_date_of(ts, calendar)
            if not is_session(date, calendar):
                bad.append((i, UNKNOWN_TRADE))
                continue
            lo, hi = trading_day_window(date, calendar)
            target = renamed.get((symbol, date, vid)) or amend.renamed(symbol, vid, lo, hi)
            if target is None:
                times = ticks.find_trade(symbol, vid, lo, hi)
                if len(times) != 1:
                    bad.append((i, UNKNOWN_TRADE if not times else AMBIGUOUS_TRADE))
                    continue
                target = (times[0], vid)
            trade = (symbol, *target)
            if trade in cancelled or amend.cancelled(*trade):
                bad.append((i, CANCELLED_TRADE))
                continue
            if a.action == CANCEL:
                cancelled.add(trade)
            elif a.new_trade_id:
                renamed[(symbol, date, str(a.new_trade_id))] = target
            rows.append({
                "symbol": symbol, "trade_ts": target[0], "trade_id": target[1],
                "action": a.action, "price": float(a.price), "size": float(a.size),
                "conditions": str(a.conditions),
                "new_trade_id": str(a.new_trade_id) if a.action == CORRECT else "",
                "msg_ts": ts, "vendor_id": vid, "source": str(a.source),
                "source_row": int(a.source_row)})
        amend.add(rows)
    applied = pd.DataFrame({
        "symbol": [r["symbol"] for r in rows], "ts": [r["trade_ts"] for r in rows],
        "trade_id": [r["trade_id"] for r in rows], "action": [r["action"] for r in rows],
    }).astype({"symbol": "str", "ts": "int64", "trade_id": "str", "action": "str"})
    if not bad:
        return Recorded(applied, duplicates, empty_quarantine(), np.empty(0, dtype=object))
    at = [i for i, _ in bad]
    rejected = amendments.iloc[at]
    quarantine = pd.DataFrame({
        "source": rejected["source"].to_numpy(object),
        "source_row": rejected["source_row"].to_numpy("int64"),
        "reason": [r for _, r in bad], "raw": rejected["raw"].to_numpy(object),
    }).astype(QUARANTINE_COLUMNS)
    partitions = partition_keys(rejected["symbol"].to_numpy(object),
                                rejected["ts"].to_numpy("int64"), calendar)
    return Recorded(applied, duplicates, quarantine, partitions)


__all__ = ["AMBIGUOUS_TRADE", "CANCELLED_TRADE", "UNKNOWN_TRADE", "Recorded",
           "record_amendments"]
