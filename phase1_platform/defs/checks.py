"""The index of the asset checks (all blocking, severity ERROR, partitioned like their
assets so each partition's result is recorded with its partition):

- ``parity_<tf>`` on each ``bars_<tf>``: against the vendor's bars (``reference/checks.py``);
- ``quality_<tf>`` on each ``bars_<tf>``: great-expectations and ``core.quality``
  (``bars/checks.py``);
- ``rejected_ratio`` on ``normalized_ticks`` (``ticks/checks.py``).

A failed check stops the assets downstream of the checked one in the same run, so a failing
parity or quality check blocks ``canonical_export``.
"""

from __future__ import annotations

from .bars.checks import QUALITY_CHECKS
from .reference.checks import PARITY_CHECKS
from .ticks.checks import rejected_ratio_check

ALL_CHECKS = [*PARITY_CHECKS, *QUALITY_CHECKS, rejected_ratio_check]

__all__ = ["ALL_CHECKS", "PARITY_CHECKS", "QUALITY_CHECKS", "rejected_ratio_check"]
