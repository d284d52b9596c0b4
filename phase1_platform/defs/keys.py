"""The asset and check keys of the graph: the names the UI, the jobs, the tests and the README
use. Modules refer to another concern's assets by these keys, never by importing its asset
module, so each concern's package (ticks, bars, reference, export) stands on its own.
"""

from __future__ import annotations

import dagster as dg

from ..core.timeframes import DEFAULT_TIMEFRAMES

BAR_TIMEFRAMES = tuple(DEFAULT_TIMEFRAMES)
OWNERS = ["team:market-data"]

RAW_TICKS = dg.AssetKey("raw_ticks")
NORMALIZED_TICKS = dg.AssetKey("normalized_ticks")
REFERENCE_BARS = dg.AssetKey("reference_bars")
CANONICAL_EXPORT = dg.AssetKey("canonical_export")
BAR_ASSETS: dict[str, dg.AssetKey] = {tf: dg.AssetKey(f"bars_{tf}") for tf in BAR_TIMEFRAMES}

PARITY_CHECK_KEYS = [dg.AssetCheckKey(BAR_ASSETS[tf], f"parity_{tf}") for tf in BAR_TIMEFRAMES]
QUALITY_CHECK_KEYS = [dg.AssetCheckKey(BAR_ASSETS[tf], f"quality_{tf}") for tf in BAR_TIMEFRAMES]
REJECTED_RATIO_CHECK_KEY = dg.AssetCheckKey(NORMALIZED_TICKS, "rejected_ratio")
