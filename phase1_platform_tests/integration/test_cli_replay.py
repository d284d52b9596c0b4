"""The ``phase1 replay`` console script end to end (DESIGN section 8), run as a subprocess."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from phase1_platform_tests.conftest import FIXTURES, ROOT, shared_file

PHASE1 = Path(sys.executable).with_name("phase1")
if not PHASE1.exists():  # fall back to the project's venv
    PHASE1 = ROOT / ".venv" / "bin" / "phase1"
AAPL = FIXTURES / "2013-10-07" / "AAPL.csv"
ALL_TF = "1m,5m,15m,30m,1h,4h,1d"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(PHASE1), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def read_bars(path: Path) -> dict[tuple[str, str, str], dict]:
    with path.open(newline="") as f:
        return {(r["symbol"], r["timeframe"], r["timestamp"]): r for r in csv.DictReader(f)}


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert err.startswith("phase1 replay: error:")
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def aapl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("aapl") / "bars.csv"
    proc = run("replay", "--csv", AAPL, "--timeframes", ALL_TF, "--output", out)
    assert proc.returncode == 0, proc.stderr
    return proc, out


def test_last_line_is_the_hash_of_the_output(aapl_run):
    proc, out = aapl_run
    last = proc.stdout.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", last)
    assert last == sha256_of(out)
    assert out.read_text().splitlines()[0] == (
        "symbol,timeframe,timestamp,open,high,low,close,volume,trade_count,vwap"
    )


def test_fixture_counts_printed(aapl_run):
    """The numbers fixtures/make_aapl_test_ticks.py --check derives from what it wrote."""
    proc, _ = aapl_run
    lines = proc.stdout.splitlines()
    assert "ticks read: 304" in lines
    assert "ticks accepted: 298" in lines
    assert "ticks rejected: 6" in lines
    assert {line.strip() for line in lines if "rejected (" in line} == {
        "rejected (duplicate trade_id): 1",
        "rejected (negative size): 1",
        "rejected (price <= 0 or NaN): 2",
        "rejected (timestamp without zone): 1",
        "rejected (unparseable timestamp): 1",
    }
    assert "bars: 359 (1m=214, 5m=86, 15m=32, 30m=16, 1h=8, 4h=2, 1d=1)" in lines


def test_fixture_deliberate_cases_in_the_bars(aapl_run):
    _, out = aapl_run
    bars = read_bars(out)
    per_tf: dict[str, int] = {}
    for _, tf, _ in bars:
        per_tf[tf] = per_tf.get(tf, 0) + 1
    assert per_tf == {"1m": 214, "5m": 86, "15m": 32, "30m": 16, "1h": 8, "4h": 2, "1d": 1}
    # the tick exactly on 14:00:00.000000000Z opens the 14:00 bars
    m14 = bars[("AAPL", "1m", "2013-10-07T14:00:00Z")]
    assert (m14["open"], m14["trade_count"], m14["volume"]) == ("486.5", "1", "300")
    assert bars[("AAPL", "1h", "2013-10-07T14:00:00Z")]["open"] == "486.5"
    # same timestamp, out of order in the file: sequence decides open and close
    m1415 = bars[("AAPL", "1m", "2013-10-07T14:15:00Z")]
    assert (m1415["open"], m1415["close"], m1415["volume"]) == ("486.5", "486.54", "300")
    # identical rows without trade_id: both in the 15:02 bar
    m1502 = bars[("AAPL", "1m", "2013-10-07T15:02:00Z")]
    assert int(m1502["trade_count"]) >= 2
    # the zero-size print (486.71) is not a trade by default
    m1645 = bars[("AAPL", "1m", "2013-10-07T16:45:00Z")]
    assert (m1645["open"], m1645["high"], m1645["trade_count"]) == ("486.16", "486.16", "2")
    # the daily bar: regular session only, labelled midnight New York
    day = bars[("AAPL", "1d", "2013-10-07T04:00:00Z")]
    assert (day["trade_count"], day["volume"]) == ("285", "72972")


def test_fixture_with_lean_future_rules_lets_the_zero_size_print_set_prices(tmp_path):
    out = tmp_path / "bars.csv"
    proc = run("replay", "--csv", AAPL, "--timeframes", "1m", "--rules", "lean-future",
               "--output", out)
    assert proc.returncode == 0, proc.stderr
    m1645 = read_bars(out)[("AAPL", "1m", "2013-10-07T16:45:00Z")]
    assert (m1645["open"], m1645["high"], m1645["trade_count"]) == ("486.71", "486.71", "2")


def test_generator_reproduces_the_fixture(tmp_path):
    out = tmp_path / "regen.csv"
    proc = subprocess.run([sys.executable, str(FIXTURES / "make_aapl_test_ticks.py"),
                           "--output", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == AAPL.read_bytes()


def test_same_input_twice_gives_identical_bytes(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pa = run("replay", "--csv", AAPL, "--timeframes", "1m,5m,1h", "--output", a)
    pb = run("replay", "--csv", AAPL, "--timeframes", "1m,5m,1h", "--output", b)
    assert pa.returncode == pb.returncode == 0
    assert a.read_bytes() == b.read_bytes()
    assert pa.stdout.splitlines()[-1] == pb.stdout.splitlines()[-1] == sha256_of(a)


def test_same_file_given_twice_counts_once(tmp_path):
    once, twice = tmp_path / "once.csv", tmp_path / "twice.csv"
    p1 = run("replay", "--csv", AAPL, "--timeframes", ALL_TF, "--output", once)
    p2 = run("replay", "--csv", AAPL, "--csv", AAPL, "--timeframes", ALL_TF, "--output", twice)
    assert p1.returncode == p2.returncode == 0, p2.stderr
    assert once.read_bytes() == twice.read_bytes()
    assert "ticks read: 608" in p2.stdout.splitlines()


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    proc = run("replay", "--csv", missing, "--output", tmp_path / "out.csv")
    assert_one_line_error(proc, "not found", str(missing))
    assert not (tmp_path / "out.csv").exists()


def test_missing_required_column(tmp_path):
    bad = tmp_path / "ticks.csv"
    bad.write_text("timestamp,symbol,price\n2013-10-07T13:30:00Z,AAPL,485.1\n")
    proc = run("replay", "--csv", bad, "--output", tmp_path / "out.csv")
    assert_one_line_error(proc, "missing required column", "size", str(bad))
    assert not (tmp_path / "out.csv").exists()


def test_unknown_timeframe(tmp_path):
    proc = run("replay", "--csv", AAPL, "--timeframes", "1m,2m", "--output",
               tmp_path / "out.csv")
    assert_one_line_error(proc, "unknown timeframe 2m", "1m,5m,15m,30m,1h,4h,1d")
    assert not (tmp_path / "out.csv").exists()


def test_malformed_lines_are_counted_not_fatal(tmp_path):
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "timestamp,symbol,price,size\n"
        "2013-10-07T13:30:00Z,AAPL,485.1,100\n"
        "2013-10-07T13:30:01Z,AAPL\n"
        "2013-10-07T13:30:02Z,AAPL,485.3,100,extra\n"
    )
    proc = run("replay", "--csv", ticks, "--timeframes", "1m", "--output", tmp_path / "o.csv")
    assert proc.returncode == 0, proc.stderr
    assert "  rejected (malformed line): 2" in proc.stdout.splitlines()
    assert proc.stdout.splitlines()[-1] == sha256_of(tmp_path / "o.csv")


def test_replay_real_spy_lean_tick_zip(tmp_path):
    spy = shared_file("lean/equity/usa/tick/spy/20131007_trade.zip")
    out = tmp_path / "spy.csv"
    proc = run("replay", "--csv", spy, "--timeframes", "1m,1d", "--output", out)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == sha256_of(out)
    assert "ticks read: 250601" in lines
    assert "ticks accepted: 250601" in lines
    bars = read_bars(out)
    # LEAN's own minute file has 828 bars for the day (extended hours included)
    assert sum(1 for k in bars if k[1] == "1m") == 828
    # one daily bar, the regular session, labelled midnight New York (EDT) in UTC
    (day_key,) = [k for k in bars if k[1] == "1d"]
    assert day_key == ("SPY", "1d", "2013-10-07T04:00:00Z")
    assert 0 < int(bars[day_key]["trade_count"]) < 250601


def test_rolled_up_volume_beyond_int64_is_one_line_exit_2_and_no_output(tmp_path):
    """Defect 2: ten 9,999,999,999-share prints in one hour made a negative 1h and 1d
    volume, written with exit 0; now the replay refuses with one line and writes nothing."""
    ticks = tmp_path / "big.csv"
    ticks.write_text("timestamp,symbol,price,size\n" + "".join(
        f"2013-10-07T14:{m:02d}:00Z,SPY,1,9999999999\n" for m in range(0, 60, 6)))
    out = tmp_path / "bars.csv"
    proc = run("replay", "--csv", ticks, "--timeframes", ALL_TF, "--output", out)
    assert_one_line_error(proc, "1h bar opening 2013-10-07T14:00:00Z", "volume total",
                          "does not fit")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]
    # the finer timeframes fit: they are still written
    assert run("replay", "--csv", ticks, "--timeframes", "1m,5m,15m", "--output",
               out).returncode == 0
