"""Judge a partition's data quality: the use cases of the Dagster quality and rejected-ratio
checks, each verdict recorded in the store of record (``app.checks``).

- ``judge_rejected_ratio``: the partition's quarantined rows against the rows received
  (quarantined + accepted), judged by ``core.quality.rejected_ratio``, rejects counted per
  reason; recorded as ``REJECTED_RATIO`` (a check of the ticks: no timeframe).
- ``judge_quality``: the partition's stored bars of one timeframe under the pure rules of
  ``core.quality.evaluate_bars`` and, optionally, one further judge of the same derived
  frame (``extra``: the Dagster layer passes great-expectations, its own tool); recorded
  as ``QUALITY`` with the timeframe (and the sha256 of the bars judged).

The two sides of the ratio as the pipeline keeps them (``keep_rejects``,
``accepted_ticks``) are landing steps: ``app.land``.

Each verdict is a frozen dataclass with ``summary()``, a JSON-able dict (non-finite floats
become ``None``): what the store keeps and the read API shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from ..core.partition import Partition
from ..core.quality import (
    QualityReport,
    RejectedRatio,
    evaluate_bars,
    quality_frame,
    rejected_ratio,
)
from ..storage import BarRepository, QuarantineRepository, Store
from .checks import QUALITY, REJECTED_RATIO, record_check
from .land import accepted_ticks


def jsonable(value):
    """``value`` with numpy scalars made plain and non-finite floats made ``None`` (the
    store keeps summaries as strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------- rejected ratio
@dataclass(frozen=True)
class RejectedRatioVerdict:
    """Quarantined rows / rows received for one partition, against the threshold."""

    partition: Partition
    judged: RejectedRatio  # rows received (accepted canonical ticks + quarantined), rejected
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.judged.rows_in

    @property
    def rejected(self) -> int:
        return self.judged.rejected

    @property
    def threshold(self) -> float:
        return self.judged.threshold

    @property
    def ratio(self) -> float:
        return self.judged.ratio

    @property
    def passed(self) -> bool:
        return self.judged.passed

    def summary(self) -> dict:
        return {
            "partition": self.partition.key,
            "passed": self.passed,
            "rows": int(self.rows),
            "rejected": int(self.rejected),
            "rejected_ratio": float(round(self.ratio, 6)),
            "threshold": float(self.threshold),
            "rejected_by_reason": dict(self.rejected_by_reason),
        }


def judge_rejected_ratio(store: Store, part: Partition, threshold: float,
                         accepted: int | None = None) -> RejectedRatioVerdict:
    """The partition's rejected ratio under ``threshold`` (in [0, 1]), recorded.
    ``accepted``: the partition's canonical tick count (``accepted_ticks``) when the caller
    has just counted it, else counted here."""
    quarantined = QuarantineRepository(store).read(part.key)
    if accepted is None:
        accepted = accepted_ticks(store, part)
    judged = rejected_ratio(accepted + len(quarantined), len(quarantined), threshold)
    reasons = quarantined["reason"].astype(str).value_counts()
    verdict = RejectedRatioVerdict(part, judged,
                                   {str(k): int(v) for k, v in sorted(reasons.items())})
    record_check(store, part, REJECTED_RATIO, verdict.passed, verdict.summary())
    return verdict


# -------------------------------------------------------------------------------- quality
class ExtraVerdict(Protocol):
    """A further judge's verdict on the bars' quality frame (great-expectations)."""

    name: str

    @property
    def passed(self) -> bool: ...

    def summary(self) -> dict: ...


ExtraJudge = Callable[[pd.DataFrame], ExtraVerdict]


@dataclass(frozen=True)
class QualityVerdict:
    """The quality of one partition's stored bars of one timeframe."""

    partition: Partition
    timeframe: str
    report: QualityReport  # the pure rules of core.quality
    extra: ExtraVerdict | None = None  # a further judge of the same frame, if any

    @property
    def bars(self) -> int:
        return self.report.rows

    @property
    def passed(self) -> bool:
        return self.report.passed and (self.extra is None or self.extra.passed)

    def summary(self) -> dict:
        out = {
            "partition": self.partition.key,
            "timeframe": self.timeframe,
            "passed": self.passed,
            "bars": int(self.bars),
            "rules_passed": self.report.passed,
            "failed_rules": self.report.failed_rules(),
            "rule_violations": dict(self.report.violations),
            "examples": self.report.examples,
        }
        if self.extra is not None:
            out[self.extra.name] = self.extra.summary()
        return jsonable(out)


def judge_quality(store: Store, part: Partition, timeframe: str,
                  extra: ExtraJudge | None = None, bars: pd.DataFrame | None = None,
                  digest: str | None = None) -> QualityVerdict:
    """The partition's stored ``timeframe`` bars under the rules of ``core.quality`` (and
    ``extra``, given the frame those rules judge), recorded. ``bars``: those stored bars
    when the caller has them in hand (the build that just wrote them), else read;
    ``digest``: their sha256 when the caller knows it (``record_check``)."""
    if bars is None:
        bars = BarRepository(store).read_partition(part, [timeframe])
    report = evaluate_bars(bars, part.calendar)
    verdict = QualityVerdict(part, timeframe, report,
                             extra(quality_frame(bars, part.calendar)) if extra else None)
    record_check(store, part, QUALITY, verdict.passed, verdict.summary(), timeframe, bars,
                 digest)
    return verdict


__all__ = ["ExtraJudge", "ExtraVerdict", "QualityVerdict", "RejectedRatioVerdict",
           "judge_quality", "judge_rejected_ratio", "jsonable"]
