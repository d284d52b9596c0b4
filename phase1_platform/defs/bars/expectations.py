"""great-expectations 1.x on the bar frames (dagster-ge does not support GE 1.x).

One ephemeral context per process, imported lazily (its import takes seconds), progress
bars off. The expectations validate the same derived columns the pure rules in
``core.quality`` compute (``quality_frame``); ``judge_bars_with_ge`` is the further judge
the quality checks hand ``app.quality.judge_quality``, which reports both verdicts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pandas as pd


class _GreatExpectations:
    """One ephemeral GE context per process, with one pandas asset and suite per name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ctx = None
        self._batches: dict[str, object] = {}
        self._suites: dict[str, object] = {}

    def _context(self):
        if self._ctx is None:
            import great_expectations as gx  # lazy: the import takes seconds
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            self._ctx = ctx
            self._gx = gx
        return self._ctx

    def validate(self, name: str, frame: pd.DataFrame, expectations) -> object:
        with self._lock:
            ctx = self._context()
            if name not in self._batches:
                source = ctx.data_sources.add_pandas(f"phase1_{name}")
                asset = source.add_dataframe_asset(name)
                self._batches[name] = asset.add_batch_definition_whole_dataframe("all")
                suite = self._gx.ExpectationSuite(name=f"phase1_{name}")
                for e in expectations(self._gx.expectations):
                    suite.add_expectation(e)
                self._suites[name] = ctx.suites.add(suite)
            batch = self._batches[name].get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(self._suites[name])


GE = _GreatExpectations()


def bar_expectations(gxe) -> list:
    pair = gxe.ExpectColumnPairValuesAToBeGreaterThanB
    return [
        pair(column_A="high", column_B="open", or_equal=True),
        pair(column_A="high", column_B="close", or_equal=True),
        pair(column_A="open", column_B="low", or_equal=True),
        pair(column_A="close", column_B="low", or_equal=True),
        pair(column_A="high", column_B="low", or_equal=True),
        gxe.ExpectColumnValuesToBeInSet(column="prices_ok", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "timeframe", "ts"]),
        gxe.ExpectColumnValuesToBeInSet(column="ts_offset_ns", value_set=[0]),
        gxe.ExpectColumnValuesToBeInSet(column="in_session", value_set=[True]),
    ]


@dataclass(frozen=True)
class GEVerdict:
    """great-expectations' verdict on a bar quality frame (an ``app.quality.ExtraVerdict``).

    ``broken`` lists expectations that raised instead of judging (a timestamp bound of the
    wrong type, say): they fail the verdict, since they judged nothing.
    """

    success: bool
    expectations: dict[str, dict]  # "type(target)" -> success, unexpected, raised
    broken: tuple[str, ...] = ()
    name: str = "great_expectations"

    @property
    def passed(self) -> bool:
        return self.success and not self.broken

    @property
    def failed(self) -> list[str]:
        return [k for k, v in self.expectations.items() if not v["success"]]

    def summary(self) -> dict:
        return {"success": self.success, "passed": self.passed,
                "evaluated": len(self.expectations), "failed": self.failed,
                "broken": list(self.broken), "expectations": self.expectations}


def summarize_ge(result) -> GEVerdict:
    """The verdict of a GE validation result, per expectation."""
    summary = {}
    broken = []
    for r in result.results:
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        target = kwargs.get("column") or (
            f"{kwargs.get('column_A')}>={kwargs.get('column_B')}" if "column_A" in kwargs
            else ",".join(kwargs.get("column_list", [])))
        key = f"{cfg.type}({target})"
        info = r.exception_info or {}
        raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
        if raised:
            broken.append(f"{key}: {info.get('exception_message')}")
        summary[key] = {"success": bool(r.success),
                        "unexpected": int((r.result or {}).get("unexpected_count") or 0),
                        "raised": raised}
    return GEVerdict(bool(result.success), summary, tuple(broken))


def judge_bars_with_ge(frame: pd.DataFrame) -> GEVerdict:
    """great-expectations on a bar quality frame (``core.quality.quality_frame``): the
    ``extra`` judge of ``app.quality.judge_quality``."""
    return summarize_ge(GE.validate("bars", frame, bar_expectations))
