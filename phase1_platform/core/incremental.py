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
the base (finest) timeframe's bars: the stored ones before ``since`` and the rebuilt
ones after. That roll-up is exactly what a full build does when every tick that counts
in volume also sets prices (``EligibilityRules.volume_implies_price``): no volume then
hides in an interval without a bar. ``incremental_blocker`` says when that does not
hold (a full recompute is needed then).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import DEFAULT_CALENDAR, sessions_between
from .engine import BarEngine, can_roll_up, rollup, sort_bars
from .rules import EligibilityRules
from .schema import BAR_COLUMNS, empty_bars
from .timeframes import Timeframe, parse_timeframes


def intraday(timeframes) -> list[Timeframe]:
    """The intraday timeframes of a spec (``"1m,5m,1d"``, names or Timeframes), finest first."""
    if not isinstance(timeframes, str):
        timeframes = [str(tf) for tf in timeframes]
    return [tf for tf in parse_timeframes(timeframes) if not tf.is_session]


def recompute_since(first_new_ns: int, start_ns: int, timeframes) -> int:
    """Where a recompute starts for ticks landed at or after ``first_new_ns`` in a window
    starting at ``start_ns``: the first's coarsest intraday bar open (the window start
    at the earliest)."""
    tfs = intraday(timeframes)
    if not tfs:
        return int(start_ns)
    coarsest = max(tf.ns for tf in tfs)
    return max(int(start_ns), int(first_new_ns) // coarsest * coarsest)


def incremental_blocker(rules: EligibilityRules, timeframes, start_ns: int, end_ns: int,
                        calendar: str = DEFAULT_CALENDAR) -> str | None:
    """Why bars of this window cannot be recomputed incrementally (None: they can)."""
    tfs = parse_timeframes(timeframes)
    sessions = [tf for tf in tfs if tf.is_session]
    if not sessions:
        return None
    if not rules.volume_implies_price:
        return (f"rule set {rules.name} counts some ticks in volume without letting them set "
                "prices, so a session bar is not a roll-up of intraday bars")
    base = intraday(tfs)
    if not base:
        return "no intraday timeframe to roll the session bars up from"
    day_sessions = sessions_between(int(start_ns), int(end_ns) - 1, calendar)
    if not can_roll_up(base[0], sessions[0], day_sessions):
        return f"the sessions do not start and end on {base[0].name} boundaries"
    return None


def rebuild_since(ticks_since: pd.DataFrame, prior_base: pd.DataFrame, since_ns: int,
                  timeframes, rules: EligibilityRules,
                  calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """The bars that ticks at or after ``since_ns`` touch, equal to a full build's.

    ``ticks_since``: the canonical ticks with ts >= since_ns (one symbol). ``prior_base``:
    the stored bars of the base (finest intraday) timeframe with ts < since_ns, for the
    session bars. Returns the intraday bars opening at or after ``since_ns`` and the
    session bars of every session the base bars fall in, in canonical order. The caller
    checks ``incremental_blocker`` first.
    """
    tfs = parse_timeframes(timeframes)
    names = [tf.name for tf in tfs]
    intra = [tf.name for tf in tfs if not tf.is_session]
    engine = BarEngine(rules=rules, calendar=calendar)
    built = engine.build(ticks_since, ",".join(intra)) if intra and len(ticks_since) else \
        empty_bars()
    ts = built["ts"].to_numpy("int64")
    if len(built) and int(ts.min()) < since_ns:
        raise ValueError("ticks before the recompute start were given")
    out = [built]
    session_tfs = [tf for tf in tfs if tf.is_session]
    if session_tfs:
        base = intra[0]
        prior = prior_base[prior_base["ts"].to_numpy("int64") < since_ns]
        if len(prior) and set(prior["timeframe"].astype(str)) != {base}:
            raise ValueError(f"prior bars must all be {base} bars")
        new_base = built[built["timeframe"].astype(str).to_numpy() == base]
        base_bars = sort_bars(pd.concat([prior, new_base], ignore_index=True)
                              .astype(BAR_COLUMNS))
        if len(base_bars):
            bts = base_bars["ts"].to_numpy("int64")
            sessions = sessions_between(int(bts.min()), int(bts.max()), calendar)
            out += [rollup(base_bars, tf, calendar, sessions) for tf in session_tfs]
    bars = pd.concat(out, ignore_index=True).astype(BAR_COLUMNS)
    keep = bars["timeframe"].astype(str).isin(names).to_numpy(bool)
    return sort_bars(bars[keep] if not np.all(keep) else bars)
