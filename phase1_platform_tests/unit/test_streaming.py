"""StreamingBarAggregator gives the very bars of BarEngine.build, however ticks arrive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase1_platform.core.engine import BarEngine, BarOverflowError
from phase1_platform.core.export import CanonicalExporter
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.rules import (
    DEFAULT_RULES,
    LEAN_EQUITY_RULES,
    LEAN_FUTURE_RULES,
    EligibilityRules,
)
from phase1_platform.core.schema import QTY_SCALE, notional_units, qty_units
from phase1_platform.core.streaming import StreamingBarAggregator, StreamingError
from phase1_platform_tests.conftest import shared_file

TFS = "1m,5m,15m,1h,1d"
MINUTE = 60 * 10**9
# 2013-11-01 (Fri) 13:00 UTC = 09:00 New York: pre-market, the session, after hours,
# then the weekend and the DST change of 2013-11-03, then Monday and Tuesday
START = pd.Timestamp("2013-11-01 13:00", tz="UTC").value

VOLUME_ONLY_RULES = EligibilityRules(
    name="test-volume-only",
    exclude_from_price=frozenset({"X"}),
    exclude_from_volume=frozenset({"F"}),
)


def make_ticks(seed: int, n: int = 3000, symbols=("AAA", "BB"), days: int = 5,
               trade_ids: bool = False, ms: bool = True) -> pd.DataFrame:
    """Normalized ticks with ties on ts (ms stamps), sequences, two sources, zero sizes,
    conditions and odd sizes."""
    rng = np.random.default_rng(seed)
    ts = START + rng.integers(0, days * 86_400 * 10**9, n)
    if ms:
        ts = ts - ts % 1_000_000
        ts[rng.random(n) < 0.2] = ts[0]  # a burst of same-millisecond prints
    raw = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(ts, utc=True).as_unit("ns"),
            "symbol": rng.choice(list(symbols), n),
            "price": np.round(100 + rng.normal(0, 1, n), 2),
            "size": rng.choice([0.0, 1.0, 100.0, 200.5, 0.123456785, 37.0], n),
            "conditions": rng.choice(["", "@ F", "X", "F X"], n),
            "sequence": rng.integers(-1, 3, n),
            "source": rng.choice(["feed-a", "feed-b"], n),
            "source_row": rng.permutation(n),
        }
    )
    if trade_ids:
        raw["trade_id"] = [f"t{i}" for i in range(n)]
    return TickNormalizer().normalize(raw).ticks


def feed_ticks(agg: StreamingBarAggregator, ticks: pd.DataFrame) -> None:
    for r in ticks.itertuples(index=False):
        agg.on_tick(r.symbol, r.ts.value, r.price, r.size, r.conditions, r.sequence,
                    r.trade_id, r.source, r.source_row)


def feed_batches(agg: StreamingBarAggregator, ticks: pd.DataFrame, cuts) -> None:
    bounds = [0, *sorted(set(cuts)), len(ticks)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            agg.on_batch(ticks.iloc[a:b])


def assert_same(agg: StreamingBarAggregator, ticks: pd.DataFrame, rules=DEFAULT_RULES,
                timeframes=TFS) -> None:
    expected = BarEngine(rules).build(ticks, timeframes)
    got = agg.bars()
    pd.testing.assert_frame_equal(got, expected)
    assert CanonicalExporter(got).to_bytes() == CanonicalExporter(expected).to_bytes()


# ---------------------------------------------------------------- exact units
def test_python_round_equals_schema_units():
    rng = np.random.default_rng(3)
    size = np.concatenate([rng.random(20000) * 1000, np.round(rng.random(5000) * 100, 9),
                           np.array([0.5e-8, 1.5e-8, 2.5e-8, 0.123456785, 1e10, 0.0])])
    price = np.concatenate([np.round(rng.random(len(size) - 3) * 5000, 4),
                            np.array([0.0000005, 1e-6 * 2.5, 1.0])])
    q = qty_units(size)
    nv = notional_units(price, size)
    assert [round(z * QTY_SCALE) for z in size.tolist()] == q.tolist()
    assert [round(p * z * 1_000_000) for p, z in zip(price.tolist(), size.tolist(),
                                                     strict=True)] == nv.tolist()
    # on_tick's form: float.__round__ with float constants, the same values
    assert [float.__round__(z * 100_000_000.0) for z in size.tolist()] == q.tolist()
    assert [float.__round__(p * z * 1_000_000.0) for p, z in zip(
        price.tolist(), size.tolist(), strict=True)] == nv.tolist()


def test_large_sums_stay_exact_in_engine_and_stream():
    """Bars whose integer sums pass 2**53 (the engine's float fast path gives way to
    int64) equal exact Python integer sums, per tick and per batch."""
    rng = np.random.default_rng(12)
    n = 400
    raw = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(START + 4 * 3600 * 10**9
                                        + np.sort(rng.integers(0, 10 * MINUTE, n)),
                                        utc=True).as_unit("ns"),
            "symbol": "BIG",
            "price": np.round(rng.uniform(1_000, 9_999, n), 6),
            "size": np.round(rng.uniform(1, 2_000_000, n), 8),
        }
    )
    ticks = TickNormalizer().normalize(raw).ticks
    bars = BarEngine().build(ticks, "1m")
    minute = ticks["ts"].to_numpy("datetime64[ns]").view("int64") // MINUTE * MINUTE
    exact_qty: dict[int, int] = {}
    exact_notional: dict[int, int] = {}
    for m, p, z in zip(minute.tolist(), ticks["price"].tolist(), ticks["size"].tolist(),
                       strict=True):
        exact_qty[m] = exact_qty.get(m, 0) + round(z * QTY_SCALE)
        exact_notional[m] = exact_notional.get(m, 0) + round(p * z * 1_000_000)
    assert max(exact_notional.values()) > 2**53
    assert bars["qty"].tolist() == [exact_qty[m] for m in bars["ts"].tolist()]
    assert bars["notional"].tolist() == [exact_notional[m] for m in bars["ts"].tolist()]
    agg = StreamingBarAggregator("1m")
    feed_ticks(agg, ticks.sample(frac=1.0, random_state=1))
    assert_same(agg, ticks, timeframes="1m")
    agg = StreamingBarAggregator("1m")
    feed_batches(agg, ticks, [100, 250])
    assert_same(agg, ticks, timeframes="1m")


# ---------------------------------------------------------------- int64 overflow (DESIGN 4)
def _one_minute_overflow() -> pd.DataFrame:
    """Twelve prints in the 10:00 New York minute: each fits, their notional sum
    (~1.2e19 units) does not fit int64."""
    raw = pd.DataFrame({"timestamp": ["2013-10-07T14:00:00Z"] * 12, "symbol": "X",
                        "price": [1e6] * 12, "size": [9.9e5] * 12})
    return TickNormalizer().normalize(raw).ticks


def test_one_minute_totals_beyond_int64_are_refused_not_wrapped():
    ticks = _one_minute_overflow()
    assert len(ticks) == 12
    with pytest.raises(BarOverflowError):
        BarEngine().build(ticks, "1m")
    msg = "1m bar opening 2013-10-07T14:00:00Z: its price x size total does not fit"
    # per tick the sums are exact Python integers: refused when the bars are built
    for out in ("bars", "drain_updates"):
        agg = StreamingBarAggregator("1m,1h")
        feed_ticks(agg, ticks)
        with pytest.raises(BarOverflowError, match=msg):
            getattr(agg, out)()
    # across micro-batches each batch fits, their merged minute does not
    agg = StreamingBarAggregator("1m")
    feed_batches(agg, ticks, [6])
    with pytest.raises(BarOverflowError, match=msg):
        agg.bars()
    with pytest.raises(BarOverflowError, match="price x size total does not fit"):
        StreamingBarAggregator("1m").on_batch(ticks)  # one batch: refused on arrival
    # a minute in no requested bar (pre-market, 1d only) is dropped, as the engine does
    early = ticks.assign(ts=ticks["ts"] - pd.Timedelta(2, "h"))
    agg = StreamingBarAggregator("1d")
    feed_ticks(agg, early)
    assert agg.bars().empty and BarEngine().build(early, "1d").empty


# ten 9,999,999,999-share prints 6 minutes apart: every 1m, 5m and 15m bar fits int64
# units, the 1h, 4h and 1d totals (~1e19 units) do not
BIG_PRINTS = pd.DataFrame({
    "timestamp": [f"2013-10-07T14:{m:02d}:00Z" for m in range(0, 60, 6)], "symbol": "X",
    "price": 1.0, "size": 9_999_999_999.0})


@pytest.mark.parametrize("timeframes", ["1m,1h", "1h", "5m,4h", "1m,5m,15m,1d", "1d"])
def test_rolled_up_totals_beyond_int64_are_refused_not_wrapped(timeframes):
    ticks = TickNormalizer().normalize(BIG_PRINTS).ticks
    with pytest.raises(BarOverflowError, match="volume total does not fit"):
        BarEngine().build(ticks, timeframes)
    big = timeframes.split(",")[-1]
    opening = "2013-10-07T04:00:00Z" if big == "1d" else (
        "2013-10-07T12:00:00Z" if big == "4h" else "2013-10-07T14:00:00Z")
    for feed in ("ticks", "batches"):
        for out in ("bars", "drain_updates"):
            agg = StreamingBarAggregator(timeframes)
            if feed == "ticks":
                feed_ticks(agg, ticks)
            else:
                feed_batches(agg, ticks, [3, 7])
            with pytest.raises(BarOverflowError,
                               match=f"the {big} bar opening {opening}: its volume total"):
                getattr(agg, out)()
    small = StreamingBarAggregator("1m,5m,15m")
    feed_ticks(small, ticks)
    assert_same(small, ticks, timeframes="1m,5m,15m")


def test_a_tick_whose_units_do_not_fit_int64_is_refused_before_any_state_change():
    agg = StreamingBarAggregator("1m")
    minute = START + 90 * MINUTE
    # 1e12 shares: 1e20 volume units; 1e9 x 1e5: 1e20 notional units
    for price, size, what in ((1.0, 1e12, "volume"), (1e9, 1e5, "price x size")):
        with pytest.raises(BarOverflowError, match=f"batch row 1 .*its {what} alone"):
            agg.on_arrays("AAA", [minute, minute + 1], [10.0, price], [1.0, size],
                          trade_id=["a", "b"])
    assert agg.state_size() == {"symbols": 0, "minutes": 0, "trade_ids": 0}
    assert agg.on_arrays("AAA", [minute], [10.0], [1.0], trade_id=["a"]) == 1
    # per tick the units stay exact integers: the bar is refused when it is built
    agg.on_tick("AAA", minute + 2, 1.0, 1e12)
    with pytest.raises(BarOverflowError, match="1m bar .* volume total does not fit"):
        agg.bars()
    # infinite prices or sizes are bad ticks, not a bare OverflowError
    with pytest.raises(StreamingError, match="finite"):
        agg.on_tick("AAA", minute, 10.0, float("inf"))
    with pytest.raises(StreamingError, match="row 0: .*finite"):
        agg.on_arrays("AAA", [minute], [float("inf")], [1.0])


# ---------------------------------------------------------------- per tick
@pytest.mark.parametrize("timeframes", [TFS, "1m", "5m,1d", "1d", "15m,30m,4h"])
def test_per_tick_in_order_equals_batch(timeframes):
    ticks = make_ticks(1)
    agg = StreamingBarAggregator(timeframes)
    feed_ticks(agg, ticks)
    assert_same(agg, ticks, timeframes=timeframes)


@pytest.mark.parametrize("rules", [DEFAULT_RULES, LEAN_FUTURE_RULES, VOLUME_ONLY_RULES],
                         ids=lambda r: r.name)
def test_per_tick_shuffled_late_ticks_equal_batch(rules):
    ticks = make_ticks(2)
    agg = StreamingBarAggregator(TFS, rules)
    feed_ticks(agg, ticks.sample(frac=1.0, random_state=5))
    assert_same(agg, ticks, rules)


def test_arrival_counter_orders_same_timestamp_ticks():
    agg = StreamingBarAggregator("1m")
    t = START + 5 * MINUTE
    for price in (10.0, 12.0, 11.0):
        agg.on_tick("AAA", t, price, 1.0)
    bar = agg.bars().iloc[0]
    assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (10.0, 12.0, 10.0, 11.0,
                                                                       3)
    # the sequence ranks before arrival: sequence 0 sorts after the default -1 ones
    agg.on_tick("AAA", t, 9.0, 1.0, sequence=0)
    assert agg.bars().iloc[0].close == 9.0


def test_late_tick_restates_open_and_close_of_a_drained_bar():
    agg = StreamingBarAggregator("1m,1h")
    t0 = START + 30 * MINUTE
    agg.on_tick("AAA", t0 + 10**9, 100.0, 10.0)
    agg.on_tick("AAA", t0 + 2 * 10**9, 101.0, 10.0)
    first = agg.drain_updates()
    assert list(first["timeframe"]) == ["1m", "1h"]
    assert agg.drain_updates().empty  # nothing changed since
    agg.on_tick("AAA", t0 + 5, 99.0, 5.0)  # late: earliest of the minute
    agg.on_tick("AAA", t0 + 59 * 10**9, 102.0, 5.0)  # newest
    upd = agg.drain_updates()
    assert list(upd["timeframe"]) == ["1m", "1h"]
    row = upd.iloc[0]
    assert (row.open, row.high, row.low, row.close) == (99.0, 102.0, 99.0, 102.0)
    assert row.qty == 30 * QTY_SCALE and row.trade_count == 4
    assert upd.iloc[1].open == 99.0 and upd.iloc[1].close == 102.0


def test_drain_updates_match_current_bars_and_cover_all_changes():
    ticks = make_ticks(4, n=2000)
    agg = StreamingBarAggregator(TFS)
    published: dict[tuple, tuple] = {}
    rng = np.random.default_rng(9)
    shuffled = ticks.sample(frac=1.0, random_state=11)
    pos = 0
    while pos < len(shuffled):
        k = int(rng.integers(1, 300))
        part = shuffled.iloc[pos:pos + k]
        if rng.random() < 0.5:
            agg.on_batch(part)
        else:
            feed_ticks(agg, part)
        pos += k
        upd = agg.drain_updates()
        now = agg.bars().set_index(["symbol", "timeframe", "ts"])
        for r in upd.itertuples(index=False):
            key = (r.symbol, r.timeframe, r.ts)
            values = (r.open, r.high, r.low, r.close, r.qty, r.notional, r.trade_count)
            assert tuple(now.loc[key]) == values
            published[key] = values
        # every bar a subscriber holds equals the current bar
        assert len(published) == len(now)
    final = BarEngine().build(ticks, TFS).set_index(["symbol", "timeframe", "ts"])
    assert {k: tuple(v) for k, v in final.iterrows()} == published


# ---------------------------------------------------------------- micro-batches
@pytest.mark.parametrize("size", [1, 7, 100, 1000, 5000])
def test_micro_batches_of_fixed_size_equal_batch(size):
    ticks = make_ticks(5)
    agg = StreamingBarAggregator(TFS)
    feed_batches(agg, ticks, range(size, len(ticks), size))
    assert_same(agg, ticks)


@pytest.mark.parametrize("rules", [DEFAULT_RULES, LEAN_FUTURE_RULES, VOLUME_ONLY_RULES,
                                   LEAN_EQUITY_RULES], ids=lambda r: r.name)
def test_shuffled_micro_batches_with_random_splits_equal_batch(rules):
    ticks = make_ticks(6)
    rng = np.random.default_rng(6)
    shuffled = ticks.sample(frac=1.0, random_state=6)
    agg = StreamingBarAggregator(TFS, rules)
    feed_batches(agg, shuffled, rng.integers(0, len(ticks), 40).tolist())
    assert_same(agg, ticks, rules)


def test_mixed_per_tick_and_batches_and_lean_arrays():
    ticks = make_ticks(7, symbols=("ONE",))
    agg = StreamingBarAggregator(TFS)
    half = len(ticks) // 2
    agg.on_arrays(
        "ONE",
        ticks["ts"].iloc[:half].to_numpy("datetime64[ns]").view("int64"),
        ticks["price"].iloc[:half].to_numpy(),
        ticks["size"].iloc[:half].to_numpy(),
        conditions=ticks["conditions"].iloc[:half].to_numpy(object),
        sequence=ticks["sequence"].iloc[:half].to_numpy(),
        source=ticks["source"].iloc[:half].to_numpy(object),
        source_row=ticks["source_row"].iloc[:half].to_numpy(),
    )
    feed_ticks(agg, ticks.iloc[half:])
    assert_same(agg, ticks)


def test_zero_size_prints_with_the_lean_future_rule_set():
    ticks = make_ticks(8)
    assert (ticks["size"] == 0).sum() > 100
    only_zero = ticks[ticks["size"] == 0]
    for rules in (DEFAULT_RULES, LEAN_FUTURE_RULES):
        agg = StreamingBarAggregator(TFS, rules)
        feed_ticks(agg, ticks)
        assert_same(agg, ticks, rules)
        z = StreamingBarAggregator(TFS, rules)
        z.on_batch(only_zero)
        if rules is DEFAULT_RULES:
            assert z.bars().empty and z.ignored == len(only_zero)
        else:  # zero-size prints set prices, with no volume
            bars = z.bars()
            assert len(bars) and (bars["qty"] == 0).all() and (bars["trade_count"] == 0).all()


# ---------------------------------------------------------------- duplicates
def test_duplicate_trade_ids_counted_once_per_tick_and_batch():
    ticks = make_ticks(10, trade_ids=True)
    rng = np.random.default_rng(10)
    resent = ticks.iloc[rng.choice(len(ticks), 300, replace=False)].copy()
    resent["source"] = "resend"  # a re-sent trade is the same trade, whatever its source
    resent["source_row"] = np.arange(len(resent))

    agg = StreamingBarAggregator(TFS)
    feed_ticks(agg, ticks)
    feed_ticks(agg, resent)
    assert agg.duplicates == len(resent)
    assert_same(agg, ticks)

    agg = StreamingBarAggregator(TFS)
    feed_batches(agg, ticks, [500, 1500])
    agg.on_batch(resent)
    # and duplicates inside one batch
    agg.on_batch(pd.concat([resent.iloc[:10], resent.iloc[:10]]))
    assert agg.duplicates == len(resent) + 20
    assert_same(agg, ticks)


def test_same_trade_id_on_another_symbol_is_another_trade():
    agg = StreamingBarAggregator("1m")
    assert agg.on_tick("AAA", START, 10.0, 1.0, trade_id="7")
    assert agg.on_tick("BB", START, 20.0, 1.0, trade_id="7")
    assert not agg.on_tick("AAA", START, 11.0, 1.0, trade_id="7")
    assert agg.duplicates == 1 and len(agg.bars()) == 2


def test_same_trade_id_at_another_time_is_another_trade():
    """Defect 15: the identity is (symbol, ts, trade_id) (core.identity), as in the store:
    a vendor reusing a trade id on a later day (or later in the day) is a new trade."""
    day = 86_400 * 10**9
    agg = StreamingBarAggregator(TFS)
    raw = pd.DataFrame({
        "timestamp": pd.to_datetime([START + 3 * 3600 * 10**9, START + 3 * 3600 * 10**9,
                                     START + 3 * day + 3 * 3600 * 10**9], utc=True),
        "symbol": "AAA", "price": [10.0, 10.5, 11.0], "size": [1.0, 1.0, 2.0],
        "trade_id": ["7", "7", "7"], "source_row": [0, 1, 2]})
    ticks = pd.concat([TickNormalizer().normalize(raw.iloc[[i]]).ticks for i in (0, 2)],
                      ignore_index=True)
    assert agg.on_tick("AAA", START + 3 * 3600 * 10**9, 10.0, 1.0, trade_id="7")
    assert agg.on_arrays("AAA", [START + 3 * day + 3 * 3600 * 10**9], [11.0], [2.0],
                         trade_id=["7"]) == 1
    # the very same identity again (another price: a conflicting resend) is not a trade
    assert agg.on_arrays("AAA", [START + 3 * 3600 * 10**9], [10.5], [1.0],
                         trade_id=["7"]) == 0
    assert agg.duplicates == 1
    assert_same(agg, ticks)


# ---------------------------------------------------------------- bad input
def test_bad_ticks_raise_a_clear_error():
    agg = StreamingBarAggregator()
    with pytest.raises(StreamingError, match="price"):
        agg.on_tick("AAA", START, 0.0, 1.0)
    with pytest.raises(StreamingError, match="size"):
        agg.on_tick("AAA", START, 1.0, float("nan"))
    with pytest.raises(StreamingError, match="symbol"):
        agg.on_tick("", START, 1.0, 1.0)
    with pytest.raises(StreamingError, match="row 1"):
        agg.on_arrays("AAA", [START, START + 1], [1.0, 2.0], [1.0, -1.0])
    assert agg.bars().empty


def test_empty_inputs():
    agg = StreamingBarAggregator()
    assert agg.on_batch(make_ticks(1).iloc[:0]) == 0
    assert agg.bars().empty and agg.drain_updates().empty


# ---------------------------------------------------------------- real data
@pytest.mark.realdata
@pytest.mark.parametrize("rules", [DEFAULT_RULES, LEAN_EQUITY_RULES], ids=lambda r: r.name)
def test_real_spy_day_per_tick_and_micro_batches_equal_batch(rules):
    from phase1_platform.readers.lean import read_lean_ticks

    path = shared_file("lean/equity/usa/tick/spy/20131007_trade.zip")
    ticks = TickNormalizer().normalize(read_lean_ticks(path)).ticks
    assert len(ticks) > 250_000
    expected = BarEngine(rules).build(ticks, TFS)
    want = CanonicalExporter(expected).to_bytes()

    agg = StreamingBarAggregator(TFS, rules)
    feed_batches(agg, ticks, range(1000, len(ticks), 1000))
    assert CanonicalExporter(agg.bars()).to_bytes() == want

    agg = StreamingBarAggregator(TFS, rules)
    on_tick = agg.on_tick
    cols = [ticks[c].tolist() for c in ("symbol", "price", "size", "conditions", "sequence",
                                        "trade_id", "source", "source_row")]
    ts = ticks["ts"].to_numpy("datetime64[ns]").view("int64").tolist()
    order = np.random.default_rng(1).permutation(len(ts)).tolist()  # late ticks everywhere
    sym, price, size, cond, seq, tid, src, row = cols
    for i in order:
        on_tick(sym[i], ts[i], price[i], size[i], cond[i], seq[i], tid[i], src[i], row[i])
    got = agg.bars()
    pd.testing.assert_frame_equal(got, expected)
    assert CanonicalExporter(got).to_bytes() == want


# ---------------------------------------------------------------- properties
tick_rows = st.lists(
    st.tuples(
        st.sampled_from(["AAA", "BB"]),
        st.integers(0, 3 * 86_400 * 10**9),  # 3 days from START, some on minute boundaries
        st.integers(1, 400),  # price in cents
        st.sampled_from([0.0, 1.0, 100.0, 0.5, 250.25]),
        st.sampled_from(["", "F", "X"]),
        st.integers(-1, 2),  # sequence
    ),
    min_size=1,
    max_size=120,
)


def _frame(rows) -> pd.DataFrame:
    raw = pd.DataFrame(rows, columns=["symbol", "ts", "cents", "size", "conditions",
                                      "sequence"])
    raw["timestamp"] = pd.to_datetime((START + (raw["ts"] - raw["ts"] % (MINUTE // 4))).to_numpy(),
                                      utc=True).as_unit("ns")
    raw["price"] = raw["cents"] / 100
    raw["source_row"] = np.arange(len(raw))
    return TickNormalizer().normalize(raw.drop(columns=["ts", "cents"])).ticks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tick_rows, cuts=st.lists(st.integers(0, 120), max_size=8),
       rules=st.sampled_from([DEFAULT_RULES, LEAN_FUTURE_RULES, VOLUME_ONLY_RULES]))
def test_property_any_split_into_micro_batches_equals_batch(rows, cuts, rules):
    ticks = _frame(rows)
    agg = StreamingBarAggregator(TFS, rules)
    feed_batches(agg, ticks, [c for c in cuts if c < len(ticks)])
    assert_same(agg, ticks, rules)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tick_rows, seed=st.integers(0, 2**32 - 1),
       rules=st.sampled_from([DEFAULT_RULES, LEAN_FUTURE_RULES, VOLUME_ONLY_RULES]))
def test_property_per_tick_in_shuffled_order_equals_batch(rows, seed, rules):
    ticks = _frame(rows)
    agg = StreamingBarAggregator(TFS, rules)
    feed_ticks(agg, ticks.sample(frac=1.0, random_state=seed % 2**32))
    assert_same(agg, ticks, rules)


# ---------------------------------------------------------------- retention (defect 17)
def _session_ticks(seed: int, day: str, n: int = 600) -> pd.DataFrame:
    """Normalized AAA ticks of one New York session day, trade ids t0.. (reused daily)."""
    rng = np.random.default_rng(seed)
    open_ns = pd.Timestamp(f"{day} 09:30", tz="America/New_York").tz_convert("UTC").value
    ts = np.sort(open_ns + rng.integers(0, int(6.5 * 3600 * 10**9), n))
    raw = pd.DataFrame({
        "timestamp": pd.to_datetime(ts, utc=True).as_unit("ns"), "symbol": "AAA",
        "price": np.round(100 + rng.normal(0, 1, n), 2),
        "size": rng.choice([1.0, 100.0, 37.0], n),
        "trade_id": [f"t{i}" for i in range(n)], "source": f"feed:{day}",
        "source_row": np.arange(n)})
    return TickNormalizer().normalize(raw).ticks


def _publish(agg: StreamingBarAggregator, published: dict) -> pd.DataFrame:
    upd = agg.drain_updates()
    for r in upd.itertuples(index=False):
        published[(r.symbol, r.timeframe, r.ts)] = r
    return upd


def test_retention_keeps_state_of_the_current_and_previous_trading_date():
    days = ["2013-11-04", "2013-11-05", "2013-11-06"]
    ticks = [_session_ticks(20 + i, d) for i, d in enumerate(days)]
    agg = StreamingBarAggregator(TFS, retain_dates=2)
    published: dict = {}
    sizes = []
    for i, day_ticks in enumerate(ticks):
        shuffled = day_ticks.sample(frac=1.0, random_state=i)
        feed_batches(agg, shuffled, range(50, len(shuffled), 50))
        _publish(agg, published)
        sizes.append(agg.state_size())
    minutes = [len(np.unique(ts_minutes(t))) for t in ticks]
    # state is what the current and the previous trading date need, never more
    assert sizes[0] == {"symbols": 1, "minutes": minutes[0], "trade_ids": len(ticks[0])}
    assert sizes[1] == {"symbols": 1, "minutes": minutes[0] + minutes[1],
                        "trade_ids": len(ticks[0]) + len(ticks[1])}
    assert sizes[2] == {"symbols": 1, "minutes": minutes[1] + minutes[2],
                        "trade_ids": len(ticks[1]) + len(ticks[2])}

    # a late tick of the current session restates its bars ...
    first = ticks[2].iloc[[0]].copy()
    first["ts"] = first["ts"] - pd.Timedelta(1, "ns")
    first["trade_id"] = "late-2"
    first["price"] = 1.0
    # ... and so does one of the previous session
    prev = ticks[1].iloc[[0]].copy()
    prev["trade_id"] = "late-1"
    prev["price"] = 1.0
    for late in (first, prev):
        agg.on_batch(late)
        upd = _publish(agg, published)
        assert set(upd["timeframe"]) == set(TFS.split(","))
        assert (upd["low"] == 1.0).all()
    # a tick of a date older than that is not kept (its partition's batch rebuild has it)
    old = ticks[0].iloc[[5]].copy()
    old["trade_id"] = "late-0"
    assert agg.on_batch(old) == 0 and agg.expired == 1
    assert agg.drain_updates().empty
    ticks[2] = pd.concat([ticks[2], first], ignore_index=True)
    ticks[1] = pd.concat([ticks[1], prev], ignore_index=True)
    # what a subscriber holds equals a batch build of every day
    for day_ticks in ticks:
        want = BarEngine().build(canonical(day_ticks), TFS)
        for r in want.itertuples(index=False):
            got = published[(r.symbol, r.timeframe, r.ts)]
            assert got == r
    assert len(published) == sum(len(BarEngine().build(canonical(t), TFS)) for t in ticks)


def test_retention_per_tick_evicts_and_counts_expired_ticks():
    days = ["2013-11-04", "2013-11-05", "2013-11-06"]
    ticks = [_session_ticks(30 + i, d, n=200) for i, d in enumerate(days)]
    agg = StreamingBarAggregator(TFS, retain_dates=2)
    for t in ticks:
        feed_ticks(agg, t)
    assert agg.state_size()["trade_ids"] == len(ticks[1]) + len(ticks[2])
    r = ticks[0].iloc[0]
    assert not agg.on_tick("AAA", r.ts.value, r.price, r.size, trade_id="x")
    assert agg.expired == 1
    both = canonical(pd.concat(ticks[1:], ignore_index=True))
    assert_same(agg, both)
    # without retention (the default) nothing is evicted
    keep_all = StreamingBarAggregator(TFS)
    for t in ticks:
        feed_ticks(keep_all, t)
    assert keep_all.state_size()["trade_ids"] == sum(len(t) for t in ticks)
    with pytest.raises(StreamingError, match="retain_dates"):
        StreamingBarAggregator(TFS, retain_dates=0)


def _text_layouts():
    """The same text columns as pyarrow strings (whole, sliced, two chunks) and objects."""
    import pyarrow as pa

    cases = [["AAA"] * 5, ["", "", ""], ["A", "AA", ""], ["AB", "", "ABAB"], ["x", "y", "x"],
             ["ab", "ab", "ac"], ["é", "é"], ["A", None, "A"], ["", None]]
    for values in cases:
        arrow = pd.Series(["pad", *values, "pad"], dtype="string[pyarrow]").iloc[1:-1]
        yield values, arrow.array
        yield values, pd.Series(values, dtype="str").array
        yield values, np.array(values, dtype=object)
        chunks = pa.chunked_array([pa.array(values[:1], pa.large_string()),
                                   pa.array(values[1:], pa.large_string())])
        yield values, pd.arrays.ArrowStringArray(chunks)


def test_frame_column_reads_equal_the_plain_pandas_reading():
    from phase1_platform.core.streaming.frame_columns import (
        CodedText,
        all_empty,
        objects,
        single_or_array,
        text_codes,
    )

    for values, arr in _text_layouts():
        present = [v for v in values if isinstance(v, str)]
        one = len(present) == len(values) and len(set(values)) == 1
        got = single_or_array(arr)
        if one:
            assert got == values[0], (values, type(arr))
        else:
            assert isinstance(got, np.ndarray) and list(got[[isinstance(v, str)
                                                            for v in values]]) == present
        # a missing trade id counts as none in an object column, as a value in a text one
        none_is_empty = isinstance(arr, np.ndarray)
        assert all_empty(arr) == (not any(present) and (none_is_empty or present == values))
        coded = text_codes(arr)
        if isinstance(coded, CodedText):
            assert [coded.uniques[c] for c in coded.codes] == values
        else:
            assert list(coded) == list(objects(arr))


@pytest.mark.parametrize("layout", ["object text", "us stamps", "int stamps", "nulls"])
def test_micro_batches_of_other_column_layouts_equal_batch(layout):
    ticks = make_ticks(23, trade_ids=True)
    fed = ticks.copy()
    if layout == "object text":
        for name in ("symbol", "conditions", "trade_id", "source"):
            fed[name] = fed[name].astype(object)
    elif layout == "us stamps":
        ticks = ticks.assign(ts=ticks["ts"].dt.floor("us"))
        fed = ticks.assign(ts=ticks["ts"].dt.as_unit("us"))
    elif layout == "int stamps":
        fed["ts"] = ticks["ts"].to_numpy("datetime64[ns]").view("int64")
    else:  # a missing condition is read as its str() in both paths (no Arrow encoding)
        fed["conditions"] = fed["conditions"].astype(object)
        fed.loc[fed.index[::7], "conditions"] = None
        ticks = fed.assign(conditions=fed["conditions"].map(str))
    for rules in (DEFAULT_RULES, VOLUME_ONLY_RULES):
        agg = StreamingBarAggregator(TFS, rules=rules)
        feed_batches(agg, fed, range(0, len(fed), 250))
        assert_same(agg, ticks, rules)


def ts_minutes(ticks: pd.DataFrame) -> np.ndarray:
    return ticks["ts"].to_numpy("datetime64[ns]").view("int64") // MINUTE


def canonical(ticks: pd.DataFrame) -> pd.DataFrame:
    from phase1_platform.core.normalizer import canonical_sort

    return canonical_sort(ticks).reset_index(drop=True)


def _one_symbol_ticks(seed: int, n: int = 4000, size=None,
                      span: int = 3 * 3600 * 10**9) -> pd.DataFrame:
    """One symbol, every tick eligible (sizes > 0, no condition): the fast batch path."""
    rng = np.random.default_rng(seed)
    ts = np.sort(START + rng.integers(0, span, n))
    ts[rng.random(n) < 0.1] = ts[0]  # ties on ts: order by sequence, source, source_row
    raw = pd.DataFrame({
        "timestamp": pd.to_datetime(np.sort(ts), utc=True).as_unit("ns"),
        "symbol": "AAA",
        "price": np.round(100 + rng.normal(0, 1, n), 2),
        "size": rng.choice([1.0, 100.0, 200.5, 0.123456785], n) if size is None else size,
        "sequence": rng.integers(-1, 3, n),
        "source": rng.choice(["feed-a", "feed-b"], n),
        "source_row": rng.permutation(n),
    })
    return TickNormalizer().normalize(raw).ticks


@pytest.mark.parametrize("batch", [1, 7, 250, 4000])
def test_one_symbol_fast_batch_path_equals_general_path_and_engine(batch, monkeypatch):
    import phase1_platform.core.streaming.batches as batches

    ticks = _one_symbol_ticks(batch)
    fast, general = StreamingBarAggregator(TFS), StreamingBarAggregator(TFS)
    cuts = range(0, len(ticks), batch)
    late = ticks.sample(frac=0.2, random_state=batch)  # resent late: restates opens/closes
    feed_batches(fast, ticks, cuts)
    feed_batches(fast, late, range(0, len(late), batch))
    monkeypatch.setattr(batches, "merge_eligible_run", lambda *args: False)
    feed_batches(general, ticks, cuts)
    feed_batches(general, late, range(0, len(late), batch))
    pd.testing.assert_frame_equal(fast.bars(), general.bars())
    pd.testing.assert_frame_equal(fast.drain_updates(), general.drain_updates())
    assert_same(fast, canonical(pd.concat([ticks, late], ignore_index=True)))


def test_fast_batch_path_leaves_inexact_totals_to_the_general_path():
    # 1e8 shares a tick: 1e16 units, float sums of a few exceed 2**53 (inexact in float),
    # so the int64 path sums them; 1000 of them in one minute exceed int64: refused
    ticks = _one_symbol_ticks(5, n=1000, size=1e8, span=MINUTE)
    agg = StreamingBarAggregator(TFS)
    feed_batches(agg, ticks.iloc[:50], [10, 20])
    assert_same(agg, ticks.iloc[:50])
    with pytest.raises(BarOverflowError):
        StreamingBarAggregator("1m").on_batch(ticks)
    spread = _one_symbol_ticks(6, n=1500, size=1e8)  # per minute fine, the 1d total not
    agg = StreamingBarAggregator(TFS)
    agg.on_batch(spread)
    with pytest.raises(BarOverflowError):
        agg.bars()


def test_per_tick_accepts_numpy_integer_timestamps_like_python_ints():
    ticks = _one_symbol_ticks(8, n=300)
    py, npy = StreamingBarAggregator(TFS), StreamingBarAggregator(TFS)
    for r in ticks.itertuples(index=False):
        py.on_tick(r.symbol, r.ts.value, r.price, r.size)
        npy.on_tick(r.symbol, np.int64(r.ts.value), r.price, r.size)
    npy.drain_updates()  # the minute cache reset, then more numpy stamps
    for r in ticks.iloc[:20].itertuples(index=False):
        py.on_tick(r.symbol, r.ts.value, r.price, r.size)
        npy.on_tick(r.symbol, np.int64(r.ts.value), r.price, r.size)
    pd.testing.assert_frame_equal(py.bars(), npy.bars())
