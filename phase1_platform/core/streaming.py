"""StreamingBarAggregator: per-tick and micro-batch aggregation, identical to BarEngine.

The only state is the 1-minute partial bar of each (symbol, minute) that saw an eligible
tick; every requested timeframe (the 1d session included) is aggregated from those
minutes on demand (``bars()``, ``drain_updates()``). That equals ``BarEngine.build`` on
the same ticks because:

- volume and notional are integer units (``schema``) rounded per tick with the same
  float operations (``round(size * 1e8)`` == ``np.rint(size * 1e8)``), summed exactly;
- high/low are commutative, and each partial bar keeps the ordering key of the tick that
  set its open and of the one that set its close, so a LATE tick (older key than what
  the bar has seen) replaces the open and a newer one the close, whatever the arrival
  order;
- intraday timeframes and XNYS sessions start and end on minute boundaries (checked; a
  calendar whose sessions do not is refused with a clear error);
- a minute with only volume-only ticks (a condition excluded from prices) is kept
  "priceless": it makes no bar of its own but its volume counts in coarser bars, as the
  engine's build from ticks does.

Ordering key of a tick: ``(ts, sequence, source, source_row)``, as in
``normalizer.canonical_sort``; ``source_row`` defaults to an arrival counter.

Identity (``core.identity``, DESIGN section 3): a tick with a trade id is
``(symbol, ts, trade_id)``. A repeat of an identity already seen is counted in
``duplicates`` and ignored: the first ARRIVAL stays, whatever the content (a repeat with
other content is a conflicting duplicate, which the store also keeps out). The same
trade id at another time (a vendor reusing ids on a later day) is another trade. Ticks
without a trade id are identified by ``(ts, source, source_row)``, unique by
construction here (the arrival counter, or a caller such as the ingestion service that
passes only ticks new to the store), so they are not looked up.

Retention (``retain_dates``). By default every minute and trade id stays for the life
of the aggregator (a replay of any order of any span). A long-running caller (the live
ingestion service) passes ``retain_dates=N``: per symbol, only the state of the newest
N trading dates that had ticks (``core.calendar.trading_dates``, exchange-time dates)
and of what lies between them is kept. When a tick of a newer trading date arrives,
minutes, pending updates and trade ids before the oldest retained date are dropped. A
late tick of a retained date still restates its bars; an older one is ignored and
counted in ``expired`` (its partition's batch rebuild from the store has it). With
``N=2`` a session's bars can be restated until the end of the next trading date.

Per tick: ``on_tick`` (a tight pure-Python path; pass Python ints and floats).
Micro-batches: ``on_batch`` (normalized tick frame) or ``on_arrays`` (lean arrays),
vectorized with numpy and merged into the state per partial bar.
``drain_updates()`` returns the bars changed since the previous drain (every timeframe
touched), ``bars()`` all current bars; both are internal bar frames in canonical order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from .calendar import (
    DEFAULT_CALENDAR,
    Sessions,
    sessions_between,
    trading_dates,
    trading_day_window,
)
from .engine import (
    Segments,
    _arrow_strings,
    aggregate_arrays,
    bar_frame,
    bucket_for,
    can_roll_up,
    rollup_arrays,
    sort_bars,
)
from .errors import InputError
from .rules import DEFAULT_RULES, EligibilityRules
from .schema import BAR_COLUMNS, empty_bars, notional_units, qty_units, ts_ns
from .timeframes import (
    DEFAULT_TIMEFRAMES,
    NS_PER_MINUTE,
    TIMEFRAMES,
    Timeframe,
    parse_timeframes,
)

_MINUTE = NS_PER_MINUTE
_NAN = math.nan
_INF = math.inf
_MINUTE_TF = TIMEFRAMES["1m"]

# Partial bar (a list, mutated in place): open, high, low, close, qty, notional, count,
# open key, close key. A bar that so far has only volume-only ticks (a condition that
# is excluded from prices) is "priceless": open/close NaN, keys None.
_O, _H, _L, _C, _Q, _N, _K, _OK, _CK = range(9)

# Per-symbol state (a list): {minute: partial bar}, {dirty minutes}, {(ts, trade_id) seen},
# minute of the last tick and its partial bar (a cache for on_tick), and for retention:
# the floor (ticks before it are expired), the end of the newest trading date seen, and
# the start of each retained trading date (oldest first).
_BARS, _DIRTY, _SEEN, _LAST_MIN, _LAST_BAR, _FLOOR, _DAY_END, _DAYS = range(8)
_NO_FLOOR = -(2**63)


class StreamingError(InputError):
    pass


class StreamingBarAggregator:
    """Bars of ``timeframes`` from ticks arriving one by one or in micro-batches."""

    def __init__(
        self,
        timeframes=DEFAULT_TIMEFRAMES,
        rules: EligibilityRules = DEFAULT_RULES,
        calendar: str = DEFAULT_CALENDAR,
        retain_dates: int | None = None,
    ) -> None:
        self.timeframes: list[Timeframe] = parse_timeframes(timeframes)
        self.rules = rules
        self.calendar = calendar
        if retain_dates is not None and (isinstance(retain_dates, bool)
                                         or int(retain_dates) != retain_dates
                                         or retain_dates < 1):
            raise StreamingError(
                f"retain_dates must be a whole number >= 1 (or None to keep everything), "
                f"got {retain_dates!r}")
        self.retain_dates = None if retain_dates is None else int(retain_dates)
        self._counts = [0, 0, 0]  # duplicates, ignored, expired
        self._state: dict[str, list] = {}  # symbol -> state (see _BARS.._DAYS)
        # conditions -> (price_ok if size > 0, volume_ok if size > 0, price_ok if size == 0)
        self._elig: dict[str, tuple[bool, bool, bool]] = {}
        self._plain = not (rules.exclude_from_price or rules.exclude_from_volume)
        self._arrival = [0]
        self.on_tick = self._make_on_tick()

    @property
    def duplicates(self) -> int:
        """Ticks ignored because their identity (symbol, ts, trade_id) was already seen."""
        return self._counts[0]

    @property
    def ignored(self) -> int:
        """Ticks that may set neither price nor volume under the rule set."""
        return self._counts[1]

    @property
    def expired(self) -> int:
        """Ticks older than the retained trading dates (``retain_dates``), ignored."""
        return self._counts[2]

    def state_size(self) -> dict[str, int]:
        """What the aggregator holds: symbols, partial minute bars, trade ids."""
        return {"symbols": len(self._state),
                "minutes": sum(len(st[_BARS]) for st in self._state.values()),
                "trade_ids": sum(len(st[_SEEN]) for st in self._state.values())}

    def floors(self) -> dict[str, int]:
        """Symbol -> the oldest tick time still kept (symbols that evicted state)."""
        return {s: st[_FLOOR] for s, st in self._state.items() if st[_FLOOR] != _NO_FLOOR}

    def retains(self, symbol: str, ts_ns: int) -> bool:
        """Whether a tick of ``symbol`` at ``ts_ns`` would be kept (not expired)."""
        st = self._state.get(symbol)
        return st is None or ts_ns >= st[_FLOOR]

    # ------------------------------------------------------------------ retention
    def _roll(self, st: list, day: str) -> None:
        """A tick of trading date ``day``, newer than every date seen for the symbol:
        make it the newest retained date, evicting state before the oldest one kept."""
        start, end = trading_day_window(day, self.calendar)
        days = st[_DAYS]
        days.append(start)
        st[_DAY_END] = end
        if len(days) <= self.retain_dates:
            return
        del days[: len(days) - self.retain_dates]
        floor = st[_FLOOR] = days[0]
        bars = st[_BARS]
        for m in [m for m in bars if m < floor]:
            del bars[m]
        st[_DIRTY] = {m for m in st[_DIRTY] if m >= floor}
        st[_SEEN] = {k for k in st[_SEEN] if k[0] >= floor}
        st[_LAST_MIN] = st[_LAST_BAR] = None

    def _roll_tick(self, st: list, ts: int) -> None:
        self._roll(st, str(trading_dates(np.array([ts], dtype="int64"), self.calendar)[0]))

    def _retain(self, ts: np.ndarray, sym_codes, states: list) -> np.ndarray | None:
        """Roll each symbol's trading dates for a batch; the mask of the rows that are
        not expired (None: all are kept)."""
        keep = None
        for code, st in enumerate(states):
            rows = None if sym_codes is None else np.flatnonzero(sym_codes == code)
            t = ts if rows is None else ts[rows]
            if len(t) == 0:
                continue
            if int(t.max()) >= st[_DAY_END]:
                for day in np.unique(trading_dates(t[t >= st[_DAY_END]], self.calendar)):
                    if trading_day_window(str(day), self.calendar)[0] >= st[_DAY_END]:
                        self._roll(st, str(day))
            old = t < st[_FLOOR]
            if old.any():
                if keep is None:
                    keep = np.ones(len(ts), dtype=bool)
                keep[np.flatnonzero(old) if rows is None else rows[old]] = False
        if keep is not None:
            self._counts[2] += int(np.count_nonzero(~keep))
        return keep

    # ------------------------------------------------------------------ per tick
    def _judge(self, conditions: str) -> tuple[bool, bool, bool]:
        pok, vok = self.rules.judge(conditions)
        e = (pok, vok, pok and self.rules.zero_size_sets_price)
        self._elig[conditions] = e
        return e

    def _new_symbol(self, symbol: str) -> list:
        if not isinstance(symbol, str) or not symbol:
            raise StreamingError(f"bad symbol {symbol!r}: a non-empty string is required")
        # without retention the day end never comes: nothing is ever rolled or evicted
        day_end = _NO_FLOOR if self.retain_dates is not None else 2**63 - 1
        st = self._state[symbol] = [{}, set(), set(), None, None, _NO_FLOOR, day_end, []]
        return st

    def _make_on_tick(self):
        # A closure: locals and cells instead of attribute look-ups on the hot path.
        state_get = self._state.get
        elig_get = self._elig.get
        judge = self._judge
        new_symbol = self._new_symbol
        roll = self._roll_tick
        counts = self._counts
        arrival = self._arrival

        def on_tick(
            symbol: str,
            ts_ns: int,
            price: float,
            size: float,
            conditions: str = "",
            sequence: int = -1,
            trade_id: str = "",
            source: str = "stream",
            source_row: int | None = None,
        ) -> bool:
            """Add one normalized tick (Python int ts in UTC ns, float price and size);
            False when its identity was seen before, it is older than the retained
            trading dates, or it may set neither price nor volume."""
            if not (price > 0 and size >= 0):
                raise StreamingError(
                    f"bad tick for {symbol}: price {price!r} must be > 0 and size {size!r} >= 0"
                )
            if source_row is None:
                source_row = arrival[0]
                arrival[0] = source_row + 1
            st = state_get(symbol)
            if st is None:
                st = new_symbol(symbol)
            if ts_ns >= st[6]:  # a newer trading date (only with retain_dates)
                roll(st, ts_ns)
            if ts_ns < st[5]:  # older than the retained trading dates
                counts[2] += 1
                return False
            if trade_id:
                seen = st[2]
                ident = (ts_ns, trade_id)  # core.identity: (symbol, ts, trade_id)
                if ident in seen:
                    counts[0] += 1
                    return False
                seen.add(ident)
            e = elig_get(conditions) or judge(conditions)
            if size > 0:
                pok = e[0]
                vok = e[1]
            else:
                pok = e[2]
                vok = False
            if not (pok or vok):
                counts[1] += 1
                return False
            minute = ts_ns - ts_ns % 60_000_000_000
            if minute == st[3]:
                b = st[4]
            else:
                st[1].add(minute)
                b = st[0].get(minute)
                if b is None:
                    b = st[0][minute] = [_NAN, -_INF, _INF, _NAN, 0, 0, 0, None, None]
                st[3] = minute
                st[4] = b
            if pok:
                if b[7] is None:
                    key = (ts_ns, sequence, source, source_row)
                    b[0] = b[1] = b[2] = b[3] = price
                    b[7] = b[8] = key
                else:
                    if price > b[1]:
                        b[1] = price
                    elif price < b[2]:
                        b[2] = price
                    key = (ts_ns, sequence, source, source_row)
                    if key > b[8]:
                        b[3] = price
                        b[8] = key
                    elif key < b[7]:
                        b[0] = price
                        b[7] = key
            if vok:
                b[4] += round(size * 100_000_000)  # == schema.qty_units (same float ops)
                b[5] += round(price * size * 1_000_000)  # == schema.notional_units
                b[6] += 1
            return True

        return on_tick

    # -------------------------------------------------------------- micro-batches
    def on_batch(self, ticks: pd.DataFrame) -> int:
        """Add a micro-batch of normalized ticks (TICK_COLUMNS); returns ticks accepted."""
        n = len(ticks)
        if n == 0:
            return 0
        col = ticks["ts"]
        ts = col.to_numpy("int64") if pd.api.types.is_integer_dtype(col.dtype) else ts_ns(col)
        symbol = _single_or_array(ticks["symbol"])
        source = _single_or_array(ticks["source"]) if "source" in ticks.columns else "stream"
        return self.on_arrays(
            symbol,
            ts,
            ticks["price"].to_numpy("float64"),
            ticks["size"].to_numpy("float64"),
            conditions=(
                ticks["conditions"] if not self._plain and "conditions" in ticks.columns else None
            ),
            sequence=ticks["sequence"].to_numpy("int64") if "sequence" in ticks.columns else None,
            trade_id=(
                ticks["trade_id"]
                if "trade_id" in ticks.columns and not _all_empty(ticks["trade_id"])
                else None
            ),
            source=source,
            source_row=(
                ticks["source_row"].to_numpy("int64") if "source_row" in ticks.columns else None
            ),
        )

    def on_arrays(
        self,
        symbol,
        ts,
        price,
        size,
        conditions=None,
        sequence=None,
        trade_id=None,
        source="stream",
        source_row=None,
    ) -> int:
        """Lean micro-batch entry: ``symbol`` and ``source`` are one string or one per row;
        the rest are arrays (``ts`` int64 UTC ns). Returns ticks accepted."""
        ts = np.asarray(ts, dtype="int64")
        n = len(ts)
        if n == 0:
            return 0
        price = np.asarray(price, dtype="float64")
        size = np.asarray(size, dtype="float64")
        if not (np.all(price > 0) and np.all(size >= 0)):
            bad = int(np.flatnonzero(~((price > 0) & (size >= 0)))[0])
            raise StreamingError(
                f"bad tick in batch row {bad}: price {price[bad]!r} must be > 0 "
                f"and size {size[bad]!r} >= 0"
            )
        if len(price) != n or len(size) != n:
            raise StreamingError("batch arrays differ in length")
        if source_row is None:
            row = np.arange(self._arrival[0], self._arrival[0] + n, dtype="int64")
            self._arrival[0] += n
        else:
            row = np.asarray(source_row, dtype="int64")
        seq = None if sequence is None else np.asarray(sequence, dtype="int64")

        # canonical order inside the batch: symbol, ts, sequence, source, source_row
        one_symbol = isinstance(symbol, str)
        one_source = isinstance(source, str)
        if not one_source:
            source = np.asarray(source, dtype=object)
        if one_symbol:
            sym_codes = None
            symbols = [symbol]
        else:
            sym_codes, uniq = pd.factorize(np.asarray(symbol, dtype=object), sort=True)
            symbols = list(uniq)
        src_codes = None if one_source else pd.factorize(source, sort=True)[0]
        if one_symbol and bool((ts[1:] > ts[:-1]).all()):
            order = None  # already in canonical order (the usual micro-batch)
        else:
            keys = [row]
            if src_codes is not None:
                keys.append(src_codes)
            if seq is not None:
                keys.append(seq)
            keys.append(ts)
            if sym_codes is not None:
                keys.append(sym_codes)
            order = np.lexsort(keys)
            ts, price, size, row = ts[order], price[order], size[order], row[order]
            if seq is not None:
                seq = seq[order]
            if sym_codes is not None:
                sym_codes = sym_codes[order]
            if src_codes is not None:
                source = source[order]
        states = [self._state.get(s) or self._new_symbol(s) for s in symbols]

        keep = None
        if self.retain_dates is not None:
            keep = self._retain(ts, sym_codes, states)
        if trade_id is not None:
            tid = np.asarray(trade_id, dtype=object)
            if order is not None:
                tid = tid[order]
            if keep is not None:
                tid = np.where(keep, tid, "")  # expired rows are not looked up
            fresh = self._dedup(ts, tid, sym_codes, states)
            if fresh is not None:
                keep = fresh if keep is None else keep & fresh

        price_ok, volume_ok = self._eligibility(conditions, size, order)
        excluded = 0
        if keep is not None:
            price_ok &= keep
            volume_ok &= keep
            excluded = n - int(np.count_nonzero(keep))
        accepted = int(np.count_nonzero(price_ok | volume_ok))
        self._counts[1] += n - accepted - excluded
        if accepted == 0:
            return 0
        seg = aggregate_arrays(
            sym_codes, ts // _MINUTE, price, qty_units(size), notional_units(price, size),
            price_ok, volume_ok, bucket_scale=_MINUTE, keep_priceless=True,
        )
        self._merge(seg, states, ts, seq, source, row)
        return accepted

    def _dedup(self, ts: np.ndarray, tid: np.ndarray, sym_codes: np.ndarray,
               states: list) -> np.ndarray | None:
        """Mask of rows to keep (None: all): rows whose identity ``(symbol, ts,
        trade_id)`` (``core.identity``) was not seen before; rows in canonical order."""
        has = np.fromiter(map(bool, tid), dtype=bool, count=len(tid))
        if not has.any():
            return None
        rows = np.flatnonzero(has)
        idents = list(zip(ts[rows].tolist(), tid[rows].tolist(), strict=True))
        if len(states) == 1:
            seen = states[0][_SEEN]
            if seen.isdisjoint(idents) and len(set(idents)) == len(idents):
                seen.update(idents)
                return None
        keep = np.ones(len(tid), dtype=bool)
        codes = [0] * len(rows) if sym_codes is None else sym_codes[rows].tolist()
        for i, code, ident in zip(rows.tolist(), codes, idents, strict=True):
            seen = states[code][_SEEN]
            if ident in seen:
                keep[i] = False
                self._counts[0] += 1
            else:
                seen.add(ident)
        return keep

    def _eligibility(self, conditions, size: np.ndarray, order) -> tuple[np.ndarray, np.ndarray]:
        traded = size > 0
        if self._plain or conditions is None:
            pok = np.ones(len(size), dtype=bool) if self.rules.zero_size_sets_price else traded
            return pok.copy(), traded
        cond = conditions.to_numpy(dtype=object) if isinstance(conditions, pd.Series) else (
            np.asarray(conditions, dtype=object)
        )
        if order is not None:
            cond = cond[order]
        codes, uniq = pd.factorize(cond, use_na_sentinel=False)
        table = np.array(
            [self._elig.get(c) or self._judge(c) for c in map(str, uniq)], dtype=bool
        ).reshape(-1, 3)
        pok = np.where(traded, table[codes, 0], table[codes, 2])
        return pok, traded & table[codes, 1]

    def _merge(self, seg: Segments, states, ts, seq, source, row) -> None:
        """Merge the partial bars of a batch (first/last -1: priceless) into the state."""
        gfirst, glast = seg.first, seg.last
        ng = len(seg.bucket)
        has = gfirst >= 0
        fi, li = (gfirst, glast) if bool(has.all()) else (
            np.where(has, gfirst, 0), np.where(has, glast, 0)
        )

        def keys(i):  # ordering keys of the ticks at rows i
            return zip(
                ts[i].tolist(),
                [-1] * ng if seq is None else seq[i].tolist(),
                [source] * ng if isinstance(source, str) else source[i].tolist(),
                row[i].tolist(),
                strict=True,
            )

        for s, m, o, h, lo, c, q, nv, k, f, okey, ckey in zip(
            seg.sym.tolist(), seg.bucket.tolist(), seg.open.tolist(), seg.high.tolist(),
            seg.low.tolist(), seg.close.tolist(), seg.qty.tolist(), seg.notional.tolist(),
            seg.count.tolist(), gfirst.tolist(), keys(fi), keys(li), strict=True,
        ):
            st = states[s]
            st[1].add(m)
            bars = st[0]
            b = bars.get(m)
            if f >= 0:
                if b is None:
                    bars[m] = [o, h, lo, c, q, nv, k, okey, ckey]
                    continue
                if b[_OK] is None:
                    b[_O], b[_H], b[_L], b[_C], b[_OK], b[_CK] = o, h, lo, c, okey, ckey
                else:
                    if h > b[_H]:
                        b[_H] = h
                    if lo < b[_L]:
                        b[_L] = lo
                    if okey < b[_OK]:
                        b[_O] = o
                        b[_OK] = okey
                    if ckey > b[_CK]:
                        b[_C] = c
                        b[_CK] = ckey
            elif b is None:
                bars[m] = [_NAN, -_INF, _INF, _NAN, q, nv, k, None, None]
                continue
            b[_Q] += q
            b[_N] += nv
            b[_K] += k

    # ------------------------------------------------------------------ output
    def bars(self) -> pd.DataFrame:
        """Every current bar of every timeframe (internal bar frame, canonical order)."""
        return self._build({s: None for s in self._state})

    def drain_updates(self) -> pd.DataFrame:
        """Bars created or restated since the previous drain, all timeframes touched."""
        dirty = {s: st[1] for s, st in self._state.items() if st[1]}
        if not dirty:
            return empty_bars()
        dirty_arr = {s: np.fromiter(d, dtype="int64", count=len(d)) for s, d in dirty.items()}
        for st in self._state.values():
            st[1] = set()
            st[3] = st[4] = None  # the next tick must mark its minute dirty again
        lo_all = min(int(a.min()) for a in dirty_arr.values())
        hi_all = max(int(a.max()) for a in dirty_arr.values())
        sessions = sessions_between(lo_all, hi_all, self.calendar)
        select: dict[str, tuple[int, int]] = {}
        touched: dict[tuple[str, str], np.ndarray] = {}
        for s, mins in dirty_arr.items():
            lo, hi = int(mins.min()), int(mins.max()) + _MINUTE
            for tf in self.timeframes:
                b = bucket_for(mins, tf, sessions)
                inside = b >= 0
                if not inside.any():
                    continue
                touched[(s, tf.name)] = np.unique(b[inside])
                if tf.is_session:
                    idx = sessions.locate(mins[inside])
                    lo = min(lo, int(sessions.opens[idx].min()))
                    hi = max(hi, int(sessions.closes[idx].max()))
                else:
                    lo = min(lo, int(b[inside].min()))
                    hi = max(hi, int(b[inside].max()) + tf.ns)
            select[s] = (lo, hi)
        out = self._build(select, sessions_hint=(lo_all, hi_all))
        if len(out) == 0:
            return out
        sym = out["symbol"].to_numpy(object)
        tfn = out["timeframe"].to_numpy(object)
        ts = out["ts"].to_numpy("int64")
        keep = np.zeros(len(out), dtype=bool)
        for (s, name), buckets in touched.items():
            rows = np.flatnonzero((sym == s) & (tfn == name))
            keep[rows[np.isin(ts[rows], buckets)]] = True
        return out[keep].reset_index(drop=True)

    def _build(self, select: dict, sessions_hint: tuple[int, int] | None = None) -> pd.DataFrame:
        """Bars from the minute state of ``select`` (symbol -> None for all minutes, or a
        [lo, hi) window holding whole buckets of every timeframe)."""
        symbols = sorted(select)
        parts = []
        for code, s in enumerate(symbols):
            bars = self._state[s][0]
            if not bars:
                continue
            mins = np.fromiter(bars.keys(), dtype="int64", count=len(bars))
            vals = list(bars.values())
            window = select[s]
            if window is not None:
                idx = np.flatnonzero((mins >= window[0]) & (mins < window[1]))
                mins = mins[idx]
                vals = [vals[i] for i in idx.tolist()]
            if len(vals) == 0:
                continue
            order = np.argsort(mins, kind="stable")
            mins = mins[order]
            vals = [vals[i] for i in order.tolist()]
            parts.append((code, mins, vals))
        if not parts:
            return empty_bars()
        sym = np.concatenate([np.full(len(m), c, dtype="int64") for c, m, _ in parts])
        minute = np.concatenate([m for _, m, _ in parts])
        vals = [v for _, _, vs in parts for v in vs]
        cols = list(zip(*vals, strict=True))
        o, h, lo, c = (np.array(cols[i], dtype="float64") for i in (_O, _H, _L, _C))
        q, nv, k = (np.array(cols[i], dtype="int64") for i in (_Q, _N, _K))
        priced = np.fromiter((x is not None for x in cols[_OK]), dtype=bool, count=len(vals))
        lo_ns, hi_ns = sessions_hint or (int(minute.min()), int(minute.max()))
        sessions = sessions_between(
            min(lo_ns, int(minute.min())), max(hi_ns, int(minute.max())), self.calendar
        )
        names = np.asarray(symbols, dtype=object)
        out = []
        for tf in self.timeframes:
            parts = _bars_from_minutes(sym, minute, o, h, lo, c, q, nv, k, priced, tf, sessions)
            if parts is not None:
                out.append(bar_frame(names, tf.name, *parts))
        if not out:
            return empty_bars()
        return sort_bars(pd.concat(out, ignore_index=True).astype(BAR_COLUMNS))


def _single_or_array(col: pd.Series):
    """One string when the column holds a single value, else an object array."""
    a = _arrow_strings(col)
    if a is not None:
        if a.null_count == 0 and pc.all(pc.equal(a, a[0])).as_py():
            return a[0].as_py()
        return col.to_numpy(dtype=object)
    values = col.to_numpy(dtype=object)
    first = values[0]
    if isinstance(first, str) and (values == first).all():
        return first
    return values


def _all_empty(col: pd.Series) -> bool:
    """Whether a text column holds only empty strings (no trade ids in a batch)."""
    a = _arrow_strings(col)
    if a is not None:
        return a.null_count == 0 and pc.max(pc.binary_length(a)).as_py() == 0
    return not any(map(bool, col.to_numpy(dtype=object)))


def _bars_from_minutes(
    sym, minute, o, h, lo, c, q, nv, k, priced, tf: Timeframe, sessions: Sessions
):
    """Bars of ``tf`` from minute partials in (symbol, minute) order: the bars BarEngine
    builds from the ticks themselves (a bar needs a price-setting tick; the volume of
    volume-only ticks counts in every bar whose interval holds them). BarEngine's own
    roll-ups equal this: it rolls up only when no tick is volume-only."""
    if tf == _MINUTE_TF:
        if priced.all():
            return sym, minute, o, h, lo, c, q, nv, k
        i = np.flatnonzero(priced)
        return sym[i], minute[i], o[i], h[i], lo[i], c[i], q[i], nv[i], k[i]
    if not can_roll_up(_MINUTE_TF, tf, sessions):
        raise StreamingError(
            f"calendar sessions are not aligned to minutes: streaming {tf.name} is not supported"
        )
    return rollup_arrays(sym, minute, o, h, lo, c, q, nv, k, tf, sessions, priced)
