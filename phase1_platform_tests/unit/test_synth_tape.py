"""The synthetic tape of ``bench_scale``: its shape, determinism, and that the platform
reads every trade of it; the DuckDB baseline's SQL eligibility equals the rule sets'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.synth_tape import (
    EXTENDED_CONDITIONS,
    REGULAR_CONDITIONS,
    TapeShape,
    describe,
    generate,
    generate_slice,
    slices,
    symbol_names,
    trades_per_symbol,
)
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.partition import SYMBOL_PATTERN
from phase1_platform.core.rules import RULE_SETS

SMALL = TapeShape(ticks=30_000, symbols=60, seed=3)


def test_full_day_distribution_is_heavy_tailed_as_stated():
    counts = trades_per_symbol(TapeShape())
    got = describe(counts)
    assert got["ticks"] == 40_000_000 and got["symbols"] == 8_000
    assert 900_000 <= got["top"] <= 1_100_000  # the largest names: about 1M a day
    assert 2_000 <= got["median"] <= 5_000  # a few thousand
    assert got["smallest"] >= 1


def test_counts_sum_exactly_and_slices_cover_every_symbol_once():
    counts = trades_per_symbol(SMALL)
    assert counts.sum() == SMALL.ticks and counts.min() >= 1
    parts = slices(counts, 4_000, 7)
    assert parts[0].first == 0 and parts[-1].stop == SMALL.symbols
    assert all(a.stop == b.first for a, b in zip(parts, parts[1:], strict=False))
    assert all(p.stop - p.first <= 7 for p in parts)
    assert all(p.ticks <= 4_000 or p.stop - p.first == 1 for p in parts)
    assert sum(p.ticks for p in parts) == SMALL.ticks


def test_the_day_is_the_same_whatever_the_slicing():
    a = pd.concat([f for _, f in generate(SMALL, max_ticks=3_000, max_symbols=5)],
                  ignore_index=True)
    b = pd.concat([f for _, f in generate(SMALL, max_ticks=50_000, max_symbols=1_000)],
                  ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    other = generate_slice(TapeShape(ticks=30_000, symbols=60, seed=4),
                           trades_per_symbol(SMALL), slices(trades_per_symbol(SMALL), 10**9,
                                                             10**9)[0])
    assert not other["price"].equals(a["price"])  # the seed matters


def test_trades_look_like_the_tape_and_the_normalizer_accepts_every_one():
    counts = trades_per_symbol(SMALL)
    raw = generate_slice(SMALL, counts, slices(counts, 10**9, 10**9)[0])
    assert len(raw) == SMALL.ticks
    assert raw["symbol"].str.fullmatch(SYMBOL_PATTERN).all()
    assert raw.groupby("symbol").size().sort_index().tolist() == counts.tolist()
    local = raw["timestamp"].dt.tz_convert("America/New_York")
    minute = (local.dt.hour * 60 + local.dt.minute).to_numpy()
    assert minute.min() >= 4 * 60 and minute.max() < 20 * 60
    extended = (minute < 570) | (minute >= 960)
    assert 0.015 < extended.mean() < 0.045
    regular = minute[~extended] - 570
    edges = ((regular < 30) | (regular >= 360)).sum() / 60
    middle = ((regular >= 180) & (regular < 210)).sum() / 30
    assert edges > 2.5 * middle  # U-shaped: busier at the open and the close
    assert np.allclose(raw["price"] * 100, np.round(raw["price"] * 100))  # cent ticks
    size = raw["size"].to_numpy()
    assert 0.88 < (size % 100 == 0).mean() < 0.96 and (size < 100).any()
    odd = raw["conditions"].str.contains("OddLot").to_numpy()
    assert (odd == (size < 100)).all()
    plain = raw["conditions"].str.replace(" OddLot", "", regex=False)
    assert set(plain[extended]) <= set(EXTENDED_CONDITIONS)
    assert set(plain[~extended]) <= set(REGULAR_CONDITIONS)
    assert not raw.duplicated(["symbol", "trade_id"]).any()
    assert (raw["source_row"].to_numpy() == np.arange(len(raw))).all()

    result = TickNormalizer(window=trading_day_window(SMALL.day)).normalize(raw)
    assert result.rejected == 0 and len(result.ticks) == len(raw)


def test_symbol_names_are_distinct_and_sorted():
    names = symbol_names(8_000)
    assert len(set(names)) == 8_000 and list(names) == sorted(names)


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_duckdb_sql_eligibility_equals_the_rule_set(name):
    duckdb = pytest.importorskip("duckdb")
    from benchmarks.bench_scale import rules_sql

    rules = RULE_SETS[name]
    conditions = ["", "Regular", "Suspicious", "OddLot", "Regular OddLot",
                  "OpeningPrints TradeThroughExempt", "OfficialClose", "M", "T", "@ F", "F",
                  *REGULAR_CONDITIONS, *EXTENDED_CONDITIONS,
                  *(c + " OddLot" for c in REGULAR_CONDITIONS)]
    frame = pd.DataFrame({"conditions": conditions * 2,
                          "size": [100.0] * len(conditions) + [0.0] * len(conditions)})
    price_ok, volume_ok = rules_sql(rules)
    got = duckdb.sql(
        f"SELECT {price_ok} AS p, {volume_ok} AS v FROM "
        "(SELECT *, string_split(conditions, ' ') AS toks FROM frame)").df()
    want_p, want_v = rules.evaluate(frame["conditions"], frame["size"].to_numpy())
    assert got["p"].tolist() == want_p.tolist()
    assert got["v"].tolist() == want_v.tolist()
