"""One line, exit 2, no traceback and nothing half-written when the store or an output
cannot be used (defects 7 and 12), through the ``phase1`` console script (subprocess).

A read-only file or folder, a database locked past the busy timeout
(``PHASE1_SQLITE_BUSY_TIMEOUT_S`` kept short here), a full database (SQLite's
``max_page_count`` set low on every connection by a small wrapper around the CLI's
``main``), an out-of-range date, and an output path that is a folder.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from phase1_platform_tests.conftest import FIXTURES, ROOT

PHASE1 = Path(sys.executable).with_name("phase1")
if not PHASE1.exists():
    PHASE1 = ROOT / ".venv" / "bin" / "phase1"
AAPL = FIXTURES / "2013-10-07" / "AAPL.csv"
NOBODY = 65534

# the CLI with every SQLite connection limited to a few pages more than the file holds
FULL_DISK = """
import sys
from sqlalchemy import event
from phase1_platform.storage import store
plain = store._sqlite_events
def limited(engine):
    plain(engine)
    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count = {pages + 2}")
        cur.close()
store._sqlite_events = limited
from phase1_platform.cli import main
sys.exit(main(sys.argv[1:]))
"""


def phase1(*args, env: dict | None = None, as_user: int | None = None,
           script: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", script, *map(str, args)] if script else [str(PHASE1),
                                                                          *map(str, args)]
    if as_user is not None:
        cmd = [shutil.which("setpriv"), f"--reuid={as_user}", f"--regid={as_user}",
               "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def one_line_error(proc: subprocess.CompletedProcess, command: str, *needles: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"phase1 {command}: error: ")
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def world_dir():
    """A temporary folder every user may enter (the read-only cases drop root)."""
    path = Path(tempfile.mkdtemp(prefix="phase1-ro-"))
    path.chmod(0o777)
    yield path
    for p in [path, *path.rglob("*")]:
        p.chmod(0o777)
    shutil.rmtree(path)


def stored_db(folder: Path) -> Path:
    db = folder / "store.sqlite"
    proc = phase1("replay", "--csv", AAPL, "--output", folder / "first.csv",
                  "--database-url", f"sqlite:///{db}")
    assert proc.returncode == 0, proc.stderr
    return db


def unprivileged() -> int | None:
    """The uid to run as so that file modes apply (None: the current, non-root user)."""
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes would not apply")
    return NOBODY


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_database_is_one_line(world_dir, what):
    db = stored_db(world_dir)
    user = unprivileged()
    if user is not None:
        for p in [world_dir, *world_dir.iterdir()]:
            os.chown(p, user, user)
    out = world_dir / "out" / "bars.csv"
    (world_dir / "out").mkdir(mode=0o777)
    (world_dir / "out").chmod(0o777)
    if what == "file":
        for p in world_dir.glob("store.sqlite*"):
            p.chmod(0o444)
    else:
        world_dir.chmod(0o555)
    proc = phase1("replay", "--csv", AAPL, "--output", out, "--database-url",
                  f"sqlite:///{db}", as_user=user)
    one_line_error(proc, "replay", "read-only", str(db), "writable")
    assert not out.exists() and not list(out.parent.iterdir())


def test_locked_database_is_one_line_after_the_busy_timeout(tmp_path):
    db = stored_db(tmp_path)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        holder.execute("INSERT INTO watermarks VALUES ('other', 'AAPL', 1)")
        out = tmp_path / "bars.csv"
        proc = phase1("replay", "--csv", AAPL, "--output", out, "--database-url",
                      f"sqlite:///{db}", env={"PHASE1_SQLITE_BUSY_TIMEOUT_S": "0.2"})
        one_line_error(proc, "replay", "is locked", "0.2 s", "PHASE1_SQLITE_BUSY_TIMEOUT_S")
        assert not out.exists()
    finally:
        holder.rollback()
        holder.close()


def test_bad_busy_timeout_setting_is_one_line(tmp_path):
    proc = phase1("db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'x.sqlite'}",
                  env={"PHASE1_SQLITE_BUSY_TIMEOUT_S": "soon"})
    one_line_error(proc, "db", "PHASE1_SQLITE_BUSY_TIMEOUT_S='soon'")


def test_full_database_is_one_line_and_keeps_what_was_stored(tmp_path):
    db = tmp_path / "full.sqlite"
    assert phase1("db", "upgrade", "--database-url", f"sqlite:///{db}").returncode == 0
    out = tmp_path / "bars.csv"
    proc = phase1("replay", "--csv", AAPL, "--output", out, "--database-url",
                  f"sqlite:///{db}", script=FULL_DISK)
    one_line_error(proc, "replay", "is full", str(db), "free disk space")
    assert not out.exists()
    with sqlite3.connect(db) as conn:  # the failed transaction left nothing half-written
        assert conn.execute("SELECT count(*) FROM ticks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM tick_landings").fetchone() == (0,)


@pytest.mark.parametrize("flag,value", [("--end", "9999-12-31"), ("--start", "1969-12-31"),
                                        ("--end", "2013-02-30"), ("--start", "20131007")])
def test_export_out_of_range_or_bad_date_is_one_line(tmp_path, flag, value):
    args = {"--start": "2013-10-07", "--end": "2013-10-07", flag: value}
    out = tmp_path / "x.csv"
    proc = phase1("export", "--database-url", f"sqlite:///{tmp_path / 'db.sqlite'}",
                  "--symbols", "SPY", "--start", args["--start"], "--end", args["--end"],
                  "--output", out)
    one_line_error(proc, "export", f"{flag} ")
    assert not out.exists()


@pytest.mark.parametrize("command", ["replay", "export"])
def test_output_path_that_is_a_folder_is_one_line_and_leaves_no_temp_file(tmp_path, command):
    target = tmp_path / "out.csv"
    target.mkdir()
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    if command == "replay":
        proc = phase1("replay", "--csv", AAPL, "--output", target)
    else:
        proc = phase1("export", "--database-url", db, "--symbols", "AAPL", "--start",
                      "2013-10-07", "--end", "2013-10-07", "--output", target)
    one_line_error(proc, command, f"cannot write {target}", "directory")
    left = {p.name for p in tmp_path.iterdir()} - {"db.sqlite", "db.sqlite-shm", "db.sqlite-wal"}
    assert left == {"out.csv"} and not list(target.iterdir())  # no .out.csv.tmp-PID


@pytest.mark.parametrize("text,needle", [
    ("attempt to write a readonly database", "is read-only"),
    ("database is locked", "is locked by another process"),
    ("database or disk is full", "is full"),
    ("disk I/O error", "disk I/O error on database"),
    ("unable to open database file", "cannot open database"),
])
def test_sqlite_operational_errors_map_to_one_line_store_errors(tmp_path, text, needle):
    from sqlalchemy.exc import OperationalError

    from phase1_platform.core.errors import StoreUnavailableError
    from phase1_platform.storage import Store

    store = Store.from_url(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        raw = sqlite3.OperationalError(text)
        for exc in (raw, OperationalError("INSERT ...", None, raw)):
            mapped = store.operational_error(exc)
            assert isinstance(mapped, StoreUnavailableError)
            assert needle in str(mapped) and str(tmp_path) in str(mapped)
            assert "\n" not in str(mapped)
        # anything else is a bug: not turned into a user message
        assert store.operational_error(sqlite3.OperationalError("no such table: x")) is None
    finally:
        store.dispose()
