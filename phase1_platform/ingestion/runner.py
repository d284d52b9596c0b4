"""Builds and runs the ingestion service from settings (``phase1 ingest``).

Modes (``--mode``, default ``INGESTION_MODE``, else ``live``):

- ``live --source finnhub``: Finnhub trade WebSocket (``FINNHUB_WS_URL`` overrides the
  URL, e.g. ``ws://127.0.0.1:8765`` for ``phase1 simulate``; ``FINNHUB_API_KEY`` is
  required, any non-empty value for the simulator). Runs until SIGINT/SIGTERM.
- ``live --source alpaca``: Alpaca latest-trade polling (``APCA_API_KEY_ID``,
  ``APCA_API_SECRET_KEY``, ``ALPACA_DATA_URL``); gaps are filled from its own history.
- ``mock``: ``MockConnector`` replays ``--csv`` files (``--speed``), then stops.

``--backfill-from alpaca|finnhub|FILE`` names the historical connector for gaps.
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

from ..connectors.base import BaseConnector, ConnectorError
from ..core.rules import get_rules
from ..storage import Store
from .broadcast import BarBroadcaster
from .identity import StreamIdentity, stream_name
from .service import IngestionService, IngestStats, event

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
    timeframes: str = "1m,5m,15m,1h,1d"
    rules: str = "default"
    flush_interval: float = 0.25
    max_batch_rows: int = 20_000
    poll_interval: float = 1.0
    broadcast_queue: int = 1000


def default_mode() -> str:
    mode = os.environ.get("INGESTION_MODE", "live").strip().lower() or "live"
    if mode not in MODES:
        raise ValueError(f"INGESTION_MODE={mode!r} is not one of {', '.join(MODES)}")
    return mode


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_connectors(cfg: IngestConfig) -> tuple[BaseConnector, StreamIdentity | None,
                                                  BaseConnector | None]:
    """(live connector, identity re-stamper or None, historical connector or None)."""
    identity = None
    if cfg.mode == "mock":
        from ..connectors.mock import MockConnector

        if not cfg.csv:
            raise ValueError("mock mode replays tick files: give --csv FILE")
        connector: BaseConnector = MockConnector(cfg.csv, speed=cfg.speed)
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
    elif cfg.source == "alpaca":
        from ..connectors.alpaca import AlpacaConnector

        connector = AlpacaConnector()
    else:
        raise ValueError(f"unknown source {cfg.source!r}: use one of {', '.join(SOURCES)}")
    return connector, identity, _historical(cfg, connector)


def _historical(cfg: IngestConfig, connector: BaseConnector) -> BaseConnector | None:
    name = cfg.backfill_from
    if not name:
        return connector if connector.name == "alpaca" else None
    if name == "alpaca":
        if connector.name == "alpaca":
            return connector
        from ..connectors.alpaca import AlpacaConnector

        return AlpacaConnector()
    if name == "finnhub":
        if connector.name != "finnhub":
            raise ValueError("--backfill-from finnhub needs --source finnhub")
        return connector  # /stock/tick (a premium endpoint)
    from ..connectors.mock import MockConnector

    if not os.path.exists(name):
        raise ValueError(f"--backfill-from {name}: no such file (or use alpaca, finnhub)")
    return MockConnector([name])


async def run(cfg: IngestConfig, stop: asyncio.Event | None = None,
              announce=print) -> IngestStats:
    """Run until ``stop`` is set (live) or the replay ends (mock); returns the stats."""
    stop = stop or asyncio.Event()
    connector, identity, historical = build_connectors(cfg)
    store = await asyncio.to_thread(Store.from_url, cfg.database_url)
    broadcaster = None
    if cfg.broadcast_port is not None:
        broadcaster = BarBroadcaster(cfg.broadcast_host, cfg.broadcast_port,
                                     queue_size=cfg.broadcast_queue)
    service = IngestionService(
        connector, store, cfg.symbols, identity=identity, historical=historical,
        broadcaster=broadcaster, timeframes=cfg.timeframes, rules=get_rules(cfg.rules),
        flush_interval=cfg.flush_interval, max_batch_rows=cfg.max_batch_rows,
    )
    driver: asyncio.Task | None = None
    failure: BaseException | None = None
    try:
        await service.start()
        where = getattr(connector, "ws_url", None)
        if where is not None:
            from ..connectors.finnhub import mask_secret

            where = mask_secret(where)
        announce(f"ingest: {cfg.mode} {connector.name} -> {store.masked_url}; "
                 f"symbols {','.join(service.symbols)}"
                 + (f"; stream {where}" if where else "")
                 + (f"; bars at {broadcaster.url}?symbols=..." if broadcaster else ""))
        sys.stdout.flush()
        if cfg.mode == "mock":
            driver = asyncio.create_task(connector.replay_ticks())
        elif connector.name == "alpaca":
            driver = asyncio.create_task(connector.run_polling(cfg.poll_interval, stop))
        elif hasattr(connector, "wait_stopped"):
            driver = asyncio.create_task(connector.wait_stopped())
        waiter = asyncio.create_task(stop.wait())
        tasks = {waiter} | ({driver} if driver else set())
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if driver is not None and driver.done() and not driver.cancelled():
            failure = driver.exception()
    finally:
        if driver is not None and not driver.done():
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await driver
        stats = await service.stop()
        if historical is not None and historical is not connector:
            with contextlib.suppress(Exception):
                await historical.disconnect()
        await asyncio.to_thread(store.dispose)
    if failure is not None:
        raise failure
    return stats


def main(cfg: IngestConfig) -> int:
    async def go() -> IngestStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, _on_signal, stop, sig)
        return await run(cfg, stop)

    try:
        stats = asyncio.run(go())
    except ConnectorError as exc:
        raise OSError(str(exc)) from None
    print(f"ingest: {stats.rows_received} rows received, {stats.ticks} ticks, "
          f"{stats.landed} landed, {stats.duplicates} already landed, "
          f"{stats.quarantined} quarantined, {stats.gaps} gaps, "
          f"{stats.backfilled} backfilled, {stats.bar_updates} bar updates")
    return 0


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    event("signal", logging.WARNING, signal=signal.Signals(sig).name, action="flush and stop")
    stop.set()
