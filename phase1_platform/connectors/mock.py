"""MockConnector: replays recorded tick files as if they were a live feed.

Sources are DESIGN tick CSVs and LEAN tick zips (``readers.read_ticks``). Rows are
delivered exactly as read (raw text columns of a CSV stay text), so bad rows reach the
normalizer and are quarantined there with their reason, never dropped here.

Replay order is market time: rows are stably sorted by their parsed timestamp (file
order among equal times; a row whose timestamp does not parse rides along right after
the row before it in its file). Batches depend only on the data and the settings, never
on wall-clock timing, so a replay is deterministic:

- ``speed=0``: as fast as possible, batches of ``batch_size`` rows;
- ``speed=X``: batches are the rows of one ``batch_window`` of market time (at most
  ``batch_size``), each delivered when ``(batch_time - first_time) / X`` seconds of
  replay time have passed (1 = real time, 60 = one market minute per second).

As a history (``--backfill-from FILE``) it serves every loaded row: a recording has
already happened, so its newest trade of a symbol is its newest row (``LatestTrade``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..readers import read_ticks
from .base import BaseConnector, ConnectorError, wait_or_stop

log = logging.getLogger(__name__)

INJECT_SOURCE = "mock:inject"


class MockConnector(BaseConnector):
    name = "mock"

    def __init__(
        self,
        paths: Iterable[str | Path] = (),
        *,
        speed: float = 0.0,
        batch_size: int = 1000,
        batch_window: pd.Timedelta | str = "1s",
        page_size: int = 10_000,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.speed = float(speed)
        self.batch_size = int(batch_size)
        self.batch_window_ns = int(pd.Timedelta(batch_window).value)
        if self.batch_window_ns <= 0:
            raise ValueError("batch_window must be positive")
        self.page_size = int(page_size)
        self._sleep = sleep or self._paced_wait
        self._clock = clock
        self._frames: list[pd.DataFrame] = []
        self._order_ts: list[np.ndarray] = []
        self._replay: tuple[pd.DataFrame, np.ndarray] | None = None
        self._history: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None
        self._injected = 0
        self.connected = False
        self._stop = False
        self._wake = asyncio.Event()  # ends a paced wait when stopped
        self.batches_delivered = 0
        self.rows_delivered = 0
        for p in paths:
            self.load_from_csv(p)

    def __repr__(self) -> str:
        return (f"MockConnector(files={len(self._frames)}, rows={self.rows_loaded}, "
                f"speed={self.speed}, batch_size={self.batch_size})")

    # -- loading ---------------------------------------------------------------------
    @property
    def rows_loaded(self) -> int:
        return sum(len(f) for f in self._frames)

    def load_from_csv(self, path: str | Path) -> int:
        """Load a DESIGN tick CSV or a LEAN tick zip; returns the number of rows loaded."""
        return self.load_frame(read_ticks(path))

    def load_frame(self, raw: pd.DataFrame, source: str | None = None) -> int:
        """Load an already-read raw tick frame (needs ``timestamp, symbol, price, size``)."""
        raw = raw.reset_index(drop=True).copy()
        if "source" not in raw.columns:
            raw["source"] = source or f"mock:frame{len(self._frames)}"
        if "source_row" not in raw.columns:
            raw["source_row"] = np.arange(len(raw), dtype="int64")
        self._frames.append(raw)
        self._order_ts.append(_order_key(raw["timestamp"]))
        self._replay = self._history = None
        return len(raw)

    def _replay_frame(self) -> tuple[pd.DataFrame, np.ndarray]:
        """All loaded rows in market-time order (stable: file order breaks ties)."""
        if self._replay is None:
            if not self._frames:
                raise ConnectorError("MockConnector has no data: call load_from_csv(path) first")
            frame = pd.concat(self._frames, ignore_index=True)
            key = np.concatenate(self._order_ts)
            order = np.argsort(key, kind="stable")
            self._replay = (frame.iloc[order].reset_index(drop=True), key[order])
        return self._replay

    def _history_rows(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The replay frame with each row's symbol (upper case) and UTC ns (``_NAT`` where
        it does not parse), computed once per load for every history request."""
        if self._history is None:
            frame, _ = self._replay_frame()
            sym = frame["symbol"].astype("str").str.strip().str.upper().to_numpy()
            self._history = (frame, sym, _parsed_ns(frame["timestamp"]))
        return self._history

    # -- connection ------------------------------------------------------------------
    async def connect(self, stop: asyncio.Event | None = None) -> None:
        self.connected = True
        self._stop = False

    async def disconnect(self) -> None:
        self.connected = False
        self._stop = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Replay the loaded ticks (``replay_ticks``), then return; ends early on ``stop``.

        A batch being delivered is delivered whole: the replay stops between batches.
        """
        replay = asyncio.ensure_future(self.replay_ticks())
        if not await wait_or_stop(asyncio.shield(replay), stop):
            self._stop = True
            self._wake.set()
            await replay

    # -- live replay -----------------------------------------------------------------
    def batches(self, symbols: Iterable[str] | None = None) -> list[tuple[int, pd.DataFrame]]:
        """The replay as (market time ns of the batch, raw frame) pairs; deterministic."""
        frame, key = self._replay_frame()
        wanted = {s.upper() for s in symbols} if symbols is not None else self.symbols
        if wanted:
            keep = frame["symbol"].astype("str").str.strip().str.upper().isin(wanted).to_numpy()
            frame, key = frame[keep].reset_index(drop=True), key[keep]
        n = len(frame)
        if n == 0:
            return []
        if self.speed == 0:
            starts = np.arange(0, n, self.batch_size)
        else:
            window = np.floor_divide(key, self.batch_window_ns)
            new_window = np.r_[True, window[1:] != window[:-1]]
            # also cut every batch_size rows inside one window
            group = np.cumsum(new_window) - 1
            first_of_group = np.flatnonzero(new_window)
            pos_in_group = np.arange(n) - first_of_group[group]
            starts = np.flatnonzero(new_window | (pos_in_group % self.batch_size == 0))
        ends = np.r_[starts[1:], n]
        return [(int(key[s]), frame.iloc[s:e].reset_index(drop=True))
                for s, e in zip(starts, ends, strict=True)]

    async def replay_ticks(
        self, symbols: Iterable[str] | None = None, speed: float | None = None
    ) -> int:
        """Deliver the loaded ticks to the callbacks; returns the number of rows delivered.

        Only subscribed symbols are replayed when a subscription exists (``symbols``
        overrides it). Stops early after ``disconnect()``.
        """
        if speed is not None:
            if speed < 0:
                raise ValueError("speed must be >= 0")
            self.speed = float(speed)
        batches = self.batches(symbols)
        if not batches:
            return 0
        self._stop = False
        self._wake.clear()
        loop = asyncio.get_running_loop()
        now = self._clock or loop.time
        t0_market = batches[0][0]
        t0_replay = now()
        delivered = 0
        for market_ns, batch in batches:
            if self._stop:
                break
            if self.speed > 0:
                due = t0_replay + (market_ns - t0_market) / 1e9 / self.speed
                wait = due - now()
                if wait > 0:
                    await self._sleep(wait)
                    if self._stop:
                        break
            else:
                await asyncio.sleep(0)  # let other tasks run between batches
            await self._deliver(batch)
            delivered += len(batch)
        return delivered

    async def _paced_wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def inject_ticks(
        self, rows: pd.DataFrame | Iterable[Mapping[str, object]]
    ) -> pd.DataFrame:
        """Deliver hand-made rows now, as one batch (source ``mock:inject``).

        Rows keep what they were given (bad values included, for the normalizer to
        quarantine); each gets the next ``source_row`` of the injection source, so
        injecting the same rows twice is two deliveries, not one replayed twice.
        """
        frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        missing = [c for c in ("timestamp", "symbol", "price", "size") if c not in frame.columns]
        if missing:
            raise ValueError(f"injected ticks miss column(s): {', '.join(missing)}")
        frame = frame.reset_index(drop=True)
        frame["source"] = INJECT_SOURCE
        frame["source_row"] = np.arange(self._injected, self._injected + len(frame), dtype="int64")
        self._injected += len(frame)
        await self._deliver(frame)
        return frame

    async def inject_tick(self, **row: object) -> pd.DataFrame:
        return await self.inject_ticks([row])

    async def _deliver(self, batch: pd.DataFrame) -> None:
        await self._emit(batch)
        self.batches_delivered += 1
        self.rows_delivered += len(batch)

    # -- history ---------------------------------------------------------------------
    async def get_historical_ticks(  # type: ignore[override]
        self, symbol: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> AsyncIterator[pd.DataFrame]:
        """Loaded rows of ``symbol`` with start <= timestamp < end, in pages."""
        frame, sym, parsed = self._history_rows()
        start_ns, end_ns = _utc_ns(start), _utc_ns(end)
        if end_ns <= start_ns:
            raise ValueError(f"empty window: start {start} is not before end {end}")
        keep = (sym == symbol.upper()) & (parsed >= start_ns) & (parsed < end_ns)
        rows = frame[keep].reset_index(drop=True)
        for s in range(0, len(rows), self.page_size):
            yield rows.iloc[s:s + self.page_size].reset_index(drop=True)

    async def latest_trade_time(self, symbol: str) -> pd.Timestamp | None:
        """The newest loaded row of ``symbol`` whose timestamp parses (None: none)."""
        _, sym, parsed = self._history_rows()
        parsed = parsed[(sym == symbol.upper()) & (parsed != _NAT)]
        return pd.Timestamp(int(parsed.max()), unit="ns", tz="UTC") if len(parsed) else None


def _utc_ns(ts: pd.Timestamp | str) -> int:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise ValueError(f"timestamp without zone: {ts!r} (give UTC or an offset)")
    return int(t.tz_convert("UTC").value)


_NAT = np.iinfo("int64").min


def _parsed_ns(col: pd.Series) -> np.ndarray:
    """int64 UTC ns of a raw timestamp column; int64 min where it does not parse."""
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy("int64")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC")
    else:
        parsed = pd.to_datetime(col.astype("str").str.strip(), utc=True, format="ISO8601",
                                errors="coerce")
    out = parsed.astype("datetime64[ns, UTC]")
    values = out.to_numpy("datetime64[ns]").view("int64").copy()
    values[out.isna().to_numpy(bool)] = _NAT
    return values


def _order_key(col: pd.Series) -> np.ndarray:
    """Replay order key: parsed time, unparseable rows take the time of the row before."""
    values = _parsed_ns(col)
    bad = values == _NAT
    if bad.any():
        if bad.all():
            return np.zeros(len(values), dtype="int64")
        idx = np.maximum.accumulate(np.where(bad, -1, np.arange(len(values))))
        idx[idx < 0] = int(np.flatnonzero(~bad)[0])  # leading bad rows: first valid time
        values = values[idx]
    return values
