"""The Dagster asset graph on the shipped fixtures: materialize, checks, determinism."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from phase1_platform.app.replay import replay
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.core.export import CanonicalExporter, file_hash
from phase1_platform.defs.assets import ALL_ASSETS, BAR_ASSETS
from phase1_platform.defs.checks import ALL_CHECKS
from phase1_platform.defs.resources import PipelineSettings, default_resources
from phase1_platform_tests.conftest import FIXTURES
from phase1_platform_tests.support.workdir import offline_workdir

SPY = "2013-10-07|SPY"
AAPL = "2013-10-07|AAPL"
LEAN_USA = FIXTURES / "lean" / "equity" / "usa"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A working directory with its own SQLite store, empty drop and export folders."""
    offline_workdir(tmp_path, monkeypatch)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["SPY", "AAPL"])
        yield tmp_path, instance


def run(instance, key, selection=None):
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], partition_key=key, instance=instance,
        resources=default_resources(), selection=selection, raise_on_error=False,
    )


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name + ":" + e.asset_key.path[-1]: e
            for e in result.get_asset_check_evaluations()}


def materialized(result) -> dict[str, dict]:
    return {e.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def stored_verdicts(key: str) -> dict:
    """The partition's verdicts kept in the store of record (``DATABASE_URL``), by (check,
    timeframe)."""
    from phase1_platform.app.checks import partition_checks
    from phase1_platform.defs.partitions import to_partition
    from phase1_platform.storage.store import Store

    store = Store.from_url()
    try:
        return {(v.check.check_name, v.check.timeframe): v.check
                for v in partition_checks(store, to_partition(key))}
    finally:
        store.dispose()


def test_fixture_partitions_materialize_with_every_check_passing(env):
    tmp, instance = env
    for key in (SPY, AAPL):
        result = run(instance, key)
        assert result.success, key
        evals = checks(result)
        assert len(evals) == 16 and all(e.passed for e in evals.values()), {
            k: e.passed for k, e in evals.items()}
        mats = materialized(result)
        assert set(mats) == {"raw_ticks", "normalized_ticks", "bars_1m", "bars_5m", "bars_15m",
                             "bars_1h", "bars_1d", "reference_bars", "canonical_export"}
        export = mats["canonical_export"]
        date, symbol = key.split("|")
        path = tmp / "exports" / date / f"{symbol}.csv"
        assert Path(export["path"]) == path
        assert export["hash"] == file_hash(path)
        assert "data:image/svg+xml;base64," in export["chart"]
        assert mats["bars_1m"]["preview"].startswith("| symbol | timeframe | timestamp")
        assert set(export["bars_by_timeframe"]) == {"1m", "5m", "15m", "1h", "1d"}
        parity = evals["parity_1m:bars_1m"].metadata
        if symbol == "SPY":
            assert parity["compared"].value is True
            assert parity["rule_set"].value == "lean-equity"
            assert parity["bars_compared"].value == 32
            assert parity["match_pct"].value >= 75
            assert mats["raw_ticks"]["rows_read"] == 44565
            # the same bytes as `phase1 replay` of the same ticks with the same rule set
            start, end = trading_day_window(date)
            expected = replay([LEAN_USA / "tick" / "spy" / "20131007_trade.zip"], symbols=["SPY"],
                              rules="lean-equity", window=(start, end))
            assert CanonicalExporter(expected.bars).compute_hash() == export["hash"]
        else:
            assert parity["compared"].value is False
            assert "none" in parity["reference"].value
            assert mats["raw_ticks"]["rejected"] == 6
            assert sum(mats["raw_ticks"]["rejected_by_reason"].values()) == 6


def test_export_is_the_replay_bytes_and_stable_across_runs(env):
    tmp, instance = env
    first = materialized(run(instance, AAPL))["canonical_export"]["hash"]
    second = materialized(run(instance, AAPL))["canonical_export"]["hash"]
    assert first == second
    start, end = trading_day_window("2013-10-07")
    expected = replay([FIXTURES / "2013-10-07" / "AAPL.csv"], symbols=["AAPL"], window=(start, end))
    assert CanonicalExporter(expected.bars).compute_hash() == first


def _corrupt_lean_minutes(src: Path, dst: Path, every: int = 2) -> None:
    """Copy a LEAN minute zip with the close of every other bar raised by 25 cents."""
    with zipfile.ZipFile(src) as zf:
        (member,) = zf.namelist()
        frame = pd.read_csv(io.BytesIO(zf.read(member)), header=None)
    frame.loc[frame.index % every == 0, 4] += 2500  # price x 10000
    frame[2] = frame[[1, 2, 3, 4]].max(axis=1)  # keep the vendor bar itself consistent
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr(member, frame.to_csv(header=False, index=False))


def test_corrupted_reference_fails_parity_and_blocks_the_export(env):
    tmp, instance = env
    drop = tmp / "drop" / "equity" / "usa"
    (drop / "tick" / "spy").mkdir(parents=True)
    shutil.copy(LEAN_USA / "tick" / "spy" / "20131007_trade.zip", drop / "tick" / "spy")
    _corrupt_lean_minutes(LEAN_USA / "minute" / "spy" / "20131007_trade.zip",
                          drop / "minute" / "spy" / "20131007_trade.zip")
    result = run(instance, SPY)
    assert not result.success
    parity = checks(result)["parity_1m:bars_1m"]
    assert not parity.passed
    assert parity.severity == dg.AssetCheckSeverity.ERROR
    assert parity.metadata["unexplained_bars"].value >= 10
    assert "canonical_export" not in materialized(result)
    assert not (tmp / "exports" / "2013-10-07" / "SPY.csv").exists()
    kept = stored_verdicts(SPY)[("parity", "1m")]  # the store keeps the failed verdict
    assert not kept.passed and not kept.summary["passed"]
    assert kept.summary["unexplained_bars"] == parity.metadata["unexplained_bars"].value


def _swap_high_low_of_one_5m_bar(monkeypatch):
    """Make the engine emit one 5m bar with high < low (an engine bug the quality checks
    exist to catch): the build step stores it, its own quality check must fail."""
    from phase1_platform.core.engine import BarEngine

    real = BarEngine.build

    def build(self, ticks, timeframes="1m"):
        bars = real(self, ticks, timeframes)
        five = bars.index[(bars["timeframe"] == "5m") & (bars["high"] > bars["low"])]
        if len(five):
            row = five[0]
            bars.loc[row, ["high", "low"]] = bars.loc[row, ["low", "high"]].to_numpy()
        return bars

    monkeypatch.setattr(BarEngine, "build", build)


@pytest.mark.parametrize("great_expectations", [False, True])
def test_bad_bars_fail_quality_in_the_build_step_and_block_the_export(
        env, monkeypatch, great_expectations):
    """The quality checks are evaluated by the bars step on the bars it stored (no check
    step of their own): a bad bar fails ``quality_5m`` (with great-expectations too, when
    ``settings.great_expectations`` asks for it), the step fails after storing, and the
    export keeps its previous bytes."""
    tmp, instance = env
    assert run(instance, AAPL).success
    export = tmp / "exports" / "2013-10-07" / "AAPL.csv"
    good = export.read_bytes()
    _swap_high_low_of_one_5m_bar(monkeypatch)
    resources = default_resources()
    resources["settings"] = PipelineSettings(great_expectations=great_expectations)
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], partition_key=AAPL, instance=instance,
                            resources=resources, raise_on_error=False)
    assert not result.success
    evals = checks(result)
    quality = evals["quality_5m:bars_5m"]
    assert not quality.passed
    assert quality.metadata["rule_violations"].value["ohlc"] == 1
    assert all(e.passed for k, e in evals.items() if k.startswith("quality_")
               and k != "quality_5m:bars_5m")
    if great_expectations:
        assert quality.metadata["expectations_failed"].value >= 1
        assert quality.metadata["great_expectations_success"].value is False
    else:
        assert "great_expectations_success" not in quality.metadata
    assert "canonical_export" not in materialized(result)
    assert export.read_bytes() == good  # the previous export is left as it was
    kept = stored_verdicts(AAPL)[("quality", "5m")]
    assert not kept.passed and kept.summary["rule_violations"]["ohlc"] == 1
    if great_expectations:
        assert kept.summary["great_expectations"]["success"] is False


def test_every_check_keeps_the_partition_s_verdict_in_the_store(env):
    """The parity, quality and rejected-ratio checks record each partition's verdict in
    check_results (for the read API): Dagster's pass flags, and summaries that agree with
    the check's metadata, each verdict on bars with the hash of the bars it judged."""
    from phase1_platform.app.checks import bars_sha256, partition_checks
    from phase1_platform.defs.keys import BAR_TIMEFRAMES
    from phase1_platform.defs.partitions import to_partition
    from phase1_platform.storage.store import Store

    _, instance = env
    result = run(instance, SPY)
    assert result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    kept = stored_verdicts(SPY)
    assert set(kept) == {("rejected_ratio", "")} | {
        (name, tf) for name in ("parity", "quality") for tf in BAR_TIMEFRAMES}
    for (name, tf), check in kept.items():
        e = evals[f"{name}_{tf}" if tf else name]
        md = {k: v.value for k, v in e.metadata.items()}
        s = check.summary
        assert check.passed is e.passed is s["passed"] is True, (name, tf)
        assert s["partition"] == SPY and check.timeframe == tf
        if name == "parity":
            assert s["compared"] is md["compared"]
            if s["compared"]:
                assert [s[k] for k in ("bars_compared", "bars_matched", "match_pct",
                                       "rule_set", "mismatched_by_category",
                                       "mismatched_by_field")] == [
                    md[k] for k in ("bars_compared", "bars_matched", "match_pct", "rule_set",
                                    "mismatched_by_category", "mismatched_by_field")]
            else:
                assert s["note"] == md["reference"] and s["bars_compared"] == 0
        elif name == "quality":
            assert s["bars"] == md["bars"] > 0
            assert s["rule_violations"] == md["rule_violations"]
            assert "great_expectations" not in s  # off by default (settings)
        else:
            assert [s[k] for k in ("rows", "rejected", "rejected_ratio", "rejected_by_reason")] \
                == [md[k] for k in ("rows", "rejected", "rejected_ratio", "rejected_by_reason")]
    parity = kept[("parity", "1m")].summary
    assert parity["compared"] and parity["bars_compared"] == 32
    assert parity["rule_set"] == "lean-equity" and parity["match_pct"] >= 75
    store = Store.from_url()
    try:
        part = to_partition(SPY)
        assert not any(v.stale for v in partition_checks(store, part))
        for tf in BAR_TIMEFRAMES:  # the hash of each timeframe's bars, as read back
            digest = bars_sha256(store, part, tf)
            assert kept[("quality", tf)].bars_sha256 == kept[("parity", tf)].bars_sha256 \
                == digest != ""
    finally:
        store.dispose()


def test_unknown_partition_keys_are_refused(env):
    _, instance = env
    for key in ("2013-10-07|QQQ", "2013-10-05|SPY", "2013-12-25|SPY"):
        with pytest.raises(dg.DagsterUnknownPartitionError, match="Could not find a partition"):
            dg.materialize(ALL_ASSETS, partition_key=key, instance=instance,
                           resources=default_resources())


def test_partition_without_ticks_fails_with_one_clear_line(env):
    _, instance = env
    result = run(instance, "2013-10-08|AAPL", selection=dg.AssetSelection.assets("raw_ticks"))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = failure.step_failure_data.user_failure_data.description
    assert "no ticks for AAPL on 2013-10-08" in text and "drop a tick file" in text


def test_definitions_load():
    from phase1_platform.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.path[-1] for k in graph.get_all_asset_keys()}
    assert {"raw_ticks", "bars_1m", "bars_1d", "canonical_export", "reference_bars"} <= keys
    assert len(list(graph.asset_check_keys)) == 16  # 11 + live_equals_batch per timeframe


def test_live_mode_lands_alpaca_trades_and_compares_alpaca_bars(env):
    """INGESTION_MODE=live, AAPL from Alpaca (a local fake speaking its API): same export."""
    from phase1_platform.defs.resources import (
        AlpacaResource,
        PipelineSettings,
        SourcesResource,
    )
    from phase1_platform_tests.integration.test_alpaca import (
        KEY,
        SECRET,
        FakeAlpaca,
        vendor_bars,
        vendor_trades,
    )

    tmp, instance = env
    csv = FIXTURES / "2013-10-07" / "AAPL.csv"
    start, end = trading_day_window("2013-10-07")
    expected = replay([csv], symbols=["AAPL"], window=(start, end))
    with FakeAlpaca({"AAPL": vendor_trades(csv)}, bars=vendor_bars(expected.bars)) as fake:
        resources = default_resources() | {
            "settings": PipelineSettings(mode="live"),
            "sources": SourcesResource(tick_sources={"AAPL": "alpaca"},
                                       reference_sources={"AAPL": "alpaca"}),
            "alpaca": AlpacaResource(api_key_id=KEY, api_secret_key=SECRET, base_url=fake.url),
        }
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], partition_key=AAPL,
                                instance=instance, resources=resources)
    assert result.success
    evals = checks(result)
    parity = evals["parity_1m:bars_1m"].metadata
    assert parity["compared"].value is True and parity["match_pct"].value == 100.0
    assert evals["parity_1d:bars_1d"].metadata["is_exact_parity"].value is True
    mats = materialized(result)
    assert mats["raw_ticks"]["source"] == "alpaca"
    assert mats["canonical_export"]["hash"] == CanonicalExporter(expected.bars).compute_hash()


def test_mock_mode_refuses_network_sources_with_one_line(env):
    from phase1_platform.defs.resources import SourcesResource

    _, instance = env
    resources = default_resources() | {"sources": SourcesResource(tick_sources={"AAPL": "alpaca"})}
    result = dg.materialize(ALL_ASSETS, partition_key=AAPL, instance=instance,
                            resources=resources, selection=["raw_ticks"], raise_on_error=False)
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = failure.step_failure_data.user_failure_data.description
    assert "INGESTION_MODE=live" in text and "\n" not in text


def test_a_run_over_a_date_range_processes_each_partition(env):
    """A backfill run covering two trading dates (BackfillPolicy.multi_run) in one process."""
    from phase1_platform.definitions import defs

    tmp, instance = env
    text = (FIXTURES / "2013-10-07" / "AAPL.csv").read_text()
    for day in ("2013-10-07", "2013-10-08"):
        folder = tmp / "drop" / day
        folder.mkdir(parents=True)
        body = text.replace("2013-10-07", day)
        if day != "2013-10-07":  # vendor trade ids are per day: keep them distinct here
            lines = body.splitlines()
            body = "\n".join([lines[0]] + [_retag(line) for line in lines[1:]]) + "\n"
        (folder / "AAPL.csv").write_text(body)
    result = defs.resolve_job_def("bars_pipeline").execute_in_process(
        instance=instance, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2013-10-07|AAPL",
              "dagster/asset_partition_range_end": "2013-10-08|AAPL"},
    )
    assert result.success
    exports = {e.partition for e in result.get_asset_materialization_events()
               if e.asset_key.path[-1] == "canonical_export"}
    assert exports == {"2013-10-07|AAPL", "2013-10-08|AAPL"}
    first = file_hash(tmp / "exports" / "2013-10-07" / "AAPL.csv")
    start, end = trading_day_window("2013-10-07")
    expected = replay([FIXTURES / "2013-10-07" / "AAPL.csv"], symbols=["AAPL"], window=(start, end))
    assert first == CanonicalExporter(expected.bars).compute_hash()
    assert (tmp / "exports" / "2013-10-08" / "AAPL.csv").read_text().count("2013-10-08T") > 300
    evals = result.get_asset_check_evaluations()
    assert all(e.passed for e in evals)
    # a run over a range records each check's result once per partition, with it
    by_check: dict[str, list[str]] = {}
    for e in evals:
        by_check.setdefault(f"{e.check_name}:{e.asset_key.path[-1]}", []).append(e.partition)
    assert len(by_check) == 16
    assert all(sorted(p) == ["2013-10-07|AAPL", "2013-10-08|AAPL"] for p in by_check.values())
    records = _history(instance, dg.AssetCheckKey(dg.AssetKey("bars_1m"), "parity_1m"))
    assert sorted(r.partition for r in records) == ["2013-10-07|AAPL", "2013-10-08|AAPL"]


def test_two_tick_files_of_a_partition_are_handed_over_merged_and_not_read_back(
        env, monkeypatch):
    """raw_ticks hands the ticks it landed to normalized_ticks in process (merged into one
    canonical set when the partition has several files) when they are all the store holds:
    the partition's ticks are never read back, and the bars equal a replay of both files.
    A second run finds them stored already and reads them: the same bars."""
    from phase1_platform.storage import TickRepository

    tmp, instance = env
    lean = tmp / "drop" / "equity" / "usa" / "tick" / "spy"
    lean.mkdir(parents=True)
    shutil.copy(LEAN_USA / "tick" / "spy" / "20131007_trade.zip", lean)
    extra = tmp / "drop" / "2013-10-07" / "SPY.csv"  # AAPL's day of trades, as SPY's
    extra.parent.mkdir(parents=True)
    extra.write_text((FIXTURES / "2013-10-07" / "AAPL.csv").read_text().replace(",AAPL,", ",SPY,"))
    reads = []
    for name in ("read", "read_many"):
        real = getattr(TickRepository, name)
        monkeypatch.setattr(TickRepository, name,
                            lambda self, *a, _real=real, _n=name: reads.append(_n) or
                            _real(self, *a))
    selection = dg.AssetSelection.assets("raw_ticks", "normalized_ticks", *BAR_ASSETS.values())
    assert run(instance, SPY, selection=selection).success
    assert reads == []
    start, end = trading_day_window("2013-10-07")
    expected = replay([lean / "20131007_trade.zip", extra], symbols=["SPY"], window=(start, end),
                      rules="lean-equity")
    from phase1_platform.storage import BarRepository
    from phase1_platform.storage.store import Store

    store = Store.from_url()
    try:
        first = CanonicalExporter(BarRepository(store).read("SPY", None, start, end)).to_bytes()
        assert first == CanonicalExporter(expected.bars).to_bytes()
        assert run(instance, SPY, selection=selection).success  # nothing new: read back
        assert reads == ["read_many", "read"]  # the one partition, read once
        again = CanonicalExporter(BarRepository(store).read("SPY", None, start, end)).to_bytes()
        assert again == first
    finally:
        store.dispose()


def _retag(line: str) -> str:
    fields = line.split(",")
    if len(fields) >= 7 and fields[6].strip():
        fields[6] = "8" + fields[6].strip()
    return ",".join(fields)


def _failure_text(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.user_failure_data.description


def test_bad_file_and_unreachable_store_are_one_line_failures(env, monkeypatch):
    tmp, instance = env
    bad = tmp / "drop" / "2013-10-07" / "AAPL.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("when,what\n1,2\n")
    result = run(instance, AAPL, selection=["raw_ticks"])
    text = _failure_text(result)
    assert "missing required column(s) timestamp" in text and "\n" not in text

    bad.unlink()
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    text = _failure_text(run(instance, AAPL, selection=["raw_ticks"]))
    assert "127.0.0.1:1" in text and "secret" not in text and "\n" not in text


def _history(instance, check: dg.AssetCheckKey) -> list:
    return instance.event_log_storage.get_asset_check_execution_history(check, limit=100)


def test_each_partition_s_check_results_are_recorded_with_the_partition(env):
    """Partitioned checks (issue section 3): the UI's partitions view and check history
    show each partition's parity and quality result, not one latest result under "-";
    and the parity check's worst rows hold the largest differences (defect 16)."""
    from phase1_platform.defs.keys import PARITY_CHECK_KEYS, QUALITY_CHECK_KEYS

    _, instance = env
    for key in (SPY, AAPL):
        result = run(instance, key)
        assert result.success, key
        assert {e.partition for e in result.get_asset_check_evaluations()} == {key}
    for check in [*PARITY_CHECK_KEYS, *QUALITY_CHECK_KEYS,
                  dg.AssetCheckKey(dg.AssetKey("normalized_ticks"), "rejected_ratio")]:
        records = _history(instance, check)
        assert sorted(r.partition for r in records) == sorted([SPY, AAPL]), check
        for r in records:
            assert r.event.dagster_event.event_specific_data.metadata["partition"].value == \
                r.partition
    latest = {r.partition: r for r in _history(instance, PARITY_CHECK_KEYS[0])}
    md = latest[SPY].event.dagster_event.event_specific_data.metadata
    assert md["bars_matched"].value < md["bars_compared"].value  # SPY has mismatches
    worst = md["worst_rows"].value
    assert worst and all(rows for rows in worst.values())
    row = next(iter(worst.values()))[0]
    assert {"symbol", "timeframe", "ts", "generated", "reference", "diff"} <= set(row)
    assert row["symbol"] == "SPY" and row["timeframe"] == "1m"


def test_a_symbol_that_is_a_path_is_refused_before_any_file_or_sql(env):
    """Defect 6: a dynamic partition added through the UI or API is not validated by
    Dagster; every asset refuses it with one line before touching the store or a file."""
    tmp, instance = env
    bad = "../../../outside/x"
    instance.add_dynamic_partitions("symbols", [bad])
    result = run(instance, f"2013-10-07|{bad}")
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert {e.step_key for e in failures} >= {"raw_ticks", "reference_bars"}
    for e in failures:
        text = e.step_failure_data.user_failure_data.description
        assert "invalid symbol" in text and bad in text and "\n" not in text
    assert not (tmp / "store.sqlite").exists()  # no SQL
    assert not (tmp.parent / "outside").exists() and not (tmp / "exports").exists()


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(env, monkeypatch):
    """Only core.errors.UserError becomes a one-line Failure; a bug is not disguised."""
    import phase1_platform.defs.reference.assets as reference_assets
    from phase1_platform.core.errors import InputError

    _, instance = env

    def user_error(files, part):
        raise InputError(f"{part.key}: the vendor file is\nunreadable: re-download it")

    monkeypatch.setattr(reference_assets, "reference_from_lean", user_error)
    result = run(instance, SPY, selection=["reference_bars"])
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = failure.step_failure_data.user_failure_data.description
    assert text == "2013-10-07|SPY: the vendor file is unreadable: re-download it"

    def bug(files, part):  # a ValueError that is no UserError: a bug, not bad input
        return int("not a number")

    monkeypatch.setattr(reference_assets, "reference_from_lean", bug)
    result = run(instance, SPY, selection=["reference_bars"])
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.user_failure_data is None
    error = failure.step_failure_data.error.cause  # Dagster wraps the user code's error
    assert error.cls_name == "ValueError" and "not a number" in error.message
    assert any("in bug" in line for line in error.stack)
