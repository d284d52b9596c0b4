"""The index of the assets, by concern (each concern's package holds its assets and their
checks; ``definitions.py`` loads the whole ``defs/`` folder):

- ``ticks``: ``raw_ticks`` (land the partition's tick files), ``normalized_ticks``;
- ``bars``: ``bars_1m`` .. ``bars_1d`` (one multi-asset ``bars``);
- ``reference``: ``reference_bars`` (the vendor's own bars);
- ``export``: ``canonical_export``.

For tests, benchmarks and ``dg.materialize([*ALL_ASSETS, *ALL_CHECKS], ...)``.
"""

from __future__ import annotations

from .bars.assets import bars
from .export.assets import canonical_export
from .keys import BAR_ASSETS, BAR_TIMEFRAMES
from .reference.assets import reference_bars
from .ticks.assets import normalized_ticks, raw_ticks

ALL_ASSETS = [raw_ticks, normalized_ticks, bars, reference_bars, canonical_export]

__all__ = ["ALL_ASSETS", "BAR_ASSETS", "BAR_TIMEFRAMES", "bars", "canonical_export",
           "normalized_ticks", "raw_ticks", "reference_bars"]
