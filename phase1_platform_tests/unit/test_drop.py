"""The file drop: LEAN's layout, fixtures only for their own partitions, no way out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from phase1_platform.app.drop import DropPathError, FileDrop
from phase1_platform.core.errors import ConfigError, InputError
from phase1_platform.core.partition import InvalidPartitionError, Partition
from phase1_platform.defs.resources import FileDropResource
from phase1_platform_tests.conftest import FIXTURES, SHARED_DATA

SPY = Partition("2013-10-07", "SPY")
AAPL = Partition("2013-10-07", "AAPL")
FX_SPY_TICKS = FIXTURES / "lean/equity/usa/tick/spy/20131007_trade.zip"
FX_SPY_MINUTE = FIXTURES / "lean/equity/usa/minute/spy/20131007_trade.zip"
FX_AAPL = FIXTURES / "2013-10-07/AAPL.csv"


@pytest.fixture
def drop(tmp_path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- defect 14: no fixture leak
@pytest.mark.parametrize("date", ["2013-10-08", "2014-03-03", "2013-10-04"])
def test_fixtures_serve_no_other_date(drop, date):
    """An empty drop used to hand fixtures/aapl_test_ticks.csv to every AAPL partition."""
    fd = FileDrop(drop)
    for symbol in ("AAPL", "SPY"):
        part = Partition(date, symbol)
        assert fd.tick_files(part) == []
        assert fd.reference_files(part) == []
    res = FileDropResource(drop_dir=str(drop))
    assert res.tick_files(date, "AAPL") == [] and res.tick_files(Partition(date, "AAPL")) == []
    assert res.reference_files(date, "SPY") == []


def test_fixtures_serve_their_own_partitions(drop):
    fd = FileDrop(drop)
    assert fd.tick_files(AAPL) == [FX_AAPL] and fd.reference_files(AAPL) == []
    assert fd.tick_files(SPY) == [FX_SPY_TICKS]
    assert fd.reference_files(SPY) == [FX_SPY_MINUTE]
    assert FileDrop(drop, fixtures_dir=None).tick_files(SPY) == []
    assert FileDropResource(drop_dir=str(drop), fixtures_dir="-").tick_files(SPY) == []
    assert FileDropResource(drop_dir=str(drop)).tick_files(SPY) == [FX_SPY_TICKS]


# ------------------------------------------------------------------------- LEAN's layout
def test_drop_in_leans_layout_wins_over_the_fixtures(drop):
    csv = _touch(drop / "2013-10-07" / "SPY.csv")
    tick = drop / "equity/usa/tick/spy/20131007_trade.zip"
    tick.parent.mkdir(parents=True)
    shutil.copy(FX_SPY_TICKS, tick)
    second = _touch(drop / "equity/usa/second/spy/20131007_trade.zip")
    daily = _touch(drop / "equity/usa/daily/spy.zip")
    fd = FileDrop(drop)
    assert fd.tick_files(SPY) == [csv, tick]
    assert fd.reference_files(SPY) == [second, daily]  # no minute zip: the second one
    minute = _touch(drop / "equity/usa/minute/spy/20131007_trade.zip")
    assert fd.reference_files(SPY) == [minute, daily]
    # the drop has SPY's ticks, so the fixtures' reference is not mixed in
    assert FX_SPY_MINUTE not in fd.reference_files(SPY)


def test_lean_data_under_lean_subfolder_and_other_markets(drop):
    a = _touch(drop / "lean/equity/usa/tick/brk.b/20131007_trade.zip")
    b = _touch(drop / "lean/equity/india/tick/brk.b/20131007_trade.zip")
    part = Partition("2013-10-07", "BRK.B")
    assert FileDrop(drop).tick_files(part) == [b, a]  # markets in name order


def test_the_old_symbol_first_layout_is_refused_not_ignored(drop):
    _touch(drop / "equity/usa/spy/tick/20131007_trade.zip")
    with pytest.raises(DropPathError) as err:
        FileDrop(drop).tick_files(SPY)
    text = str(err.value)
    assert "equity/usa/tick/spy/20131007_trade.zip" in text and "\n" not in text


def test_daily_only_in_the_drop_serves_vendor_tick_partitions(drop):
    daily = _touch(drop / "equity/usa/daily/msft.zip")
    part = Partition("2013-10-08", "MSFT")
    assert FileDrop(drop).tick_files(part) == []
    assert FileDrop(drop).reference_files(part) == [daily]


@pytest.mark.realdata
@pytest.mark.parametrize("sub", ["", "lean"])
def test_shared_data_is_a_lean_data_folder(sub):
    """../shared/data holds LEAN's Data/ under lean/; lean/ itself is a Data/ folder."""
    root = SHARED_DATA / sub if sub else SHARED_DATA
    if not (SHARED_DATA / "lean").exists():
        pytest.skip(f"real data not present: {SHARED_DATA} (clone ../shared beside the project)")
    fd = FileDrop(root, fixtures_dir=None)
    lean = SHARED_DATA / "lean/equity/usa"
    assert fd.tick_files(SPY) == [lean / "tick/spy/20131007_trade.zip"]
    assert fd.reference_files(SPY) == [lean / "minute/spy/20131007_trade.zip",
                                       lean / "daily/spy.zip"]
    ibm = Partition("2013-10-07", "IBM")
    assert fd.tick_files(ibm) == [lean / "tick/ibm/20131007_trade.zip"]
    assert fd.reference_files(ibm) == [lean / "minute/ibm/20131007_trade.zip"]


# ------------------------------------------------------- defect 6: keys, paths, symlinks
@pytest.mark.parametrize(("date", "symbol"), [
    ("2013-10-07", "../../etc/passwd"),
    ("2013-10-07", "spy"),
    ("2013-10-07", "SPY/../AAPL"),
    ("../2013-10-07", "SPY"),
    ("2013-10-07/..", "SPY"),
    ("2013-10-05", "SPY"),  # a Saturday
])
def test_resource_builds_paths_only_from_a_valid_partition(drop, date, symbol):
    with pytest.raises(ConfigError):
        FileDropResource(drop_dir=str(drop)).tick_files(date, symbol)
    with pytest.raises(ConfigError):
        FileDropResource(drop_dir=str(drop)).reference_files(date, symbol)


def test_raw_key_strings_are_not_accepted(drop):
    with pytest.raises(TypeError, match="Partition"):
        FileDrop(drop).tick_files("2013-10-07|SPY")
    with pytest.raises(InvalidPartitionError):
        FileDropResource(drop_dir=str(drop)).tick_files("2013-10-07|../x")


@pytest.fixture
def outside(tmp_path) -> Path:
    return _touch(tmp_path / "elsewhere" / "secret.csv", "timestamp,symbol,price,size\n")


def _assert_refused(call, link: Path):
    with pytest.raises(DropPathError) as err:
        call()
    text = str(err.value)
    assert isinstance(err.value, InputError) and "\n" not in text
    assert str(link) in text and "outside the file drop" in text


def test_symlinked_file_out_of_the_drop_is_refused(drop, outside):
    link = drop / "2013-10-07" / "AAPL.csv"
    link.parent.mkdir()
    link.symlink_to(outside)
    _assert_refused(lambda: FileDrop(drop).tick_files(AAPL), link)
    _assert_refused(lambda: FileDropResource(drop_dir=str(drop)).tick_files("2013-10-07", "AAPL"),
                    link)


def test_symlinked_date_folder_out_of_the_drop_is_refused(drop, outside):
    os.rename(outside, outside.parent / "AAPL.csv")
    link = drop / "2013-10-07"
    link.symlink_to(outside.parent, target_is_directory=True)
    _assert_refused(lambda: FileDrop(drop).tick_files(AAPL), link)


def test_symlinked_lean_folders_out_of_the_drop_are_refused(drop, tmp_path):
    data = tmp_path / "elsewhere_lean"
    _touch(data / "equity/usa/tick/spy/20131007_trade.zip")
    (drop / "lean").symlink_to(data, target_is_directory=True)
    _assert_refused(lambda: FileDrop(drop).tick_files(SPY), drop / "lean")
    (drop / "lean").unlink()
    (drop / "equity").mkdir()
    (drop / "equity" / "usa").symlink_to(data / "equity/usa", target_is_directory=True)
    _assert_refused(lambda: FileDrop(drop).reference_files(SPY), drop / "equity" / "usa")
    (drop / "equity" / "usa").unlink()
    zip_link = drop / "equity/usa/tick/spy/20131007_trade.zip"
    zip_link.parent.mkdir(parents=True)
    zip_link.symlink_to(data / "equity/usa/tick/spy/20131007_trade.zip")
    _assert_refused(lambda: FileDrop(drop).tick_files(SPY), zip_link)


def test_symlinks_inside_the_drop_and_a_linked_drop_root_are_fine(drop, tmp_path):
    real = _touch(drop / "store" / "aapl.csv")
    (drop / "2013-10-07").mkdir()
    (drop / "2013-10-07" / "AAPL.csv").symlink_to(real)
    assert FileDrop(drop).tick_files(AAPL) == [drop / "2013-10-07" / "AAPL.csv"]
    root_link = tmp_path / "drop_link"
    root_link.symlink_to(drop, target_is_directory=True)
    assert FileDrop(root_link).tick_files(AAPL) == [root_link / "2013-10-07" / "AAPL.csv"]
