"""Trade amendments: a vendor's cancel or correction of a trade it sent before.

An amendment names its trade by the vendor's trade id within a symbol (the connector
forms ``trade_id`` the way it forms the trade's own, so the exchange and tape are part of
it: Alpaca's ``"<x>-<z>-<i>"``) and the trading date of the message. Once resolved against
the stored ticks (``storage.AmendmentRepository``) it targets one stored trade by its
identity (``core.identity``: ``(symbol, ts, trade_id)``):

- ``cancel``: the trade leaves every bar it was in (Alpaca's cancel and error, ``a`` = C/E);
- ``correct``: the trade keeps its time and place in the tape, its price, size and
  conditions become the correction's.

The tick log stays append-only: ``apply_amendments`` gives the ticks as amended, which is
what every bar build reads (live, batch, replay), so both paths agree byte for byte.
Amendments of one trade apply in the order they were recorded; a cancel is final (a later
amendment of a cancelled trade is refused when it is recorded).

API (stable): ``AMENDMENT_COLUMNS``, ``LOG_COLUMNS``, ``CANCEL``, ``CORRECT``, ``check``,
``apply_amendments``, ``empty_amendments``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import MAX_TICK_SIZE, TICK_COLUMNS, empty_frame, ts_ns

CANCEL = "cancel"
CORRECT = "correct"
ACTIONS = (CANCEL, CORRECT)

# what a connector delivers: one row per vendor message
AMENDMENT_COLUMNS: dict[str, object] = {
    "symbol": "str",
    "action": "str",  # CANCEL or CORRECT
    "trade_id": "str",  # the vendor id of the trade amended (as the connector forms ids)
    "ts": "int64",  # the message's time, UTC ns (its trading date finds the trade)
    "price": "float64",  # correct: the new price (cancel: the cancelled trade's, as sent)
    "size": "float64",
    "conditions": "str",
    "new_trade_id": "str",  # correct: the trade's id from now on ("" for a cancel)
    "source": "str",
    "source_row": "int64",
    "raw": "str",  # the message as received (masked), kept when it is quarantined
}
# a recorded amendment: the stored trade it targets and what becomes of it, in log order
LOG_COLUMNS: dict[str, object] = {
    "symbol": "str", "ts": "int64", "trade_id": "str", "action": "str",
    "price": "float64", "size": "float64", "conditions": "str",
}

BAD_ACTION = "amendment action is not cancel or correct"
NO_TRADE_ID = "amendment without a trade id"
BAD_CORRECTION = "correction price must be finite and > 0, size finite and >= 0"


def empty_amendments() -> pd.DataFrame:
    return empty_frame(AMENDMENT_COLUMNS)


def check(amendments: pd.DataFrame) -> np.ndarray:
    """Per row, why the amendment cannot be used (None: it can): the checks the tick
    normalizer makes of a trade, applied to what a correction would make of it."""
    n = len(amendments)
    reason = np.full(n, None, dtype=object)
    if n == 0:
        return reason
    action = amendments["action"].astype("str").to_numpy(object)
    price = amendments["price"].to_numpy("float64")
    size = amendments["size"].to_numpy("float64")
    with np.errstate(invalid="ignore"):
        bad_values = (action == CORRECT) & ~(np.isfinite(price) & (price > 0) & np.isfinite(size)
                                             & (size >= 0) & (size <= MAX_TICK_SIZE))
    reason[bad_values] = BAD_CORRECTION
    reason[amendments["trade_id"].astype("str").to_numpy(object) == ""] = NO_TRADE_ID
    reason[~np.isin(action, ACTIONS)] = BAD_ACTION
    return reason


def apply_amendments(ticks: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """``ticks`` (``TICK_COLUMNS``, as stored) as amended by ``log`` (``LOG_COLUMNS``, in
    the order recorded): cancelled trades left out, corrected ones with their new price,
    size and conditions; order and every other column kept. Vectorized: the last
    amendment of each trade decides (a cancel is final, see the module)."""
    if len(log) == 0 or len(ticks) == 0:
        return ticks
    last = log.drop_duplicates(["symbol", "ts", "trade_id"], keep="last")
    tid = ticks["trade_id"].astype("str").to_numpy(object)
    has_id = np.flatnonzero(tid != "")
    if len(has_id) == 0:
        return ticks
    stored = pd.MultiIndex.from_arrays([
        ticks["symbol"].astype("str").to_numpy(object)[has_id],
        ts_ns(ticks["ts"])[has_id], tid[has_id]])
    target = pd.MultiIndex.from_arrays([
        last["symbol"].astype("str").to_numpy(object), last["ts"].to_numpy("int64"),
        last["trade_id"].astype("str").to_numpy(object)])
    at = stored.get_indexer(target)  # stored identities are unique
    found = at >= 0
    if not found.any():
        return ticks
    rows, last = has_id[at[found]], last[found]
    action = last["action"].to_numpy(object)
    fix, gone = rows[action == CORRECT], rows[action == CANCEL]
    corrected = last[action == CORRECT]
    out = ticks.copy()
    if len(fix):
        for name in ("price", "size", "conditions"):
            col = out.columns.get_loc(name)
            out.iloc[fix, col] = corrected[name].to_numpy(
                object if name == "conditions" else "float64")
    if len(gone):
        keep = np.ones(len(out), dtype=bool)
        keep[gone] = False
        out = out[keep].reset_index(drop=True)
    return out.astype({k: v for k, v in TICK_COLUMNS.items() if k in out.columns and k != "ts"})


__all__ = ["ACTIONS", "AMENDMENT_COLUMNS", "BAD_ACTION", "BAD_CORRECTION", "CANCEL", "CORRECT",
           "LOG_COLUMNS", "NO_TRADE_ID", "apply_amendments", "check", "empty_amendments"]
