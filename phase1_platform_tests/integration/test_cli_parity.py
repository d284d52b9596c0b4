"""``phase1 parity`` end to end through the console entry point (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phase1_platform_tests.conftest import FIXTURES, ROOT

HEADER = "symbol,timeframe,timestamp,open,high,low,close,volume,trade_count,vwap\n"
ROWS = (
    "AAA,1m,2024-03-04T15:00:00Z,10,11,9,10.5,1000,3,10.2\n"
    "AAA,1m,2024-03-04T15:01:00Z,10.5,10.5,10.5,10.5,5,1,10.5\n"
)
SPY_TICKS = FIXTURES / "lean/equity/usa/tick/spy/20131007_trade.zip"
SPY_MINUTE = FIXTURES / "lean/equity/usa/minute/spy/20131007_trade.zip"


def phase1(*args: str) -> subprocess.CompletedProcess:
    exe = ROOT / ".venv" / "bin" / "phase1"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "phase1_platform"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("phase1 parity: error:")
    for w in words:
        assert w in lines[0]


def test_parity_exit_0(tmp_path):
    gen = write(tmp_path / "gen.csv", HEADER + ROWS)
    ref = write(tmp_path / "ref.csv", HEADER + ROWS)
    proc = phase1("parity", "--reference", str(ref), "--csv", str(gen))
    assert proc.returncode == 0, proc.stderr
    assert "matched: 2 (100.00%)" in proc.stdout
    assert proc.stdout.strip().endswith("result: PARITY")


def test_mismatch_exit_1_and_tolerances(tmp_path):
    gen = write(tmp_path / "gen.csv", HEADER + ROWS)
    ref = write(tmp_path / "ref.csv", HEADER + ROWS.replace(",10.5,1000,3,", ",10.51,1004,3,"))
    proc = phase1("parity", "--reference", str(ref), "--csv", str(gen))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "mismatched: 1" in out
    assert "close       matched 1/2, mismatched 1" in out
    assert "volume      matched 1/2, mismatched 1" in out
    assert "missing in generated: 0" in out and "missing in reference: 0" in out
    assert out.strip().endswith("result: MISMATCH")
    ok = phase1("parity", "--reference", str(ref), "--csv", str(gen),
                "--price-tolerance", "0.02", "--volume-tolerance", "0.01")
    assert ok.returncode == 0, ok.stdout
    almost = phase1("parity", "--reference", str(ref), "--csv", str(gen),
                    "--price-tolerance", "0.02", "--volume-tolerance", "0.001")
    assert almost.returncode == 1


def test_missing_bars_each_side(tmp_path):
    first, second = ROWS.splitlines(keepends=True)
    gen = write(tmp_path / "gen.csv", HEADER + first)
    ref = write(tmp_path / "ref.csv", HEADER + second)
    proc = phase1("parity", "--reference", str(ref), "--csv", str(gen), "--json",
                  str(tmp_path / "rep.json"))
    assert proc.returncode == 1
    assert "missing in generated: 1" in proc.stdout
    assert "missing in reference: 1" in proc.stdout
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["is_parity"] is False and rep["compared"] == 0
    assert rep["missing_in_generated_bars"][0]["ts"] == "2024-03-04T15:01:00Z"


def test_missing_file_is_one_line(tmp_path):
    gen = write(tmp_path / "gen.csv", HEADER + ROWS)
    proc = phase1("parity", "--reference", str(tmp_path / "nope.csv"), "--csv", str(gen))
    assert_one_line_error(proc, "nope.csv")
    proc = phase1("parity", "--reference", str(gen), "--csv", str(tmp_path / "gone.csv"))
    assert_one_line_error(proc, "gone.csv")
    proc = phase1("parity", "--reference", str(tmp_path / "missing.zip"), "--csv", str(gen))
    assert_one_line_error(proc, "missing.zip")


def test_non_canonical_header_is_one_line(tmp_path):
    gen = write(tmp_path / "gen.csv", HEADER + ROWS)
    bad = write(tmp_path / "bad.csv", HEADER.replace(",vwap", "") + "AAA,1m,x,1,1,1,1,1,1\n")
    proc = phase1("parity", "--reference", str(bad), "--csv", str(gen))
    assert_one_line_error(proc, "bad.csv", "header")
    bad_ts = write(tmp_path / "bad_ts.csv", HEADER + "AAA,1m,yesterday,1,1,1,1,1,,\n")
    proc = phase1("parity", "--reference", str(gen), "--csv", str(bad_ts))
    assert_one_line_error(proc, "bad_ts.csv", "timestamp")


def test_unknown_rule_set_and_bad_ticks_are_one_line(tmp_path):
    gen = write(tmp_path / "gen.csv", HEADER + ROWS)
    proc = phase1("parity", "--reference", str(gen), "--csv", str(gen), "--rules", "nope")
    assert_one_line_error(proc, "nope")
    ticks = write(tmp_path / "ticks.csv", "time,sym,price\n1,2,3\n")
    proc = phase1("parity", "--reference", str(gen), "--csv", str(gen), "--ticks", str(ticks))
    assert_one_line_error(proc, "missing required column")


@pytest.mark.skipif(not SPY_TICKS.exists(), reason="SPY fixture slice not present")
def test_replay_then_parity_against_lean_zip_with_categories(tmp_path):
    out = tmp_path / "spy.csv"
    rep = phase1("replay", "--csv", str(SPY_TICKS), "--timeframes", "1m,5m",
                 "--output", str(out), "--rules", "lean-equity")
    assert rep.returncode == 0, rep.stderr
    proc = phase1("parity", "--reference", str(SPY_MINUTE), "--csv", str(out),
                  "--ticks", str(SPY_TICKS), "--rules", "lean-equity",
                  "--json", str(tmp_path / "rep.json"))
    assert proc.returncode == 1, proc.stderr  # LEAN's bars differ in a few minutes
    assert "timeframes compared: 1m (generated also has 5m, not compared)" in proc.stdout
    assert "mismatch categories (bars):" in proc.stdout
    report = json.loads((tmp_path / "rep.json").read_text())
    assert report["compared"] > 0 and report["categorized"] is True
    assert report["missing_in_generated"] == 0
    # every mismatched field carries a category
    for m in report["mismatches"]:
        assert set(m["detail"]) == set(m["fields"].split(","))
        assert all(m["detail"].values())
    # the closing auction and official close are out of LEAN's 16:00 volume under
    # lean-equity, so that minute matches; under the default rules it is categorized
    default = tmp_path / "spy_default.csv"
    assert phase1("replay", "--csv", str(SPY_TICKS), "--timeframes", "1m",
                  "--output", str(default)).returncode == 0
    proc = phase1("parity", "--reference", str(SPY_MINUTE), "--csv", str(default),
                  "--ticks", str(SPY_TICKS), "--json", str(tmp_path / "rep2.json"))
    assert proc.returncode == 1
    rep2 = json.loads((tmp_path / "rep2.json").read_text())
    close = [m for m in rep2["mismatches"] if m["ts"] == "2013-10-07T20:00:00Z"]
    assert close and close[0]["detail"]["volume"] == (
        "auction/official open-close print (ClosingPrints, OfficialClose)")
    assert not [m for m in report["mismatches"] if m["ts"] == "2013-10-07T20:00:00Z"]
