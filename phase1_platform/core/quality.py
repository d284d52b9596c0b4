"""Data-quality rules for bars (pure pandas/numpy; no Dagster, no great-expectations).

The rules (issue 5, item 5) on a bar frame, internal (``qty``/``notional``) or canonical
(``volume``/``vwap``):

- ``ohlc``: prices finite and > 0, ``low <= open <= high`` and ``low <= close <= high``;
- ``volume``: volume >= 0 (and trade_count >= 0 where known);
- ``unique_key``: one bar per (symbol, timeframe, timestamp);
- ``aligned``: an intraday bar opens on a multiple of its timeframe (UTC epoch); a daily
  bar is labelled by a session date of the exchange calendar;
- ``in_session``: a daily bar is labelled by a trading session (not a weekend or holiday).

``evaluate_bars`` counts violations per rule and keeps a few example rows;
``quality_frame`` returns the bars with the derived columns the great-expectations
wrapper validates (so GE and these rules judge the same data), and
``rejected_ratio`` judges the share of quarantined ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .calendar import DEFAULT_CALENDAR, sessions_between
from .schema import QTY_SCALE
from .timeframes import TIMEFRAMES

RULES = ("ohlc", "volume", "unique_key", "aligned", "in_session")


@dataclass
class QualityReport:
    rows: int
    violations: dict[str, int]  # rule -> number of bars breaking it
    examples: dict[str, list[dict]] = field(default_factory=dict)  # rule -> a few bad rows

    @property
    def passed(self) -> bool:
        return not any(self.violations.values())

    def failed_rules(self) -> list[str]:
        return [r for r, n in self.violations.items() if n]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "passed": self.passed, "violations": dict(self.violations),
                "examples": self.examples}


def _volume(bars: pd.DataFrame) -> np.ndarray:
    if "qty" in bars.columns:
        return bars["qty"].to_numpy("int64") / QTY_SCALE
    return bars["volume"].to_numpy("float64")


def quality_frame(bars: pd.DataFrame, calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """Bars with the columns the rules read: volume, ts_offset_ns, in_session, prices_ok."""
    out = pd.DataFrame(
        {
            "symbol": bars["symbol"].astype(str).to_numpy(),
            "timeframe": bars["timeframe"].astype(str).to_numpy(),
            "ts": bars["ts"].to_numpy("int64"),
            "open": bars["open"].to_numpy("float64"),
            "high": bars["high"].to_numpy("float64"),
            "low": bars["low"].to_numpy("float64"),
            "close": bars["close"].to_numpy("float64"),
            "volume": _volume(bars),
            "trade_count": pd.to_numeric(bars["trade_count"], errors="coerce")
            .to_numpy("float64") if "trade_count" in bars.columns else np.nan,
        }
    )
    ts = out["ts"].to_numpy("int64")
    tf = out["timeframe"].to_numpy(dtype=object)
    daily = tf == "1d"
    tf_ns = np.array([TIMEFRAMES[t].ns if t in TIMEFRAMES else 0 for t in pd.unique(tf)])
    ns_of = dict(zip(pd.unique(tf), tf_ns, strict=True))
    step = pd.Series(tf).map(ns_of).to_numpy("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(step > 0, np.mod(ts, np.where(step > 0, step, 1)), -1)
    in_session = np.ones(len(out), dtype=bool)
    if daily.any():
        d_ts = ts[daily]
        sessions = sessions_between(int(d_ts.min()), int(d_ts.max()), calendar)
        in_session[daily] = np.isin(d_ts, sessions.labels)
        offset[daily] = np.where(in_session[daily], 0, 1)  # a daily bar aligns to a session
    out["ts_offset_ns"] = offset.astype("int64")
    out["in_session"] = in_session
    prices = out[["open", "high", "low", "close"]].to_numpy("float64")
    out["prices_ok"] = np.all(np.isfinite(prices) & (prices > 0), axis=1)
    return out


def evaluate_bars(bars: pd.DataFrame, calendar: str = DEFAULT_CALENDAR,
                  max_examples: int = 5) -> QualityReport:
    """Count the bars breaking each rule (all rules evaluated, vectorized)."""
    q = quality_frame(bars, calendar)
    o, h, lo, c = (q[k].to_numpy("float64") for k in ("open", "high", "low", "close"))
    with np.errstate(invalid="ignore"):
        ohlc_bad = ~q["prices_ok"].to_numpy(bool) | ~(
            (lo <= o) & (o <= h) & (lo <= c) & (c <= h)
        )
        vol = q["volume"].to_numpy("float64")
        tc = q["trade_count"].to_numpy("float64")
        volume_bad = ~(vol >= 0) | (tc < 0)
    unique_bad = q.duplicated(subset=["symbol", "timeframe", "ts"], keep=False).to_numpy(bool)
    aligned_bad = q["ts_offset_ns"].to_numpy("int64") != 0
    session_bad = ~q["in_session"].to_numpy(bool)
    masks = {"ohlc": ohlc_bad, "volume": volume_bad, "unique_key": unique_bad,
             "aligned": aligned_bad, "in_session": session_bad}
    violations = {rule: int(mask.sum()) for rule, mask in masks.items()}
    examples = {}
    for rule, mask in masks.items():
        if mask.any():
            rows = q.loc[mask, ["symbol", "timeframe", "ts", "open", "high", "low", "close",
                                "volume"]].head(max_examples).copy()
            rows["timestamp"] = pd.to_datetime(rows.pop("ts"), utc=True).astype(str)
            examples[rule] = rows.to_dict(orient="records")
    return QualityReport(rows=len(q), violations=violations, examples=examples)


@dataclass(frozen=True)
class RejectedRatio:
    rows_in: int
    rejected: int
    threshold: float

    @property
    def ratio(self) -> float:
        return self.rejected / self.rows_in if self.rows_in else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio <= self.threshold


def rejected_ratio(rows_in: int, rejected: int, threshold: float) -> RejectedRatio:
    """Share of quarantined ticks among the rows received, judged against ``threshold``."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"rejected-tick threshold must be within [0, 1], got {threshold}")
    return RejectedRatio(int(rows_in), int(rejected), float(threshold))
