"""Issue 10's defects, reproduced through the command line only.

Each test drives ``python -m phase1_platform`` (and, for the symbols case, Dagster's public
instance API) as a user would, so the same file runs against any version of the package: with
``PYTHONPATH=<older checkout>`` the subprocesses import that version instead. That is how
these tests were shown to fail before the fixes (the closing note of issue 10 lists the run)
and to pass after them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DAY = "2013-10-07"
HEADER = "timestamp,symbol,price,size,exchange,conditions,trade_id,sequence\n"


def phase1(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "phase1_platform", *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=300)


def ticks_csv(path: Path, rows: list[tuple[str, float, int, str]]) -> Path:
    """A DESIGN tick CSV of SPY rows ``(time of day ET, price, size, trade_id)``."""
    lines = [f"{DAY}T{t}-04:00,SPY,{p},{s},Q,,{tid},{i}\n"
             for i, (t, p, s, tid) in enumerate(rows)]
    path.write_text(HEADER + "".join(lines))
    return path


def replay(tmp_path: Path, csv: Path, url: str, out: str) -> subprocess.CompletedProcess:
    return phase1("replay", "--csv", str(csv), "--output", str(tmp_path / out),
                  "--database-url", url, cwd=tmp_path)


def export(tmp_path: Path, url: str, out: str, *extra: str) -> subprocess.CompletedProcess:
    return phase1("export", "--database-url", url, "--symbols", "SPY", "--start", DAY,
                  "--end", DAY, "--output", str(tmp_path / out), *extra, cwd=tmp_path)


def assert_one_line_error(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


FIRST_HALF = [("10:00:01", 100.0, 10, "a1"), ("10:00:30", 101.0, 20, "a2"),
              ("10:05:10", 102.0, 5, "a3")]
SECOND_HALF = [("13:00:01", 103.0, 7, "b1"), ("13:20:00", 99.0, 3, "b2")]


def test_defect_3_conflicting_duplicate_is_quarantined_and_bars_follow_the_ticks(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert replay(tmp_path, ticks_csv(tmp_path / "a.csv", FIRST_HALF), url, "a.out").returncode == 0
    # the same trade (id a2, same time) again with another price: a conflicting duplicate
    conflicting = ticks_csv(tmp_path / "b.csv", [("10:00:30", 150.0, 20, "a2")])
    proc = replay(tmp_path, conflicting, url, "b.out")
    assert proc.returncode == 0, proc.stderr
    assert "conflicting duplicate" in proc.stdout + proc.stderr
    exported = export(tmp_path, url, "e.csv", "--timeframes", "1d")
    assert exported.returncode == 0, exported.stderr
    day_bar = (tmp_path / "e.csv").read_text().splitlines()[1].split(",")
    assert day_bar[4] == "102"  # high: the first price of a2 (101) stays; 150 never counts


def test_defect_4_two_replays_of_two_halves_leave_the_whole_days_bars(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    for name, rows in (("first.csv", FIRST_HALF), ("second.csv", SECOND_HALF)):
        proc = replay(tmp_path, ticks_csv(tmp_path / name, rows), url, name + ".out")
        assert proc.returncode == 0, proc.stderr
    whole = ticks_csv(tmp_path / "whole.csv", FIRST_HALF + SECOND_HALF)
    assert phase1("replay", "--csv", str(whole), "--output", str(tmp_path / "whole.out"),
                  cwd=tmp_path).returncode == 0
    assert export(tmp_path, url, "stored.csv").returncode == 0
    assert (tmp_path / "stored.csv").read_bytes() == (tmp_path / "whole.out").read_bytes()


def test_defect_6_symbols_remove_deletes_an_invalid_traversal_key(tmp_path):
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    bad = "../../../outside/x"
    with dg.DagsterInstance.from_config(str(home)) as instance:  # as the UI/API would add it
        instance.add_dynamic_partitions("symbols", [bad])
    proc = phase1("symbols", "remove", bad, cwd=tmp_path, env={"DAGSTER_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert bad not in instance.get_dynamic_partitions("symbols")


def test_defect_7_export_end_beyond_the_timestamp_range_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert replay(tmp_path, ticks_csv(tmp_path / "a.csv", FIRST_HALF), url, "a.out").returncode == 0
    proc = phase1("export", "--database-url", url, "--symbols", "SPY", "--start", DAY,
                  "--end", "9999-12-31", "--output", str(tmp_path / "e.csv"), cwd=tmp_path)
    assert_one_line_error(proc)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_defect_7_read_only_database_is_one_line(tmp_path):  # pragma: no cover - non-root only
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert replay(tmp_path, ticks_csv(tmp_path / "a.csv", FIRST_HALF), url, "a.out").returncode == 0
    (tmp_path / "store.sqlite").chmod(0o444)
    assert_one_line_error(replay(tmp_path, ticks_csv(tmp_path / "b.csv", SECOND_HALF), url, "b"))


def test_defect_7_locked_database_is_one_line(tmp_path):
    import sqlite3

    db = tmp_path / "store.sqlite"
    url = f"sqlite:///{db}"
    assert replay(tmp_path, ticks_csv(tmp_path / "a.csv", FIRST_HALF), url, "a.out").returncode == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the lock past the busy timeout
    try:
        proc = phase1("replay", "--csv", str(ticks_csv(tmp_path / "b.csv", SECOND_HALF)),
                      "--output", str(tmp_path / "b.out"), "--database-url", url, cwd=tmp_path,
                      env={"PHASE1_SQLITE_BUSY_TIMEOUT_S": "0.5"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line_error(proc)


def test_defect_12_failed_export_leaves_no_temp_file_and_names_the_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert replay(tmp_path, ticks_csv(tmp_path / "a.csv", FIRST_HALF), url, "a.out").returncode == 0
    target = tmp_path / "out"
    target.mkdir()  # the output path is a directory
    proc = export(tmp_path, url, "out")
    assert_one_line_error(proc)
    assert str(target) in proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
