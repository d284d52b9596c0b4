"""BarComparator and ParityReport on small handmade bars and ticks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from phase1_platform.core import BarEngine, TickNormalizer
from phase1_platform.core.export import CANONICAL_COLUMNS
from phase1_platform.core.parity import (
    NO_TICKS,
    UNEXPLAINED,
    BarComparator,
    ParityInputError,
)
from phase1_platform.core.parity.labels import (
    AUCTION_VOLUME,
    CLOSING_AUCTION,
    LAST_PRINT,
    OPENING_AUCTION,
    VENDOR_ONLY_VOLUME,
)
from phase1_platform.core.rules import EligibilityRules, RuleSetError, get_rules

T0 = "2024-03-04T15:00:00Z"  # a Monday, 10:00 New York


def ns(stamp: str) -> int:
    return pd.Timestamp(stamp).value


def bars(*rows) -> pd.DataFrame:
    """rows: (ts, open, high, low, close, volume[, trade_count, vwap]); symbol AAA, 1m."""
    recs = []
    for r in rows:
        ts, o, h, lo, c, v, *rest = r
        tc, vw = (rest + [np.nan, np.nan])[:2]
        recs.append({"symbol": "AAA", "timeframe": "1m", "ts": ns(ts), "open": o, "high": h,
                     "low": lo, "close": c, "volume": v, "trade_count": tc, "vwap": vw})
    return pd.DataFrame(recs).astype(CANONICAL_COLUMNS)


def ticks(*rows) -> pd.DataFrame:
    """rows: (timestamp, price, size, conditions) for symbol AAA -> normalized ticks."""
    raw = pd.DataFrame(
        [{"timestamp": t, "symbol": "AAA", "price": str(p), "size": str(s), "conditions": c}
         for t, p, s, c in rows]
    )
    return TickNormalizer().normalize(raw).ticks


def test_identical_bars_are_parity():
    b = bars((T0, 10, 11, 9, 10.5, 100, 3, 10.2), ("2024-03-04T15:01:00Z", 10, 10, 10, 10, 5))
    rep = BarComparator().compare(b, b.copy())
    assert rep.is_parity
    assert (rep.compared, rep.matched, rep.mismatched) == (2, 2, 0)
    assert rep.match_pct == 100.0
    assert rep.field_matched["open"] == 2
    assert "result: PARITY" in rep.to_text()
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["is_parity"] is True and d["matched"] == 2


def test_price_tolerance_is_absolute():
    gen = bars((T0, 10, 11, 9, 10.5, 100))
    ref = bars((T0, 10, 11, 9, 10.505, 100))
    strict = BarComparator().compare(gen, ref)
    assert not strict.is_parity
    assert strict.field_mismatched == {"open": 0, "high": 0, "low": 0, "close": 1, "volume": 0}
    assert BarComparator(price_tolerance=0.01).compare(gen, ref).is_parity
    assert not BarComparator(price_tolerance=0.001).compare(gen, ref).is_parity


def test_volume_tolerance_is_relative_to_reference():
    gen = bars((T0, 10, 10, 10, 10, 1005))
    ref = bars((T0, 10, 10, 10, 10, 1000))
    assert not BarComparator().compare(gen, ref).is_parity
    assert BarComparator(volume_tolerance=0.01).compare(gen, ref).is_parity
    rep = BarComparator(volume_tolerance=0.001).compare(gen, ref)
    assert rep.field_mismatched["volume"] == 1
    assert rep.largest["volume"]["diff"].tolist() == [5.0]


def test_missing_on_each_side():
    gen = bars((T0, 10, 10, 10, 10, 1), ("2024-03-04T15:01:00Z", 10, 10, 10, 10, 1))
    ref = bars((T0, 10, 10, 10, 10, 1), ("2024-03-04T15:02:00Z", 10, 10, 10, 10, 1),
               ("2024-03-04T15:03:00Z", 10, 10, 10, 10, 1))
    rep = BarComparator().compare(gen, ref)
    assert rep.compared == 1 and rep.matched == 1
    assert len(rep.missing_in_reference) == 1
    assert rep.missing_in_reference["ts"].tolist() == [ns("2024-03-04T15:01:00Z")]
    assert len(rep.missing_in_generated) == 2
    assert not rep.is_parity
    assert rep.match_pct == pytest.approx(25.0)
    text = rep.to_text()
    assert "missing in generated: 2" in text and "missing in reference: 1" in text
    assert rep.to_dict()["missing_in_generated_bars"][0]["ts"] == "2024-03-04T15:02:00Z"


def test_per_field_counts_and_largest_differences():
    gen = bars((T0, 10, 12, 9, 11, 100), ("2024-03-04T15:01:00Z", 10, 11, 8, 10, 200),
               ("2024-03-04T15:02:00Z", 10, 11, 9, 10, 300))
    ref = bars((T0, 10, 11, 9, 11, 100), ("2024-03-04T15:01:00Z", 10, 11.5, 9, 10, 250),
               ("2024-03-04T15:02:00Z", 10, 11, 9, 10, 300))
    rep = BarComparator().compare(gen, ref)
    assert rep.field_mismatched == {"open": 0, "high": 2, "low": 1, "close": 0, "volume": 1}
    assert rep.matched == 1 and rep.mismatched == 2
    assert rep.largest["high"]["diff"].tolist() == [1.0, -0.5]  # worst first
    assert rep.mismatches["fields"].tolist() == ["high", "high,low,volume"]
    assert set(rep.mismatches["category"]) == {NO_TICKS}


def test_trade_count_and_vwap_only_where_both_sides_have_them():
    gen = bars((T0, 10, 10, 10, 10, 100, 3, 10.0))
    lean_like = bars((T0, 10, 10, 10, 10, 100))
    rep = BarComparator().compare(gen, lean_like)
    assert rep.is_parity and "trade_count" not in rep.field_compared
    other = bars((T0, 10, 10, 10, 10, 100, 4, 10.0))
    rep = BarComparator().compare(gen, other)
    assert rep.field_mismatched["trade_count"] == 1 and rep.field_mismatched["vwap"] == 0


def test_internal_bar_frame_is_accepted():
    t = ticks((f"{T0[:-1]}.100Z", 10, 100, ""), (f"{T0[:-1]}.200Z", 11, 50, ""))
    internal = BarEngine().build(t, "1m")
    ref = bars((T0, 10, 11, 10, 11, 150))
    assert BarComparator().compare(internal, ref).is_parity


def test_bad_inputs_raise_clear_errors():
    b = bars((T0, 10, 10, 10, 10, 1))
    with pytest.raises(ParityInputError, match="repeat"):
        BarComparator().compare(pd.concat([b, b]), b)
    with pytest.raises(ParityInputError, match="lack column"):
        BarComparator().compare(b.drop(columns=["volume"]), b)
    with pytest.raises(ParityInputError, match="tolerance"):
        BarComparator(price_tolerance=-1)
    with pytest.raises(RuleSetError):
        BarComparator().compare(b, b, rules="no-such-rules")


# --- categories ------------------------------------------------------------------------

def at(sec: float) -> str:
    return (pd.Timestamp(T0) + pd.Timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def categorize(tick_rows, ref_row, rules="default"):
    t = ticks(*tick_rows)
    gen = BarEngine(rules=get_rules(rules) if isinstance(rules, str) else rules).build(t, "1m")
    rep = BarComparator().compare(gen, bars(ref_row), ticks=t, rules=rules)
    assert rep.mismatched == 1
    return rep, rep.mismatches.iloc[0]["detail"]


def test_official_open_volume_is_an_auction_category():
    rows = [(at(0.1), 10.0, 100, "Regular"), (at(0.2), 10.0, 5000, "OfficialOpen"),
            (at(1), 10.2, 200, "Regular")]
    rep, detail = categorize(rows, (T0, 10.0, 10.2, 10.0, 10.2, 300))
    assert detail == {"volume": "auction/official open-close print (OfficialOpen)"}
    assert rep.category_counts == {"auction/official open-close print (OfficialOpen)": 1}


def test_sweep_at_the_open_is_a_condition_category():
    rows = [(at(0.1), 10.05, 100, "IntermarketSweep"), (at(0.2), 10.0, 100, "Regular"),
            (at(1), 10.02, 100, "Regular")]
    _, detail = categorize(rows, (T0, 10.0, 10.05, 10.0, 10.02, 300))
    assert detail == {"open": "condition treated differently by vendor: IntermarketSweep"}


def test_zero_size_print_category():
    rows = [(at(0.1), 10.0, 100, ""), (at(0.2), 10.5, 0, ""), (at(1), 10.1, 100, "")]
    _, detail = categorize(rows, (T0, 10.0, 10.5, 10.0, 10.1, 200))
    assert detail == {"high": "zero-size print"}
    # with the rule set that lets zero-size prints set prices the bars match
    t = ticks(*rows)
    gen = BarEngine(rules=get_rules("lean-future")).build(t, "1m")
    assert BarComparator().compare(gen, bars((T0, 10.0, 10.5, 10.0, 10.1, 200))).is_parity


def test_suspicious_and_odd_lot_categories():
    rows = [(at(0.1), 10.0, 100, ""), (at(0.2), 12.0, 100, "Suspicious"),
            (at(0.3), 9.0, 5, "OddLot"), (at(1), 10.1, 100, "")]
    _, detail = categorize(rows, (T0, 10.0, 10.1, 10.0, 10.1, 305))
    assert detail == {"high": "suspicious print", "low": "odd lot"}


def test_unexplained_mismatch():
    rows = [(at(0.1), 10.0, 100, "Regular"), (at(1), 10.1, 100, "Regular")]
    rep, detail = categorize(rows, (T0, 10.0, 10.1, 10.0, 10.3, 200))
    assert detail == {"close": UNEXPLAINED}
    assert rep.category_counts == {UNEXPLAINED: 1}


def test_closing_auction_print_of_the_next_bar():
    rows = [(at(1), 10.0, 100, ""), (at(50), 10.1, 100, ""),
            (at(60.7), 9.9, 35, "ClosingPrints"), (at(61), 10.0, 10, "")]
    t = ticks(*rows)
    gen = BarEngine().build(t, "1m")
    ref = bars((T0, 10.0, 10.1, 9.9, 9.9, 235), ("2024-03-04T15:01:00Z", 10.0, 10.0, 10.0,
                                                    10.0, 10))
    rep = BarComparator().compare(gen, ref, ticks=t)
    first, second = rep.mismatches["detail"]
    # the vendor closes the bar with the closing auction print reported after it
    assert first == {"low": CLOSING_AUCTION, "close": CLOSING_AUCTION,
                     "volume": CLOSING_AUCTION}
    # the next bar has the print the vendor moved: the auction print explains it
    assert set(second.values()) == {"auction/official open-close print (ClosingPrints)"}


def test_boundary_print_of_the_next_bar():
    rows = [(at(1), 10.0, 100, ""), (at(50), 10.1, 100, ""),
            (at(60.7), 9.9, 35, "Regular"), (at(61), 10.0, 10, "")]
    t = ticks(*rows)
    gen = BarEngine().build(t, "1m")
    ref = bars((T0, 10.0, 10.1, 9.9, 9.9, 235), ("2024-03-04T15:01:00Z", 10.0, 10.0, 10.0,
                                                    10.0, 10))
    rep = BarComparator().compare(gen, ref, ticks=t)
    first = rep.mismatches["detail"].iloc[0]
    assert set(first) == {"low", "close", "volume"}
    assert all(v.startswith("boundary print") and "Regular" in v for v in first.values())


def test_opening_auction_price_and_volume():
    rows = [(at(0.1), 10.1, 100, "Regular"), (at(2), 10.0, 500, "OpeningPrints"),
            (at(3), 10.05, 100, "Regular")]
    rules = EligibilityRules("t", exclude_from_volume=frozenset({"OpeningPrints"}))
    _, detail = categorize(rows, (T0, 10.0, 10.1, 10.0, 10.05, 700), rules=rules)
    assert detail == {"open": OPENING_AUCTION, "volume": AUCTION_VOLUME}


def test_last_print_and_vendor_only_volume():
    rows = [(at(1), 10.0, 1, ""), (at(2), 10.0, 2, ""), (at(3), 10.0, 3, "")]
    _, detail = categorize(rows, (T0, 10.0, 10.0, 10.0, 10.0, 3))
    assert detail == {"volume": LAST_PRINT}  # the data ends with a print the vendor lacks
    _, detail = categorize(rows, (T0, 10.0, 10.0, 10.0, 10.0, 1006))
    assert detail == {"volume": VENDOR_ONLY_VOLUME}  # more shares than any print holds
    # prices are never explained by volume-only categories
    _, detail = categorize(rows, (T0, 10.0, 10.3, 10.0, 10.0, 6))
    assert detail == {"high": UNEXPLAINED}


def test_last_print_of_the_bar_is_not_the_datas_when_trading_resumes_later():
    """The categorizer prepares only the ticks near the bars it explains; a bar whose
    last print ends that subset is still not the data's last print when the data goes on
    (here half an hour later, far outside the explained bar's reach)."""
    rows = [(at(1), 10.0, 1, ""), (at(2), 10.0, 2, ""), (at(3), 10.0, 3, ""),
            (at(1800), 10.0, 4, ""), (at(1801), 10.0, 7, "")]
    t = ticks(*rows)
    gen = BarEngine().build(t, "1m")
    later = pd.Timestamp(at(1800)).floor("min").strftime("%Y-%m-%dT%H:%M:%SZ")
    for minute, ref_volume, expected in ((T0, 3, UNEXPLAINED), (later, 4, LAST_PRINT)):
        one = gen[gen["ts"] == ns(minute)]
        rep = BarComparator().compare(one, bars((minute, 10.0, 10.0, 10.0, 10.0,
                                                 ref_volume)), ticks=t)
        assert rep.mismatches.iloc[0]["detail"] == {"volume": expected}


def test_repeated_identical_print_counted_once():
    rows = [(at(1), 10.0, 1, ""), (at(2), 10.0, 2, ""), (at(2), 10.0, 2, ""),
            (at(3), 10.0, 5, "")]
    _, detail = categorize(rows, (T0, 10.0, 10.0, 10.0, 10.0, 8))
    assert detail["volume"].startswith("repeated identical print")


def test_excluded_condition_the_vendor_keeps():
    rules = EligibilityRules("t", exclude_from_price=frozenset({"AveragePrice"}))
    rows = [(at(0.1), 10.0, 100, ""), (at(0.2), 11.0, 100, "AveragePrice"),
            (at(1), 10.1, 100, "")]
    _, detail = categorize(rows, (T0, 10.0, 11.0, 10.0, 10.1, 300), rules=rules)
    assert detail == {"high": "condition treated differently by vendor: AveragePrice"}


def test_missing_bar_categories():
    t = ticks((at(0.1), 10.0, 0, ""), (at(70), 10.0, 100, "Regular"))
    gen = BarEngine().build(t, "1m")  # no bar at T0: only a zero-size print there
    ref = bars((T0, 10.0, 10.0, 10.0, 10.0, 0))
    rep = BarComparator().compare(gen, ref, ticks=t)
    assert rep.missing_in_generated["category"].tolist() == ["zero-size print"]
    assert rep.missing_in_reference["category"].tolist() == [UNEXPLAINED]


def test_every_mismatch_has_a_category_and_dict_is_json():
    rows = [(at(0.1), 10.05, 100, "IntermarketSweep"), (at(0.2), 10.0, 100, "Regular"),
            (at(0.3), 10.0, 900, "OfficialOpen")]
    rep, _ = categorize(rows, (T0, 10.0, 10.05, 10.0, 10.0, 200))
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["mismatches"][0]["detail"] == {
        "open": "condition treated differently by vendor: IntermarketSweep",
        "volume": "auction/official open-close print (OfficialOpen)",
    }
    assert sum(d["categories"].values()) == 2


# --- rule entries ----------------------------------------------------------------------

def test_rule_entries_with_negation():
    rules = EligibilityRules(
        "t", exclude_from_price=frozenset({"AveragePrice !ExtendedHours", "Suspicious"}),
        exclude_from_volume=frozenset({"OfficialClose", "Suspicious"}))
    assert rules.judge("AveragePrice TradeThroughExempt") == (False, True)
    assert rules.judge("ExtendedHours AveragePrice") == (True, True)
    assert rules.judge("OfficialClose") == (True, False)
    assert rules.judge("Regular Suspicious") == (False, False)
    with pytest.raises(ValueError, match="must name"):
        EligibilityRules("bad", exclude_from_price=frozenset({"!ExtendedHours"}))
    price_ok, volume_ok = rules.evaluate(
        pd.Series(["AveragePrice", "ExtendedHours AveragePrice", "OfficialClose"]),
        np.array([1.0, 1.0, 0.0]),
    )
    assert price_ok.tolist() == [False, True, False]
    assert volume_ok.tolist() == [True, True, False]


def test_lean_equity_is_leans_condition_table():
    """QuantConnect's documented status: an Included flag wins; otherwise IntermarketSweep,
    TradeThroughExempt or OddLot keep a print out of prices; the auction and official
    open/close prints count in no volume."""
    from phase1_platform.core.rules import LEAN_BAR_EXCLUDED, LEAN_BAR_INCLUDED
    rules = get_rules("lean-equity")
    for flag in LEAN_BAR_EXCLUDED:
        assert rules.judge(flag)[0] is False
        for inc in LEAN_BAR_INCLUDED:
            assert rules.judge(f"{flag} {inc}")[0] is True
    assert rules.judge("IntermarketSweep TradeThroughExempt") == (False, True)
    assert rules.judge("IntermarketSweep ExtendedHours TradeThroughExempt") == (True, True)
    assert rules.judge("AveragePrice") == (True, True)  # neither Included nor Excluded
    assert rules.judge("OfficialClose") == (True, False)
    assert rules.judge("Regular Suspicious") == (False, True)  # in LEAN's volume, no price


# ---------------------------------------------------------------- app.parity: the verdict
def _verdict(gen, ref, **thresholds):
    from phase1_platform.app.parity import ParityThresholds, judge
    from phase1_platform.core.partition import Partition

    t = ParityThresholds(**thresholds)
    report = t.comparator().compare(gen, ref)
    return judge(report, Partition("2024-03-04", "AAA"), "1m", "default", t)


def _minutes(n: int, close_bump: dict[int, float] | None = None) -> pd.DataFrame:
    bump = close_bump or {}
    start = pd.Timestamp(T0)
    rows = [((start + pd.Timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), 10, 11, 9,
             10.5 + bump.get(i, 0.0), 100) for i in range(n)]
    return bars(*rows)


def test_verdict_worst_rows_hold_the_largest_differences():
    """Defect 16: the check's worst_rows read a key the report never wrote (always {})."""
    gen = _minutes(4)
    v = _verdict(gen, _minutes(4, {1: 0.25, 3: 0.5}))
    assert v.compared and not v.report.is_parity
    worst = v.worst_rows
    assert list(worst) == ["close"]  # fields without a difference are left out
    assert [r["diff"] for r in worst["close"]] == [-0.5, -0.25]
    assert {"symbol", "timeframe", "ts", "generated", "reference"} <= set(worst["close"][0])
    assert _verdict(gen, gen.copy()).worst_rows == {}


def test_verdict_thresholds():
    gen, ref = _minutes(40), _minutes(40, {i: 0.25 for i in range(5)})  # 5 of 40 differ
    # uncategorized differences count as unexplained: 12.5% > 10% allowed
    v = _verdict(gen, ref)
    assert v.unexplained_bars == 5 and v.unexplained_pct == pytest.approx(12.5)
    assert v.match_pct_judged and not v.passed
    assert _verdict(gen, ref, max_unexplained_pct=15.0).passed  # 87.5% matched >= 75%
    assert not _verdict(gen, ref, max_unexplained_pct=15.0, min_match_pct=90.0).passed
    # with fewer bars than min_bars_for_match_pct, only the unexplained share is judged
    few = _verdict(gen, ref, max_unexplained_pct=15.0, min_match_pct=90.0,
                   min_bars_for_match_pct=41)
    assert not few.match_pct_judged and few.passed


def test_nothing_to_compare_passes_and_says_why():
    from phase1_platform.app.parity import ParityThresholds, not_compared
    from phase1_platform.core.partition import Partition

    v = not_compared(Partition("2024-03-04", "AAA"), "1m", ParityThresholds(), "none here")
    assert v.passed and not v.compared and v.worst_rows == {} and v.note == "none here"
