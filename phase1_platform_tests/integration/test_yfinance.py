"""YFinanceConnector (yfinance 1.7 over curl_cffi) against a real local HTTP server that
speaks Yahoo's protocol: the cookie + crumb dance, /v8/finance/chart/{SYM} with
meta.tradingPeriods, Yahoo's error bodies, 429 "Too Many Requests".

curl_cffi does not go through Python sockets, so HTTP-mocking libraries cannot see it;
the connector's session seam (every *.yahoo.com host rewritten to YAHOO_BASE_URL) sends
the real requests to this server instead. The fake records every host-rewritten request,
so the tests also prove nothing went anywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
import yfinance as yf

from phase1_platform.app.replay import replay
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.settings import load_settings
from phase1_platform.connectors.yfinance_source import YahooRewriteSession, YFinanceConnector
from phase1_platform.core.export import CanonicalExporter, to_canonical
from phase1_platform.core.parity import BarComparator

from ..support.http import HTTPFake, send

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "2013-10-07" / "AAPL.csv"
NY = "America/New_York"
DAY = "2013-10-07"
DAY_START = pd.Timestamp(f"{DAY}T00:00:00", tz=NY).tz_convert("UTC")
DAY_END = DAY_START + pd.Timedelta(days=1)
NOW = pd.Timestamp("2013-10-08T12:00:00Z")  # the connector's clock: the day after
CRUMB = "Xq7fake.Crumb"


def fixture_csv(tmp_path: Path) -> Path:
    if FIXTURE.exists():
        return FIXTURE
    rng = np.random.default_rng(11)
    base = pd.Timestamp(f"{DAY}T12:00:00Z").value
    ts = np.sort(base + rng.integers(0, 10 * 3600 * 10**9, 400))
    rows = ["timestamp,symbol,price,size"]
    for t in ts:
        rows.append(f"{pd.Timestamp(int(t), tz='UTC').isoformat()},AAPL,"
                    f"{480 + rng.integers(0, 900) / 100:.2f},{int(rng.integers(1, 5)) * 100}")
    path = tmp_path / "aapl_ticks.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _period(start: pd.Timestamp, end: pd.Timestamp) -> dict:
    off = int(start.tz_convert(NY).utcoffset().total_seconds())
    return {"timezone": "EDT" if off == -14400 else "EST", "start": int(start.timestamp()),
            "end": int(end.timestamp()), "gmtoffset": off}


class FakeYahoo(HTTPFake):
    """query1/query2.finance.yahoo.com, fc.yahoo.com and guce.yahoo.com on 127.0.0.1."""

    methods = ("GET", "POST")

    def __init__(self, bars: pd.DataFrame, now: pd.Timestamp = NOW):
        self.bars = to_canonical(bars)  # canonical frame: the bars Yahoo "has"
        self.now = now
        self.rate_limited = False
        self.requests: list[tuple[str, dict, str]] = []
        super().__init__()

    def send(self, h, status, body, ctype="application/json;charset=utf-8", headers=None):
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if not isinstance(body, str) else body.encode())
        send(h, status, data, ctype, headers)

    def handle(self, h):
        url = urlsplit(h.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append((url.path, q, h.headers.get("Cookie", "")))
        if self.rate_limited:
            return self.send(h, 429, "Too Many Requests\r\n", "text/plain")
        if url.path == "/":  # fc.yahoo.com: a 404 page that sets the A3 cookie
            return self.send(h, 404, "<html>not found</html>", "text/html",
                             {"Set-Cookie": "A3=d=AQABBFAKE&S=AQAAAFAKE; Max-Age=31557600; "
                                            "Path=/; SameSite=None; HttpOnly"})
        if url.path == "/v1/test/getcrumb":
            if "A3=" not in h.headers.get("Cookie", ""):
                return self.send(h, 401, {"finance": {"error": {"code": "Unauthorized"}}})
            return self.send(h, 200, CRUMB, "text/plain;charset=utf-8")
        if url.path == "/consent":
            return self.send(h, 200, "<html><body>no consent needed</body></html>", "text/html")
        if url.path.startswith("/v10/finance/quoteSummary/"):
            return self.send(h, 404, {"quoteSummary": {"result": None, "error": {
                "code": "Not Found", "description": "Quote not found for symbol"}}})
        if url.path.startswith("/v8/finance/chart/"):
            return self.chart(h, url.path.rsplit("/", 1)[1], q)
        return self.send(h, 404, {"error": "unknown path"})

    def error(self, h, status, code, description):
        return self.send(h, status, {"chart": {"result": None, "error": {
            "code": code, "description": description}}})

    def chart(self, h, symbol, q):
        interval = q.get("interval", "1d")
        sym_bars = self.bars[self.bars["symbol"] == symbol]
        if sym_bars.empty:
            return self.error(h, 404, "Not Found", "No data found, symbol may be delisted")
        if "range" in q:  # the timezone probe: range=1d
            p2 = int(self.now.timestamp())
            p1 = p2 - 86400
        else:
            p1, p2 = int(q["period1"]), int(q["period2"])
        if interval == "1m":
            if p2 - p1 > 8 * 86400:
                return self.error(h, 422, "Unprocessable Entity",
                                  f"1m data not available for startTime={p1} and endTime={p2}."
                                  " Only 8 days worth of 1m granularity data are allowed to be "
                                  "fetched per request.")
            if p1 < int((self.now - pd.Timedelta(days=30)).timestamp()):
                return self.error(h, 422, "Unprocessable Entity",
                                  f"1m data not available for startTime={p1} and endTime={p2}."
                                  " The requested range must be within the last 30 days.")
        prepost = q.get("includePrePost", "False").lower() == "true"
        tf = {"1m": "1m", "5m": "5m", "15m": "15m", "1d": "1d"}.get(interval)
        if tf is None:
            return self.error(h, 400, "Bad Request", f"Invalid interval {interval}")
        days = pd.date_range(pd.Timestamp(p1, unit="s", tz=NY).normalize(),
                             pd.Timestamp(p2, unit="s", tz=NY), freq="D")
        sessions = [(d + pd.Timedelta(hours=9, minutes=30), d + pd.Timedelta(hours=16),
                     d + pd.Timedelta(hours=4), d + pd.Timedelta(hours=20))
                    for d in days if d.weekday() < 5]
        sel = sym_bars[sym_bars["timeframe"] == tf]
        ts_s = sel["ts"].to_numpy() // 10**9
        if tf == "1d":
            # Yahoo stamps a daily bar at the session's open
            ts_s = ts_s + int(pd.Timedelta(hours=9, minutes=30).total_seconds())
        keep = (ts_s >= p1) & (ts_s < p2)
        sel, ts_s = sel[keep], ts_s[keep]
        regular = [_period(o.tz_convert("UTC"), c.tz_convert("UTC")) for o, c, _, _ in sessions]
        meta = {
            "currency": "USD", "symbol": symbol, "exchangeName": "NMS",
            "fullExchangeName": "NasdaqGS", "instrumentType": "EQUITY",
            "firstTradeDate": 345479400, "regularMarketTime": int(self.now.timestamp()),
            "hasPrePostMarketData": True, "gmtoffset": -14400, "timezone": "EDT",
            "exchangeTimezoneName": NY, "regularMarketPrice": 483.03,
            "chartPreviousClose": 483.03, "priceHint": 2,
            "currentTradingPeriod": {"pre": regular[-1] if regular else {},
                                     "regular": regular[-1] if regular else {},
                                     "post": regular[-1] if regular else {}},
            "dataGranularity": interval, "range": q.get("range", ""),
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd",
                            "max"],
        }
        if interval != "1d" and sessions:
            if prepost:
                meta["tradingPeriods"] = {
                    "pre": [[_period(p.tz_convert("UTC"), o.tz_convert("UTC"))]
                            for o, c, p, e in sessions],
                    "regular": [[r] for r in regular],
                    "post": [[_period(c.tz_convert("UTC"), e.tz_convert("UTC"))]
                             for o, c, p, e in sessions],
                }
            else:
                meta["tradingPeriods"] = [regular]
        result: dict = {"meta": meta}
        if len(sel):
            quote = {"open": sel["open"].tolist(), "high": sel["high"].tolist(),
                     "low": sel["low"].tolist(), "close": sel["close"].tolist(),
                     "volume": [int(v) for v in sel["volume"]]}
            result["timestamp"] = [int(t) for t in ts_s]
            result["indicators"] = {"quote": [quote]}
            if tf == "1d":
                result["indicators"]["adjclose"] = [{"adjclose": sel["close"].tolist()}]
        else:
            result["indicators"] = {"quote": [{}]}
        return self.send(h, 200, {"chart": {"result": [result], "error": None}})


@pytest.fixture()
def ref(tmp_path):
    return replay([fixture_csv(tmp_path)], "1m,5m,15m,1h,1d")


@pytest.fixture()
def fake(ref):
    with FakeYahoo(ref.bars) as server:
        yield server


def connector(fake: FakeYahoo, tmp_path, now=NOW) -> YFinanceConnector:
    settings = load_settings(env_file=None, YAHOO_BASE_URL=fake.url, INGESTION_MODE="live")
    return YFinanceConnector(settings=settings, cache_dir=str(tmp_path / "yfcache"),
                             now=lambda: now)


def expected(ref, tf: str, regular_only: bool = False) -> pd.DataFrame:
    exp = to_canonical(ref.bars)
    exp = exp[exp["timeframe"] == tf].copy()
    if regular_only:
        t = pd.to_datetime(exp["ts"], utc=True).dt.tz_convert(NY)
        minutes = t.dt.hour * 60 + t.dt.minute
        exp = exp[((minutes >= 570) & (minutes < 960)).to_numpy()]
    exp["trade_count"] = np.nan  # Yahoo has neither trade counts nor vwap
    exp["vwap"] = np.nan
    return exp.reset_index(drop=True)


def assert_same(got: pd.DataFrame, exp: pd.DataFrame) -> None:
    assert len(got) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), exp.reset_index(drop=True))
    assert CanonicalExporter(got).to_bytes() == CanonicalExporter(exp).to_bytes()


def test_daily_bar_through_yahoo_protocol(fake, ref, tmp_path):
    got = connector(fake, tmp_path).get_bars("AAPL", "1d", DAY_START, DAY_END)
    assert_same(got, expected(ref, "1d"))
    assert pd.Timestamp(int(got["ts"].iloc[0]), tz="UTC") == pd.Timestamp("2013-10-07T04:00Z")
    paths = [p for p, _, _ in fake.requests]
    assert "/v8/finance/chart/AAPL" in paths
    chart = [(q, c) for p, q, c in fake.requests if p == "/v8/finance/chart/AAPL"]
    # the real dance happened: the chart call carries the cookie and the crumb
    assert any(q.get("crumb") == CRUMB and "A3=" in c for q, c in chart)


def test_minute_bars_regular_hours_and_prepost(fake, ref, tmp_path):
    conn = connector(fake, tmp_path)
    regular = conn.get_bars("AAPL", "1m", DAY_START, DAY_END)
    assert_same(regular, expected(ref, "1m", regular_only=True))
    full = conn.get_bars("AAPL", "1m", DAY_START, DAY_END, prepost=True)
    assert_same(full, expected(ref, "1m"))
    assert len(full) > len(regular)
    for tf in ("5m", "15m"):
        assert_same(conn.get_bars("AAPL", tf, DAY_START, DAY_END, prepost=True),
                    expected(ref, tf))
    # parity against the fixture bars as they are (Yahoo has no trade_count, vwap)
    fixture = to_canonical(ref.bars)
    fixture = fixture[fixture["timeframe"] == "1m"]
    report = BarComparator().compare(full, fixture)
    assert report.is_parity and report.matched == len(fixture), report.to_text()



def test_long_minute_window_is_split_into_8_day_requests(fake, ref, tmp_path):
    conn = connector(fake, tmp_path, now=pd.Timestamp("2013-10-20T00:00Z"))
    start = pd.Timestamp("2013-09-25T00:00Z")
    got = conn.get_bars("AAPL", "1m", start, pd.Timestamp("2013-10-15T00:00Z"), prepost=True)
    assert_same(got, expected(ref, "1m"))
    spans = [int(q["period2"]) - int(q["period1"]) for p, q, _ in fake.requests
             if p == "/v8/finance/chart/AAPL" and q.get("interval") == "1m"]
    assert len(spans) == 3 and max(spans) <= 8 * 86400


def test_minute_bars_beyond_yahoo_window_are_a_clear_error(fake, tmp_path):
    conn = connector(fake, tmp_path, now=pd.Timestamp("2026-11-25T00:00Z"))
    with pytest.raises(ConnectorError, match="last 30 days"):
        conn.get_bars("AAPL", "1m", DAY_START, DAY_END)
    assert not [p for p, _, _ in fake.requests if p.startswith("/v8/")]  # refused locally


def test_yahoo_refusal_of_old_minutes_is_a_clear_error(ref, tmp_path):
    # the connector's clock says 2013, Yahoo's says 2026: Yahoo's own 422 reaches the user
    with FakeYahoo(ref.bars, now=pd.Timestamp("2026-11-25T00:00Z")) as server, \
            pytest.raises(ConnectorError, match="within the last 30 days") as err:
        connector(server, tmp_path).get_bars("AAPL", "1m", DAY_START, DAY_END)
    assert "\n" not in str(err.value)


def test_unknown_symbol_is_a_clear_error(fake, tmp_path):
    with pytest.raises(ConnectorError, match="ZZZZ") as err:
        connector(fake, tmp_path).get_bars("ZZZZ", "1d", DAY_START, DAY_END)
    assert err.value.__cause__ is None


def test_empty_window_is_a_clear_error(fake, tmp_path):
    weekend = pd.Timestamp("2013-10-05T04:00Z")
    with pytest.raises(ConnectorError, match="no 1d (bars|data) for AAPL"):
        connector(fake, tmp_path).get_bars("AAPL", "1d", weekend, weekend + pd.Timedelta(days=2))


def test_rate_limit_is_a_clear_error(fake, tmp_path):
    fake.rate_limited = True
    with pytest.raises(ConnectorError, match="rate limit"):
        connector(fake, tmp_path).get_bars("AAPL", "1d", DAY_START, DAY_END)


def test_unsupported_timeframe_and_naive_time(fake, tmp_path):
    conn = connector(fake, tmp_path)
    with pytest.raises(ConnectorError, match="1h"):
        conn.get_bars("AAPL", "1h", DAY_START, DAY_END)
    with pytest.raises(ConnectorError, match="without time zone"):
        conn.get_bars("AAPL", "1d", "2013-10-07", DAY_END)


def test_unreachable_host_is_a_clear_error(tmp_path):
    conn = YFinanceConnector(base_url="http://127.0.0.1:9", cache_dir=str(tmp_path / "c"),
                             now=lambda: NOW)
    with pytest.raises(ConnectorError, match="127.0.0.1:9"):
        conn.get_bars("AAPL", "1d", DAY_START, DAY_END)


def test_session_rewrites_only_yahoo_hosts():
    s = YahooRewriteSession("http://127.0.0.1:8123/prefix")
    assert s.rewrite("https://query2.finance.yahoo.com/v8/finance/chart/AAPL?interval=1d") == \
        "http://127.0.0.1:8123/prefix/v8/finance/chart/AAPL?interval=1d"
    assert s.rewrite("https://fc.yahoo.com") == "http://127.0.0.1:8123/prefix"
    assert s.rewrite("https://example.org/x") == "https://example.org/x"
    with pytest.raises(ConnectorError, match="YAHOO_BASE_URL"):
        YahooRewriteSession("127.0.0.1:8123")


def test_hide_exceptions_restored(fake, tmp_path):
    before = yf.config.debug.hide_exceptions
    with pytest.raises(ConnectorError):
        connector(fake, tmp_path).get_bars("ZZZZ", "1d", DAY_START, DAY_END)
    assert yf.config.debug.hide_exceptions == before
