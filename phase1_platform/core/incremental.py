"""Incremental recompute: rebuild only the bars that newly landed ticks touch.

A partition's bars are a function of its canonical ticks (DESIGN section 6). When ticks
land at or after time ``t`` (late ones included), the bars that can change are:

- intraday bars opening at or after ``since = floor(t, coarsest intraday timeframe)``:
  intraday timeframes align to UTC epoch multiples and each divides the coarsest, so
  every intraday bar lies wholly before ``since`` or wholly after it; the ones before
  keep their ticks, hence their values;
- the session bars (``1d``), which span the day.

``rebuild_since`` builds the intraday bars from the ticks at or after ``since`` with the
same ``BarEngine.build`` a full recompute runs, and each session bar as the roll-up of
the base (finest intraday) timeframe: the stored bars before ``since`` and the rebuilt
ones after. A roll-up of bars alone is not exact when the rule set lets a tick count in
volume without setting prices (``lean-equity``): an interval holding only such ticks
has no bar, yet its volume belongs to the session bar. Those intervals are kept beside
the bars as *volume-only* rows (``volume_only_bars``: qty, notional, trade_count per
base interval), stored with the bars and rolled up with them, so the session bar equals
the full build's for every rule set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import DEFAULT_CALENDAR, sessions_between
from .engine import BarEngine, aggregate_arrays, bar_frame, can_roll_up, rollup_arrays, sort_bars
from .rules import EligibilityRules
from .schema import BAR_COLUMNS, empty_bars, empty_frame, notional_units, qty_units, ts_ns
from .timeframes import TIMEFRAMES, Timeframe, parse_timeframes

VOLUME_ONLY_COLUMNS = {"symbol": "str", "timeframe": "str", "ts": "int64", "qty": "int64",
                       "notional": "int64", "trade_count": "int64"}


def empty_volume_only() -> pd.DataFrame:
    return empty_frame(VOLUME_ONLY_COLUMNS)


def intraday(timeframes) -> list[Timeframe]:
    """The intraday timeframes of a spec (``"1m,5m,1d"``, names or Timeframes), finest first."""
    if not isinstance(timeframes, str):
        timeframes = [str(tf) for tf in timeframes]
    return [tf for tf in parse_timeframes(timeframes) if tf.is_intraday]


def base_timeframe(timeframes) -> str | None:
    """The timeframe session bars roll up from (the finest intraday one), if any."""
    tfs = intraday(timeframes)
    return tfs[0].name if tfs else None


def recompute_since(first_new_ns: int, start_ns: int, timeframes) -> int:
    """Where a recompute starts for ticks landed at or after ``first_new_ns`` in a window
    starting at ``start_ns``: the first's coarsest intraday bar open (the window start
    at the earliest)."""
    tfs = intraday(timeframes)
    if not tfs:
        return int(start_ns)
    coarsest = max(tf.ns for tf in tfs)
    return max(int(start_ns), int(first_new_ns) // coarsest * coarsest)


def incremental_blocker(timeframes, start_ns: int, end_ns: int,
                        calendar: str = DEFAULT_CALENDAR) -> str | None:
    """Why bars of this window cannot be recomputed incrementally (None: they can)."""
    tfs = parse_timeframes(timeframes)
    info = [tf.name for tf in tfs if tf.is_info]
    if info:
        return (f"information-driven bars ({', '.join(info)}) are rebuilt per session from "
                "all its ticks")
    sessions = [tf for tf in tfs if tf.is_session]
    if not sessions:
        return None
    base = intraday(tfs)
    if not base:
        return "no intraday timeframe to roll the session bars up from"
    day_sessions = sessions_between(int(start_ns), int(end_ns) - 1, calendar)
    if not can_roll_up(base[0], sessions[0], day_sessions):
        return f"the sessions do not start and end on {base[0].name} boundaries"
    return None


def volume_only_bars(ticks: pd.DataFrame, rules: EligibilityRules,
                     timeframe: str) -> pd.DataFrame:
    """Per ``timeframe`` interval holding ticks that count in volume but none that sets
    prices: their qty, notional and trade count (the volume no bar of it shows)."""
    if len(ticks) == 0 or rules.volume_implies_price:
        return empty_volume_only()
    tf = TIMEFRAMES[timeframe]
    ts = ts_ns(ticks["ts"])
    price = ticks["price"].to_numpy("float64")
    size = ticks["size"].to_numpy("float64")
    price_ok, volume_ok = rules.evaluate(ticks["conditions"], size)
    sym, names = pd.factorize(ticks["symbol"], sort=True)
    seg = aggregate_arrays(sym, ts // tf.ns, price, qty_units(size), notional_units(price, size),
                           price_ok, volume_ok, bucket_scale=tf.ns, keep_priceless=True)
    priceless = seg.first < 0
    return pd.DataFrame({
        "symbol": np.asarray(names, dtype=object)[seg.sym[priceless]],
        "timeframe": timeframe,
        "ts": seg.bucket[priceless],
        "qty": seg.qty[priceless],
        "notional": seg.notional[priceless],
        "trade_count": seg.count[priceless],
    }).astype(VOLUME_ONLY_COLUMNS)


def _session_bars(base_bars: pd.DataFrame, volume_only: pd.DataFrame, session_tfs,
                  calendar: str) -> list[pd.DataFrame]:
    """Session bars rolled up from base bars plus volume-only intervals (one symbol)."""
    rows = pd.concat([
        base_bars[["ts", "open", "high", "low", "close", "qty", "notional", "trade_count"]]
        .assign(priced=True),
        volume_only[["ts", "qty", "notional", "trade_count"]].assign(
            open=np.nan, high=-np.inf, low=np.inf, close=np.nan, priced=False),
    ], ignore_index=True)
    if len(rows) == 0:
        return []
    rows = rows.sort_values("ts", kind="stable").reset_index(drop=True)
    ts = rows["ts"].to_numpy("int64")
    sessions = sessions_between(int(ts.min()), int(ts.max()), calendar)
    symbol = np.array([str(base_bars["symbol"].iloc[0]) if len(base_bars)
                       else str(volume_only["symbol"].iloc[0])], dtype=object)
    out = []
    for tf in session_tfs:
        parts = rollup_arrays(
            np.zeros(len(rows), dtype="int64"), ts,
            *(rows[c].to_numpy("float64") for c in ("open", "high", "low", "close")),
            *(rows[c].to_numpy("int64") for c in ("qty", "notional", "trade_count")),
            tf, sessions, priced=rows["priced"].to_numpy(bool))
        if parts is not None:
            out.append(bar_frame(symbol, tf.name, *parts))
    return out


def rebuild_since(ticks_since: pd.DataFrame, prior_base: pd.DataFrame, since_ns: int,
                  timeframes, rules: EligibilityRules,
                  prior_volume_only: pd.DataFrame | None = None,
                  calendar: str = DEFAULT_CALENDAR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, volume-only rows) that ticks at or after ``since_ns`` touch, equal to a full
    build's.

    ``ticks_since``: the canonical ticks with ts >= since_ns (one symbol).
    ``prior_base`` / ``prior_volume_only``: the stored bars and volume-only rows of the
    base timeframe with ts < since_ns. Returns the intraday bars opening at or after
    ``since_ns`` and the session bars of every session the base intervals fall in, in
    canonical order, and the base timeframe's volume-only rows from ``since_ns``.
    The caller checks ``incremental_blocker`` first.
    """
    tfs = parse_timeframes(timeframes)
    intra = [tf.name for tf in tfs if tf.is_intraday]
    base = intra[0] if intra else None
    engine = BarEngine(rules=rules, calendar=calendar)
    built = engine.build(ticks_since, ",".join(intra)) if intra and len(ticks_since) else \
        empty_bars()
    if len(built) and int(built["ts"].min()) < since_ns:
        raise ValueError("ticks before the recompute start were given")
    new_vo = volume_only_bars(ticks_since, rules, base) if base else empty_volume_only()
    out = [built]
    session_tfs = [tf for tf in tfs if tf.is_session]
    if session_tfs and base:
        prior_vo = empty_volume_only() if prior_volume_only is None else prior_volume_only
        prior = prior_base[prior_base["ts"].to_numpy("int64") < since_ns]
        prior_vo = prior_vo[prior_vo["ts"].to_numpy("int64") < since_ns]
        for frame in (prior, prior_vo):
            if len(frame) and set(frame["timeframe"].astype(str)) != {base}:
                raise ValueError(f"prior bars must all be {base} bars")
        new_base = built[built["timeframe"].astype(str).to_numpy() == base]
        base_bars = pd.concat([prior, new_base], ignore_index=True).astype(BAR_COLUMNS)
        volume_only = pd.concat([prior_vo, new_vo], ignore_index=True).astype(VOLUME_ONLY_COLUMNS)
        out += _session_bars(base_bars, volume_only, session_tfs, calendar)
    bars = pd.concat(out, ignore_index=True).astype(BAR_COLUMNS)
    return sort_bars(bars), new_vo
