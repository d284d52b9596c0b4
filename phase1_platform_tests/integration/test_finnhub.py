"""FinnhubConnector against the local Finnhub simulator and a real local HTTP server.

The connector runs its production code path; only the URLs point at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from phase1_platform.app.replay import replay
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.finnhub import (
    Backoff,
    FinnhubConnector,
    FinnhubRestClient,
    RateLimiter,
    backoff_delay,
    mask_secret,
    retry_after_seconds,
    xnys_open,
)
from phase1_platform.core import BarEngine, CanonicalExporter, TickNormalizer
from phase1_platform.simulator.finnhub_server import FinnhubSimulator, MarketTape

from ..support.clock import FakeClock, run
from ..support.http import LocalHTTPServer, QuietHandler, send

ROOT = Path(__file__).resolve().parents[2]
SPY_ZIP = ROOT / "fixtures/lean/equity/usa/tick/spy/20131007_trade.zip"
TOKEN = "sim-secret-token-123"
TIMEFRAMES = "1m,5m,15m,1h,1d"


def always_open(_now) -> bool:
    return True


@pytest.fixture(scope="module")
def spy_tape() -> MarketTape:
    if not SPY_ZIP.exists():
        pytest.skip(f"fixture missing: {SPY_ZIP}")
    return MarketTape.from_files([SPY_ZIP])


@pytest.fixture(scope="module")
def reference_hash() -> str:
    # LEAN tick times are whole milliseconds already: the same ticks Finnhub would carry.
    return CanonicalExporter(replay([SPY_ZIP], TIMEFRAMES).bars).compute_hash()


@pytest.fixture
def small_csv(tmp_path) -> Path:
    lines = ["timestamp,symbol,price,size,conditions"]
    base = pd.Timestamp("2024-03-04T14:30:00Z")
    for i in range(600):
        ts = base + pd.Timedelta(milliseconds=137 * i)
        sym = "AAPL" if i % 3 else "MSFT"
        lines.append(f"{ts.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z,{sym},"
                     f"{170 + (i % 17) * 0.01:.2f},{1 + i % 5},{'12 37' if i % 7 == 0 else ''}")
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def connector(sim: FinnhubSimulator, **kwargs) -> FinnhubConnector:
    key = kwargs.pop("api_key", TOKEN)
    opts = dict(
        ws_url=sim.url, rest_url="http://127.0.0.1:9/api/v1", source="finnhub:test",
        backoff_initial=0.02, backoff_max=0.2, market_open=always_open, idle_timeout=30,
        rest_fallback=False, rng=random.Random(7), connect_timeout=20,
    )
    opts.update(kwargs)
    return FinnhubConnector(key, **opts)


async def connected(sim: FinnhubSimulator, **kwargs
                    ) -> tuple[FinnhubConnector, list[pd.DataFrame], list[pd.DataFrame]]:
    """A connector to ``sim`` (``connector(sim, **kwargs)``), connected, with the lists its
    frames and its quarantine rows are appended to."""
    conn = connector(sim, **kwargs)
    frames: list[pd.DataFrame] = []
    quarantined: list[pd.DataFrame] = []
    conn.register_callback(frames.append)
    conn.register_quarantine_callback(quarantined.append)
    await conn.connect()
    return conn, frames, quarantined


async def collect_all(sim: FinnhubSimulator, conn: FinnhubConnector, symbols) -> list:
    frames: list[pd.DataFrame] = []
    conn.register_callback(frames.append)
    await conn.connect()
    await conn.subscribe(symbols)
    await asyncio.wait_for(sim.done.wait(), 60)
    while conn.rows_received < len(sim.sent):
        await asyncio.sleep(0.02)
    await conn.disconnect()
    return frames


def bars_hash(frames: list[pd.DataFrame]) -> str:
    raw = pd.concat(frames, ignore_index=True)
    result = TickNormalizer().normalize(raw)
    assert result.rejected == 0, result.rejected_by_reason
    return CanonicalExporter(BarEngine().build(result.ticks, TIMEFRAMES)).compute_hash()


def received_vs_sent(frames, sim) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = pd.concat(frames, ignore_index=True)
    got = pd.DataFrame({
        "symbol": raw["symbol"],
        "t": raw["timestamp"].astype("datetime64[ns, UTC]").astype("int64") // 1_000_000,
        "price": raw["price"],
        "size": raw["size"],
    })
    sent = sim.sent_frame()[["symbol", "t", "price", "size"]]
    key = ["symbol", "t", "price", "size"]
    return (got.sort_values(key, kind="stable").reset_index(drop=True),
            sent.sort_values(key, kind="stable").reset_index(drop=True))


# ------------------------------------------------------------------ the fixture day
def test_fixture_day_through_simulator_has_replay_hash(spy_tape, reference_hash):
    async def main():
        async with FinnhubSimulator(spy_tape, token=TOKEN) as sim:
            conn = connector(sim)
            frames = await collect_all(sim, conn, ["SPY"])
            return sim, conn, frames

    sim, conn, frames = run(main())
    raw = pd.concat(frames, ignore_index=True)
    assert len(raw) == len(spy_tape) == len(sim.sent) == conn.stats.trades
    assert raw["source"].eq("finnhub:test").all()
    assert raw["source_row"].is_unique and raw["source_row"].is_monotonic_increasing
    assert conn.stats.reconnects == 0 and conn.quarantine.empty
    assert bars_hash(frames) == reference_hash


def test_aapl_fixture_through_finnhub_matches_replay_at_millisecond_resolution(tmp_path):
    src = ROOT / "fixtures/2013-10-07/AAPL.csv"
    if not src.exists():
        pytest.skip(f"fixture missing: {src}")
    timeframes = "1m,5m,15m,30m,1h,4h,1d"
    # reference: the file's accepted ticks with their times cut to whole milliseconds
    from phase1_platform.readers import read_tick_csv

    accepted = TickNormalizer().normalize(read_tick_csv(src)).ticks
    ms = accepted["ts"].dt.floor("ms")
    ref_csv = tmp_path / "aapl_ms.csv"
    pd.DataFrame({
        "timestamp": ms.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "symbol": accepted["symbol"], "price": accepted["price"], "size": accepted["size"],
        "exchange": accepted["exchange"], "conditions": accepted["conditions"],
        "trade_id": accepted["trade_id"],
        # no sequence is an empty field (-1 is the frame's "none", not a valid sequence)
        "sequence": accepted["sequence"].where(accepted["sequence"] >= 0).astype("Int64"),
    }).to_csv(ref_csv, index=False)
    reference = replay([ref_csv], timeframes)
    assert reference.normalized.rejected == 0

    async def main():
        async with FinnhubSimulator.from_files([src], token=TOKEN, batch_size=7) as sim:
            conn = connector(sim)
            frames = await collect_all(sim, conn, ["AAPL"])
            return sim, frames

    sim, frames = run(main())
    assert sim.tape.skipped == 6  # the file's bad rows never go on the wire
    raw = pd.concat(frames, ignore_index=True)
    assert len(raw) == len(accepted) == 298
    result = TickNormalizer().normalize(raw)
    assert result.rejected == 0
    bars = BarEngine().build(result.ticks, timeframes)
    assert CanonicalExporter(bars).to_bytes() == CanonicalExporter(reference.bars).to_bytes()


def test_drop_mid_stream_reconnects_resubscribes_without_dup_or_loss(spy_tape, reference_hash):
    async def main():
        async with FinnhubSimulator(spy_tape, token=TOKEN, drop_after=40, drop_times=3) as sim:
            conn = connector(sim)
            frames = await collect_all(sim, conn, ["SPY"])
            return sim, conn, frames

    sim, conn, frames = run(main())
    assert conn.stats.reconnects == 3 and conn.stats.connections == 4
    # every connection got trades: each reconnect resubscribed
    assert sim.sent_frame()["connection"].nunique() == 4
    got, sent = received_vs_sent(frames, sim)
    pd.testing.assert_frame_equal(got, sent)  # nothing lost that was sent, nothing twice
    raw = pd.concat(frames, ignore_index=True)
    assert raw["source_row"].is_unique
    assert bars_hash(frames) == reference_hash


def test_silent_stall_triggers_reconnect(small_csv):
    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN, batch_size=10,
                                          stall_after=5)
        async with sim:
            conn = connector(sim, idle_timeout=0.3)
            frames = await collect_all(sim, conn, ["AAPL", "MSFT"])
            return sim, conn, frames

    sim, conn, frames = run(main())
    assert conn.stats.idle_reconnects >= 1
    assert conn.stats.reconnects >= 1
    got, sent = received_vs_sent(frames, sim)
    pd.testing.assert_frame_equal(got, sent)
    assert len(got) == len(sim.tape)  # the market paused while nobody listened


def test_idle_timeout_only_counts_in_market_hours():
    clock_now = [pd.Timestamp("2013-10-07T14:00:00Z")]  # Monday 10:00 New York
    conn = FinnhubConnector(TOKEN, ws_url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:9",
                            idle_timeout=10, clock=lambda: clock_now[0])
    conn.symbols = {"SPY"}
    conn._last_data = 100.0
    assert not conn._idle_expired(105.0)  # not idle long enough
    assert conn._idle_expired(111.0)
    clock_now[0] = pd.Timestamp("2013-10-07T21:00:00Z")  # 17:00 New York, closed
    assert not conn._idle_expired(111.0)
    clock_now[0] = pd.Timestamp("2013-10-05T15:00:00Z")  # Saturday
    assert not conn._idle_expired(1000.0)
    conn.symbols = set()
    clock_now[0] = pd.Timestamp("2013-10-07T14:00:00Z")
    assert not conn._idle_expired(1000.0)  # nothing subscribed: silence is expected


def test_xnys_market_hours():
    assert xnys_open(pd.Timestamp("2013-10-07T13:30:00Z"))  # 09:30 EDT open
    assert not xnys_open(pd.Timestamp("2013-10-07T13:29:59Z"))
    assert not xnys_open(pd.Timestamp("2013-10-07T20:00:00Z"))  # 16:00 close
    assert xnys_open(pd.Timestamp("2013-11-29T17:59:00Z"))  # day after Thanksgiving, 12:59
    assert not xnys_open(pd.Timestamp("2013-11-29T18:00:00Z"))  # half day closed at 13:00
    assert not xnys_open(pd.Timestamp("2013-12-25T15:00:00Z"))


# ------------------------------------------------------------------ bad frames, errors
def test_malformed_frames_are_quarantined_not_fatal(small_csv):
    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN, batch_size=20)
        async with sim:
            conn, frames, quarantined = await connected(sim)
            await conn.wait_connected(10)
            # the bad frames go out before any trade, on the same connection, so the
            # connector reads them in order ahead of the tape (no race with its end)
            await sim.inject_raw('{"type":"trade","data":[{"s":"AAPL","p":1')
            await sim.inject_raw("[1, 2]")
            await sim.inject_raw(json.dumps({"type": "trade", "data": [
                {"s": "AAPL", "p": "abc", "t": 1709562600000, "v": 1}, 7]}))
            await conn.subscribe(["AAPL", "MSFT"])
            await asyncio.wait_for(sim.done.wait(), 60)
            while conn.rows_received < len(sim.sent) + 4 or len(quarantined) < 4:
                await asyncio.sleep(0.02)
            await conn.disconnect()
            return sim, conn, frames, quarantined

    sim, conn, frames, quarantined = run(main())
    q = conn.quarantine
    assert list(q["reason"]) == ["malformed JSON frame", "frame is not a JSON object",
                                 "trade item is not an object", "trade p is not a number"]
    assert q["raw"].iloc[0].startswith('{"type":"trade"')
    assert len(quarantined) == 4 and conn.stats.malformed == 2
    assert conn.stats.bad_trades == 2
    assert conn.stats.connections == 1  # not fatal: no reconnect
    raw = pd.concat(frames, ignore_index=True)
    assert raw["source_row"].is_unique
    assert not set(raw["source_row"]) & set(q["source_row"])
    result = TickNormalizer().normalize(raw)
    # the string price never reached the normalizer: the connector quarantined it
    assert result.rejected == 0
    assert len(result.ticks) == len(sim.tape) == len(sim.sent)


def test_wrong_token_is_one_clear_error_without_retry(small_csv, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-should-never-show"

    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN)
        async with sim:
            conn = FinnhubConnector(wrong, ws_url=sim.url, rest_url="http://127.0.0.1:9",
                                    backoff_initial=0.01, rest_fallback=False)
            errors = []
            conn.register_error_callback(errors.append)
            with pytest.raises(ConnectorError) as info:
                await conn.connect()
            await asyncio.sleep(0.2)  # a retry loop would knock again meanwhile
            return sim, conn, info.value, errors

    sim, conn, err, errors = run(main())
    text = str(err)
    assert "HTTP 401" in text and "FINNHUB_API_KEY" in text
    assert sim.rejected_handshakes == 1
    assert errors == [text]
    for shown in (text, repr(conn), caplog.text, conn.ws_url):
        assert wrong not in shown


def test_unknown_symbol_and_too_many_symbols_surface_as_errors(small_csv):
    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN, max_symbols=1,
                                          known_symbols=["AAPL", "MSFT"])
        async with sim:
            conn = connector(sim)
            errors = []
            conn.register_error_callback(errors.append)
            frames = await collect_all(sim, conn, ["AAPL", "NOPE", "MSFT"])
            return sim, conn, frames, errors

    sim, conn, frames, errors = run(main())
    assert errors == ["Unknown symbol: NOPE", "Subscribing to too many symbols"]
    assert conn.errors == errors and conn.stats.errors == 2
    raw = pd.concat(frames, ignore_index=True)
    assert set(raw["symbol"]) == {"AAPL"}  # the accepted subscription still streams
    assert len(raw) == (sim.tape.symbol.count("AAPL"))


def test_failed_callback_gets_same_rows_again_and_others_no_duplicates(small_csv):
    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN, batch_size=25)
        async with sim:
            conn = connector(sim, batch_linger=0.0)
            good, flaky, failures = [], [], []

            def flaky_cb(frame):
                if len(failures) < 2:
                    failures.append(frame["source_row"].tolist())
                    raise RuntimeError("landing table briefly unavailable")
                flaky.append(frame)

            conn.register_callback(good.append)
            conn.register_callback(flaky_cb)
            await collect_all(sim, conn, ["AAPL", "MSFT"])
            return conn, good, flaky, failures

    conn, good, flaky, failures = run(main())
    g = pd.concat(good, ignore_index=True)
    f = pd.concat(flaky, ignore_index=True)
    assert g["source_row"].is_unique  # the healthy callback never got a batch twice
    assert sorted(g["source_row"]) == sorted(f["source_row"])
    assert failures[0] == failures[1] == flaky[0]["source_row"].tolist()  # same ids again
    assert conn.stats.delivery_failures == 2 and conn.pending_rows == 0


def test_ws_url_from_environment_and_missing_key(monkeypatch, tmp_path, small_csv):
    monkeypatch.chdir(tmp_path)  # no keys.env here
    monkeypatch.delenv("FINNHUB_API_KEY", raising=False)
    with pytest.raises(ConnectorError, match="FINNHUB_API_KEY"):
        FinnhubConnector()

    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN)
        async with sim:
            monkeypatch.setenv("FINNHUB_API_KEY", TOKEN)
            monkeypatch.setenv("FINNHUB_WS_URL", sim.url)
            conn = FinnhubConnector(idle_timeout=None, rest_fallback=False)
            assert conn.ws_url == sim.url
            assert TOKEN not in repr(conn)
            frames = await collect_all(sim, conn, ["MSFT"])
            return frames

    frames = run(main())
    assert pd.concat(frames)["symbol"].eq("MSFT").all()


def test_simulate_cli_serves_the_protocol(small_csv):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "phase1_platform", "simulate", "--protocol", "finnhub",
         "--port", "0", "--csv", str(small_csv), "--speed", "0", "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    try:
        url = None
        for _ in range(5):
            line = proc.stdout.readline()
            if line.startswith("listening on "):
                url = line.split()[2]
                break
        assert url and url.startswith("ws://127.0.0.1:"), proc.stderr.read()

        async def main():
            conn = FinnhubConnector(TOKEN, ws_url=url, rest_url="http://127.0.0.1:9",
                                    rest_fallback=False, idle_timeout=None)
            frames = []
            conn.register_callback(frames.append)
            await conn.connect()
            await conn.subscribe(["AAPL", "MSFT"])
            while conn.rows_received < 600:
                await asyncio.sleep(0.02)
            await conn.disconnect()
            return frames

        frames = run(main(), timeout=60)
        assert len(pd.concat(frames)) == 600
    finally:
        proc.terminate()
        proc.wait(10)


def test_simulate_cli_bad_input_is_one_line(tmp_path):
    from phase1_platform.cli import main

    assert main(["simulate", "--csv", str(tmp_path / "missing.csv"), "--port", "0"]) == 2
    assert main(["simulate", "--csv", str(tmp_path / "x.csv"), "--speed", "-1"]) == 2


# ------------------------------------------------------------------ backoff, masking
def test_backoff_is_capped_jittered_and_resets_only_after_stable_period():
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 30.0, rng) for n in range(10)]
    for n, d in enumerate(delays):
        full = min(30.0, 2.0**n)
        assert full / 2 <= d <= full
    assert len(set(delays)) == len(delays)  # jittered
    b = Backoff(1.0, 30.0, stable_period=60.0, rng=random.Random(2))
    for _ in range(4):
        b.failed()
    b.up(at=100.0)
    b.down(at=110.0)  # flapping: 10 s up is not stable
    assert b.attempt == 4
    b.up(at=200.0)
    b.down(at=260.0)
    assert b.attempt == 0
    assert b.failed() <= 1.0


def test_mask_secret():
    url = "wss://ws.finnhub.io/?token=abc123&x=1"
    assert mask_secret(url) == "wss://ws.finnhub.io/?token=***&x=1"
    assert mask_secret("key abc123 leaked", "abc123") == "key *** leaked"
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


# ------------------------------------------------------------------ rate limiter
def test_rate_limiter_30_per_second_and_60_per_minute():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    async def main():
        stamps = []
        for _ in range(61):
            await limiter.acquire()
            stamps.append(clock.now)
        return stamps

    stamps = run(main())
    assert stamps[:30] == [0.0] * 30  # a burst of 30 goes at once
    assert stamps[30] == pytest.approx(1.0)  # the 31st waits for the 1 s window
    assert stamps[59] == pytest.approx(1.0)
    assert stamps[60] == pytest.approx(60.0)  # the 61st waits for the minute window
    for i in range(len(stamps)):
        window = [s for s in stamps[: i + 1] if s > stamps[i] - 1.0]
        assert len(window) <= 30
        assert len([s for s in stamps[: i + 1] if s > stamps[i] - 60.0]) <= 60
    fresh = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(30):
        fresh.record(now=500.0)
    assert fresh.delay(now=500.0) == pytest.approx(1.0)
    assert fresh.delay(now=501.0) == 0.0


# ------------------------------------------------------------------ REST fake server
class FakeFinnhubRest(QuietHandler):
    """Speaks the REST endpoints the connector uses; state on the server object."""

    def _json(self, status: int, body, headers=None) -> None:
        send(self, status, json.dumps(body).encode(), "application/json", headers)

    def do_GET(self):  # noqa: N802
        from urllib.parse import parse_qs, urlsplit

        srv = self.server
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        srv.requests.append((parts.path, q))
        if "token" in q:
            return self._json(400, {"error": "token must travel in the header"})
        if self.headers.get("X-Finnhub-Token") != TOKEN:
            return self._json(401, {"error": "Invalid API key"})
        if parts.path == "/api/v1/quote":
            if srv.throttle_quotes > 0:
                srv.throttle_quotes -= 1
                return self._json(429, {"error": "API limit reached"}, srv.retry_headers)
            if q.get("symbol") == "NOPE":
                return self._json(200, {"c": 0, "d": None, "dp": None, "h": 0, "l": 0,
                                        "o": 0, "pc": 0, "t": 0})
            return self._json(200, {"c": 171.25, "d": 1.2, "dp": 0.7, "h": 172.0, "l": 169.5,
                                    "o": 170.0, "pc": 170.05, "t": 1709582400})
        if parts.path == "/api/v1/stock/candle":
            return self._json(403, {"error": "You don't have access to this resource."})
        if parts.path == "/api/v1/stock/tick":
            skip, limit = int(q["skip"]), int(q["limit"])
            n = len(srv.tick_t) if q["date"] == "2024-03-04" else 0
            chunk = range(skip, min(n, skip + limit))
            return self._json(200, {
                "s": q["symbol"], "skip": skip, "count": len(chunk), "total": n,
                "t": [srv.tick_t[i] for i in chunk], "p": [100.0 + i for i in chunk],
                "v": [10 * (i + 1) for i in chunk], "x": ["Q" for _ in chunk],
                "c": [["1", "12"] for _ in chunk],
            })
        return self._json(404, {"error": "not found"})


@pytest.fixture
def rest_server():
    server = LocalHTTPServer(FakeFinnhubRest)
    server.requests = []
    server.throttle_quotes = 0
    server.retry_headers = {}
    base = pd.Timestamp("2024-03-04T14:30:00Z").value // 1_000_000
    server.tick_t = [base + 1000 * i for i in range(7)]
    server.base_url = f"{server.url}/api/v1"
    with server:
        yield server


def rest_client(server, clock=None) -> FinnhubRestClient:
    clock = clock or FakeClock()
    return FinnhubRestClient(TOKEN, server.base_url + "/",
                             limiter=RateLimiter(clock=clock, sleep=clock.sleep),
                             sleep=clock.sleep, rng=random.Random(3))


def test_rest_quote_with_429_then_success_honours_retry_after(rest_server):
    rest_server.throttle_quotes = 2
    rest_server.retry_headers = {"Retry-After": "7"}
    clock = FakeClock()

    async def main():
        client = rest_client(rest_server, clock)
        try:
            return await client.quote("aapl"), client
        finally:
            await client.aclose()

    quote, client = run(main())
    assert quote["symbol"] == "AAPL" and quote["c"] == 171.25
    assert clock.sleeps == [7.0, 7.0]
    assert client.throttled == 2 and client.calls == 3
    assert [p for p, _ in rest_server.requests] == ["/api/v1/quote"] * 3  # no double slash
    assert TOKEN not in repr(client)


def test_rest_429_without_retry_after_backs_off_then_gives_up(rest_server):
    rest_server.throttle_quotes = 100
    clock = FakeClock()

    async def main():
        client = rest_client(rest_server, clock)
        try:
            await client.quote("AAPL")
        finally:
            await client.aclose()

    with pytest.raises(ConnectorError, match="HTTP 429 after 6 attempts"):
        run(main())
    assert len(clock.sleeps) == 5 and all(s > 0 for s in clock.sleeps)


def test_rest_candle_403_and_unknown_symbol_and_bad_key(rest_server):
    async def main():
        client = rest_client(rest_server)
        bad = FinnhubRestClient("not-the-key", rest_server.base_url)
        try:
            with pytest.raises(ConnectorError, match="403.*premium"):
                await client.candles("AAPL", "1", pd.Timestamp("2024-03-04T14:30Z"),
                                     pd.Timestamp("2024-03-04T15:30Z"))
            with pytest.raises(ConnectorError, match="no quote for 'NOPE'"):
                await client.quote("NOPE")
            with pytest.raises(ConnectorError, match="401") as info:
                await bad.quote("AAPL")
            assert "not-the-key" not in str(info.value)
        finally:
            await client.aclose()
            await bad.aclose()

    run(main())


def test_historical_ticks_pages_and_empty_window(rest_server):
    async def main():
        conn = FinnhubConnector(TOKEN, ws_url="ws://127.0.0.1:9",
                                rest=rest_client(rest_server))
        conn.rest.limiter = RateLimiter()
        pages = []
        start = pd.Timestamp("2024-03-04T14:30:01Z")
        end = pd.Timestamp("2024-03-04T14:30:06Z")
        orig = conn.rest.tick_pages

        def small_pages(symbol, date, limit=3):
            return orig(symbol, date, limit=limit)

        conn.rest.tick_pages = small_pages
        async for page in conn.get_historical_ticks("AAPL", start, end):
            pages.append(page)
        empty = [p async for p in conn.get_historical_ticks(
            "AAPL", pd.Timestamp("2024-03-05T14:30Z"), pd.Timestamp("2024-03-05T15:30Z"))]
        await conn.disconnect()
        return pages, empty

    pages, empty = run(main())
    raw = pd.concat(pages, ignore_index=True)
    assert len(raw) == 5  # seconds 1..5 of the 7 ticks
    assert raw["source_row"].tolist() == [1, 2, 3, 4, 5]  # position in the vendor's day
    assert raw["conditions"].eq("1 12").all()
    assert empty == []
    skips = [q["skip"] for p, q in rest_server.requests if p.endswith("/stock/tick")]
    assert skips[:3] == ["0", "3", "6"]
    assert TickNormalizer().normalize(raw).rejected == 0


def test_latest_trade_time_is_the_end_of_the_quote_second(rest_server):
    """``LatestTrade`` from ``/quote``: ``t`` is in seconds, the newest trade lies in it."""
    async def main():
        conn = FinnhubConnector(TOKEN, ws_url="ws://127.0.0.1:9",
                                rest=rest_client(rest_server))
        try:
            return await conn.latest_trade_time("aapl"), await conn.latest_trade_time("NOPE")
        finally:
            await conn.disconnect()

    latest, none = run(main())
    assert latest == pd.Timestamp("2024-03-04T20:00:00.999999999Z")
    assert none is None  # Finnhub has no price of it (t = 0)
    assert [p for p, _ in rest_server.requests] == ["/api/v1/quote"] * 2


def test_rest_fallback_polls_quotes_while_stream_is_down(small_csv, rest_server):
    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN)
        await sim.start()
        conn = FinnhubConnector(TOKEN, ws_url=sim.url, rest_url=rest_server.base_url,
                                backoff_initial=0.05, backoff_max=0.1, fallback_interval=0.05,
                                rest_fallback=True, idle_timeout=None)
        quotes = []
        conn.register_quote_callback(quotes.append)
        await conn.connect()
        await conn.subscribe(["AAPL"])
        await sim.stop()  # the stream goes away and stays away
        while len(quotes) < 2:
            await asyncio.sleep(0.02)
        await conn.disconnect()
        return conn, quotes

    conn, quotes = run(main(), timeout=60)
    assert quotes[0]["symbol"] == "AAPL" and quotes[0]["c"] == 171.25
    assert conn.last_quotes["AAPL"]["c"] == 171.25
    assert conn.stats.quotes >= 2


def test_server_pings_are_counted_not_data(small_csv):
    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN, ping_interval=0.02)
        async with sim:
            conn, frames, _ = await connected(sim)
            while conn.stats.pings < 3:
                await asyncio.sleep(0.02)
            await conn.disconnect()
            return conn, frames

    conn, frames = run(main(), timeout=30)
    assert frames == [] and conn.quarantine.empty and conn.stats.connections == 1


# ------------------------------------------------------------------ defect 10: bad types
def test_non_numeric_trade_fields_are_quarantined_and_the_rest_of_the_frame_kept(small_csv):
    good = {"s": "AAPL", "p": 171.5, "t": 1709562600000, "v": 3, "c": ["1"]}
    bad = [
        ({**good, "p": True}, "trade p is not a number"),
        ({**good, "p": "171.5"}, "trade p is not a number"),
        ({**good, "v": None}, "trade v is missing"),
        ({**good, "v": [1]}, "trade v is not a number"),
        ({**good, "t": {"ms": 1}}, "trade t is not a number"),
        ({**good, "t": False}, "trade t is not a number"),
        ({**good, "s": 7}, "trade s is not a string"),
        ({**good, "s": None}, "trade s is missing"),
        ({**good, "c": "1 12"}, "trade c is not a list of codes"),
        ({**good, "c": [True]}, "trade c is not a list of codes"),
        ({**good, "t": 10**20}, "trade t is out of range"),
    ]

    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN)
        async with sim:
            conn, frames, quarantined = await connected(sim)
            await conn.wait_connected(10)
            items = [good] + [b for b, _ in bad] + [{**good, "p": 172.0}]
            await sim.inject_raw(json.dumps({"type": "trade", "data": items}))
            while conn.rows_received < len(items):
                await asyncio.sleep(0.02)
            await conn.disconnect()
            return conn, quarantined, frames

    conn, quarantined, frames = run(main())
    q = pd.concat(quarantined, ignore_index=True)
    assert list(q["reason"]) == [r for _, r in bad]
    assert q["source_row"].tolist() == list(range(1, 1 + len(bad)))
    assert json.loads(q["raw"].iloc[0])["p"] is True
    raw = pd.concat(frames, ignore_index=True)
    assert raw["price"].tolist() == [171.5, 172.0]  # never a price-1.0 trade
    assert raw["source_row"].tolist() == [0, len(bad) + 1]
    assert conn.quarantine["reason"].tolist() == [r for _, r in bad]
    assert TickNormalizer().normalize(raw).rejected == 0


# ------------------------------------------------------------------ defect 1: echoed keys
class EchoingFinnhubRest(QuietHandler):
    """Every request answered with ``server.status`` and a body quoting the token."""

    def do_GET(self):  # noqa: N802
        token = self.headers.get("X-Finnhub-Token")
        body = {"also": self.server.extra, "error": f"bad request from token {token}",
                "echo": {"X-Finnhub-Token": token, "url": self.path + f"?token={token}"}}
        send(self, self.server.status, json.dumps(body).encode(), "application/json")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 500])
def test_rest_error_bodies_echoing_secrets_never_show_them(status, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    alpaca_secret = "apca-secret-configured-elsewhere"
    monkeypatch.setenv("APCA_API_SECRET_KEY", alpaca_secret)
    server = LocalHTTPServer(EchoingFinnhubRest)
    server.status, server.extra = status, f"APCA secret {alpaca_secret}"
    clock = FakeClock()

    async def main():
        client = FinnhubRestClient(TOKEN, f"{server.url}/api/v1", max_retries=1,
                                   limiter=RateLimiter(clock=clock, sleep=clock.sleep),
                                   sleep=clock.sleep)
        try:
            with pytest.raises(ConnectorError) as info:
                await client.quote("AAPL")
            return info.value, client
        finally:
            await client.aclose()

    with server:
        err, client = run(main())
    assert f"HTTP {status}" in str(err)
    logging.getLogger("phase1.test").error("rest said %s", err.args[0])
    for text in (str(err), repr(err), repr(client), caplog.text):
        assert TOKEN not in text and alpaca_secret not in text, text


def test_server_error_messages_echoing_the_token_are_masked(small_csv, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        sim = FinnhubSimulator.from_files([small_csv], token=TOKEN)
        async with sim:
            conn = connector(sim)
            errors = []
            conn.register_error_callback(errors.append)
            await conn.connect()
            await conn.wait_connected(10)
            await sim.inject_raw(json.dumps({"type": "error", "msg": f"token {TOKEN} refused"}))
            await sim.inject_raw(json.dumps({"type": f"weird {TOKEN}"}))
            while conn.stats.errors < 1 or conn.stats.malformed < 1:
                await asyncio.sleep(0.02)
            await conn.disconnect()
            return conn, errors

    conn, errors = run(main())
    assert errors == ["token *** refused"]
    shown = [*errors, *conn.errors, caplog.text, repr(conn), conn.quarantine.to_csv()]
    for text in shown:
        assert TOKEN not in text


# ------------------------------------------------------------------ defect 11: stop connect
class SilentServer:
    """Accepts TCP connections and never answers (no WebSocket handshake)."""

    async def __aenter__(self):
        self.conns = []

        async def on_conn(reader, writer):
            self.conns.append(writer)
            await reader.read()  # until the client goes away

        self.server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        for w in self.conns:
            w.close()
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize("how", ["disconnect", "stop_event"])
def test_connect_ends_promptly_when_stopped_during_handshake(how):
    async def main():
        async with SilentServer() as srv:
            conn = FinnhubConnector(TOKEN, ws_url=srv.url, rest_url="http://127.0.0.1:9",
                                    rest_fallback=False, connect_timeout=30.0,
                                    open_timeout=30.0, idle_timeout=None)
            stop = asyncio.Event()
            task = asyncio.create_task(conn.connect(stop) if how == "stop_event"
                                       else conn.connect())
            while not srv.conns:
                await asyncio.sleep(0.01)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            if how == "stop_event":
                stop.set()
            else:
                await conn.disconnect()
            await asyncio.wait_for(task, 5.0)  # the 30 s connect timeout is not waited out
            waited = loop.time() - t0
            await conn.disconnect()
            return conn, waited

    conn, waited = run(main(), timeout=20)
    assert not conn.connected and waited < 5.0
