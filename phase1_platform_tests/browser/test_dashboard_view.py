"""The dashboard in Chromium against `phase1 serve` on the golden store: it loads with every
request on 127.0.0.1, its pickers draw exactly the bars the API returns, the panel shows
the partition's verdicts as the API reports them, and the layout holds on a narrow screen."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from .harness import DAY, NEXT_DAY, wait_until

TIMEFRAMES = ["1m", "5m", "15m", "1h", "1d"]


def epoch(timestamp: str) -> int:
    return int(dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def api_candles(served, symbol: str, timeframe: str, date: str) -> list[dict]:
    """What the chart must hold for a view, computed from the API on its own: the date's
    bars (daily bars: every day from the symbol's first date up to the date)."""
    start = date
    if timeframe == "1d":
        spans = {s["symbol"]: s for s in served.get("/v1/symbols")["symbols"]}
        start = spans[symbol]["first_date"]
    end = (dt.date.fromisoformat(date) + dt.timedelta(days=1)).isoformat()
    return [{"time": epoch(b["t"]), "open": float(b["o"]), "high": float(b["h"]),
             "low": float(b["l"]), "close": float(b["c"]), "volume": float(b["v"])}
            for b in served.all_bars(symbol, timeframe, start, end)]


def test_page_loads_with_no_request_leaving_loopback(dashboard, request_log, served):
    dashboard.open()
    assert dashboard.state()["page"] == "ready"
    assert len(dashboard.candles()) > 0
    paths = {urlsplit(u).path for u in request_log.requests}
    assert {"/", "/config.json", "/v1/symbols", "/v1/bars"} <= paths
    assert any(p.endswith("lightweight-charts.standalone.production.js") for p in paths)
    assert request_log.blocked == []
    assert request_log.outside_loopback() == []
    api_port = str(served.api_port)
    assert all(urlsplit(u).port == int(api_port) for u in request_log.websockets)


def test_pickers_list_what_the_api_holds(dashboard, served):
    dashboard.open()
    symbols = [s["symbol"] for s in served.get("/v1/symbols")["symbols"]]
    assert symbols == ["AAPL", "SPY"]
    assert dashboard.options("symbol-select") == symbols
    assert dashboard.options("timeframe-select") == TIMEFRAMES
    dashboard.pick_symbol("AAPL")
    assert dashboard.options("date-select") == [NEXT_DAY, DAY]  # newest first
    dashboard.pick_symbol("SPY")
    assert dashboard.options("date-select") == [DAY]


def test_every_symbol_and_timeframe_draws_the_api_bars(dashboard, served):
    dashboard.open(f"SPY/1m/{DAY}")
    for symbol in ("SPY", "AAPL"):
        if dashboard.state()["symbol"] != symbol:
            dashboard.pick_symbol(symbol)
        if dashboard.state()["date"] != DAY:
            dashboard.pick_date(DAY)
        for timeframe in TIMEFRAMES:
            if dashboard.state()["timeframe"] != timeframe:
                dashboard.pick_timeframe(timeframe)
            state = dashboard.state()
            assert (state["symbol"], state["timeframe"], state["date"]) == (symbol, timeframe, DAY)
            expected = api_candles(served, symbol, timeframe, DAY)
            assert len(expected) > 0, (symbol, timeframe)
            assert dashboard.candles() == expected, (symbol, timeframe)
            count = dashboard.testid("bar-count").inner_text()
            assert count == f"{len(expected)} bar{'s' if len(expected) != 1 else ''}"


def test_picking_a_date_draws_that_day(dashboard, served):
    dashboard.open(f"AAPL/5m/{DAY}")
    first = dashboard.candles()
    assert first == api_candles(served, "AAPL", "5m", DAY)
    dashboard.pick_date(NEXT_DAY)
    second = dashboard.candles()
    assert second == api_candles(served, "AAPL", "5m", NEXT_DAY)
    # the same ticks one day later: same shapes, times exactly one day apart
    assert [c["time"] - 86400 for c in second] == [c["time"] for c in first]
    assert dashboard.page.url.endswith(f"#/AAPL/5m/{NEXT_DAY}")
    # daily bars show every day up to the picked one
    dashboard.pick_timeframe("1d")
    assert len(dashboard.candles()) == 2
    dashboard.pick_date(DAY)
    assert len(dashboard.candles()) == 1
    # the previous/next buttons step through the dates with bars
    loads = dashboard.state()["loads"]
    dashboard.page.locator("#date-next").click()
    wait_until(dashboard.page, f"() => window.__dashboard.state().loads > {loads}")
    assert dashboard.state()["date"] == NEXT_DAY


def test_a_bookmarked_view_opens_as_it_was_and_a_bad_one_falls_back(dashboard):
    dashboard.open(f"AAPL/15m/{DAY}")
    state = dashboard.state()
    assert (state["symbol"], state["timeframe"], state["date"]) == ("AAPL", "15m", DAY)
    dashboard.open("NOPE/9m/1999-01-01")  # the first symbol, 1m, its newest date
    state = dashboard.state()
    assert (state["symbol"], state["timeframe"], state["date"]) == ("AAPL", "1m", NEXT_DAY)
    # editing the fragment of an open page moves the view too
    loads = state["loads"]
    dashboard.page.evaluate(f"() => {{ location.hash = '#/SPY/5m/{DAY}'; }}")
    wait_until(dashboard.page, f"() => window.__dashboard.state().loads > {loads}")
    state = dashboard.state()
    assert (state["symbol"], state["timeframe"], state["date"]) == ("SPY", "5m", DAY)


def panel_text(dashboard, testid: str) -> str:
    return dashboard.testid("parity-panel").get_by_test_id(testid).inner_text()


def shown_counts(dashboard, testid: str) -> dict[str, int]:
    """A panel table of (name, count) rows as a dict."""
    rows = dashboard.page.locator(f"[data-testid={testid}] tr").all_inner_texts()
    return {r.rsplit("\t", 1)[0].strip(): int(r.rsplit("\t", 1)[1].replace(",", ""))
            for r in rows[1:]}


def test_parity_panel_shows_the_matched_pct_the_api_reports(dashboard, served):
    dashboard.open(f"SPY/1m/{DAY}")
    dashboard.wait_panel(DAY, "SPY")
    body = served.get(f"/v1/partitions/{DAY}/SPY")
    parity = body["parity"]["timeframes"]["1m"]
    pct = parity["matched_pct"]
    assert parity["compared"] and isinstance(pct, float | int) and 0 < pct < 100, parity
    shown = panel_text(dashboard, "parity-match-pct")
    assert shown == f"{pct:g}% matched", (shown, pct)
    assert float(shown.split("%")[0]) == pct  # the API's number, not rounded
    # mismatches by category: every category and count of the API, and no other
    assert parity["mismatches_by_category"]
    assert shown_counts(dashboard, "mismatch-categories") == parity["mismatches_by_category"]
    verdict = panel_text(dashboard, "parity-section").upper()
    assert f"PARITY 1M\n{'PASS' if parity['passed'] else 'FAIL'}" in verdict
    assert dashboard.testid("stale-flag").count() == 0  # nothing changed since the run
    # another timeframe: its own verdict (LEAN has no 5m bars: nothing compared)
    dashboard.pick_timeframe("5m")
    dashboard.wait_panel(DAY, "SPY")
    assert body["parity"]["timeframes"]["5m"]["compared"] is False
    assert panel_text(dashboard, "parity-match-pct") == "not compared"


def test_panel_shows_quality_and_quarantine_and_not_judged(dashboard, served):
    dashboard.open(f"AAPL/1m/{DAY}")
    dashboard.wait_panel(DAY, "AAPL")
    body = served.get(f"/v1/partitions/{DAY}/AAPL")
    quarantined = body["counts"]["quarantined"]
    assert quarantined["total"] == 6
    assert shown_counts(dashboard, "quarantine-reasons") == quarantined["by_reason"]
    assert panel_text(dashboard, "quarantine-total") == "6"
    quality = body["quality"]
    assert quality["timeframes"]["1m"]["passed"] is True
    shown = panel_text(dashboard, "quality-section").upper()
    assert shown.startswith("QUALITY 1M\nPASS")
    ratio = quality["rejected_ratio"]["summary"]["rejected_ratio"]
    assert panel_text(dashboard, "rejected-ratio").upper() == f"{ratio} PASS"
    # AAPL has no vendor bars: parity judged but nothing compared
    assert panel_text(dashboard, "parity-match-pct") == "not compared"
    # the next day was never judged by the pipeline
    dashboard.pick_date(NEXT_DAY)
    dashboard.wait_panel(NEXT_DAY, "AAPL")
    assert served.get(f"/v1/partitions/{NEXT_DAY}/AAPL")["parity"] is None
    assert panel_text(dashboard, "parity-match-pct") == "not judged"
    assert "NOT JUDGED" in panel_text(dashboard, "quality-section").upper()


def test_legend_shows_the_bar_under_the_crosshair(dashboard):
    dashboard.open(f"SPY/1m/{DAY}")
    candles = dashboard.candles()
    target = candles[len(candles) // 2]
    x = dashboard.page.evaluate(f"() => window.__dashboard.coordinateOf({target['time']})")
    box = dashboard.testid("chart").bounding_box()
    dashboard.page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    legend = dashboard.testid("legend")
    clock = dt.datetime.fromtimestamp(target["time"], dt.UTC).astimezone(
        dt.timezone(dt.timedelta(hours=-4))).strftime("%H:%M")  # EDT on 2013-10-07
    wait_until(dashboard.page, f"() => document.querySelector('[data-field=time]')"
               f".textContent.includes('{clock}')", timeout=10, what=f"legend at {clock}")
    assert legend.locator("[data-field=o]").inner_text() == f"{target['open']:.2f}"
    assert legend.locator("[data-field=c]").inner_text() == f"{target['close']:.2f}"
    # UTC at the click of the zone switch
    dashboard.page.locator("#tz-toggle").click()
    utc = dt.datetime.fromtimestamp(target["time"], dt.UTC).strftime("%H:%M")
    dashboard.page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2 + 5)
    wait_until(dashboard.page, f"() => document.querySelector('[data-field=time]')"
               f".textContent.includes('{utc} UTC')", timeout=10, what=f"legend at {utc} UTC")


def test_narrow_screen_puts_the_panel_below_the_chart(dashboard):
    dashboard.page.set_viewport_size({"width": 600, "height": 900})
    dashboard.open(f"SPY/1m/{DAY}")
    chart = dashboard.testid("chart").bounding_box()
    panel = dashboard.testid("parity-panel").bounding_box()
    assert chart["width"] > 500 and chart["height"] > 300
    assert panel["y"] >= chart["y"] + chart["height"] - 1
    width = dashboard.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 600
