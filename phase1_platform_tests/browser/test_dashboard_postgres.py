"""The dashboard on a PostgreSQL store: the same fixture days replayed into a schema of
their own, served by `phase1 serve`, drawn exactly as the API returns them."""

from __future__ import annotations

import pytest

from phase1_platform_tests.support.stores import PgSchema, require_postgres

from .harness import AAPL_TICKS, DAY, SPY_TICKS, DashboardPage, ServeProcess, run_phase1

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server(chromium, tmp_path):
    require_postgres()
    schema = PgSchema()
    server = None
    try:
        run_phase1(["replay", "--csv", str(SPY_TICKS), "--csv", str(AAPL_TICKS),
                    "--output", str(tmp_path / "replay.csv"), "--database-url", schema.url])
        server = ServeProcess(schema.url, tmp_path / "serve.log", cwd=tmp_path).wait_ready()
        yield server
    finally:
        if server is not None:
            server.stop()
        schema.drop()


def test_postgres_store_draws_the_api_bars(page, pg_server):
    dashboard = DashboardPage(page, pg_server).open(f"SPY/1m/{DAY}")
    for symbol, timeframe in (("SPY", "1m"), ("SPY", "5m"), ("AAPL", "1m"), ("AAPL", "1h")):
        if dashboard.state()["symbol"] != symbol:
            dashboard.pick_symbol(symbol)
        if dashboard.state()["timeframe"] != timeframe:
            dashboard.pick_timeframe(timeframe)
        bars = pg_server.all_bars(symbol, timeframe, DAY, "2013-10-08")
        candles = dashboard.candles()
        assert len(candles) == len(bars) > 0, (symbol, timeframe)
        assert [c["close"] for c in candles] == [float(b["c"]) for b in bars]
    dashboard.wait_panel(DAY, "AAPL")
    body = pg_server.get(f"/v1/partitions/{DAY}/AAPL")
    assert body["counts"]["ticks"] > 0
    total = body["counts"]["quarantined"]["total"]
    assert dashboard.testid("quarantine-total").inner_text() == str(total)
    # replay records no verdicts: the panel says so rather than inventing one
    assert body["parity"] is None
    assert dashboard.testid("parity-match-pct").inner_text() == "not judged"
