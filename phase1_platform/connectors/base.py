"""BaseConnector: what every source shares; ``protocols.py`` says what callers use.

Output is always the core's raw tick frame (columns ``timestamp`` (int64 UTC ns or
tz-aware), ``symbol``, ``price``, ``size`` and optionally ``exchange``, ``conditions``,
``trade_id``, ``sequence``, ``source``, ``source_row``) that ``TickNormalizer`` takes;
bar sources return the canonical bar frame (``core.schema.CANONICAL_COLUMNS``).

A vendor message or trade that cannot be read becomes a quarantine row
(``QUARANTINE_COLUMNS``: source, source_row, reason, raw): kept in ``quarantine`` and
given to every quarantine callback, never dropped and never an exception.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable

import pandas as pd

from ..core.errors import VendorError
from ..core.schema import QUARANTINE_COLUMNS, empty_quarantine
from .net import mask_secret

log = logging.getLogger(__name__)

TickCallback = Callable[[pd.DataFrame], Awaitable[None] | None]


class ConnectorError(VendorError):
    """A connector problem the user can act on (bad key, unknown symbol, vendor down).

    The message is masked on creation: no configured secret survives in it, whatever
    text the vendor sent back. ``retryable`` marks a failure that a later attempt may
    not have (an outage, an unreadable reply), as opposed to a refused key.
    """

    retryable: bool = False

    def __init__(self, message: object = "", *, retryable: bool | None = None) -> None:
        super().__init__(mask_secret(message))
        if retryable is not None:
            self.retryable = retryable


async def call(cb: Callable, arg: object) -> None:
    """``cb(arg)``, awaited when it returns an awaitable."""
    out = cb(arg)
    if inspect.isawaitable(out):
        await out


class BaseConnector(abc.ABC):
    name: str = "base"
    source: str = "base"

    def __init__(self) -> None:
        self._callbacks: list[TickCallback] = []
        self._quarantine_callbacks: list[TickCallback] = []
        self._quarantine_frames: list[pd.DataFrame] = []
        self._quarantine_unsent: list[pd.DataFrame] = []
        self.symbols: set[str] = set()

    # -- callbacks -----------------------------------------------------------------
    def register_callback(self, cb: TickCallback) -> None:
        """``cb(raw_tick_frame)`` is called (or awaited) for every live batch received."""
        self._callbacks.append(cb)

    def register_quarantine_callback(self, cb: TickCallback) -> None:
        """``cb(quarantine_frame)`` for every message or trade that could not be read."""
        self._quarantine_callbacks.append(cb)

    async def _emit(self, batch: pd.DataFrame) -> None:
        for cb in self._callbacks:
            await call(cb, batch)

    # -- quarantine ----------------------------------------------------------------
    @property
    def quarantine(self) -> pd.DataFrame:
        """Every row this connector quarantined so far (QUARANTINE_COLUMNS)."""
        if not self._quarantine_frames:
            return empty_quarantine()
        return pd.concat(self._quarantine_frames, ignore_index=True).astype(QUARANTINE_COLUMNS)

    def _record_quarantine(self, frame: pd.DataFrame) -> None:
        """Keep ``frame`` (sync code paths); the next ``_deliver_quarantine`` sends it."""
        if len(frame):
            frame = frame.astype(QUARANTINE_COLUMNS)[list(QUARANTINE_COLUMNS)]
            self._quarantine_frames.append(frame)
            self._quarantine_unsent.append(frame)
            reasons = ", ".join(sorted(set(frame["reason"])))
            log.warning("%s: quarantined %d row(s) (%s)", self.name, len(frame), reasons)

    async def _deliver_quarantine(self) -> None:
        """Give every kept, not yet delivered quarantine frame to the callbacks."""
        while self._quarantine_unsent:
            frame = self._quarantine_unsent.pop(0)
            for cb in self._quarantine_callbacks:
                try:
                    await call(cb, frame)
                except Exception:  # noqa: BLE001 - a callback must not kill the stream
                    log.exception("%s: quarantine callback failed", self.name)

    async def _quarantine(self, frame: pd.DataFrame) -> None:
        self._record_quarantine(frame)
        await self._deliver_quarantine()

    # -- lifecycle -----------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self, stop: asyncio.Event | None = None) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    async def subscribe(self, symbols: Iterable[str]) -> None:
        self.symbols |= {s.upper() for s in symbols}

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        self.symbols -= {s.upper() for s in symbols}


def quarantine_frame(source: str, rows, reasons, raws) -> pd.DataFrame:
    """A quarantine frame of bad rows (raw text masked)."""
    return pd.DataFrame({
        "source": source,
        "source_row": pd.array(list(rows), dtype="int64"),
        "reason": [str(r) for r in reasons],
        "raw": [mask_secret(r) for r in raws],
    }).astype(QUARANTINE_COLUMNS)


async def wait_or_stop(aw: Awaitable, *stops: asyncio.Event | None) -> bool:
    """Await ``aw`` unless one of ``stops`` is set first; True if ``aw`` finished.

    When a stop wins, ``aw`` is cancelled (and awaited).
    """
    task = asyncio.ensure_future(aw)
    waiters = [asyncio.ensure_future(s.wait()) for s in stops if s is not None]
    try:
        await asyncio.wait([task, *waiters], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        for w in waiters:
            w.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
