"""The LEAN reader reads LEAN's own folder layout (DESIGN section 3), and only that."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from phase1_platform.core.errors import InputError
from phase1_platform.readers import read_lean_bars, read_lean_ticks, read_ticks
from phase1_platform.readers.lean import (
    LEAN_LAYOUT,
    LeanPath,
    lean_daily_file,
    lean_intraday_file,
    parse_lean_path,
)
from phase1_platform_tests.conftest import FIXTURES

FIXTURE_TICKS = FIXTURES / "lean/equity/usa/tick/spy/20131007_trade.zip"
FIXTURE_MINUTE = FIXTURES / "lean/equity/usa/minute/spy/20131007_trade.zip"


@pytest.mark.parametrize(("path", "expected"), [
    ("Data/equity/usa/tick/spy/20131007_trade.zip",
     LeanPath("equity", "usa", "SPY", "tick", "2013-10-07")),
    ("Data/equity/usa/second/spy/20131007_trade.zip",
     LeanPath("equity", "usa", "SPY", "second", "2013-10-07")),
    ("Data/equity/usa/minute/brk.b/20131007_trade.zip",
     LeanPath("equity", "usa", "BRK.B", "minute", "2013-10-07")),
    ("Data/equity/usa/daily/spy.zip", LeanPath("equity", "usa", "SPY", "daily", None)),
    ("Data/equity/usa/hour/ibm.zip", LeanPath("equity", "usa", "IBM", "hour", None)),
    ("Data/future/comex/minute/gc/20131007_trade.zip",
     LeanPath("future", "comex", "GC", "minute", "2013-10-07")),
    ("future/comex/tick/gc/20131007_quote.zip",
     LeanPath("future", "comex", "GC", "tick", "2013-10-07", "quote")),
])
def test_parse_reads_leans_own_layout(path, expected):
    assert parse_lean_path(path) == expected


@pytest.mark.parametrize("path", [
    "equity/usa/spy/tick/20131007_trade.zip",  # the old, wrong layout: symbol before resolution
    "future/comex/gc/minute/20131007_trade.zip",
    "equity/usa/spy/daily/spy.zip",
])
def test_the_old_symbol_first_layout_is_refused_naming_leans_layout(path):
    with pytest.raises(InputError) as err:
        parse_lean_path(path)
    text = str(err.value)
    assert "\n" not in text and path in text
    assert LEAN_LAYOUT in text


@pytest.mark.parametrize("path", [
    "equity/usa/tick/spy/2013-10-07.zip",  # not <YYYYMMDD>_<type>.zip
    "equity/usa/daily/spy/20131007_trade.zip",  # daily is one <symbol>.zip
    "crypto/coinbase/tick/btcusd/20131007_trade.zip",
    "20131007_trade.zip",
    "equity/usa/tick/spy/20131307_trade.zip",  # month 13
])
def test_other_paths_are_one_line_input_errors(path):
    with pytest.raises(InputError, match=r"^[^\n]*$"):
        parse_lean_path(path)


def test_builders_are_the_inverse_of_parse(tmp_path):
    tick = lean_intraday_file(tmp_path, "equity", "usa", "tick", "SPY", "2013-10-07")
    assert tick == tmp_path / "equity/usa/tick/spy/20131007_trade.zip"
    assert parse_lean_path(tick) == LeanPath("equity", "usa", "SPY", "tick", "2013-10-07")
    daily = lean_daily_file(tmp_path, "equity", "usa", "SPY")
    assert daily == tmp_path / "equity/usa/daily/spy.zip"
    assert parse_lean_path(daily).resolution == "daily"


def test_fixture_slice_reads_from_its_lean_layout():
    ticks = read_lean_ticks(FIXTURE_TICKS)
    assert len(ticks) == 44565 and set(ticks["symbol"]) == {"SPY"}
    assert len(read_ticks(FIXTURE_TICKS)) == 44565
    bars = read_lean_bars(FIXTURE_MINUTE)
    assert len(bars) == 32 and set(bars["timeframe"]) == {"1m"}


def test_quote_files_are_refused_not_misread(tmp_path):
    path = tmp_path / "equity/usa/tick/spy/20131007_quote.zip"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("20131007_spy_quote.csv", "34200000,1,2,3,4,5,6,7\n")
    with pytest.raises(InputError, match="trade"):
        read_lean_ticks(path)


def test_a_tick_file_is_not_read_as_bars(tmp_path):
    with pytest.raises(InputError, match="not a LEAN second, minute or daily bar file"):
        read_lean_bars(FIXTURE_TICKS)
    with pytest.raises(InputError, match="not a LEAN tick file"):
        read_lean_ticks(FIXTURE_MINUTE)


def test_missing_file_in_the_right_layout_is_one_line(tmp_path: Path):
    with pytest.raises(InputError, match="LEAN file not found"):
        read_lean_ticks(tmp_path / "equity/usa/tick/spy/20131007_trade.zip")
