"""The index of the asset checks (all blocking, severity ERROR, partitioned like their
assets so each partition's result is recorded with its partition):

- ``parity_<tf>`` on each ``bars_<tf>``: against the vendor's bars, one check step for
  every timeframe (``reference/checks.py``);
- ``quality_<tf>`` on each ``bars_<tf>``: ``core.quality`` (and great-expectations when
  asked), evaluated by the ``bars`` step itself (``bars/checks.py``, ``check_specs``);
- ``rejected_ratio`` on ``normalized_ticks``, evaluated by that step (``ticks/checks.py``).

A failed check stops the assets downstream of the checked one in the same run, so a failing
parity or quality check blocks ``canonical_export``. ``ALL_CHECKS`` holds the check
definitions of their own (the others are part of their assets' definitions).
"""

from __future__ import annotations

from .reference.checks import PARITY_SPECS, parity_checks

ALL_CHECKS = [parity_checks]

__all__ = ["ALL_CHECKS", "PARITY_SPECS", "parity_checks"]
