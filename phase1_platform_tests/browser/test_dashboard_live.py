"""Live bars end to end: the Finnhub simulator -> `phase1 ingest` (its broadcast) ->
`phase1 serve --stream-url` -> the dashboard in Chromium.

The simulator's tape holds two SPY trades at 12:00:05 and 12:00:35 New York time on the
fixture day (a minute the stored day has no bar for), behind a trade of another symbol that
only starts the market clock, so the page is connected before they play. The first trade
makes a new 1m bar: its candle appears between the morning and the closing bars. The
second restates that bar (revision 2): its candle is replaced in place, the candle count
unchanged. Then the partition is rebuilt from its stored ticks (the ingest service landed
the live ones), which changes the bars under the pipeline's verdicts: the panel, which
re-reads the partition by itself, flags them stale.
"""

from __future__ import annotations

import time

from .harness import (
    DAY,
    DashboardPage,
    Phase1Process,
    ServeProcess,
    clean_env,
    copy_sqlite,
    free_port,
    wait_until,
)

SPEED = 6  # market seconds per wall second: the SPY trades play ~21 s and ~26 s in
LIVE_TAPE = """timestamp,symbol,price,size,exchange
2013-10-07T15:58:00Z,QQQ,80.00,100,Q
2013-10-07T16:00:05Z,SPY,167.50,300,P
2013-10-07T16:00:35Z,SPY,167.95,200,P
"""
FIRST_TRADE_AFTER_S = (125 / SPEED) - 3  # the relay must be connected by then
BAR_TS = "2013-10-07T16:00:00Z"
NEXT_DAY = "2013-10-08"
BAR_TIME = 1381161600  # BAR_TS in epoch seconds


def start_simulator(tmp_path) -> tuple[Phase1Process, int]:
    tape = tmp_path / "live.csv"
    tape.write_text(LIVE_TAPE)
    port = free_port()
    sim = Phase1Process(["simulate", "--csv", str(tape), "--speed", str(SPEED),
                         "--port", str(port)], tmp_path / "simulate.log")
    end = time.monotonic() + 60
    while "listening on" not in sim.log():
        sim.require_alive("phase1 simulate")
        if time.monotonic() > end:
            raise AssertionError(f"the simulator did not listen:\n{sim.log()}")
        time.sleep(0.2)
    return sim, port


def live_candle(dashboard: DashboardPage) -> dict | None:
    return next((c for c in dashboard.candles() if c["time"] == BAR_TIME), None)


def test_a_live_bar_appears_and_its_restatement_replaces_it(page, filled_store, tmp_path):
    url = copy_sqlite(filled_store, tmp_path / "store.sqlite")
    sim, sim_port = start_simulator(tmp_path)
    broadcast_port = free_port()
    server = ingest = None
    try:
        server = ServeProcess(url, tmp_path / "serve.log",
                              stream_url=f"ws://127.0.0.1:{broadcast_port}/ws/bars").wait_ready()
        dashboard = DashboardPage(page, server).open(f"SPY/1m/{DAY}")
        before = dashboard.candles()
        assert before and all(c["time"] != BAR_TIME for c in before)
        ingest = Phase1Process(
            ["ingest", "--mode", "live", "--symbols", "SPY", "--database-url", url,
             "--broadcast-port", str(broadcast_port), "--flush-interval", "0.1"],
            tmp_path / "ingest.log",
            env=clean_env(FINNHUB_WS_URL=f"ws://127.0.0.1:{sim_port}",
                          FINNHUB_API_KEY="simulator-key", INGESTION_MODE="live"))

        # the market clock starts when the ingest subscribes; the ingest's broadcast is up
        # by then, and the API relays it before the first SPY trade plays
        deadline = time.monotonic() + 120
        while "ingest_started" not in ingest.log():
            ingest.require_alive("phase1 ingest")
            assert time.monotonic() < deadline, f"the ingest did not start:\n{ingest.log()}"
            time.sleep(0.1)
        started = time.monotonic()
        while server.get("/v1/health")["stream"] != "connected":
            ingest.require_alive("phase1 ingest")
            assert time.monotonic() - started < FIRST_TRADE_AFTER_S, (
                f"the API did not relay the broadcast in {FIRST_TRADE_AFTER_S:.0f} s:\n"
                f"{ingest.log()}\n{server.log()}")
            time.sleep(0.2)
        wait_until(page, "() => window.__dashboard.state().stream === 'connected'",
                   timeout=10, what="the page's stream status")
        assert live_candle(dashboard) is None  # nothing played yet

        # the first trade: a new candle, inserted in time order
        wait_until(page, f"() => window.__dashboard.candles().some(c => c.time === {BAR_TIME})",
                   timeout=90, what="the live bar's candle")
        ingest.require_alive("phase1 ingest")
        after_first = dashboard.candles()
        assert len(after_first) == len(before) + 1
        assert [c["time"] for c in after_first] == sorted(c["time"] for c in after_first)

        # the second trade restates the bar: same time, new values, count unchanged
        wait_until(page, f"() => window.__dashboard.candles().some(c => c.time === {BAR_TIME}"
                   " && c.close === 167.95)", timeout=60, what="the restated candle")
        restated = live_candle(dashboard)
        assert restated == {"time": BAR_TIME, "open": 167.5, "high": 167.95, "low": 167.5,
                            "close": 167.95, "volume": 500}
        final = dashboard.candles()
        assert len(final) == len(before) + 1
        # the day's other candles are as the store had them
        assert [c for c in final if c["time"] != BAR_TIME] == before

        log = [e for e in dashboard.stream_log()
               if e["timeframe"] == "1m" and e["timestamp"] == BAR_TS]
        assert [e["revision"] for e in log] == [1, 2], log
        assert [e["restated"] for e in log] == [False, True]
        assert [e["applied"] for e in log] == ["inserted", "replaced"]

        status = dashboard.testid("stream-status").inner_text()
        assert "stream: connected" in status and "last update" in status

        # the ingest service stores the bars it streams (the live path): the partition's
        # bars changed under the pipeline's verdicts, and the panel says so once it reloads
        assert server.get(f"/v1/partitions/{DAY}/SPY")["parity"]["status"] == "stale"
        page.reload()
        wait_until(page, "() => document.querySelectorAll('[data-testid=stale-flag]').length > 0",
                   timeout=30, what="a stale flag on the panel")
        # the bar the live path stored is the candle the stream drew
        stored = [b for b in server.all_bars("SPY", "1m", DAY, NEXT_DAY) if b["t"] == BAR_TS]
        assert len(stored) == 1
        assert [float(stored[0][k]) for k in "ohlcv"] == [167.5, 167.95, 167.5, 167.95, 500]
    except AssertionError as exc:
        logs = "\n".join(f"--- {p.log_path.name}\n{p.log()}" for p in (sim, ingest, server)
                         if p is not None)
        raise AssertionError(f"{exc}\n{logs}") from None
    finally:
        page.goto("about:blank")  # no reconnect attempts while the servers stop
        for proc in (ingest, server, sim):
            if proc is not None:
                proc.stop()
