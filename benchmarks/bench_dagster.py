"""One partition through Dagster against `phase1 replay` of the same ticks, side by side.

    python -m benchmarks.bench_dagster [--tick-file ZIP] [--repeat 5]

Both run as a user runs them, each a fresh process on a fresh SQLite store, on the real SPY
day of ``../shared/data`` (250,601 ticks; the shipped fixture slice when it is missing):

- ``phase1 replay --csv ZIP --rules lean-equity --database-url URL --output OUT``: land the
  ticks, build every timeframe, store them, write the canonical CSV;
- ``dagster asset materialize -m phase1_platform.definitions --select '*' --partition
  2013-10-07|SPY``: every asset and check of the partition (landing, normalized ticks, bars,
  vendor bars, parity and quality checks, the checked export) on a fresh instance.

``dagster_vs_replay_ratio`` is the median materialize time over the median replay time
(the issue's target is <= 1.5). The exports of both must be byte-identical (checked).

``event_log_ms_stock`` / ``event_log_ms_kept``: the cost of one event written through
Dagster's SQLite event log class and through ours with kept connections
(``phase1_platform.instance_storage``), 200 engine events into one run, same process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATE, SYMBOL = "2013-10-07", "SPY"
REL = Path("equity/usa/tick/spy/20131007_trade.zip")
SHARED = ROOT.parent / "shared" / "data" / "lean" / REL
FIXTURE = ROOT / "fixtures" / "lean" / REL
REFERENCE = Path("equity/usa/minute/spy/20131007_trade.zip")
QUIET = '{"loggers": {"console": {"config": {"log_level": "ERROR"}}}}'


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=900)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return elapsed


def _drop(work: Path, tick_file: Path) -> Path:
    """A LEAN Data/ folder with the day's ticks and, when present, the vendor's minute bars."""
    drop = work / "drop"
    (drop / REL).parent.mkdir(parents=True)
    shutil.copy(tick_file, drop / REL)
    ref = tick_file.parents[4] / REFERENCE if len(tick_file.parents) > 4 else None
    if ref is not None and ref.is_file():
        (drop / REFERENCE).parent.mkdir(parents=True)
        shutil.copy(ref, drop / REFERENCE)
    return drop


def replay_once(work: Path, tick_file: Path) -> tuple[float, bytes]:
    out = work / "replay.csv"
    seconds = _timed([str(BIN / "phase1"), "replay", "--csv", str(tick_file), "--rules",
                      "lean-equity", "--database-url", f"sqlite:///{work / 'replay.sqlite'}",
                      "--output", str(out)], {}, work)
    return seconds, out.read_bytes()


def materialize_once(work: Path, drop: Path) -> tuple[float, bytes]:
    home = work / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {"DAGSTER_HOME": str(home), "DATABASE_URL": f"sqlite:///{work / 'dagster.sqlite'}",
           "PHASE1_DROP_DIR": str(drop), "PHASE1_EXPORT_DIR": str(work / "exports")}
    _timed([str(BIN / "phase1"), "symbols", "add", SYMBOL], env, work)  # not timed: setup
    seconds = _timed([str(BIN / "dagster"), "asset", "materialize", "-m",
                      "phase1_platform.definitions", "--select", "*", "--partition",
                      f"{DATE}|{SYMBOL}", "--config-json", QUIET], env, work)
    return seconds, (work / "exports" / DATE / f"{SYMBOL}.csv").read_bytes()


def event_log_ms(kept: bool, events: int = 200) -> float:
    """Milliseconds per engine event stored in a fresh SQLite instance."""
    import dagster as dg

    text = (ROOT / "dagster.yaml").read_text()
    if not kept:  # Dagster's own class: the instance file without our event_log_storage
        text = text[:text.index("event_log_storage:")] + text[text.index("run_coordinator:"):]

    @dg.asset
    def one() -> int:
        return 1

    with tempfile.TemporaryDirectory(prefix="phase1-bench-events-") as home:
        Path(home, "dagster.yaml").write_text(text)
        with dg.DagsterInstance.from_config(home) as instance:
            job = dg.define_asset_job("events", [one]).resolve(
                asset_graph=dg.Definitions(assets=[one]).resolve_asset_graph())
            run = instance.create_run_for_job(job)
            t0 = time.perf_counter()
            for i in range(events):
                instance.report_engine_event(f"event {i}", run)
            return (time.perf_counter() - t0) / events * 1000


def run(quick: bool = False, tick_file: Path | None = None, repeat: int = 5) -> dict:
    tick_file = tick_file or (SHARED if SHARED.is_file() else FIXTURE)
    replays, materializes = [], []
    for _ in range(1 if quick else repeat):  # interleaved: both see the same machine load
        with tempfile.TemporaryDirectory(prefix="phase1-bench-dagster-") as tmp:
            work = Path(tmp)
            drop = _drop(work, tick_file)
            r_s, r_bytes = replay_once(work, tick_file)
            m_s, m_bytes = materialize_once(work, drop)
            if r_bytes != m_bytes:
                raise AssertionError("the Dagster export differs from phase1 replay's")
            replays.append(r_s)
            materializes.append(m_s)
    replay_s, dagster_s = float(np.median(replays)), float(np.median(materializes))
    ratio = dagster_s / replay_s
    print(f"   ticks: {tick_file}")
    print(f"   phase1 replay --database-url: {replay_s:.2f} s   (runs: "
          f"{', '.join(f'{s:.2f}' for s in replays)})")
    print(f"   dagster asset materialize:    {dagster_s:.2f} s   (runs: "
          f"{', '.join(f'{s:.2f}' for s in materializes)})")
    print(f"   dagster_vs_replay_ratio: {ratio:.2f} (target <= 1.5); exports identical")
    stock, kept = event_log_ms(kept=False), event_log_ms(kept=True)
    print(f"   one event-log write (SQLite): Dagster's class {stock:.2f} ms, "
          f"kept connections {kept:.2f} ms")
    return {"dagster_vs_replay_ratio": round(ratio, 3),
            "dagster_materialize_s": round(dagster_s, 3), "replay_s": round(replay_s, 3),
            "event_log_ms_stock": round(stock, 2), "event_log_ms_kept": round(kept, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_dagster",
                                description=__doc__.splitlines()[0])
    p.add_argument("--tick-file", type=Path, default=None)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    print(json.dumps(run(tick_file=args.tick_file, repeat=args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
