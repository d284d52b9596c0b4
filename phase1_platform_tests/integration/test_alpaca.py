"""AlpacaConnector (alpaca-py SDK) against a real local HTTP server speaking Alpaca's
market-data v2 JSON: trades with pagination, latest trade, bars, auth, rate limits.

The fake serves the trades of fixtures/2013-10-07/AAPL.csv the way Alpaca would: only
rows a vendor could deliver (zone-qualified time, price > 0, size >= 0), time-ordered,
nanosecond RFC 3339 strings, every trade with an id (x, z, i); the duplicated row of
the fixture is served twice, as a vendor resend would be.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from phase1_platform.app.replay import replay
from phase1_platform.connectors.alpaca import AlpacaConnector, reset_wait
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.protocols import LatestTrade
from phase1_platform.connectors.settings import load_settings
from phase1_platform.core import BarEngine, TickNormalizer, get_rules
from phase1_platform.core.export import CanonicalExporter, to_canonical
from phase1_platform.core.parity import BarComparator

from ..support.http import HTTPFake, send

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "2013-10-07" / "AAPL.csv"
KEY, SECRET = "PKTESTKEY0000000001", "s3cr3t-alpaca-secret-value"
DAY_START = pd.Timestamp("2013-10-07T00:00:00-04:00").tz_convert("UTC")
DAY_END = pd.Timestamp("2013-10-08T00:00:00-04:00").tz_convert("UTC")
TIMEFRAMES = "1m,5m,15m,1h,1d"
ALPACA_TF = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "1h": "1Hour", "1d": "1Day"}


def rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano (what Alpaca prints): trailing zeros of the fraction removed."""
    sec, frac = divmod(int(ns), 1_000_000_000)
    text = pd.Timestamp(sec, unit="s").strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def parse_ns(text: str) -> int:
    return pd.Timestamp(text).tz_convert("UTC").value


def fixture_csv(tmp_path: Path) -> Path:
    if FIXTURE.exists():
        return FIXTURE
    # fallback (fixture not yet shipped): a small day of our own
    rng = np.random.default_rng(7)
    base = pd.Timestamp("2013-10-07T13:30:00Z").value
    ts = np.sort(base + rng.integers(0, 6 * 3600 * 10**9, 300))
    rows = ["timestamp,symbol,price,size,exchange,conditions,trade_id,sequence"]
    for k, t in enumerate(ts):
        rows.append(f"{rfc3339_nano(t)},AAPL,{480 + rng.integers(0, 900) / 100:.2f},"
                    f"{int(rng.integers(1, 5)) * 100},Q,@,{70000 + k},{k}")
    path = tmp_path / "aapl_ticks.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def vendor_trades(csv: Path) -> list[dict]:
    """The CSV's deliverable rows as Alpaca trade objects, in (time, sequence, file) order."""
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    text = raw["timestamp"].str.strip()
    has_zone = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    ts = pd.to_datetime(text.where(has_zone), utc=True, format="ISO8601", errors="coerce")
    price = pd.to_numeric(raw["price"], errors="coerce")
    size = pd.to_numeric(raw["size"], errors="coerce")
    ok = ts.notna() & (price > 0) & (size >= 0)
    seq = pd.to_numeric(raw.get("sequence", pd.Series([""] * len(raw))), errors="coerce")
    frame = pd.DataFrame({"ns": ts.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]")
                          .view("int64"), "seq": seq.fillna(-1), "pos": np.arange(len(raw))})
    frame = frame[ok.to_numpy()].sort_values(["ns", "seq", "pos"], kind="stable")
    out = []
    for ns, pos in zip(frame["ns"], frame["pos"], strict=True):
        r = raw.iloc[pos]
        tid = r.get("trade_id", "")
        conds = r.get("conditions", "").split()
        out.append({
            "t": rfc3339_nano(ns), "x": r.get("exchange", "") or "D", "p": float(r["price"]),
            "s": int(float(r["size"])) if float(r["size"]).is_integer() else float(r["size"]),
            "c": conds, "i": int(tid) if tid.isdigit() else 9_000_000 + int(pos), "z": "C",
        })
    return out


def vendor_bars(bars: pd.DataFrame) -> dict[tuple[str, str], list[dict]]:
    canon = to_canonical(bars)
    out: dict[tuple[str, str], list[dict]] = {}
    for tf, alpaca_tf in ALPACA_TF.items():
        sel = canon[canon["timeframe"] == tf]
        for sym in sel["symbol"].unique():
            rows = sel[sel["symbol"] == sym]
            out[(sym, alpaca_tf)] = [
                {"t": rfc3339_nano(r.ts), "o": r.open, "h": r.high, "l": r.low, "c": r.close,
                 "v": int(r.volume) if float(r.volume).is_integer() else r.volume,
                 "n": int(r.trade_count), "vw": r.vwap}
                for r in rows.itertuples()
            ]
    return out


class FakeAlpaca(HTTPFake):
    """Alpaca data API v2 on 127.0.0.1 (threaded http.server)."""

    def __init__(self, trades: dict[str, list[dict]], bars=None, max_page=10_000,
                 sip_allowed=True):
        self.trades = trades
        self.bars = bars or {}
        self.max_page = max_page
        self.sip_allowed = sip_allowed
        self.fail_429 = 0
        self.reset_in = 30
        self.now_ns: int | None = None  # latest-trade endpoint sees trades up to this
        self.requests: list[tuple[str, dict]] = []
        super().__init__()

    # -- protocol ------------------------------------------------------------------

    def send(self, h, status: int, body: dict, extra: dict | None = None):
        headers = {
            "X-RateLimit-Limit": "200",
            "X-RateLimit-Remaining": "0" if status == 429 else "199",
            "X-RateLimit-Reset": str(int(pd.Timestamp.now("UTC").timestamp()) + 60),
            **(extra or {}),
        }
        send(h, status, json.dumps(body).encode(), "application/json; charset=UTF-8", headers)

    def handle(self, h):
        url = urlsplit(h.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append((url.path, q))
        if "APCA-API-KEY-ID" not in h.headers:
            return self.send(h, 401, {"message": "unauthorized."})
        if h.headers["APCA-API-KEY-ID"] != KEY or h.headers["APCA-API-SECRET-KEY"] != SECRET:
            return self.send(h, 403, {"message": "forbidden"})
        if self.fail_429 > 0:
            self.fail_429 -= 1
            reset = int(pd.Timestamp.now("UTC").timestamp()) + self.reset_in
            return self.send(h, 429, {"message": "too many requests."},
                             {"X-RateLimit-Reset": str(reset)})
        feed = q.get("feed", "sip")
        if feed not in ("iex", "sip", "delayed_sip", "otc"):
            return self.send(h, 400, {"code": 40010001, "message": f"invalid feed: {feed}"})
        if feed == "sip" and not self.sip_allowed:
            return self.send(h, 403, {"message": "subscription does not permit querying "
                                                 "recent SIP data"})
        symbols = q.get("symbols", "").split(",")
        bad = [s for s in symbols if not s or not s.replace(".", "").isalnum() or s != s.upper()]
        if bad:
            return self.send(h, 400, {"code": 40010001, "message": f"invalid symbol: {bad[0]}"})
        if url.path == "/v2/stocks/trades":
            return self.page(h, q, symbols, "trades",
                             {s: self.trades.get(s, []) for s in symbols})
        if url.path == "/v2/stocks/bars":
            tf = q.get("timeframe", "")
            if tf not in ALPACA_TF.values():
                return self.send(h, 400, {"code": 40010001, "message": f"invalid timeframe: {tf}"})
            return self.page(h, q, symbols, "bars",
                             {s: self.bars.get((s, tf), []) for s in symbols})
        if url.path == "/v2/stocks/trades/latest":
            latest = {}
            for s in symbols:
                seen = [t for t in self.trades.get(s, [])
                        if self.now_ns is None or parse_ns(t["t"]) <= self.now_ns]
                if seen:
                    latest[s] = seen[-1]
            return self.send(h, 200, {"trades": latest})
        return self.send(h, 404, {"message": "Not Found"})

    def page(self, h, q, symbols, key, series: dict[str, list[dict]]):
        start = parse_ns(q["start"]) if "start" in q else None
        end = parse_ns(q["end"]) if "end" in q else None  # inclusive, as Alpaca
        flat = []
        for s in sorted(symbols):
            for item in series.get(s, []):
                t = parse_ns(item["t"])
                if (start is None or t >= start) and (end is None or t <= end):
                    flat.append((s, item))
        offset = int(base64.b64decode(q["page_token"]).decode()) if q.get("page_token") else 0
        limit = min(int(q.get("limit") or 1000), self.max_page)
        chunk = flat[offset:offset + limit]
        body: dict = {key: {}}
        for s, item in chunk:
            body[key].setdefault(s, []).append(item)
        more = offset + limit < len(flat)
        body["next_page_token"] = (base64.b64encode(str(offset + limit).encode()).decode()
                                   if more else None)
        return self.send(h, 200, body)


# -- helpers -------------------------------------------------------------------------

class SleepRecorder:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_connector(fake: FakeAlpaca, **kw) -> AlpacaConnector:
    settings = load_settings(env_file=None, APCA_API_KEY_ID=kw.pop("key", KEY),
                             APCA_API_SECRET_KEY=kw.pop("secret", SECRET),
                             ALPACA_DATA_URL=fake.url, INGESTION_MODE="live")
    return AlpacaConnector(settings=settings, sleep=kw.pop("sleep", SleepRecorder()), **kw)


def bars_hash(raw: pd.DataFrame) -> str:
    ticks = TickNormalizer().normalize(raw, source="alpaca").ticks
    bars = BarEngine(rules=get_rules("default")).build(ticks, TIMEFRAMES)
    return CanonicalExporter(bars).compute_hash()


async def collect(conn: AlpacaConnector, symbol: str, start, end) -> list[pd.DataFrame]:
    return [page async for page in conn.get_historical_ticks(symbol, start, end)]


@pytest.fixture()
def day(tmp_path):
    csv = fixture_csv(tmp_path)
    ref = replay([csv], TIMEFRAMES)
    return csv, ref, vendor_trades(csv)


# -- tests ---------------------------------------------------------------------------

def test_fixture_day_through_alpaca_has_replay_hash(day):
    csv, ref, trades = day
    with FakeAlpaca({"AAPL": trades}, max_page=10_000) as fake:
        conn = make_connector(fake, page_limit=50)
        pages = asyncio.run(collect(conn, "AAPL", DAY_START, DAY_END))
    assert len(pages) == -(-len(trades) // 50) > 1  # really paginated
    raw = pd.concat(pages, ignore_index=True)
    assert len(raw) == len(trades)
    tokens = [q.get("page_token") for p, q in fake.requests if p == "/v2/stocks/trades"]
    assert tokens[0] is None and all(tokens[1:])
    assert all(q["feed"] == "iex" for _, q in fake.requests)
    # nanoseconds survive the SDK (raw_data=True)
    assert raw["timestamp"].iloc[0] == trades[0]["t"]
    assert raw["timestamp"].str.len().max() > len("2013-10-07T12:02:21.988798Z")
    norm = TickNormalizer().normalize(raw, source="alpaca")
    # the vendor resend of one trade is one trade
    assert norm.rejected_by_reason == {"duplicate trade_id": len(raw) - len(ref.normalized.ticks)}
    assert bars_hash(raw) == CanonicalExporter(ref.bars).compute_hash()


def test_trade_fields_map_to_raw_tick_frame(day):
    _, _, trades = day
    with FakeAlpaca({"AAPL": trades}) as fake:
        conn = make_connector(fake, feed="sip")
        raw = conn.fetch_trades("aapl", DAY_START, DAY_END)
    first = trades[0]
    row = raw.iloc[0]
    assert row["symbol"] == "AAPL"
    assert row["price"] == first["p"] and row["size"] == first["s"]
    assert row["exchange"] == first["x"]
    assert row["conditions"] == " ".join(first["c"])
    assert row["trade_id"] == f"{first['x']}-{first['z']}-{first['i']}"
    assert row["source"] == "alpaca:sip"
    assert raw["source_row"].tolist() == list(range(len(raw)))
    assert all(q["feed"] == "sip" for _, q in fake.requests)


def test_window_is_half_open(day):
    _, _, trades = day
    t0, t5 = trades[0]["t"], trades[5]["t"]
    with FakeAlpaca({"AAPL": trades}) as fake:
        raw = make_connector(fake).fetch_trades("AAPL", t0, t5)
    assert raw["timestamp"].tolist() == [t["t"] for t in trades[:5] if t["t"] != t5]


def test_rate_limit_waits_until_reset_then_succeeds(day):
    _, ref, trades = day
    sleep = SleepRecorder()
    with FakeAlpaca({"AAPL": trades}) as fake:
        fake.fail_429, fake.reset_in = 2, 30
        conn = make_connector(fake, sleep=sleep, page_limit=100)
        raw = conn.fetch_trades("AAPL", DAY_START, DAY_END)
    assert len(raw) == len(trades)
    assert len(sleep.waits) == 2
    # the SDK alone would wait a fixed 3 s; we wait until X-RateLimit-Reset (~30 s)
    assert all(28.5 <= w <= 31.5 for w in sleep.waits), sleep.waits
    assert conn.client.rate_limit_waits == sleep.waits
    assert bars_hash(raw) == CanonicalExporter(ref.bars).compute_hash()


def test_rate_limit_that_never_clears_is_one_clear_error(day):
    _, _, trades = day
    with FakeAlpaca({"AAPL": trades}) as fake:
        fake.fail_429 = 100
        conn = make_connector(fake, max_rate_limit_waits=3)
        with pytest.raises(ConnectorError, match="rate limit"):
            conn.fetch_trades("AAPL", DAY_START, DAY_END)
    assert len(conn.client.rate_limit_waits) == 3


def test_reset_wait_reads_header():
    assert reset_wait({"X-RateLimit-Reset": "1000"}, now=970.0) == pytest.approx(30.25)
    assert reset_wait({"X-RateLimit-Reset": "900"}, now=970.0) == pytest.approx(0.25)
    assert reset_wait({}, now=970.0) == 3.0
    assert reset_wait({"X-RateLimit-Reset": "99999"}, now=0.0, cap=60) == 60


@pytest.mark.parametrize("key,secret", [("WRONGKEY", SECRET), (KEY, "wrong-secret-value")])
def test_wrong_key_is_clear_error_without_secrets(day, key, secret):
    _, _, trades = day
    with FakeAlpaca({"AAPL": trades}) as fake:
        conn = make_connector(fake, key=key, secret=secret)
        with pytest.raises(ConnectorError) as err:
            conn.fetch_trades("AAPL", DAY_START, DAY_END)
    text = str(err.value)
    assert "HTTP 403" in text and "APCA_API_KEY_ID" in text
    assert secret not in text and key not in text
    assert secret not in repr(conn) and secret not in repr(conn.client)
    assert err.value.__cause__ is None


def test_sip_without_subscription_is_clear_error(day):
    _, _, trades = day
    with FakeAlpaca({"AAPL": trades}, sip_allowed=False) as fake, \
            pytest.raises(ConnectorError, match="SIP"):
        make_connector(fake, feed="sip").fetch_trades("AAPL", DAY_START, DAY_END)


def test_unknown_feed_rejected_before_any_request():
    with pytest.raises(ConnectorError, match="unknown Alpaca feed"):
        AlpacaConnector(KEY, SECRET, base_url="http://127.0.0.1:9", feed="nasdaq")


def test_unknown_symbol_and_empty_window(day):
    _, _, trades = day
    with FakeAlpaca({"AAPL": trades}) as fake:
        conn = make_connector(fake)
        assert asyncio.run(collect(conn, "ZZZZ", DAY_START, DAY_END)) == []
        empty = conn.fetch_trades("AAPL", "2013-10-05T00:00:00Z", "2013-10-06T00:00:00Z")
        assert len(empty) == 0 and "timestamp" in empty.columns
        assert len(conn.get_bars("ZZZZ", "1m", DAY_START, DAY_END)) == 0
        with pytest.raises(ConnectorError, match="invalid symbol"):
            conn.fetch_trades("AAPL$", DAY_START, DAY_END)


def test_unreachable_host_is_clear_error():
    conn = AlpacaConnector(KEY, SECRET, base_url="http://127.0.0.1:9")
    with pytest.raises(ConnectorError, match="cannot reach Alpaca at http://127.0.0.1:9"):
        conn.fetch_trades("AAPL", DAY_START, DAY_END)


def test_vendor_bars_convert_to_canonical_and_match_fixture_bars(day):
    _, ref, trades = day
    expected = to_canonical(ref.bars)
    with FakeAlpaca({"AAPL": trades}, bars=vendor_bars(ref.bars), max_page=40) as fake:
        conn = make_connector(fake)
        got = pd.concat([conn.get_bars("AAPL", tf, DAY_START, DAY_END)
                         for tf in TIMEFRAMES.split(",")], ignore_index=True)
        with pytest.raises(ConnectorError, match="unsupported timeframe"):
            conn.get_bars("AAPL", "2m", DAY_START, DAY_END)
    pages = [q for p, q in fake.requests if p == "/v2/stocks/bars" and q.get("timeframe") == "1Min"]
    assert len(pages) > 1 and all(q["adjustment"] == "raw" for q in pages)
    daily = got[got["timeframe"] == "1d"]
    # Alpaca stamps the day at midnight New York: 04:00Z in October
    assert pd.Timestamp(int(daily["ts"].iloc[0]), tz="UTC") == pd.Timestamp("2013-10-07T04:00Z")
    assert CanonicalExporter(got).to_bytes() == CanonicalExporter(expected).to_bytes()
    pd.testing.assert_frame_equal(
        got.sort_values(["timeframe", "ts"]).reset_index(drop=True),
        expected.sort_values(["timeframe", "ts"]).reset_index(drop=True),
        check_like=True)
    report = BarComparator().compare(got, expected)
    assert report.is_parity and report.matched == len(expected), report.to_text()



def test_polling_emits_only_new_trades_and_loses_none(day):
    _, ref, trades = day
    times = [parse_ns(t["t"]) for t in trades]
    with FakeAlpaca({"AAPL": trades}, max_page=25) as fake:
        conn = make_connector(fake)
        asyncio.run(conn.subscribe(["aapl"]))
        fake.now_ns = times[0] - 1
        assert len(conn.poll_once()) == 0  # nothing traded yet
        conn.start_from("AAPL", DAY_START)
        batches = []
        steps = np.linspace(times[0], times[-1], 9).astype("int64").tolist() + [times[-1]]
        for now in steps:
            fake.now_ns = now
            batches.append(conn.poll_once())
            assert len(conn.poll_once()) == 0  # same latest trade: nothing new
    raw = pd.concat(batches, ignore_index=True)
    assert sum(len(b) > 0 for b in batches) >= 5
    # every vendor trade exactly once (the fixture's resend pair counts as two rows)
    assert sorted(raw["trade_id"] + raw["timestamp"]) == sorted(
        f"{t['x']}-{t['z']}-{t['i']}" + t["t"] for t in trades)
    assert bars_hash(raw) == CanonicalExporter(ref.bars).compute_hash()


def test_latest_trade_time_is_the_newest_trade_the_vendor_has(day):
    """``LatestTrade``: "the present" of Alpaca's history, up to its clock (``now_ns``)."""
    _, _, trades = day
    times = [parse_ns(t["t"]) for t in trades]
    with FakeAlpaca({"AAPL": trades}) as fake:
        conn = make_connector(fake)
        assert isinstance(conn, LatestTrade)
        fake.now_ns = times[0] - 1
        assert asyncio.run(conn.latest_trade_time("aapl")) is None  # nothing traded yet
        fake.now_ns = times[len(times) // 2]
        got = asyncio.run(conn.latest_trade_time("AAPL"))
        assert got == pd.Timestamp(times[len(times) // 2], unit="ns", tz="UTC")
        assert asyncio.run(conn.latest_trade_time("MSFT")) is None  # no trade of it


def test_run_polling_feeds_callbacks(day):
    _, _, trades = day
    got: list[pd.DataFrame] = []

    async def main(fake):
        conn = make_connector(fake)
        conn.register_callback(got.append)
        await conn.subscribe(["AAPL"])
        await conn.connect()
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run_polling(interval=0.01, stop=stop))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if got:
                break
        stop.set()
        await task
        await conn.disconnect()

    with FakeAlpaca({"AAPL": trades}) as fake:
        asyncio.run(main(fake))
    assert len(got) == 1 and got[0]["timestamp"].iloc[0] == trades[-1]["t"]


def test_missing_key_in_live_mode_names_the_variable():
    settings = load_settings(env_file=None, INGESTION_MODE="live", APCA_API_KEY_ID=KEY)
    with pytest.raises(ConnectorError, match="APCA_API_SECRET_KEY") as err:
        AlpacaConnector(settings=settings)
    assert KEY not in str(err.value)


def test_secrets_never_logged(day, caplog):
    import logging

    _, _, trades = day
    caplog.set_level(logging.DEBUG)
    with FakeAlpaca({"AAPL": trades}) as fake:
        fake.fail_429 = 1
        conn = make_connector(fake, page_limit=100)
        conn.fetch_trades("AAPL", DAY_START, DAY_END)
        with pytest.raises(ConnectorError):
            make_connector(fake, secret="another-secret-xyz").fetch_trades(
                "AAPL", DAY_START, DAY_END)
    assert "rate limit" in caplog.text  # something was logged
    assert SECRET not in caplog.text and "another-secret-xyz" not in caplog.text


# -- defect 1: a vendor body that echoes the request headers never shows the keys -----

class EchoingAlpaca(FakeAlpaca):
    """Answers every request with ``status`` and a body quoting the request headers,
    as some gateways do on 401/403/422/500."""

    def __init__(self, status: int):
        self.status = status
        super().__init__({})

    def handle(self, h):
        self.requests.append((h.path, {}))
        headers = {k: v for k, v in h.headers.items()}
        body = {"message": f"request refused; you sent {json.dumps(headers)}",
                "headers": headers,
                "raw": f"APCA-API-KEY-ID: {headers.get('APCA-API-KEY-ID')}\r\n"
                       f"APCA-API-SECRET-KEY: {headers.get('APCA-API-SECRET-KEY')}"}
        return self.send(h, self.status, body)


@pytest.mark.parametrize("status", [401, 403, 422, 500])
def test_error_body_echoing_the_keys_never_shows_them(status, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    with EchoingAlpaca(status) as fake:
        conn = make_connector(fake)
        with pytest.raises(ConnectorError) as err:
            conn.fetch_trades("AAPL", DAY_START, DAY_END)
        with pytest.raises(ConnectorError) as bars_err:
            conn.get_bars("AAPL", "1m", DAY_START, DAY_END)
        with pytest.raises(ConnectorError) as poll_err:
            asyncio.run(conn.subscribe(["AAPL"]))
            conn.poll_once()
    assert f"HTTP {status}" in str(err.value)
    import logging as _logging

    _logging.getLogger("phase1.test").warning("vendor said: %s", err.value.args[0])
    shown = [str(err.value), repr(err.value), str(bars_err.value), repr(bars_err.value),
             str(poll_err.value), repr(poll_err.value), repr(conn), repr(conn.client),
             caplog.text]
    for text in shown:
        assert KEY not in text and SECRET not in text, text


# -- defect 7: malformed trades are quarantined rows, never an uncaught error ----------

GOOD = {"t": "2013-10-07T14:30:00.000000001Z", "x": "Q", "p": 480.5, "s": 100, "c": ["@"],
        "i": 1, "z": "C"}
MALFORMED = [
    ({k: v for k, v in GOOD.items() if k != "p"} | {"i": 2}, "trade p is missing"),
    (GOOD | {"p": "480.50", "i": 3}, "trade p is not a number"),
    (GOOD | {"s": True, "i": 4}, "trade s is not a number"),
    ({k: v for k, v in GOOD.items() if k != "t"} | {"i": 5}, "trade t is missing"),
    (GOOD | {"t": "yesterday", "i": 6}, "trade t is not an RFC 3339 time"),
    (GOOD | {"t": 1381156200, "i": 7}, "trade t is not a string"),
    (GOOD | {"c": "@ F", "i": 8}, "trade c is not a list of codes"),
    (GOOD | {"x": {"code": "Q"}, "i": 9}, "trade x is not a string"),
    ("not a trade", "trade is not an object"),
    (GOOD | {"p": float("inf"), "i": 10}, "trade p is not finite"),
]


class RawAlpaca(FakeAlpaca):
    """Serves fixed JSON bodies: ``pages`` for /v2/stocks/trades (paged in order) and
    ``latest`` for /v2/stocks/trades/latest."""

    def __init__(self, pages: list, latest=None):
        self.pages, self.latest = pages, latest
        super().__init__({})

    def handle(self, h):
        url = urlsplit(h.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append((url.path, q))
        if url.path == "/v2/stocks/trades":
            i = int(q.get("page_token") or 0)
            body = self.pages[i]
            if isinstance(body, dict) and "next_page_token" not in body:
                body = {**body, "next_page_token": str(i + 1) if i + 1 < len(self.pages) else None}
            return send(h, 200, json.dumps(body).encode(), "application/json")
        return send(h, 200, json.dumps(self.latest).encode(), "application/json")


def test_malformed_trades_in_a_page_are_quarantined_rest_kept():
    later = GOOD | {"t": "2013-10-07T14:30:01Z", "i": 99}
    pages = [{"trades": {"AAPL": [GOOD] + [b for b, _ in MALFORMED]}},
             {"trades": {"AAPL": [later]}}]
    quarantined: list[pd.DataFrame] = []
    with RawAlpaca(pages) as fake:
        conn = make_connector(fake)
        conn.register_quarantine_callback(quarantined.append)
        raw = pd.concat(asyncio.run(collect(conn, "AAPL", DAY_START, DAY_END)),
                        ignore_index=True)
    assert raw["trade_id"].tolist() == ["Q-C-1", "Q-C-99"]
    q = pd.concat(quarantined, ignore_index=True)
    assert q["reason"].tolist() == [r for _, r in MALFORMED]
    assert q["source"].eq("alpaca:iex").all()
    # every trade has one arrival position: good and bad rows never share one
    assert sorted(raw["source_row"].tolist() + q["source_row"].tolist()) == list(
        range(len(MALFORMED) + 2))
    assert conn.quarantine["reason"].tolist() == q["reason"].tolist()
    assert TickNormalizer().normalize(raw, source="alpaca").rejected == 0


@pytest.mark.parametrize("body", [
    {"trades": [GOOD]},                      # a list where Alpaca sends symbol -> trades
    {"trades": {"AAPL": {"t": GOOD["t"]}}},  # one object where a list belongs
    {"trades": "oops"},
    ["not", "an", "object"],
    {"trades": {"AAPL": [GOOD]}, "next_page_token": 5},
])
def test_unparseable_trade_page_is_one_clear_vendor_error(body):
    from phase1_platform.core.errors import VendorError

    with RawAlpaca([body]) as fake:
        conn = make_connector(fake)
        with pytest.raises(VendorError) as err:
            conn.fetch_trades("AAPL", DAY_START, DAY_END)
    text = str(err.value)
    assert "Alpaca" in text and "\n" not in text
    assert isinstance(err.value, ConnectorError)


def test_malformed_latest_trades_are_quarantined_and_polling_goes_on():
    quarantined: list[pd.DataFrame] = []
    got: list[pd.DataFrame] = []
    latest = {"trades": {"AAPL": GOOD | {"p": True}, "MSFT": "bad", "IBM": GOOD | {"t": None},
                         "SPY": GOOD | {"i": 42}}}

    async def main(fake):
        conn = make_connector(fake, poll_interval=0.01)
        conn.register_quarantine_callback(quarantined.append)
        conn.register_callback(got.append)
        await conn.subscribe(["AAPL", "MSFT", "IBM", "SPY"])
        await conn.connect()
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if got and quarantined:
                break
        fake.latest = {"trades": []}  # an unreadable reply: logged, polling goes on
        await asyncio.sleep(0.1)
        assert not task.done()
        stop.set()
        await task
        await conn.disconnect()
        return conn

    with RawAlpaca([], latest) as fake:
        conn = asyncio.run(main(fake))
    assert pd.concat(got)["trade_id"].tolist() == ["Q-C-42"]
    assert sorted(conn.quarantine["reason"]) == sorted([
        "trade p is not a number", "trade is not an object", "trade t is missing"])
    assert len(pd.concat(quarantined)) == 3  # each once, though polled many times
    assert conn.poll_errors >= 1


def test_stop_ends_a_rate_limit_wait_promptly(day):
    _, _, trades = day

    async def main(fake):
        conn = make_connector(fake, sleep=None, poll_interval=0.01)
        await conn.subscribe(["AAPL"])
        await conn.connect()
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        while not fake.requests:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # now inside the ~30 s wait for X-RateLimit-Reset
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stop.set()
        await asyncio.wait_for(task, 5.0)
        waited = loop.time() - t0
        await conn.disconnect()
        return waited

    with FakeAlpaca({"AAPL": trades}) as fake:
        fake.fail_429, fake.reset_in = 100, 30
        waited = asyncio.run(main(fake))
    assert waited < 5.0 and len(fake.requests) == 1
