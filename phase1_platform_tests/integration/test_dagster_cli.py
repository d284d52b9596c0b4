"""`phase1 symbols` and `dagster asset materialize` as users run them (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phase1_platform.cli import main as phase1
from phase1_platform_tests.conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def test_symbols_add_list_remove(home, capsys):
    assert phase1(["symbols", "add", "spy", "AAPL,MSFT"]) == 0
    out = capsys.readouterr().out
    assert "added: SPY, AAPL, MSFT" in out and str(home) in out
    assert (home / "dagster.yaml").is_file()  # seeded from the repository's dagster.yaml
    assert phase1(["symbols", "add", "SPY"]) == 0
    assert "(none new)" in capsys.readouterr().out
    assert phase1(["symbols", "remove", "MSFT"]) == 0
    capsys.readouterr()
    assert phase1(["symbols", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["AAPL", "SPY"]

    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        assert sorted(instance.get_dynamic_partitions("symbols")) == ["AAPL", "SPY"]


def test_symbols_user_errors_are_one_line(home, capsys):
    assert phase1(["symbols", "add", "bad symbol!"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("phase1 symbols: error: invalid symbol") and "\n" not in err
    assert phase1(["symbols", "remove", "QQQ"]) == 2
    assert "not a symbol partition: QQQ" in capsys.readouterr().err
    assert phase1(["symbols", "add"]) == 2


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite'}",
        PHASE1_DROP_DIR=str(tmp_path / "drop"),
        PHASE1_EXPORT_DIR=str(tmp_path / "exports"),
        PYTHONWARNINGS="ignore",
    )
    env.pop("INGESTION_MODE", None)
    return env


def _materialize(partition: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "phase1_platform.definitions",
         "--select", "*", "--partition", partition],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def test_dagster_asset_materialize_cli(tmp_path, home):
    env = _env(tmp_path)
    subprocess.run([str(BIN / "phase1"), "symbols", "add", "AAPL"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=300)
    done = _materialize("2013-10-07|AAPL", env)
    assert done.returncode == 0, done.stderr[-3000:]
    export = tmp_path / "exports" / "2013-10-07" / "AAPL.csv"
    assert export.read_text().startswith("symbol,timeframe,timestamp,open,high,low,close,")

    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.tags["dagster/partition"] == "2013-10-07|AAPL"
        checks = [e for e in instance.all_logs(run.run_id)
                  if e.dagster_event and e.dagster_event.event_type_value
                  == "ASSET_CHECK_EVALUATION"]
        assert len(checks) == 16  # 5 parity, 5 quality, 5 live_equals_batch, rejected_ratio
        assert all(e.dagster_event.event_specific_data.passed for e in checks)

    unknown = _materialize("2013-10-07|QQQ", env)
    assert unknown.returncode != 0
    assert "DagsterUnknownPartitionError" in unknown.stderr
    assert "2013-10-07|QQQ" in unknown.stderr


def test_materialize_refuses_a_bad_partition_with_one_line(home, capsys, monkeypatch):
    """Defect 7: `dagster asset materialize --partition` of a non-trading day or an unknown
    symbol is a long traceback naming no fix (Dagster checks the key before our code runs);
    `phase1 materialize` checks it first: one line naming the key and the fix, exit 2."""
    import subprocess as sp

    launched: list[list[str]] = []
    monkeypatch.setattr(sp, "call", lambda cmd: launched.append(cmd) or 0)
    assert phase1(["symbols", "add", "SPY"]) == 0
    capsys.readouterr()
    cases = {
        "2013-10-05|SPY": "partition key '2013-10-05|SPY': 2013-10-05 is not a XNYS trading",
        "2013-10-07|QQQ": "add it with `phase1 symbols add QQQ`",
        "2012-10-08|SPY": "choose a trading day",
        "2013-10-07|../x": "invalid symbol '../x'",
        "SPY": "is not <YYYY-MM-DD>|<SYMBOL>",
    }
    for key, expected in cases.items():
        assert phase1(["materialize", key]) == 2, key
        err = capsys.readouterr().err.strip()
        assert err.startswith("phase1 materialize: error:") and "\n" not in err, err
        assert expected in err, err
    assert launched == []  # nothing reached Dagster

    assert phase1(["materialize", "2013-10-07|SPY", "--config-json", "{}"]) == 0
    (cmd,) = launched
    assert cmd[1:] == ["asset", "materialize", "-m", "phase1_platform.definitions",
                       "--select", "*", "--partition", "2013-10-07|SPY", "--config-json", "{}"]
    assert Path(cmd[0]).name == "dagster"
