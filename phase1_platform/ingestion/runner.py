"""Builds and runs the ingestion service from settings (``phase1 ingest``).

Modes (``--mode``, default ``INGESTION_MODE``, else ``live``):

- ``live --source finnhub``: Finnhub trade WebSocket (``FINNHUB_WS_URL`` overrides the
  URL, e.g. ``ws://127.0.0.1:8765`` for ``phase1 simulate``; ``FINNHUB_API_KEY`` is
  required, any non-empty value for the simulator). Runs until SIGINT/SIGTERM.
- ``live --source alpaca``: Alpaca's data stream (``AlpacaStreamConnector``: trades,
  cancels and corrections; ``ALPACA_STREAM_URL`` overrides the URL) with latest-trade
  polling while it is down, or polling only (``--alpaca-polling``); ``APCA_API_KEY_ID``,
  ``APCA_API_SECRET_KEY``, ``ALPACA_DATA_URL``; gaps are filled from its own history. A
  local stream (loopback URL) without ``ALPACA_DATA_URL`` polls nothing towards the
  internet.
- ``mock``: ``MockConnector`` replays ``--csv`` files (``--speed``), then stops.

``--backfill-from alpaca|finnhub|FILE`` names the historical connector for gaps (a
``TickHistory``). Each symbol's bars use its rule set of the per-symbol setting
(``app.sources``); ``--rules NAME`` overrides it for every symbol.

SIGINT/SIGTERM at any time, also while the stream is still connecting: everything
received is flushed, the last line on stdout says what was landed, exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..connectors.protocols import LiveTicks, TickHistory
from ..core.errors import ConfigError
from ..core.rules import get_rules
from ..core.timeframes import DEFAULT_TIMEFRAMES
from ..storage import Store
from .broadcast import BarBroadcaster
from .identity import StreamIdentity, stream_name
from .logs import event
from .service import IngestionService, IngestStats

MODES = ("live", "mock")
SOURCES = ("finnhub", "alpaca")


@dataclass
class IngestConfig:
    symbols: list[str]
    mode: str = "live"
    source: str = "finnhub"
    database_url: str | None = None
    broadcast_port: int | None = None  # None: no broadcast; 0: any free port
    broadcast_host: str = "127.0.0.1"
    csv: list[str] = field(default_factory=list)
    speed: float = 0.0
    backfill_from: str | None = None
    source_name: str | None = None
    timeframes: str = ",".join(DEFAULT_TIMEFRAMES)
    rules: str | None = None  # None: each symbol's rule set (app.sources)
    flush_interval: float = 0.25
    max_batch_rows: int = 20_000
    poll_interval: float = 1.0
    alpaca_polling: bool = False  # --source alpaca: REST polling only, no data stream
    broadcast_queue: int = 1000


def default_mode() -> str:
    mode = os.environ.get("INGESTION_MODE", "live").strip().lower() or "live"
    if mode not in MODES:
        raise ConfigError(f"INGESTION_MODE={mode!r} is not one of {', '.join(MODES)}")
    return mode


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Connectors:
    live: LiveTicks
    identity: StreamIdentity | None  # re-stamps an id-less stream's ticks
    historical: TickHistory | None  # fills gaps
    where: str = ""  # where the stream comes from (masked), for the start line


def build_connectors(cfg: IngestConfig) -> Connectors:
    """The live connector, its identity re-stamper and the historical connector."""
    from ..connectors.net import mask_secret

    identity = None
    where = ""
    rest = True  # whether the vendor's REST side may be used (history for gaps)
    if cfg.mode == "mock":
        from ..connectors.mock import MockConnector

        if not cfg.csv:
            raise ConfigError("mock mode replays tick files: give --csv FILE")
        connector: LiveTicks = MockConnector(cfg.csv, speed=cfg.speed)
        where = ", ".join(cfg.csv)
    elif cfg.source == "finnhub":
        from ..connectors.finnhub import FinnhubConnector

        ws_url = os.environ.get("FINNHUB_WS_URL") or None
        local = ws_url is not None and _is_loopback(ws_url)
        connector = FinnhubConnector(
            ws_url=ws_url,
            # a local simulator has no REST side: no quote polling towards the internet
            rest_fallback=not local or bool(os.environ.get("FINNHUB_REST_URL")),
            idle_timeout=None if local else 60.0,
            backoff_initial=0.2 if local else 1.0,
            backoff_max=2.0 if local else 60.0,
        )
        identity = StreamIdentity(cfg.source_name or stream_name(connector.ws_url))
        where = mask_secret(connector.ws_url)
    elif cfg.source == "alpaca" and cfg.alpaca_polling:
        from ..connectors.alpaca import AlpacaConnector

        connector = AlpacaConnector(poll_interval=cfg.poll_interval)
        where = mask_secret(connector.base_url)
    elif cfg.source == "alpaca":
        from ..connectors.alpaca import AlpacaStreamConnector
        from ..connectors.settings import load_settings

        settings = load_settings()
        local = settings.ALPACA_STREAM_URL is not None and _is_loopback(
            settings.ALPACA_STREAM_URL)
        rest = not local or settings.ALPACA_DATA_URL is not None
        connector = AlpacaStreamConnector(
            settings=settings, poll_interval=cfg.poll_interval,
            stream_url=settings.ALPACA_STREAM_URL, polling_fallback=rest)
        where = mask_secret(connector.stream_url or f"Alpaca {connector.feed} stream")
    else:
        raise ConfigError(f"unknown source {cfg.source!r}: use one of {', '.join(SOURCES)}")
    historical = _historical(cfg, connector) if rest or cfg.backfill_from else None
    return Connectors(connector, identity, historical, where)


def _historical(cfg: IngestConfig, connector: LiveTicks) -> TickHistory | None:
    """The connector named by ``--backfill-from``; by default the live connector itself
    when it serves history under the same identities (a stream with trade ids)."""
    name = cfg.backfill_from
    if not name:
        if cfg.mode == "live" and cfg.source == "alpaca" and isinstance(connector, TickHistory):
            return connector
        return None
    if name == "alpaca":
        if cfg.source == "alpaca" and isinstance(connector, TickHistory):
            return connector
        from ..connectors.alpaca import AlpacaConnector

        return AlpacaConnector()
    if name == "finnhub":
        if cfg.source != "finnhub" or cfg.mode != "live" or not isinstance(connector,
                                                                             TickHistory):
            raise ConfigError("--backfill-from finnhub needs --mode live --source finnhub")
        return connector  # /stock/tick (a premium endpoint)
    from ..connectors.mock import MockConnector

    if not os.path.exists(name):
        raise ConfigError(f"--backfill-from {name}: no such file (or use alpaca, finnhub)")
    return MockConnector([name])


async def run(cfg: IngestConfig, stop: asyncio.Event | None = None,
              announce=print, on_bars_written=None) -> IngestStats:
    """Run until ``stop`` is set (live) or the replay ends (mock); returns the stats.
    ``on_bars_written``: told what each flush stored (``IngestionService``)."""
    stop = stop or asyncio.Event()
    built = build_connectors(cfg)
    connector, historical = built.live, built.historical
    where = f"; stream {built.where}" if built.where else ""
    store = await asyncio.to_thread(Store.from_url, cfg.database_url)
    broadcaster = None
    if cfg.broadcast_port is not None:
        broadcaster = BarBroadcaster(cfg.broadcast_host, cfg.broadcast_port,
                                     queue_size=cfg.broadcast_queue)
    service = IngestionService(
        connector, store, cfg.symbols, identity=built.identity, historical=historical,
        broadcaster=broadcaster, timeframes=cfg.timeframes,
        rules=get_rules(cfg.rules) if cfg.rules else None,  # None: per-symbol setting
        flush_interval=cfg.flush_interval, max_batch_rows=cfg.max_batch_rows,
        on_bars_written=on_bars_written,
    )
    driver: asyncio.Task | None = None
    failure: BaseException | None = None
    try:
        if await service.start(stop):
            announce(f"ingest: {cfg.mode} {connector.name} -> {store.masked_url}; "
                     f"symbols {','.join(service.symbols)}{where}"
                     + (f"; bars at {broadcaster.url}?symbols=..." if broadcaster else ""))
            sys.stdout.flush()
            driver = asyncio.create_task(connector.run(stop), name="ingest-driver")
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, driver}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if driver.done() and not driver.cancelled():
                failure = driver.exception()
    finally:
        if driver is not None and not driver.done():
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        stats = await service.stop()
        if isinstance(historical, LiveTicks) and historical is not connector:
            await historical.disconnect()
        await asyncio.to_thread(store.dispose)
    if failure is not None:
        raise failure
    return stats


def main(cfg: IngestConfig, on_bars_written=None) -> int:
    async def go() -> IngestStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, _on_signal, stop, sig)
        return await run(cfg, stop, on_bars_written=on_bars_written)

    stats = asyncio.run(go())
    if not stats.connected and not stats.batches:  # nothing landed, not even a catch-up
        print(f"ingest: stopped while connecting to the {cfg.source} stream; nothing received")
        return 0
    print(f"ingest: {stats.rows_received} rows received, {stats.ticks} ticks, "
          f"{stats.landed} landed, {stats.duplicates} already landed, "
          f"{stats.quarantined} quarantined, {stats.gaps} gaps, "
          f"{stats.backfilled} backfilled, {stats.bar_updates} bar updates, "
          f"{stats.bars_written} bars stored")
    return 0


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    event("signal", logging.WARNING, signal=signal.Signals(sig).name, action="flush and stop")
    stop.set()
