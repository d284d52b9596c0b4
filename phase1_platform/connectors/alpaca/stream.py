"""AlpacaStreamConnector: Alpaca's real-time stock data stream through alpaca-py's
``StockDataStream``, with trade cancels and corrections, and polling as the fallback.

Protocol (what the SDK speaks; ``ALPACA_STREAM_URL`` replaces the endpoint through the
SDK's ``url_override``, the production code path is otherwise unchanged): msgpack frames
(``Content-Type: application/msgpack``), each a list of messages; the server greets with
``[{"T":"success","msg":"connected"}]``; the client sends ``{"action":"auth","key","secret"}``
and gets ``authenticated`` or ``{"T":"error","code","msg"}``; then
``{"action":"subscribe","trades":[...]}`` (corrections ``c`` and cancel/errors ``x`` come
with the trades of the symbols subscribed). Trades ``t`` carry ``S,i,x,p,s,c,t,z`` with
``t`` a msgpack timestamp (nanoseconds); corrections ``oi,op,os,oc`` -> ``ci,cp,cs,cc``;
cancels ``i,p,s,a`` (``a`` = C cancel, E error: both take the trade out).

Trades are delivered as raw tick frames (ids ``"<x>-<z>-<i>"``, as the REST side forms
them, so a trade seen by both is one trade), cancels and corrections as
``core.amendments`` frames to the amendment callbacks (``LiveAmendments``), both in
arrival order, one batch per stream frame. A message that cannot be read is quarantined
with its reason (``source_row``: its arrival number, shared with the trades).

Failure handling: the SDK reconnects by itself with backoff; each login counts as a
connection (``stats.connections``: the ingestion service backfills the gap after a
reconnect from the REST history). While the stream is down (not up yet after
``fallback_after`` seconds, or lost), the REST latest-trade polling of
``AlpacaConnector`` delivers trades (``polling_fallback``). A refused login (bad key,
feed not in the subscription) ends the connector with one ``ConnectorError`` line that
names the variables; the vendor's text is masked (a server may echo the key back) and
never logged as sent.

alpaca-py 0.44 hooks used (checked against its ``alpaca/data/live/websocket.py``):
``_run_forever`` is what ``run()`` runs under its own ``asyncio.run``; it runs here on the
service's loop. ``_auth`` raises ``ValueError`` with the vendor's text and the SDK would log
it and retry forever: our override records the refusal, stops the stream and raises a
masked error instead. ``close`` is where the SDK drops a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from alpaca.data.live.stock import StockDataStream

from ...core.amendments import AMENDMENT_COLUMNS
from ..base import ConnectorError, TickCallback, call, quarantine_frame, wait_or_stop
from ..fields import raw_text
from ..net import SecretMaskFilter, mask_secret
from . import client as _client
from .connector import FEEDS, AlpacaConnector
from .parsing import check_amendments, check_trades, raw_tick_frame, wire_time

log = logging.getLogger(__name__)
# the SDK's own log lines (it logs vendor error texts): masked like ours
logging.getLogger("alpaca.data.live.websocket").addFilter(SecretMaskFilter())

NOT_A_MESSAGE = "stream message is not an object"
DELAYED_SIP_URL = "wss://stream.data.alpaca.markets/v2/delayed_sip"  # the SDK knows iex, sip


@dataclass
class StreamStats:
    connections: int = 0  # logins (the service's connection epochs)
    messages: int = 0
    trades: int = 0
    amendments: int = 0
    polls: int = 0  # fallback polls while the stream was down


class _LoginRefused(ValueError):
    """What the SDK sees of a refused login (the vendor's text stays with us, masked)."""


class _Stream(StockDataStream):
    """``StockDataStream`` that tells its connector when it is up, down or refused."""

    def __init__(self, owner: AlpacaStreamConnector, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def __repr__(self) -> str:  # the SDK object holds the keys: never show them
        return f"_Stream({mask_secret(self._endpoint)!r})"

    async def _auth(self) -> None:
        try:
            await super()._auth()
        except ValueError as exc:
            self._owner._refused(str(exc))
            await self.stop_ws()
            raise _LoginRefused("Alpaca refused the login") from None
        self._owner._up()

    async def close(self) -> None:
        self._owner._down()
        await super().close()


class AlpacaStreamConnector(AlpacaConnector):
    """Alpaca trades, cancels and corrections over the data stream (see the module)."""

    def __init__(self, *args, stream_url: str | None = None, polling_fallback: bool = True,
                 fallback_after: float = 5.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stream_url = stream_url or self._settings_stream_url()
        self.polling_fallback = polling_fallback
        self.fallback_after = float(fallback_after)
        self.stats = StreamStats()
        self._amendment_callbacks: list[TickCallback] = []
        self._stream: _Stream | None = None
        self._task: asyncio.Task | None = None
        self._is_up = asyncio.Event()
        self._fatal: ConnectorError | None = None
        self._failed = asyncio.Event()
        self._pending: list[dict] = []
        self._delivery: asyncio.Task | None = None

    def __repr__(self) -> str:
        return (f"AlpacaStreamConnector(feed={self.feed!r}, "
                f"stream_url={mask_secret(self.stream_url)!r})")

    def _settings_stream_url(self) -> str | None:
        from ..settings import load_settings

        return load_settings().ALPACA_STREAM_URL

    def register_amendment_callback(self, cb: TickCallback) -> None:
        """``cb(amendment_frame)`` for every batch of cancels and corrections."""
        self._amendment_callbacks.append(cb)

    @property
    def up(self) -> bool:
        return self._is_up.is_set()

    # -- the SDK's side ------------------------------------------------------------------
    def _up(self) -> None:
        self.stats.connections += 1
        self._is_up.set()

    def _down(self) -> None:
        self._is_up.clear()

    def _refused(self, vendor_text: str) -> None:
        message = " ".join(mask_secret(vendor_text).split())[:200]
        self._fatal = ConnectorError(
            f"Alpaca data stream refused the login ({message}): check "
            f"{_client.KEY_VARIABLES} (and that the key may use the {self.feed} feed)")
        self._failed.set()

    async def _on_message(self, msg) -> None:
        """Every trade, correction and cancel, in arrival order (raw: the wire's dict)."""
        self.stats.messages += 1
        self._pending.append(msg)
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.ensure_future(self._deliver_soon())

    async def _deliver_soon(self) -> None:
        await asyncio.sleep(0)  # the rest of the frame is dispatched first
        while self._pending:  # and what came while a callback made us wait
            await self._deliver()

    async def _deliver(self) -> None:
        messages, self._pending = self._pending, []
        if not messages:
            return
        first = self._rows
        self._rows += len(messages)
        rows = np.arange(first, first + len(messages), dtype="int64")
        is_obj = [isinstance(m, dict) for m in messages]
        bad = [(i, NOT_A_MESSAGE, m) for i, m in enumerate(messages) if not is_obj[i]]
        msgs = [{**m, "t": wire_time(m.get("t"))} if ok else {}
                for m, ok in zip(messages, is_obj, strict=True)]
        trades: dict[str, list[int]] = {}
        amends: list[int] = []
        for i, m in enumerate(msgs):
            if not is_obj[i]:
                continue
            if m.get("T") == "t":
                trades.setdefault(str(m.get("S")), []).append(i)
            else:
                amends.append(i)
        frames = []
        for symbol, at in sorted(trades.items()):
            checked, bad_trades = check_trades([msgs[i] for i in at])
            bad += [(at[p], reason, msgs[at[p]]) for p, _, reason in bad_trades]
            if len(checked):
                frames.append(raw_tick_frame(checked, symbol.upper(), self.source,
                                             rows[np.asarray(at)[checked["pos"].to_numpy()]]))
        amendments = None
        if amends:
            good, bad_amends = check_amendments([msgs[i] for i in amends])
            bad += [(amends[p], reason, msgs[amends[p]]) for p, reason in bad_amends]
            if len(good):
                at = np.asarray(amends)[good.pop("pos").to_numpy()]
                amendments = good.assign(
                    source=self.source, source_row=rows[at],
                    raw=[mask_secret(raw_text(msgs[i])) for i in at.tolist()],
                ).astype(AMENDMENT_COLUMNS)[list(AMENDMENT_COLUMNS)]
        if bad:
            bad.sort(key=lambda b: b[0])
            self._record_quarantine(quarantine_frame(
                self.source, [rows[i] for i, _, _ in bad], [r for _, r, _ in bad],
                [raw_text(m) for _, _, m in bad]))
        self.stats.trades += sum(len(f) for f in frames)
        if frames:
            await self._emit(pd.concat(frames, ignore_index=True) if len(frames) > 1
                             else frames[0])
        if amendments is not None:
            self.stats.amendments += len(amendments)
            for cb in self._amendment_callbacks:
                await call(cb, amendments)
        await self._deliver_quarantine()

    # -- LiveTicks -------------------------------------------------------------------------
    async def connect(self, stop: asyncio.Event | None = None) -> None:
        """Start the stream and wait until it is up (or refused: its ``ConnectorError``);
        after ``fallback_after`` seconds without it, return and let ``run`` poll meanwhile."""
        await super().connect(stop)
        if self._task is None or self._task.done():
            self._fatal = None
            self._failed.clear()
            stream = self._stream = _Stream(
                self, *self._credentials, raw_data=True, feed=FEEDS[self.feed] if
                self.feed != "delayed_sip" else FEEDS["sip"],
                url_override=self.stream_url or (DELAYED_SIP_URL if self.feed == "delayed_sip"
                                                 else None))
            stream.subscribe_trades(self._on_message, *sorted(self.symbols))
            stream.register_trade_corrections(self._on_message)
            stream.register_trade_cancels(self._on_message)
            self._task = asyncio.create_task(stream._run_forever(), name="alpaca-stream")
        ready = asyncio.ensure_future(self._ready())
        try:
            await wait_or_stop(asyncio.wait_for(ready, self.fallback_after), stop)
        except TimeoutError:
            log.warning("Alpaca data stream not up after %.1f s: %s meanwhile",
                        self.fallback_after,
                        "polling" if self.polling_fallback else "waiting")
        if self._fatal is not None:
            await self.disconnect()
            raise self._fatal

    async def _ready(self) -> None:
        up, failed = (asyncio.ensure_future(e.wait()) for e in (self._is_up, self._failed))
        try:
            await asyncio.wait({up, failed, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
            failed.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; poll the REST API while the stream is down. A refused
        login ends it with its ``ConnectorError``."""
        watcher = asyncio.create_task(self._interrupt_when(stop))
        try:
            while not stop.is_set():
                if self._fatal is not None:
                    raise self._fatal
                if not self.up and self.polling_fallback:
                    await self._poll()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wait_or_stop(self._failed.wait(), stop),
                                           timeout=self.poll_interval)
        finally:
            watcher.cancel()

    async def _poll(self) -> None:
        self.stats.polls += 1
        try:
            batch = await asyncio.to_thread(self.poll_once)
        except ConnectorError as exc:
            await self._deliver_quarantine()
            if not exc.retryable:
                raise
            self.poll_errors += 1
            log.warning("Alpaca fallback poll failed, polling goes on: %s", exc.one_line())
            return
        await self._deliver_quarantine()
        if len(batch):
            await self._emit(batch)

    async def disconnect(self) -> None:
        stream, task = self._stream, self._task
        self._stream = self._task = None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.stop_ws()
                await stream.close()
        if task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=5.0)
        await self._deliver()  # what arrived before the stream ended
        await super().disconnect()


__all__ = ["AlpacaStreamConnector", "StreamStats"]
