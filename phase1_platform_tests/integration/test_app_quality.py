"""app.quality (rejected ratio, bar quality) and app.parity's recorded verdicts, on a real
store (SQLite and PostgreSQL): each judgement is kept as the partition's latest verdict in
``check_results`` with its summary, and a verdict on bars goes stale when the bars change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from phase1_platform.app.build import build_bars
from phase1_platform.app.checks import (
    PARITY,
    QUALITY,
    REJECTED_RATIO,
    bars_sha256,
    partition_checks,
)
from phase1_platform.app.land import accepted_ticks, keep_rejects, land_ticks
from phase1_platform.app.parity import (
    ParityThresholds,
    judge_and_record_partition,
    judge_partition,
)
from phase1_platform.app.quality import jsonable, judge_quality, judge_rejected_ratio
from phase1_platform.core.export import to_canonical
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.partition import Partition
from phase1_platform.core.schema import QUARANTINE_COLUMNS
from phase1_platform.storage import BarRepository, Store

from .test_store import raw_ticks

PART = Partition("2013-10-07", "SPY")



def landed(store: Store, n: int = 3000):
    """Land ``n`` raw rows of PART (two of them bad) and build its bars."""
    result = TickNormalizer(symbols=[PART.symbol], window=PART.window).normalize(
        raw_ticks(n=n))
    land_ticks(store, result, PART.key)
    build_bars(store, PART, "default")
    return result


def recorded(store: Store) -> dict[tuple[str, str], object]:
    return {(v.check.check_name, v.check.timeframe): v for v in partition_checks(store, PART)}


# -------------------------------------------------------------------------- rejected ratio
def test_rejected_ratio_counts_the_quarantine_and_records_the_latest_verdict(store):
    result = landed(store)
    verdict = judge_rejected_ratio(store, PART, 0.05)
    assert verdict.rejected == 2 == len(result.quarantine)
    assert verdict.rows == accepted_ticks(store, PART) + 2 == 3000
    assert verdict.rejected_by_reason == result.rejected_by_reason
    assert verdict.passed and verdict.ratio == pytest.approx(2 / 3000)
    (view,) = recorded(store).values()
    assert (view.check.check_name, view.check.timeframe) == (REJECTED_RATIO, "")
    assert view.check.passed and not view.stale and view.check.bars_sha256 == ""
    assert view.check.summary == verdict.summary()
    assert view.check.summary["rejected_ratio"] == round(2 / 3000, 6)

    strict = judge_rejected_ratio(store, PART, 0.0)  # judged again: the verdict is replaced
    assert not strict.passed
    (view,) = recorded(store).values()
    assert not view.check.passed and view.check.summary["threshold"] == 0.0


def test_rejects_kept_while_merging_sources_count_in_the_ratio(store):
    landed(store)
    extra = pd.DataFrame({"source": ["b.csv"] * 3, "source_row": [1, 2, 3],
                          "reason": ["duplicate across sources"] * 3,
                          "raw": ["x", "y", "z"]}).astype(QUARANTINE_COLUMNS)
    assert keep_rejects(store, PART, extra) == 3
    assert keep_rejects(store, PART, extra) == 0  # idempotent
    verdict = judge_rejected_ratio(store, PART, 0.05)
    assert verdict.rejected == 5 and verdict.rejected_by_reason["duplicate across sources"] == 3


def test_a_partition_with_nothing_landed_passes_with_zero_rows(store):
    verdict = judge_rejected_ratio(store, PART, 0.05)
    assert (verdict.rows, verdict.rejected, verdict.ratio, verdict.passed) == (0, 0, 0.0, True)
    assert recorded(store)[(REJECTED_RATIO, "")].check.summary["rejected_by_reason"] == {}


# --------------------------------------------------------------------------------- quality
@dataclass(frozen=True)
class CountingJudge:
    """An extra judge that passes when it was handed as many rows as it expects."""

    expected: int
    rows: int
    columns: tuple[str, ...]
    name: str = "counting"

    @property
    def passed(self) -> bool:
        return self.rows == self.expected

    def summary(self) -> dict:
        return {"rows": self.rows, "expected": self.expected}


def test_quality_of_built_bars_passes_and_is_recorded_with_the_bars_hash(store):
    landed(store)
    for tf in ("1m", "1d"):
        n = len(BarRepository(store).read_partition(PART, [tf]))
        verdict = judge_quality(store, PART, tf)
        assert verdict.passed and verdict.bars == n > 0
        assert verdict.extra is None and "counting" not in verdict.summary()
        view = recorded(store)[(QUALITY, tf)]
        assert view.check.passed and not view.stale
        assert view.check.bars_sha256 == bars_sha256(store, PART, tf)
        assert view.check.summary == verdict.summary()
        assert view.check.summary["rule_violations"] == dict.fromkeys(
            ["ohlc", "volume", "unique_key", "aligned", "in_session"], 0)


def test_an_extra_judge_sees_the_quality_frame_and_its_failure_fails_the_verdict(store):
    landed(store)
    n = len(BarRepository(store).read_partition(PART, ["5m"]))
    seen = []

    def judge(expected):
        def extra(frame: pd.DataFrame) -> CountingJudge:
            seen.append(frame)
            return CountingJudge(expected, len(frame), tuple(frame.columns))
        return extra

    ok = judge_quality(store, PART, "5m", extra=judge(n))
    assert ok.passed and {"ts_offset_ns", "in_session", "prices_ok"} <= set(ok.extra.columns)
    assert len(seen[0]) == n
    bad = judge_quality(store, PART, "5m", extra=judge(n + 1))
    assert not bad.passed and bad.report.passed  # the rules pass, the extra judge does not
    view = recorded(store)[(QUALITY, "5m")]
    assert not view.check.passed
    assert view.check.summary["counting"] == {"rows": n, "expected": n + 1}
    assert view.check.summary["rules_passed"] is True


def test_broken_bars_fail_with_examples_and_the_verdict_goes_stale(store):
    landed(store)
    repo = BarRepository(store)
    good = repo.read_partition(PART)
    bad = good.copy()
    m1 = np.flatnonzero(bad["timeframe"].to_numpy(str) == "1m")
    bad.loc[m1[0], "low"] = bad.loc[m1[0], "high"] + 1.0  # low above high
    bad.loc[m1[1], "open"] = 0.0  # not a price (a price is > 0)
    repo.write_partition(bad, PART, rule_set="default", source="edited")
    verdict = judge_quality(store, PART, "1m")
    assert not verdict.passed and verdict.report.violations["ohlc"] == 2
    view = recorded(store)[(QUALITY, "1m")]
    summary = view.check.summary
    assert not view.check.passed and summary["failed_rules"] == ["ohlc"]
    assert len(summary["examples"]["ohlc"]) == 2
    assert sorted(row["open"] for row in summary["examples"]["ohlc"])[0] == 0.0
    repo.write_partition(good, PART, rule_set="default", source="rebuilt")
    assert recorded(store)[(QUALITY, "1m")].stale  # judged bars that are no longer stored


def test_jsonable_makes_numpy_values_plain_and_non_finite_floats_null():
    value = {"a": np.int64(3), "b": [np.float64("nan"), float("inf"), 1.5], 4: (True,)}
    assert jsonable(value) == {"a": 3, "b": [None, None, 1.5], "4": [True]}
    assert type(jsonable(value)["a"]) is int


# ---------------------------------------------------------------------------------- parity
def test_parity_verdicts_are_recorded_with_their_summary_only_when_asked(store):
    landed(store)
    thresholds = ParityThresholds()
    ours = to_canonical(BarRepository(store).read_partition(PART))
    judge_partition(store, PART, "1m", ours, "default", thresholds)
    assert recorded(store) == {}  # judging alone records nothing

    same = judge_and_record_partition(store, PART, "1m", ours, "default", thresholds)
    n = int((ours["timeframe"] == "1m").sum())
    summary = recorded(store)[(PARITY, "1m")].check.summary
    assert same.passed and summary == same.summary()
    assert (summary["compared"], summary["bars_compared"], summary["bars_matched"]) == (
        True, n, n)
    assert summary["match_pct"] == 100.0 and summary["unexplained_pct"] == 0.0
    assert summary["mismatched_by_category"] == {} and summary["rule_set"] == "default"
    assert "note" not in summary

    shifted = ours.copy()
    rows = (shifted["timeframe"] == "1h").to_numpy()
    shifted.loc[rows, "close"] += 1.0
    shifted.loc[rows, "high"] = shifted.loc[rows, ["high", "close"]].max(axis=1)
    worse = judge_and_record_partition(store, PART, "1h", shifted, "default", thresholds)
    summary = recorded(store)[(PARITY, "1h")].check.summary
    assert not worse.passed and not recorded(store)[(PARITY, "1h")].check.passed
    assert summary["mismatched_by_field"]["close"] == int(rows.sum())
    assert summary["unexplained_pct"] > thresholds.max_unexplained_pct
    assert sum(summary["mismatched_by_category"].values()) >= int(rows.sum())

    none = judge_and_record_partition(store, PART, "5m", None, "default", thresholds)
    summary = recorded(store)[(PARITY, "5m")].check.summary
    assert none.passed and summary["compared"] is False and "no vendor bars" in summary["note"]
    assert (summary["bars_compared"], summary["match_pct"]) == (0, None)
