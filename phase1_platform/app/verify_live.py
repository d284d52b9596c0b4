"""Verification of the live path: the batch rebuild of the bars the live path stored.

The ingestion service stores the bars its streaming aggregator changes (``app.live_bars``);
a ``live_bars`` run (config ``incremental: true``) rebuilds the bars the pending tick
landings touch from the stored ticks (``app.build``) and, before writing, compares them
field by field with the bars stored in the span it rewrites (intraday bars from ``since``,
the session bars, the base timeframe's volume-only rows), read in the same snapshot as the
ticks (``app.build.prepare_build``): the live path's bars of exactly those ticks.

- equal: the run consumes the landings and writes nothing (so it never overwrites bars
  the live path wrote meanwhile);
- different: the batch result wins (``BarRepository.write_partition``, refused when ticks
  landed after the read: then the build reads again) and the verdict lists the differences.

``LiveVerdict`` is recorded in the store as check ``live_equals_batch`` (``app.checks``),
one row per timeframe, and reported to Dagster by ``defs.bars.live_check``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from ..core.incremental import empty_volume_only
from ..core.partition import Partition
from ..core.schema import NOTIONAL_SCALE, QTY_SCALE
from ..storage import Store
from .checks import LIVE_EQUALS_BATCH, record_check

FIRST_N = 20  # differences listed in a verdict's summary (all are counted)

VERIFIED = "verified"  # a live run compared the stored bars with the rebuild
NOTHING_STORED = "nothing stored"  # a live run found no bars in the span to compare
UP_TO_DATE = "up to date"  # nothing landed since the last build
FULL_REBUILD = "full rebuild"  # not a live run: the batch rebuild replaces what was stored

_KEY = ["timeframe", "ts"]
# (column, name shown, formatter)
def _price(v) -> str:
    return repr(float(v))


_FIELDS = (
    ("open", "open", _price), ("high", "high", _price), ("low", "low", _price),
    ("close", "close", _price),
    ("qty", "volume", lambda v: str(Decimal(int(v)) / QTY_SCALE)),
    ("notional", "notional", lambda v: str(Decimal(int(v)) / NOTIONAL_SCALE)),
    ("trade_count", "trade_count", lambda v: str(int(v))),
)
_VO_FIELDS = tuple(f for f in _FIELDS if f[0] in ("qty", "notional", "trade_count"))


@dataclass(frozen=True)
class StoredSpan:
    """The stored bars and volume-only rows a build is about to replace (read with its
    ticks): intraday bars from ``since_ns`` (None: the whole window), the session bars."""

    bars: pd.DataFrame
    volume_only: pd.DataFrame
    since_ns: int | None


@dataclass(frozen=True)
class Difference:
    timeframe: str  # a bar timeframe, or "<base> volume-only"
    ts_ns: int
    field: str  # "bar" when the bar exists on one side only
    live: str
    batch: str

    def as_dict(self) -> dict:
        return {"timeframe": self.timeframe,
                "timestamp": pd.Timestamp(self.ts_ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                "field": self.field, "live": self.live, "batch": self.batch}


@dataclass
class LiveVerdict:
    """Whether the live path's stored bars equal the batch rebuild of the same ticks."""

    partition: Partition
    mode: str  # VERIFIED, NOTHING_STORED, UP_TO_DATE, FULL_REBUILD
    compared: int = 0  # bars (and volume-only rows) compared
    differences: list[Difference] = field(default_factory=list)
    since_ns: int | None = None
    written: bool = False  # the batch result was written (it won)

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def passed(self) -> bool:
        """Failed only when a live run found the stored bars different (a full rebuild
        outside a live run does not judge the live path)."""
        return self.mode != VERIFIED or self.equal

    def note(self) -> str:
        if self.mode == UP_TO_DATE:
            return "nothing landed since the last build: nothing to compare"
        if self.mode == FULL_REBUILD:
            changed = f" ({self.changed_bars()} of them differed)" if self.compared else ""
            return ("full rebuild: not a verification of the live path; the rebuild replaced "
                    f"the stored bars{changed}")
        if self.mode == NOTHING_STORED:
            return "no bars stored in the rebuilt span: nothing from the live path to compare"
        if self.equal:
            return f"the live path's {self.compared} stored bars equal the batch rebuild"
        return (f"{self.changed_bars()} of {self.compared} bars differ from the batch "
                "rebuild: the batch result was written (batch wins)")

    def changed_bars(self, timeframe: str | None = None) -> int:
        return len({(d.timeframe, d.ts_ns) for d in self.differences
                    if timeframe is None or d.timeframe.split(" ")[0] == timeframe})

    def by_timeframe(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for tf, _ in {(d.timeframe, d.ts_ns) for d in self.differences}:
            out[tf] = out.get(tf, 0) + 1
        return dict(sorted(out.items()))

    def by_field(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.differences:
            out[d.field] = out.get(d.field, 0) + 1
        return dict(sorted(out.items()))

    def summary(self, timeframe: str | None = None, first_n: int = FIRST_N) -> dict:
        """JSON-able summary (the differences of ``timeframe`` only, when given; its
        volume-only rows count with the base timeframe)."""
        diffs = [d for d in self.differences
                 if timeframe is None or d.timeframe.split(" ")[0] == timeframe]
        out = {
            "partition": self.partition.key, "passed": self.passed, "mode": self.mode,
            "note": self.note(), "compared": self.compared,
            "bars_differing": len({(d.timeframe, d.ts_ns) for d in diffs}),
            "differences": len(diffs),
            "by_timeframe": self.by_timeframe(), "by_field": self.by_field(),
            "first_differences": [d.as_dict() for d in diffs[:first_n]],
            "batch_written": self.written,
        }
        if self.since_ns is not None:
            out["since"] = pd.Timestamp(self.since_ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        return out


def in_span(bars: pd.DataFrame, since_ns: int | None, timeframes) -> pd.DataFrame:
    """The bars of ``timeframes`` a rebuild from ``since_ns`` replaces (intraday bars from
    it, every session bar)."""
    from ..core.timeframes import TIMEFRAMES

    tf = bars["timeframe"].astype(str).to_numpy(object)
    keep = np.isin(tf, [str(t) for t in timeframes])
    if since_ns is not None:
        session = np.isin(tf, [n for n, t in TIMEFRAMES.items() if t.is_session])
        keep &= session | (bars["ts"].to_numpy("int64") >= since_ns)
    return bars[keep].reset_index(drop=True)


def _compare(live: pd.DataFrame, batch: pd.DataFrame, fields, label=None
             ) -> tuple[int, list[Difference]]:
    """(rows compared, differences) of two frames keyed by (timeframe, ts)."""
    cols = [c for c, _, _ in fields]
    a = live[[*_KEY, *cols]].assign(timeframe=live["timeframe"].astype(str))
    b = batch[[*_KEY, *cols]].assign(timeframe=batch["timeframe"].astype(str))
    both = a.merge(b, on=_KEY, how="outer", suffixes=("_l", "_b"), indicator=True)
    both = both.sort_values(_KEY, kind="stable").reset_index(drop=True)
    out: list[Difference] = []
    tfs = both["timeframe"].to_numpy(object)
    ts = both["ts"].to_numpy("int64")
    where = both["_merge"].astype(str).to_numpy(object)
    name = (lambda t: f"{t} {label}") if label else (lambda t: t)
    for i in np.flatnonzero(where != "both"):
        live_has = where[i] == "left_only"
        out.append(Difference(name(tfs[i]), int(ts[i]), "bar",
                              "present" if live_has else "missing",
                              "missing" if live_has else "present"))
    paired = np.flatnonzero(where == "both")
    for col, shown, fmt in fields:
        lv = both[f"{col}_l"].to_numpy()[paired]
        bv = both[f"{col}_b"].to_numpy()[paired]
        if lv.dtype.kind == "f" or bv.dtype.kind == "f":
            lv, bv = lv.astype("float64"), bv.astype("float64")
            same = (lv == bv) | (np.isnan(lv) & np.isnan(bv))
        else:
            same = lv == bv
        for j in np.flatnonzero(~same):
            i = paired[j]
            out.append(Difference(name(tfs[i]), int(ts[i]), shown, fmt(lv[j]), fmt(bv[j])))
    out.sort(key=lambda d: (d.timeframe, d.ts_ns, d.field))
    return len(both), out


def judge(part: Partition, stored: StoredSpan | None, rebuilt: pd.DataFrame,
          rebuilt_volume_only: pd.DataFrame | None, timeframes, live_run: bool
          ) -> LiveVerdict:
    """Compare the stored span with the rebuild of the same ticks (``rebuilt``: the bars
    the build writes; ``rebuilt_volume_only``: its volume-only rows)."""
    if stored is None:
        return LiveVerdict(part, UP_TO_DATE)
    live = in_span(stored.bars, stored.since_ns, timeframes)
    batch = in_span(rebuilt, stored.since_ns, timeframes)
    vo_live = stored.volume_only
    vo_batch = empty_volume_only() if rebuilt_volume_only is None else rebuilt_volume_only
    if stored.since_ns is not None:
        vo_live = vo_live[vo_live["ts"].to_numpy("int64") >= stored.since_ns]
    n, diffs = _compare(live, batch, _FIELDS)
    m, vo_diffs = _compare(vo_live, vo_batch, _VO_FIELDS, label="volume-only")
    if not live_run:
        mode = FULL_REBUILD
    elif len(live) == 0 and len(vo_live) == 0:
        mode = NOTHING_STORED
    else:
        mode = VERIFIED
    return LiveVerdict(part, mode, n + m, diffs + vo_diffs, stored.since_ns)


def record_live_verdict(store: Store, verdict: LiveVerdict, timeframes) -> None:
    """Keep the verdict in the store: check ``live_equals_batch``, one row per timeframe
    (each with the sha256 of the bars stored after the build)."""
    for tf in timeframes:
        record_check(store, verdict.partition, LIVE_EQUALS_BATCH, verdict.passed,
                     verdict.summary(str(tf)), timeframe=str(tf))


__all__ = ["FULL_REBUILD", "NOTHING_STORED", "UP_TO_DATE", "VERIFIED", "Difference",
           "LiveVerdict", "StoredSpan", "in_span", "judge", "record_live_verdict"]
