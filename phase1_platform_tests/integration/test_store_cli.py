"""``phase1 replay --database-url``, ``phase1 export`` and ``phase1 db`` on both backends."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from phase1_platform.app.build import build_bars
from phase1_platform.cli import main
from phase1_platform.core.partition import Partition
from phase1_platform.storage import Store

from ..conftest import shared_file
from ..support.stores import make_url
from .test_store import raw_ticks

LEAN_SPY = "lean/equity/usa/tick/spy/20131007_trade.zip"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    return make_url(request.param, tmp_path, request)


def tick_csv(path, days=("2013-10-07", "2013-10-08"), symbols=("SPY", "QQQ")) -> str:
    frames = [raw_ticks(day=d, symbol=s, n=1500, seed=i)
              for i, (d, s) in enumerate((d, s) for d in days for s in symbols)]
    raw = pd.concat(frames, ignore_index=True).drop(columns=["source", "source_row"])
    raw.to_csv(path, index=False)
    return str(path)


def last_line(capsys) -> tuple[str, str]:
    out = capsys.readouterr()
    return out.out.strip().splitlines()[-1], out.out


def test_replay_store_export_is_byte_identical(url, tmp_path, capsys):
    csv = tick_csv(tmp_path / "ticks.csv")
    replayed = tmp_path / "replayed.csv"
    assert main(["replay", "--csv", csv, "--timeframes", "1m,5m,1h,1d", "--output",
                 str(replayed), "--database-url", url]) == 0
    replay_hash, out = last_line(capsys)
    assert "stored in" in out and "ticks new=5992" in out and "in 4 partition(s)" in out
    exported = tmp_path / "exported.csv"
    assert main(["export", "--database-url", url, "--symbols", "SPY,QQQ", "--timeframes",
                 "1m,5m,1h,1d", "--start", "2013-10-07", "--end", "2013-10-08",
                 "--output", str(exported)]) == 0
    export_hash, _ = last_line(capsys)
    assert export_hash == replay_hash and export_hash.startswith("sha256:")
    assert exported.read_bytes() == replayed.read_bytes()

    # the same file again: its ticks are stored once, the bars and the hash do not change
    assert main(["replay", "--csv", csv, "--timeframes", "1m,5m,1h,1d", "--output",
                 str(replayed), "--database-url", url]) == 0
    again_hash, out = last_line(capsys)
    assert again_hash == replay_hash
    assert "ticks new=0 (already stored=5992)" in out and "quarantined rows=8 (new=0)" in out
    store = Store.from_url(url)
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ticks")).scalar() == 5992
        assert conn.execute(sa.text("SELECT count(*) FROM quarantine")).scalar() == 8
    store.dispose()

    # one day, one symbol, one timeframe: the matching slice of the replay output
    one = tmp_path / "one.csv"
    assert main(["export", "--database-url", url, "--symbols", "QQQ", "--timeframes", "5m",
                 "--start", "2013-10-08", "--end", "2013-10-08", "--output", str(one)]) == 0
    lines = replayed.read_text().splitlines()
    expected = [lines[0]] + [x for x in lines[1:]
                             if x.startswith("QQQ,5m,2013-10-08")]
    assert one.read_text().splitlines() == expected


def test_replay_of_real_lean_ticks_round_trips(url, tmp_path, capsys):
    zip_path = shared_file(LEAN_SPY)
    replayed, exported = tmp_path / "r.csv", tmp_path / "e.csv"
    assert main(["replay", "--csv", str(zip_path), "--output", str(replayed),
                 "--database-url", url]) == 0
    replay_hash, _ = last_line(capsys)
    assert main(["export", "--database-url", url, "--symbols", "SPY", "--start", "2013-10-07",
                 "--end", "2013-10-07", "--output", str(exported)]) == 0
    assert last_line(capsys)[0] == replay_hash
    assert exported.read_bytes() == replayed.read_bytes()


def test_replay_without_database_url_stores_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    csv = tick_csv(tmp_path / "ticks.csv", days=("2013-10-07",), symbols=("SPY",))
    assert main(["replay", "--csv", csv, "--output", str(tmp_path / "o.csv")]) == 0
    assert "stored in" not in capsys.readouterr().out
    assert not (tmp_path / "env.sqlite").exists() and not (tmp_path / "phase1.sqlite").exists()


def test_db_upgrade_and_current(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert "upgraded from empty to revision" in capsys.readouterr().out
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert "already at revision" in capsys.readouterr().out
    assert main(["db", "current", "--database-url", url]) == 0
    assert "(head)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    ["export", "--symbols", "SPY", "--start", "2013-10-07", "--end", "2013-10-07",
     "--output", "x.csv"],
    ["db", "upgrade"],
])
def test_unreachable_database_is_one_line_exit_2(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql+psycopg://phase1:topsecret@127.0.0.1:1/nowhere"
    assert main(command + ["--database-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "postgresql+psycopg://phase1:***@127.0.0.1:1/nowhere" in err
    assert "topsecret" not in err


def test_export_rejects_bad_dates(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["export", "--database-url", url, "--symbols", "SPY", "--start", "2013-13-07",
                 "--end", "2013-10-07", "--output", str(tmp_path / "x.csv")]) == 2
    assert "--start" in capsys.readouterr().err


def test_replaying_two_halves_of_a_day_leaves_the_whole_days_bars(url, tmp_path, capsys):
    """Defect 4: each replay into the store rebuilds the partitions it touched from every
    tick stored for them; the second half no longer overwrites the first half's bars."""
    raw = raw_ticks(day="2013-10-07", symbol="SPY", n=3000, seed=7).drop(
        columns=["source", "source_row"])
    whole, first, second = (tmp_path / f"{n}.csv" for n in ("whole", "first", "second"))
    raw.to_csv(whole, index=False)
    raw.iloc[:1500].to_csv(first, index=False)
    raw.iloc[1500:].to_csv(second, index=False)
    tf = "1m,5m,15m,30m,1h,4h,1d"
    assert main(["replay", "--csv", str(whole), "--timeframes", tf, "--output",
                 str(tmp_path / "w.csv")]) == 0
    whole_hash, _ = last_line(capsys)
    exported = tmp_path / "exported.csv"

    def export() -> str:
        assert main(["export", "--database-url", url, "--symbols", "SPY", "--timeframes", tf,
                     "--start", "2013-10-07", "--end", "2013-10-07", "--output",
                     str(exported)]) == 0
        return last_line(capsys)[0]

    for half in (first, second):
        assert main(["replay", "--csv", str(half), "--timeframes", tf, "--output",
                     str(tmp_path / f"{half.stem}-out.csv"), "--database-url", url]) == 0
        replay_hash, out = last_line(capsys)
        assert "in 1 partition(s)" in out
        stored_hash = export()
        if half is first:  # the store held only this file: its bars are the file's
            assert stored_hash == replay_hash
        # whatever path the replay took, a full rebuild from the stored ticks agrees
        store = Store.from_url(url)
        try:
            build_bars(store, Partition("2013-10-07", "SPY"), "default", timeframes=tf.split(","))
        finally:
            store.dispose()
        assert export() == stored_hash
    assert stored_hash == whole_hash
    assert exported.read_bytes() == (tmp_path / "w.csv").read_bytes()
