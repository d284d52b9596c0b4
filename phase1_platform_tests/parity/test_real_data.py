"""Parity against LEAN's own bars on real data (../shared/data, skipped when absent).

Figures measured on 2013-10-07: SPY (250,601 trades, 828 LEAN minute bars), AIG, BAC, IBM
and COMEX gold December 2013 (GCZ13, 1,314 minute bars); see ``core/rules.py`` for the rule
sets and where in LEAN each rule comes from, and the README section "Why our bar differs
from the vendor's" for the categories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from phase1_platform.core import BarEngine, TickNormalizer, get_rules
from phase1_platform.core.parity import UNEXPLAINED, BarComparator
from phase1_platform.core.parity.explain import Categorizer
from phase1_platform.core.parity.labels import (
    AUCTION_VOLUME,
    CLOSING_AUCTION,
    LAST_PRINT,
    OPENING_AUCTION,
    VENDOR_ONLY_VOLUME,
)
from phase1_platform.readers import read_lean_bars, read_lean_ticks
from phase1_platform_tests.conftest import shared_file

# LEAN's own layout: <asset>/<market>/<resolution>/<symbol>/<YYYYMMDD>_trade.zip
SPY_TICKS = "lean/equity/usa/tick/spy/20131007_trade.zip"
SPY_MINUTE = "lean/equity/usa/minute/spy/20131007_trade.zip"
SPY_SECOND = "lean/equity/usa/second/spy/20131007_trade.zip"
SPY_DAILY = "lean/equity/usa/daily/spy.zip"
GC_TICKS = "lean/future/comex/tick/gc/20131007_trade.zip"
GC_MINUTE = "lean/future/comex/minute/gc/20131007_trade.zip"

pytestmark = pytest.mark.realdata

AUCTION_OPEN = "auction/official open-close print (OpeningPrints, OfficialOpen)"
AUCTION_CLOSE = "auction/official open-close print (ClosingPrints, OfficialClose)"
SWEEP = "condition treated differently by vendor: IntermarketSweep"
FORM_T = "condition treated differently by vendor: ExtendedHours"


def ns(stamp: str) -> int:
    return pd.Timestamp(stamp).value


@pytest.fixture(scope="module")
def spy_ticks() -> pd.DataFrame:
    return TickNormalizer().normalize(read_lean_ticks(shared_file(SPY_TICKS))).ticks


@pytest.fixture(scope="module")
def spy_minute() -> pd.DataFrame:
    return read_lean_bars(shared_file(SPY_MINUTE))


@pytest.fixture(scope="module")
def gc_ticks() -> pd.DataFrame:
    raw = read_lean_ticks(shared_file(GC_TICKS), contract="201312")
    return TickNormalizer().normalize(raw).ticks


def compare(ticks, reference, rules, timeframes="1m"):
    rule_set = get_rules(rules)
    gen = BarEngine(rules=rule_set).build(ticks, timeframes)
    tf = reference["timeframe"].iloc[0]
    return BarComparator().compare(gen[gen["timeframe"] == tf], reference, ticks=ticks,
                                   rules=rule_set)


def ohlc_identical(rep) -> int:
    price_bad = rep.mismatches["fields"].map(
        lambda f: any(x in f.split(",") for x in ("open", "high", "low", "close")))
    return rep.compared - int(price_bad.sum())


def detail_at(rep, stamp: str) -> dict[str, str]:
    row = rep.mismatches[rep.mismatches["ts"] == ns(stamp)]
    assert len(row) == 1, f"no mismatch at {stamp}"
    return row.iloc[0]["detail"]


def assert_all_categorized(rep):
    for detail in rep.mismatches["detail"]:
        assert detail and all(isinstance(v, str) and v for v in detail.values())
    assert set(rep.mismatches["fields"].map(lambda f: tuple(f.split(",")))) == set(
        rep.mismatches["detail"].map(lambda d: tuple(d)))


def test_spy_1m_default_rules(spy_ticks, spy_minute):
    rep = compare(spy_ticks, spy_minute, "default")
    assert rep.compared == 828
    assert len(rep.missing_in_generated) == len(rep.missing_in_reference) == 0
    # README baselines: OHLC identical in about 84% (697) of 828 minutes, volume in 825
    assert ohlc_identical(rep) >= 697
    assert rep.field_matched["volume"] >= 825
    assert rep.field_matched == {"open": 795, "high": 785, "low": 778, "close": 785,
                                 "volume": 825}
    assert_all_categorized(rep)
    # the auction and official prints are out of LEAN's minute volume
    assert detail_at(rep, "2013-10-07T20:00:00Z") == {"volume": AUCTION_CLOSE}
    open_bar = detail_at(rep, "2013-10-07T13:30:00Z")
    assert open_bar["volume"].startswith(AUCTION_OPEN + " (approximately")
    # LEAN opens the session at the opening auction price (Arca's OpeningPrints at 167.43)
    assert open_bar["open"] == OPENING_AUCTION
    # the 1,002,411-share average-price print at 168.90 (13:07 New York)
    assert detail_at(rep, "2013-10-07T17:07:00Z") == {
        "high": "condition treated differently by vendor: AveragePrice"}
    # LEAN's 15:59 bar holds the closing auction print (stamped 16:00:00.726)
    last = detail_at(rep, "2013-10-07T19:59:00Z")
    assert last["close"] == last["volume"] == CLOSING_AUCTION
    cats = rep.category_counts
    assert cats[SWEEP] >= 90
    assert cats["condition treated differently by vendor: DerivativelyPriced"] >= 25
    assert cats["condition treated differently by vendor: AveragePrice"] >= 10
    assert cats.get(UNEXPLAINED, 0) == 0


# 2013-10-07 under lean-equity (LEAN's documented condition status, core/rules.py):
# symbol: (LEAN minute bars, bars identical in all five fields, fields matched). Before
# (the masks fitted to SPY): SPY 726, AIG 300, BAC 569, IBM 256 identical.
LEAN_EQUITY = {
    "SPY": (828, 826, {"open": 827, "high": 828, "low": 828, "close": 827, "volume": 826}),
    "AIG": (433, 430, {"open": 432, "high": 433, "low": 432, "close": 432, "volume": 431}),
    "BAC": (595, 593, {"open": 594, "high": 595, "low": 595, "close": 594, "volume": 593}),
    "IBM": (453, 450, {"open": 451, "high": 453, "low": 452, "close": 452, "volume": 451}),
}
AUCTION_OPEN_CLOSE = "auction/official open-close print"
# every category a remaining difference may carry: each says why
NAMED = (OPENING_AUCTION, CLOSING_AUCTION, AUCTION_VOLUME, VENDOR_ONLY_VOLUME, LAST_PRINT)


def equity(symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    sym = symbol.lower()
    raw = read_lean_ticks(shared_file(f"lean/equity/usa/tick/{sym}/20131007_trade.zip"))
    ticks = TickNormalizer().normalize(raw).ticks
    ref = read_lean_bars(shared_file(f"lean/equity/usa/minute/{sym}/20131007_trade.zip"))
    assert set(ref["symbol"]) == set(ticks["symbol"]) == {symbol}
    return ticks, ref


def assert_named(rep):
    """No mismatch left uncategorized, and every category one of the named reasons."""
    assert_all_categorized(rep)
    cats = set(rep.category_counts)
    assert UNEXPLAINED not in cats
    assert all(c in NAMED or c.startswith(AUCTION_OPEN_CLOSE) for c in cats), cats
    assert all(r.category != UNEXPLAINED for df in (rep.missing_in_generated,
                                                     rep.missing_in_reference)
               for r in df.itertuples())


@pytest.mark.parametrize("symbol", sorted(LEAN_EQUITY))
def test_equities_1m_lean_equity_rules(symbol):
    bars, matched, fields = LEAN_EQUITY[symbol]
    ticks, ref = equity(symbol)
    rep = compare(ticks, ref, "lean-equity")
    assert rep.compared == bars == len(ref)
    assert len(rep.missing_in_generated) == len(rep.missing_in_reference) == 0
    assert rep.matched >= matched and rep.matched >= 0.95 * bars  # issue 13's target
    assert rep.field_matched == fields
    assert_named(rep)
    # what remains is the listing market's auction prints where LEAN puts them
    session_open, last_minute = ns("2013-10-07T13:30:00Z"), ns("2013-10-07T19:59:00Z")
    close_of_session = ns("2013-10-07T20:00:00Z")
    at = dict(zip(rep.mismatches["ts"], rep.mismatches["detail"], strict=True))
    assert at[last_minute]["close"] == CLOSING_AUCTION
    for ts, detail in at.items():
        if ts == session_open:
            assert detail.get("open", OPENING_AUCTION) == OPENING_AUCTION
        elif ts not in (last_minute, close_of_session):
            assert detail == {"volume": VENDOR_ONLY_VOLUME}  # AIG 13:46: +1,500 shares
    default = compare(ticks, ref, "default")
    assert rep.matched > default.matched


def test_spy_1m_lean_equity_rules(spy_ticks, spy_minute):
    rep = compare(spy_ticks, spy_minute, "lean-equity")
    assert rep.matched == 826
    # 09:30: Arca's opening auction price, and one of its opening prints (1,750 shares)
    assert detail_at(rep, "2013-10-07T13:30:00Z") == {"open": OPENING_AUCTION,
                                                      "volume": AUCTION_VOLUME}
    # 15:59: Arca's closing auction print (3,500 @ 167.42, stamped 16:00:00.726)
    assert detail_at(rep, "2013-10-07T19:59:00Z") == {"close": CLOSING_AUCTION,
                                                      "volume": CLOSING_AUCTION}


def test_regular_session_sweeps_set_no_lean_price(spy_ticks):
    """LEAN's table: IntermarketSweep is Excluded unless an Included flag (ExtendedHours
    here) comes with it."""
    rules = get_rules("lean-equity")
    assert rules.judge("IntermarketSweep TradeThroughExempt") == (False, True)
    assert rules.judge("IntermarketSweep") == (False, True)
    assert rules.judge("IntermarketSweep ExtendedHours TradeThroughExempt") == (True, True)
    assert rules.judge("Regular TradeThroughExempt") == (True, True)
    assert rules.judge("OpeningPrints TradeThroughExempt") == (True, False)
    assert rules.judge("Suspicious") == (False, True)


def test_lean_equity_beats_default(spy_ticks, spy_minute):
    default = compare(spy_ticks, spy_minute, "default")
    lean = compare(spy_ticks, spy_minute, "lean-equity")
    assert lean.matched > default.matched
    for f in ("open", "high", "low", "close", "volume"):
        assert lean.field_matched[f] >= default.field_matched[f]


def test_gc_dec_2013_1m(gc_ticks):
    ref = read_lean_bars(shared_file(GC_MINUTE), contract="201312")
    assert set(ref["symbol"]) == {"GCZ13"} and len(ref) == 1314
    # LEAN's futures files are in UTC (its market-hours database: Future-comex-[*]
    # dataTimeZone UTC): the file of 2013-10-07 holds 00:00..23:59 UTC
    assert ref["ts"].min() >= ns("2013-10-07T00:00:00Z")
    assert ref["ts"].max() == ns("2013-10-07T23:59:00Z")
    assert gc_ticks["ts"].max() < pd.Timestamp("2013-10-08T00:00:00Z")
    lean = compare(gc_ticks, ref, "lean-future")
    assert lean.compared == 1314 and lean.matched >= 1313  # 99.9%
    (detail,) = lean.mismatches["detail"]
    # the day's last minute, volume only: the file's last print is not in LEAN's bar
    assert detail == {"volume": LAST_PRINT}
    assert lean.mismatches["ts"].tolist() == [ns("2013-10-07T23:59:00Z")]
    assert_named(lean)
    default = compare(gc_ticks, ref, "default")
    assert default.matched == 1310  # README: without zero-size rows 1310 of 1314
    cats = default.category_counts
    assert cats["zero-size print"] == 3
    assert_all_categorized(default)


def test_spy_daily(spy_ticks):
    ref = read_lean_bars(shared_file(SPY_DAILY), start="2013-10-07", end="2013-10-07")
    assert len(ref) == 1
    assert ref[["open", "high", "low", "close", "volume"]].iloc[0].tolist() == [
        167.43, 168.45, 167.25, 167.42, 81489219.0]
    lean = compare(spy_ticks, ref, "lean-equity", timeframes="1m,1d")
    assert lean.compared == 1 and lean.field_compared["open"] == 1
    assert lean.field_matched["high"] == 1 and lean.field_matched["low"] == 1
    detail = lean.mismatches.iloc[0]["detail"]
    # the daily bar opens at the opening auction, closes with the closing auction print
    # (16:00:00.726) and counts 1,750 + 3,500 shares of those auctions
    assert detail == {"open": OPENING_AUCTION, "close": CLOSING_AUCTION,
                      "volume": AUCTION_VOLUME}
    assert lean.mismatches.iloc[0]["generated_volume"] == 81489219 - 5250
    default = compare(spy_ticks, ref, "default", timeframes="1m,1d")
    d = default.mismatches.iloc[0]["detail"]
    assert d["high"] == "condition treated differently by vendor: AveragePrice"
    assert d["volume"].startswith(AUCTION_OPEN)
    # the daily bar equals the regular-session aggregate of LEAN's minute bars
    minute = read_lean_bars(shared_file(SPY_MINUTE))
    session = minute[(minute["ts"] >= ns("2013-10-07T13:30:00Z"))
                     & (minute["ts"] < ns("2013-10-07T20:00:00Z"))]
    assert session["volume"].sum() == 81489219
    assert session["high"].max() == 168.45 and session["low"].min() == 167.25


def test_spy_second_bars_roll_up_to_leans_minutes():
    """LEAN's second bars, rolled up to 1m: OHLC identical to LEAN's minutes in 828 of 828;
    volume in 770 (LEAN's second and minute volumes leave out different prints)."""
    seconds = read_lean_bars(shared_file(SPY_SECOND))
    minutes = read_lean_bars(shared_file(SPY_MINUTE))
    rep = BarComparator().compare(seconds, minutes)
    assert rep.compared == 828 and len(rep.missing_in_reference) == 0
    assert all(rep.field_matched[f] == 828 for f in ("open", "high", "low", "close"))
    assert rep.field_matched["volume"] >= 770


# Other days: point PHASE1_LEAN_DATA at a LEAN ``Data/`` folder (LEAN's repository holds
# 2013-10-08..11 of these symbols) and every equity day in it is checked against the same
# targets; skipped without it. Measured on those four days: SPY 99.7%, AIG 99.4%, BAC 99.7%,
# IBM 99.4% over the five days, no mismatch uncategorized.
OTHER_DAYS = os.environ.get("PHASE1_LEAN_DATA", "")


def _other_days() -> list[tuple[str, str]]:
    root = Path(OTHER_DAYS) / "equity" / "usa" / "tick" if OTHER_DAYS else None
    if root is None or not root.is_dir():
        return []
    out = []
    for sym in sorted(LEAN_EQUITY):
        for z in sorted((root / sym.lower()).glob("*_trade.zip")):
            out.append((sym, z.name[:8]))
    return out


@pytest.mark.skipif(not _other_days(), reason="set PHASE1_LEAN_DATA to a LEAN Data/ folder")
@pytest.mark.parametrize("symbol,day", _other_days() or [("SPY", "20131007")])
def test_lean_equity_on_other_days(symbol, day):
    root = Path(OTHER_DAYS) / "equity" / "usa"
    minute = root / "minute" / symbol.lower() / f"{day}_trade.zip"
    if not minute.exists():
        pytest.skip(f"no LEAN minute bars for {symbol} {day}")
    raw = read_lean_ticks(root / "tick" / symbol.lower() / f"{day}_trade.zip")
    ticks = TickNormalizer().normalize(raw).ticks
    ref = read_lean_bars(minute)
    rep = compare(ticks, ref, "lean-equity")
    assert rep.matched >= 0.95 * len(ref)
    assert_named(rep)


def test_lean_equity_streaming_equals_batch_on_real_ticks():
    """The new lean-equity entries judge alike on both paths: shuffled micro-batches of IBM's
    real day give the batch export byte for byte."""
    import numpy as np

    from phase1_platform.core import CanonicalExporter, StreamingBarAggregator

    ticks, _ = equity("IBM")
    rules = get_rules("lean-equity")
    batch = BarEngine(rules=rules).build(ticks, "1m,5m,1h,1d")
    agg = StreamingBarAggregator(timeframes="1m,5m,1h,1d", rules=rules)
    order = np.random.default_rng(13).permutation(len(ticks))
    for chunk in np.array_split(order, 29):
        agg.on_batch(ticks.iloc[np.sort(chunk)])
    assert CanonicalExporter(agg.bars()).compute_hash() == CanonicalExporter(batch).compute_hash()


@pytest.mark.parametrize("data,rules,timeframes", [
    ("spy", "default", "1m"), ("spy", "lean-equity", "1m"), ("spy", "default", "1m,1d"),
    ("spy", "lean-equity", "1m,1d"), ("gc", "lean-future", "1m"), ("gc", "default", "1m"),
])
def test_explanations_from_the_ticks_within_reach_equal_those_from_all(
        data, rules, timeframes, spy_ticks, spy_minute, gc_ticks):
    """``compare`` prepares only the ticks within reach of the bars it explains; every
    explanation (mismatched bars, bars missing on either side) is the one a categorizer
    of all the day's ticks gives, including the data's last print (GC)."""
    if data == "spy":
        ticks = spy_ticks
        ref = (read_lean_bars(shared_file(SPY_DAILY), start="2013-10-07", end="2013-10-07")
               if "1d" in timeframes else spy_minute)
    else:
        ticks, ref = gc_ticks, read_lean_bars(shared_file(GC_MINUTE), contract="201312")
    rep = compare(ticks, ref, rules, timeframes)
    explained = len(rep.mismatches) + len(rep.missing_in_generated) + len(
        rep.missing_in_reference)
    assert explained > 0
    every_tick = Categorizer(ticks, get_rules(rules), BarComparator())
    assert every_tick.sym_last_ts is None  # not a subset
    assert list(rep.mismatches["detail"]) == [
        every_tick.explain_bar(r) for r in rep.mismatches.itertuples(index=False)]
    assert list(rep.missing_in_generated["category"]) == [
        every_tick.explain_missing_generated(r)
        for r in rep.missing_in_generated.itertuples(index=False)]
    assert list(rep.missing_in_reference["category"]) == [
        every_tick.explain_missing_reference(r)
        for r in rep.missing_in_reference.itertuples(index=False)]
    within = Categorizer(ticks, get_rules(rules), BarComparator(), explain=[
        (tf, int(ts)) for tf, ts in zip(rep.mismatches["timeframe"], rep.mismatches["ts"],
                                        strict=True)])
    assert within.sym_last_ts is not None and len(within.ts) < len(ticks)
