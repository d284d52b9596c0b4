"""The live path's bars: what the ingestion service's streaming aggregator changed in one
flush, stored as the batch path stores them (DESIGN section 1).

``write_live_bars`` takes one drain of the aggregator (``core.streaming`` ``Changes``: the
bars created or restated, of every timeframe, the 1d included; the base intervals touched
and the volume-only ones among them) and writes it with ``BarRepository.write_live``:
bars upserted by (symbol, timeframe, ts) with the symbol's rule set and the source of its
ticks, volume-only rows of the touched base intervals replaced, exactly what
``BarRepository.write_partition`` keeps for the same ticks, so a later incremental batch
build rolls the 1d bar up exactly. Only bars the batch path builds are stored: of trading
sessions (a tick on a weekend makes no partition) and of the default timeframes (a service
streaming other timeframes keeps those to its stream).

``flush_transaction`` is the one write transaction of a flush: the service lands the ticks,
advances watermarks, stores quarantine rows and writes the bars inside it, so the stored
bars always match the stored ticks the service landed, whenever the process dies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager

import numpy as np
import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, is_session
from ..core.incremental import base_timeframe
from ..core.partition import KEY_SEPARATOR
from ..core.timeframes import DEFAULT_TIMEFRAMES
from ..storage import BarRepository, Store
from .build import source_names as build_source_names
from .land import partition_keys

NO_SOURCE = "live"

# partition key -> timeframe -> {"bars": bars written, "last_ts": latest bar open (UTC ns)}
WrittenBars = dict[str, dict[str, dict[str, int]]]


def flush_transaction(store: Store) -> AbstractContextManager:
    """One write transaction for everything a flush stores (``Store.transaction``)."""
    return store.transaction()


def source_names(sources: Iterable[str]) -> str:
    """The ``source`` column the batch path writes for ticks of these sources
    (``app.build.source_names``; ``live`` when there are none)."""
    return build_source_names(sources, empty=NO_SOURCE)


def _partition_keys(symbols: np.ndarray, ts: np.ndarray, calendar: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(``<date>|<SYMBOL>`` per row, whether the date is a trading session)."""
    if len(ts) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=bool)
    keys = partition_keys(symbols, ts, calendar)
    codes, uniq = pd.factorize(keys)
    sessions = np.array([is_session(str(k).split(KEY_SEPARATOR)[0], calendar) for k in uniq],
                        dtype=bool)
    return keys, sessions[codes]


def write_live_bars(store: Store, changes, rule_set_of: Mapping[str, str],
                    source_of: Mapping[str, str], calendar: str = DEFAULT_CALENDAR,
                    timeframes=DEFAULT_TIMEFRAMES, restated: pd.DataFrame | None = None
                    ) -> WrittenBars:
    """Store one drain of the streaming aggregator: the bars of ``timeframes`` (the set
    the batch path builds and verifies; a service streaming others keeps them to the
    stream) of session partitions, and the volume-only rows when the drain's base
    timeframe is the set's; what was written per partition and timeframe. ``restated``
    (symbol, timeframe, ts): bars the drain rebuilt after a cancel or correction
    (``core.streaming.restate``); those it has no bar for any more are deleted."""
    bars, touched, vo = changes.bars, changes.touched, changes.volume_only
    wanted = [str(t) for t in timeframes]
    gone = None
    if restated is not None and len(restated):
        keys = pd.MultiIndex.from_frame(bars[["symbol", "timeframe", "ts"]].astype(
            {"symbol": "str", "timeframe": "str", "ts": "int64"}))
        gone = restated[~pd.MultiIndex.from_frame(restated).isin(keys)
                        & restated["timeframe"].isin(wanted).to_numpy(bool)]
    tf = bars["timeframe"].astype(str).to_numpy(object)
    if len(bars) and not np.isin(tf, wanted).all():
        bars = bars[np.isin(tf, wanted)].reset_index(drop=True)
    if changes.base != base_timeframe(wanted):
        touched, vo = touched.iloc[:0], vo.iloc[:0]
    keys, ok = _partition_keys(bars["symbol"].to_numpy(object), bars["ts"].to_numpy("int64"),
                               calendar)
    if not ok.all():
        bars, keys = bars[ok].reset_index(drop=True), keys[ok]
    _, t_ok = _partition_keys(touched["symbol"].to_numpy(object),
                              touched["ts"].to_numpy("int64"), calendar)
    touched = touched[t_ok].reset_index(drop=True)
    _, v_ok = _partition_keys(vo["symbol"].to_numpy(object), vo["ts"].to_numpy("int64"),
                              calendar)
    vo = vo[v_ok].reset_index(drop=True)
    if len(bars) == 0 and len(touched) == 0 and (gone is None or len(gone) == 0):
        return {}
    symbols = bars["symbol"].to_numpy(object)
    rule_set = np.array([rule_set_of[s] for s in symbols], dtype=object)
    source = np.array([source_of.get(s, NO_SOURCE) for s in symbols], dtype=object)
    BarRepository(store).write_live(bars, rule_set, source, touched, vo, gone)
    out: WrittenBars = {}
    if len(bars):
        summary = pd.DataFrame({"key": keys, "tf": bars["timeframe"].astype(str).to_numpy(),
                                "ts": bars["ts"].to_numpy("int64")}).groupby(
            ["key", "tf"], sort=True)["ts"].agg(["size", "max"])
        for (key, tf), n, last in zip(summary.index, summary["size"], summary["max"],
                                      strict=True):
            out.setdefault(str(key), {})[str(tf)] = {"bars": int(n), "last_ts": int(last)}
    return out


__all__ = ["NO_SOURCE", "WrittenBars", "flush_transaction", "source_names", "write_live_bars"]
