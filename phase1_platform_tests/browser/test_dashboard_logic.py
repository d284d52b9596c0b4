"""The dashboard's own logic, run in Chromium on its real modules (imported from the served
page): the revision book that keeps each bar's latest state, the stream client's frame
handling and backoff, the chart's append / replace / insert of live bars, and the panel's
reading of a partition document."""

from __future__ import annotations

import json

import pytest

from .harness import wait_until


@pytest.fixture
def js(page, dashboard_without_api):
    """Evaluate an async JS function body on the dashboard page (served alone: these are
    its modules, not the API) with its modules imported as ``live``, ``chart``, ``panel``,
    ``time``, ``api``."""
    url, _ = dashboard_without_api
    page.goto(url + "/")
    wait_until(page, "() => document.body.dataset.state === 'error'", timeout=20)

    def run(body: str):
        return page.evaluate(
            "async () => { const live = await import('/static/js/live.js');"
            " const chart = await import('/static/js/chart.js');"
            " const panel = await import('/static/js/panel.js');"
            " const time = await import('/static/js/time.js');"
            " const api = await import('/static/js/api.js');"
            f" {body} }}")

    return run


def bar(timestamp: str, revision: int, close: str = "10.5", **extra) -> dict:
    return {"type": "bar", "symbol": "SPY", "timeframe": "1m", "timestamp": timestamp,
            "open": "10", "high": "11", "low": "9", "close": close, "volume": "100",
            "trade_count": 3, "vwap": "10.25", "revision": revision,
            "restated": revision > 1, **extra}


def test_revision_book_keeps_the_highest_revision_per_bar(js):
    t1, t2 = "2013-10-07T13:30:00Z", "2013-10-07T13:31:00Z"
    messages = [bar(t1, 1), bar(t1, 3), bar(t1, 2), bar(t1, 3), bar(t2, 1), bar(t1, 4),
                {**bar(t1, 1), "timeframe": "5m"}, {**bar(t1, 2), "symbol": "AAPL"}]
    verdicts = js("const book = new live.RevisionBook();"
                  f" const out = {json.dumps(messages)}.map(m => book.accept(m));"
                  f" return [out, book.revisionOf('SPY', '1m', '{t1}'), book.size];")
    accepted, latest, size = verdicts
    assert accepted == [True, True, False, False, True, True, True, True]
    assert latest == 4
    assert size == 4


def test_only_well_formed_bar_frames_reach_the_chart(js):
    good = bar("2013-10-07T13:30:00Z", 1)
    bad = [{**good, "type": "quote"}, {k: v for k, v in good.items() if k != "close"},
           {**good, "close": "NaN"}, {**good, "high": "abc"},
           {**good, "timestamp": "yesterday"}, None, "text", {"type": "bar"}]
    result = js(f"const frames = {json.dumps([good, *bad])};"
                " return frames.map(f => live.isBarMessage(f));")
    assert result == [True] + [False] * len(bad)


def test_stream_client_frames_status_and_resync(js):
    """Junk frames are ignored; the first `subscribed` is a connect, a later one (after a
    reconnect) asks for a resync, and so does the relay's upstream coming back; `dropped`
    is reported; attempts reset on subscribe."""
    frame = json.dumps(bar("2013-10-07T13:30:00Z", 2))
    out = js("""
      const events = [];
      const s = new live.BarStream('ws://127.0.0.1:9/v1/stream/bars', ['SPY'], {
        onBar: (m) => events.push(['bar', m.revision]),
        onStatus: (st) => events.push(['status', st]),
        onResync: () => events.push(['resync']),
        onDropped: (n) => events.push(['dropped', n]),
      });
      const send = (m) => s.receive(JSON.stringify(m));
      s.attempt = 3;
      s.receive('not json');
      send({type: 'subscribed', symbols: ['SPY'], schema: 1});
      const attemptAfter = s.attempt;
      send({type: 'bar', symbol: 'SPY'});
      send(FRAME);
      send({type: 'dropped', count: 7});
      send({type: 'subscribed', symbols: ['SPY'], schema: 1});
      events.push('-- relay');
      send({type: 'status', stream: 'disconnected'});
      send({type: 'status', stream: 'connected'});
      send({type: 'status', stream: 'connected'});
      send({type: 'subscribed', symbols: ['SPY'], schema: 1, stream: 'not configured'});
      return {events, attemptAfter, url: s.endpoint()};
    """.replace("FRAME", frame))
    assert out["attemptAfter"] == 0
    assert out["url"] == "ws://127.0.0.1:9/v1/stream/bars?symbols=SPY"
    assert out["events"] == [
        ["status", "connected"], ["bar", 2], ["dropped", 7], ["status", "connected"],
        ["resync"], "-- relay", ["status", "waiting"], ["status", "connected"], ["resync"],
        ["status", "connected"], ["status", "not configured"], ["resync"]]


def test_backoff_doubles_to_a_cap_with_bounded_jitter(js):
    delays = js("return [0,1,2,3,4,5,10,50].map(a => [live.backoffDelay(a, 500, 10000, () => 0),"
                " live.backoffDelay(a, 500, 10000, () => 0.999999)]);")
    lows = [lo for lo, _ in delays]
    highs = [hi for _, hi in delays]
    assert lows == [400, 800, 1600, 3200, 6400, 8000, 8000, 8000]
    assert highs == [600, 1200, 2400, 4800, 9600, 12000, 12000, 12000]


def test_chart_appends_replaces_and_inserts_live_bars(js):
    out = js("""
      const div = document.createElement('div');
      div.style.cssText = 'position:absolute;left:0;top:0;width:600px;height:300px';
      const legend = document.getElementById('legend').cloneNode(true);
      document.body.append(div);
      const c = new chart.BarChart(div, legend, {timeZone: 'UTC'});
      const b = (t, close) => ({time: t, open: 10, high: Math.max(11, close), low: 9, close,
                                volume: 100, trades: 1, vwap: 10});
      c.setBars([b(180, 10), b(60, 10), b(120, 10)], {symbol: 'SPY', timeframe: '1m',
                                                     precision: 2});
      const steps = [];
      const look = () => c.data().map(x => [x.time, x.close]);
      steps.push([c.applyLive(b(240, 12)), look()]);   // newer than the last: appended
      steps.push([c.applyLive(b(240, 13)), look()]);   // the last bar restated
      steps.push([c.applyLive(b(120, 8)), look()]);    // an older bar restated in place
      steps.push([c.applyLive(b(150, 9)), look()]);    // a new bar between two: inserted
      const text = legend.querySelector('[data-field=c]').textContent;
      c.chart.remove();
      div.remove();
      return {steps, text};
    """)
    steps = out["steps"]
    assert [s[0] for s in steps] == ["appended", "replaced", "replaced", "inserted"]
    assert steps[0][1] == [[60, 10], [120, 10], [180, 10], [240, 12]]
    assert steps[1][1] == [[60, 10], [120, 10], [180, 10], [240, 13]]
    assert steps[2][1] == [[60, 10], [120, 8], [180, 10], [240, 13]]
    assert steps[3][1] == [[60, 10], [120, 8], [150, 9], [180, 10], [240, 13]]
    assert out["text"] == "13.00"  # the legend follows the latest bar


def test_time_helpers_cross_month_and_dst(js):
    out = js("return [time.nextDay('2013-10-31'), time.nextDay('2013-12-31'),"
             " time.nextDay('2016-02-28'), time.dateIn(time.toSeconds('2013-11-04T04:30:00Z'),"
             " time.EXCHANGE_TZ), time.clockIn(time.toSeconds('2013-11-04T14:30:00Z'),"
             " time.EXCHANGE_TZ), time.clockIn(time.toSeconds('2013-10-07T13:30:00Z'),"
             " time.EXCHANGE_TZ)];")
    assert out == ["2013-11-01", "2014-01-01", "2016-02-29", "2013-11-03", "09:30", "09:30"]


def test_matched_pct_is_shown_as_the_api_wrote_it(js):
    out = js("return [panel.matchedText(81.25), panel.matchedText(100), panel.matchedText(0),"
             " panel.matchedText('96.875'), panel.matchedText(33.3333), panel.matchedText(null)];")
    assert out == ["81.25%", "100%", "0%", "96.875%", "33.3333%", None]


def test_api_address_on_every_interface_becomes_the_page_host(js):
    out = js("return [api.reachable('http://0.0.0.0:8000', 'box.lan'),"
             " api.reachable('ws://[::]:8000/v1/stream/bars', '127.0.0.1'),"
             " api.reachable('http://127.0.0.1:8000/', 'box.lan')];")
    assert out == ["http://box.lan:8000", "ws://127.0.0.1:8000/v1/stream/bars",
                   "http://127.0.0.1:8000"]


def test_partition_document_is_read_into_the_panel_view(js):
    """The API's PartitionInfo shape (api/models.py) as the panel reads it."""
    verdict = {"status": "stale", "passed": True, "stale": True,
               "evaluated_at": "2026-12-02T00:00:00.000000Z", "summary": {"bars": 32}}
    doc = {
        "partition": "2013-10-07|SPY", "date": "2013-10-07", "symbol": "SPY",
        "counts": {"ticks": 44565, "bars": {"5m": 7, "1m": 32},
                   "quarantined": {"total": 3, "by_reason": {"negative size": 1,
                                                             "price <= 0": 2}}},
        "rule_set": "default", "export": {"sha256": "sha256:ab", "timeframes": [], "bars": 39},
        "parity": {"status": "stale", "compared": True, "bars_compared": 32,
                   "bars_matched": 26, "matched_pct": 81.25, "mismatches_by_category": {},
                   "timeframes": {
                       "5m": {**verdict, "compared": False, "bars_compared": 0,
                              "bars_matched": 0, "matched_pct": None, "unexplained_pct": None,
                              "mismatches_by_category": {}, "note": "no 5m reference"},
                       "1m": {**verdict, "compared": True, "bars_compared": 32,
                              "bars_matched": 26, "matched_pct": 81.25,
                              "unexplained_pct": 3.125,
                              "mismatches_by_category": {"a": 1, "b": 5}}}},
        "quality": {"status": "passed", "timeframes": {"1m": {**verdict, "failed_rules": []}},
                    "rejected_ratio": {**verdict, "stale": False, "status": "passed",
                                       "summary": {"rejected_ratio": 0.0}}},
    }
    view = js(f"return panel.partitionView({json.dumps(doc)});")
    assert view["key"] == "2013-10-07|SPY"
    assert (view["ticks"], view["quarantineTotal"]) == (44565, 3)
    assert view["reasons"] == [["price <= 0", 2], ["negative size", 1]]
    assert view["bars"] == [{"timeframe": "1m", "n": 32}, {"timeframe": "5m", "n": 7}]
    assert [v["timeframe"] for v in view["parity"]] == ["1m", "5m"]  # by duration
    one = view["parity"][0]
    assert (one["matchedPct"], one["stale"], one["passed"]) == (81.25, True, True)
    assert one["categories"] == [["b", 5], ["a", 1]]
    assert view["parity"][1]["compared"] is False
    assert view["quality"][0]["timeframe"] == "1m"
    assert view["rejected"]["passed"] is True and view["rejected"]["stale"] is False
    empty = js("return panel.partitionView({partition: 'x', counts: {ticks: 0, bars: {},"
               " quarantined: {total: 0, by_reason: {}}}, parity: null, quality: null});")
    assert (empty["parity"], empty["quality"], empty["rejected"]) == ([], [], None)
