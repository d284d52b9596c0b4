"""Stable identities for live ticks that carry no vendor trade id (Finnhub).

DESIGN section 3: a row without ``trade_id`` is identified by its source and its
position in it; the landing table's identity is ``(symbol, ts, source, source_row)``.
A live connector numbers rows in arrival order of *its own lifetime*, so a restarted
service (or a second connection that receives the same trades again) would land the
same trade under a new identity. The service therefore re-stamps every normalized
tick of such a stream with an identity that depends on the tape only:

- ``source = "<stream>:<SYMBOL>:<trading date>"``, ``<stream>`` being ``finnhub`` for the
  real Finnhub host and ``finnhub@<host>`` for any other host (the local simulator),
  without port, path or token (``--source-name`` overrides it). The trading date is
  ``core.calendar.trading_dates`` of the tick; it keeps watermarks per day.
- ``source_row = ts_ms * 2**20 + k``: ``k`` is the trade's arrival index among the
  trades of the same symbol in the same millisecond (Finnhub times are milliseconds).

Two deliveries of the same tape (a restarted service, a restarted simulator at speed
0, a second run of the demo) give every trade the same identity, so landing stays
idempotent. Same-millisecond trades keep their arrival order under the canonical sort
(``source_row`` grows with ``k``), so stored ticks order exactly like the stream.

A backfill for a gap is re-stamped the same way when its ticks have no trade id
(``restamp(..., counters=None)``: ``k`` counts from 0 inside the fetched window, which
must therefore cover whole milliseconds: the service fetches ``[last, first]`` with
both ends inclusive, truncated to milliseconds). Ticks with a vendor trade id (Alpaca)
keep their own identity: they cannot be matched exactly against id-less Finnhub
ticks, see ``service`` for how the boundary is handled.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, trading_dates
from ..core.schema import ts_ns

K_BITS = 20
K_LIMIT = 1 << K_BITS  # trades of one symbol in one millisecond
NS_PER_MS = 1_000_000
FINNHUB_HOSTS = {"ws.finnhub.io", "finnhub.io"}


def stream_name(url: str, vendor: str = "finnhub") -> str:
    """``finnhub`` for the vendor's own host, ``finnhub@HOST`` otherwise (no port, no token)."""
    host = (urlsplit(url).hostname or "unknown").lower()
    return vendor if host in FINNHUB_HOSTS else f"{vendor}@{host}"


def source_for(stream: str, symbol: str, date: str) -> str:
    return f"{stream}:{symbol}:{date}"


class StreamIdentity:
    """Re-stamps normalized ticks of one id-less stream with tape-stable identities.

    ``counters`` maps (symbol, ts_ms) -> next arrival index; entries older than
    ``horizon_ns`` of market time behind the newest tick are pruned (a trade arriving
    later than that into a millisecond that already had trades would reuse index 0:
    see the README's limitations).
    """

    def __init__(self, stream: str, calendar: str = DEFAULT_CALENDAR,
                 horizon_ns: int = 15 * 60 * 1_000_000_000) -> None:
        self.stream = stream
        self.calendar = calendar
        self.horizon_ns = int(horizon_ns)
        self.counters: dict[tuple[str, int], int] = {}
        self._newest = 0
        self._stamped = 0

    def seed(self, symbol: str, ts_ms: int, count: int) -> None:
        """Continue numbering (symbol, ts_ms) after ``count`` already landed trades."""
        key = (symbol, int(ts_ms))
        self.counters[key] = max(self.counters.get(key, 0), int(count))

    def restamp(self, ticks: pd.DataFrame, *, live: bool = True) -> pd.DataFrame:
        """``ticks`` (normalized, canonical order) with tape-stable source and source_row.

        Timestamps are truncated to milliseconds (a no-op for Finnhub). ``live``:
        continue the per-millisecond counters; False (a backfill window): count from 0.
        Rows with a trade id are returned unchanged.
        """
        if len(ticks) == 0:
            return ticks
        out = ticks.copy()
        has_id = out["trade_id"].to_numpy(object) != ""
        idless = ~has_id
        if not idless.any():
            return out
        ts = ts_ns(out["ts"])
        ms = np.floor_divide(ts, NS_PER_MS)
        sym = out["symbol"].to_numpy(object)
        # canonical order already groups (symbol, ts); recompute the order on ms so a
        # sub-millisecond backfill groups per millisecond, keeping arrival order inside
        idx = np.flatnonzero(idless)
        sym_codes, sym_names = pd.factorize(sym[idx], sort=False)
        order = idx[np.lexsort((np.arange(len(idx)), ms[idx], sym_codes))]
        s_o, m_o = sym[order], ms[order]
        new = np.r_[True, (s_o[1:] != s_o[:-1]) | (m_o[1:] != m_o[:-1])]
        starts = np.flatnonzero(new)
        group = np.cumsum(new) - 1
        pos = np.arange(len(order)) - starts[group]
        offsets = np.zeros(len(starts), dtype="int64")
        if live:
            get = self.counters.get
            keys = list(zip(s_o[starts].tolist(), m_o[starts].tolist(), strict=True))
            sizes = np.diff(np.r_[starts, len(order)])
            offsets = np.fromiter((get(k, 0) for k in keys), dtype="int64", count=len(keys))
            for k, off, size in zip(keys, offsets.tolist(), sizes.tolist(), strict=True):
                self.counters[k] = off + size
        k = pos + offsets[group]
        if (k >= K_LIMIT).any():
            raise ValueError(f"more than {K_LIMIT} trades of one symbol in one millisecond")
        new_ts = ts.copy()
        new_ts[order] = m_o * NS_PER_MS
        rows = out["source_row"].to_numpy("int64").copy()
        rows[order] = m_o * K_LIMIT + k
        src = out["source"].to_numpy(object).copy()
        dates = trading_dates(m_o * NS_PER_MS, self.calendar)
        src[order] = _sources_fast(self.stream, s_o, dates)
        out["ts"] = pd.to_datetime(new_ts, utc=True).as_unit("ns")
        out["source"] = pd.Series(src, index=out.index, dtype="str")
        out["source_row"] = rows
        self._stamped += len(order)
        if live:
            self._newest = max(self._newest, int(ts.max()))
            if len(self.counters) > 50_000:
                self.prune()
        return out

    def prune(self) -> int:
        floor = (self._newest - self.horizon_ns) // NS_PER_MS
        old = [k for k in self.counters if k[1] < floor]
        for k in old:
            del self.counters[k]
        return len(old)


def _sources_fast(stream: str, sym: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """``stream:SYMBOL:date`` per row, formatting each distinct (symbol, date) once."""
    if len(sym) == 0:
        return np.empty(0, dtype=object)
    pair = pd.MultiIndex.from_arrays([sym, dates])
    codes, uniques = pd.factorize(pair)
    names = np.array([source_for(stream, s, d) for s, d in uniques], dtype=object)
    return names[codes]
