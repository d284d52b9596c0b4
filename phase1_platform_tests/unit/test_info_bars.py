"""Information-driven bars (``t<N>``, ``v<V>``, ``d<X>``): threshold semantics, the
timeframe names, the canonical CSV form, and DESIGN section 6 as hypothesis properties
(shuffled input, any micro-batch split, per tick, late ticks restating later bars)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase1_platform.core import (
    BarEngine,
    CanonicalExporter,
    StreamingBarAggregator,
    TickNormalizer,
    get_rules,
    read_canonical_csv,
)
from phase1_platform.core.errors import ConfigError
from phase1_platform.core.rules import EligibilityRules
from phase1_platform.core.schema import QTY_SCALE
from phase1_platform.core.timeframes import parse_timeframes
from phase1_platform_tests.support.hypothesis_ci import bounded

OPEN = pd.Timestamp("2013-10-07T13:30:00Z").value  # the session of Monday 2013-10-07
CLOSE = pd.Timestamp("2013-10-07T20:00:00Z").value
NEXT_OPEN = pd.Timestamp("2013-10-08T13:30:00Z").value
SECOND = 10**9
INFO = "t3,v500,d40000"
ODD_LOTS_NO_VOLUME = EligibilityRules(name="odd-lots-no-volume",
                                      exclude_from_volume=frozenset({"I"}))
ODD_LOTS_NO_PRICE = EligibilityRules(name="odd-lots-no-price",
                                     exclude_from_price=frozenset({"I"}))


def ticks_of(rows, symbol="SPY") -> pd.DataFrame:
    """Canonical ticks of (ts ns, price, size[, conditions]) rows."""
    raw = pd.DataFrame({
        "timestamp": np.array([r[0] for r in rows], dtype="int64"),
        "symbol": symbol,
        "price": [float(r[1]) for r in rows],
        "size": [float(r[2]) for r in rows],
        "conditions": [r[3] if len(r) > 3 else "" for r in rows],
    })
    return TickNormalizer().normalize(raw, source="t").ticks


def build(rows, timeframes, rules=None) -> pd.DataFrame:
    return BarEngine(rules=rules or get_rules("default")).build(ticks_of(rows), timeframes)


def summary(bars: pd.DataFrame) -> list[tuple]:
    return [(r.ts, r.open, r.high, r.low, r.close, r.qty // QTY_SCALE, r.trade_count)
            for r in bars.itertuples()]


# --- names -------------------------------------------------------------------------------

def test_names_parse_and_sort_after_time_bars():
    tfs = parse_timeframes("d1000000,t1000,1d,v50000,1m,t5")
    assert [t.name for t in tfs] == ["1m", "1d", "t5", "t1000", "v50000", "d1000000"]
    assert [t.threshold for t in tfs[2:]] == [5, 1000, 50000, 1000000]


@pytest.mark.parametrize("bad, says", [
    ("t0", "t0: the threshold must be a whole number >= 1"),
    ("v-5", "v-5: the threshold after 'v' must be a whole number >= 1"),
    ("dabc", "dabc: the threshold after 'd' must be a whole number >= 1"),
    ("t007", "without leading zeros"),
    ("v99999999999999", "above 92,233,720,368"),
    ("2m", "unknown timeframe 2m"),
])
def test_bad_names_are_config_errors(bad, says):
    with pytest.raises(ConfigError, match=says) as err:
        parse_timeframes(f"1m,{bad}")
    assert "\n" not in str(err.value)


# --- threshold semantics -----------------------------------------------------------------

def test_tick_bars_close_every_n_counted_trades_and_the_last_one_stays_open():
    rows = [(OPEN + i * SECOND, 100 + i, 100) for i in range(7)]
    bars = build(rows, "t3")
    assert summary(bars) == [
        (OPEN, 100, 102, 100, 102, 300, 3),
        (OPEN + 3 * SECOND, 103, 105, 103, 105, 300, 3),
        (OPEN + 6 * SECOND, 106, 106, 106, 106, 100, 1),  # open: fewer than 3 trades
    ]


def test_a_trade_crossing_the_threshold_closes_the_bar_unsplit_and_the_next_starts_at_zero():
    rows = [(OPEN + SECOND, 10, 300), (OPEN + 2 * SECOND, 11, 400),  # 700 >= 500: closes
            (OPEN + 3 * SECOND, 12, 100), (OPEN + 4 * SECOND, 13, 400),  # 500: reaches
            (OPEN + 5 * SECOND, 14, 2000),  # alone above 500: a bar of its own
            (OPEN + 6 * SECOND, 15, 100)]
    assert [(b[0], b[5], b[6]) for b in summary(build(rows, "v500"))] == [
        (OPEN + SECOND, 700, 2), (OPEN + 3 * SECOND, 500, 2), (OPEN + 5 * SECOND, 2000, 1),
        (OPEN + 6 * SECOND, 100, 1)]


def test_value_bars_count_price_times_size():
    rows = [(OPEN + SECOND, 100, 150), (OPEN + 2 * SECOND, 100, 100),  # 25,000
            (OPEN + 3 * SECOND, 200, 100)]  # 20,000: closes d40000 at 45,000
    bars = build(rows, "d40000")
    assert [(b[0], b[6]) for b in summary(bars)] == [(OPEN + SECOND, 3)]
    assert bars["notional"].iloc[0] == 45_000 * 10**6


def test_sessions_cut_bars_and_ticks_outside_sessions_make_none():
    rows = [(OPEN - SECOND, 1, 100),  # pre-market: no information-driven bar
            (OPEN, 2, 100), (OPEN + SECOND, 3, 100),
            (CLOSE - 1, 4, 100),  # last tick of the session: the bar stays open
            (CLOSE, 5, 100),  # after the close
            (NEXT_OPEN, 6, 100)]  # the next session starts a new bar
    assert [(b[0], b[6]) for b in summary(build(rows, "t2"))] == [
        (OPEN, 2), (CLOSE - 1, 1), (NEXT_OPEN, 1)]


def test_ticks_that_do_not_count_in_volume_move_prices_but_count_toward_nothing():
    rows = [(OPEN + SECOND, 10, 100), (OPEN + 2 * SECOND, 99, 50, "I"),
            (OPEN + 3 * SECOND, 11, 100), (OPEN + 4 * SECOND, 12, 100)]
    bars = build(rows, "t2,v200", ODD_LOTS_NO_VOLUME)
    # the odd lot sets the high of the bar open at its position, not its count or volume
    assert summary(bars) == [(OPEN + SECOND, 10, 99, 10, 11, 200, 2),
                             (OPEN + 4 * SECOND, 12, 12, 12, 12, 100, 1),
                             (OPEN + SECOND, 10, 99, 10, 11, 200, 2),
                             (OPEN + 4 * SECOND, 12, 12, 12, 12, 100, 1)]


def test_a_segment_without_a_price_setting_tick_makes_no_bar():
    rows = [(OPEN + SECOND, 10, 100), (OPEN + 2 * SECOND, 11, 100, "I"),
            (OPEN + 3 * SECOND, 12, 100)]
    bars = build(rows, "t1", ODD_LOTS_NO_PRICE)
    assert [b[0] for b in summary(bars)] == [OPEN + SECOND, OPEN + 3 * SECOND]


def test_bars_sharing_a_first_trade_time_keep_their_tick_order_in_the_csv():
    rows = [(OPEN + SECOND, 10, 100), (OPEN + SECOND, 11, 100), (OPEN + SECOND, 12, 100)]
    bars = build(rows, "1m,t1")
    text = CanonicalExporter(bars).to_bytes().decode().splitlines()
    assert text[1].startswith("SPY,1m,2013-10-07T13:30:00Z,10,")
    assert [line.split(",")[3] for line in text[2:]] == ["10", "11", "12"]
    assert {line.split(",")[2] for line in text[2:]} == {"2013-10-07T13:30:01.000000000Z"}


def test_canonical_csv_round_trip(tmp_path):
    bars = build([(OPEN + 123_456_789, 10.5, 100), (OPEN + SECOND, 11, 250)], "1m,1d,t1,v100")
    path = tmp_path / "bars.csv"
    CanonicalExporter(bars).write(path)
    back = read_canonical_csv(path)
    assert back["ts"].tolist() == bars["ts"].tolist()
    assert "2013-10-07T13:30:00.123456789Z" in path.read_text()


# --- determinism (DESIGN section 6) ------------------------------------------------------

SETTINGS = bounded(25)


@st.composite
def session_ticks(draw, max_size=60):
    """Ticks of two symbols around and inside the 2013-10-07 session, with repeated
    timestamps (the canonical order's tie-breakers decide), sizes 0 included."""
    n = draw(st.integers(1, max_size))
    offsets = draw(st.lists(st.one_of(st.integers(-5, 40), st.integers(-600, 24_000)),
                            min_size=n, max_size=n))
    return pd.DataFrame({
        "timestamp": np.array([OPEN + o * SECOND for o in offsets], dtype="int64"),
        "symbol": draw(st.lists(st.sampled_from(["AAPL", "SPY"]), min_size=n, max_size=n)),
        "price": [p / 100 for p in draw(st.lists(st.integers(9_000, 11_000), min_size=n,
                                                 max_size=n))],
        "size": draw(st.lists(st.sampled_from([0.0, 1.0, 100.0, 250.0, 700.0, 0.5]),
                              min_size=n, max_size=n)),
        "conditions": draw(st.lists(st.sampled_from(["", "I", "@"]), min_size=n, max_size=n)),
        "sequence": draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)),
    })


rule_sets = st.sampled_from([get_rules("default"), get_rules("lean-future"),
                             ODD_LOTS_NO_VOLUME, ODD_LOTS_NO_PRICE])
TIMEFRAMES = "1m,1d,t1,t3,v500,d40000"


def batch_hash(ticks: pd.DataFrame, rules) -> str:
    return CanonicalExporter(BarEngine(rules=rules).build(ticks, TIMEFRAMES)).compute_hash()


def normalized(raw: pd.DataFrame) -> pd.DataFrame:
    return TickNormalizer().normalize(raw, source="gen").ticks


@SETTINGS
@given(raw=session_ticks(), rules=rule_sets, seed=st.integers(0, 2**32 - 1))
def test_shuffled_input_gives_identical_bars(raw, rules, seed):
    ticks = normalized(raw)
    shuffled = ticks.iloc[np.random.default_rng(seed).permutation(len(ticks))]
    assert batch_hash(shuffled.reset_index(drop=True), rules) == batch_hash(ticks, rules)


@SETTINGS
@given(raw=session_ticks(), rules=rule_sets, seed=st.integers(0, 2**32 - 1),
       cuts=st.lists(st.integers(0, 60), max_size=6))
def test_any_micro_batch_split_and_per_tick_streaming_equal_the_batch(raw, rules, seed, cuts):
    ticks = normalized(raw)
    arrival = ticks.iloc[np.random.default_rng(seed).permutation(len(ticks))].reset_index(
        drop=True)
    want = batch_hash(ticks, rules)
    batches = StreamingBarAggregator(TIMEFRAMES, rules=rules)
    bounds = sorted({0, len(arrival), *[c for c in cuts if c < len(arrival)]})
    for a, z in zip(bounds[:-1], bounds[1:], strict=True):
        batches.on_batch(arrival.iloc[a:z])
    assert CanonicalExporter(batches.bars()).compute_hash() == want
    per_tick = StreamingBarAggregator(TIMEFRAMES, rules=rules)
    for r in arrival.itertuples():
        per_tick.on_tick(r.symbol, int(r.ts.value), float(r.price), float(r.size),
                         r.conditions, int(r.sequence), r.trade_id, r.source, int(r.source_row))
    assert CanonicalExporter(per_tick.bars()).compute_hash() == want


@SETTINGS
@given(raw=session_ticks(max_size=40), rules=rule_sets, late=st.integers(1, 5))
def test_late_ticks_restate_every_later_bar_of_their_session(raw, rules, late):
    """Ticks arriving in canonical order, then a few that belong among them (late):
    after the drains, the bars kept (earlier drains overwritten by each restated span)
    equal the batch bars of everything seen."""
    ticks = normalized(raw)
    late_rows = ticks.iloc[np.random.default_rng(late).choice(
        len(ticks), min(late, len(ticks)), replace=False)]
    first = ticks.drop(late_rows.index)
    agg = StreamingBarAggregator("t1,t3,v500,d40000", rules=rules)
    shown = pd.DataFrame()
    for part in (first, late_rows.iloc[:1], late_rows.iloc[1:]):
        agg.on_batch(part.reset_index(drop=True))
        shown = apply_drain(shown, agg.drain_changes())
    want = BarEngine(rules=rules).build(ticks, "t1,t3,v500,d40000")
    assert CanonicalExporter(shown).to_bytes() == CanonicalExporter(want).to_bytes()


def apply_drain(shown: pd.DataFrame, changes) -> pd.DataFrame:
    """What a consumer of drains keeps: each restated span's bars replace the span's."""
    if len(shown):
        drop = np.zeros(len(shown), dtype=bool)
        for r in changes.restated.itertuples():
            drop |= ((shown["symbol"] == r.symbol) & (shown["timeframe"] == r.timeframe)
                     & (shown["ts"] >= r.ts) & (shown["ts"] < r.until)).to_numpy(bool)
        shown = shown[~drop]
    return pd.concat([shown, changes.bars], ignore_index=True) if len(shown) else changes.bars


def test_a_late_tick_restates_the_later_bars_of_its_session_only():
    rows = [(OPEN + i * SECOND, 100 + i, 100) for i in range(1, 10)]
    agg = StreamingBarAggregator("t3")
    agg.on_batch(ticks_of(rows))
    agg.drain_changes()
    agg.on_batch(ticks_of([(OPEN + 4 * SECOND + 1, 50, 100)]))  # inside the second bar
    changes = agg.drain_changes()
    assert changes.restated[["ts"]].to_numpy().ravel().tolist() == [OPEN + 4 * SECOND]
    assert [b[0] for b in summary(changes.bars)] == [OPEN + 4 * SECOND, OPEN + 6 * SECOND,
                                                     OPEN + 9 * SECOND]
    assert summary(agg.bars()) == summary(build(rows + [(OPEN + 4 * SECOND + 1, 50, 100)],
                                                "t3"))
