"""Trade condition vocabularies.

Condition codes travel with each tick as space-separated tokens. LEAN tick files carry
a bit mask (LEAN's ``TradeConditionFlags``, AlgoSeek's conditions); the reader turns it
into the flag names below, so rule sets and parity reports speak in names, not bits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# LEAN TradeConditionFlags: bit position -> name (QuantConnect LEAN, Apache-2.0)
LEAN_FLAGS: dict[int, str] = {
    0: "Regular",
    1: "Cash",
    2: "NextDay",
    3: "Seller",
    4: "YellowFlag",
    5: "IntermarketSweep",
    6: "OpeningPrints",
    7: "ClosingPrints",
    8: "ReOpeningPrints",
    9: "DerivativelyPriced",
    10: "FormT",
    11: "Sold",
    12: "Stopped",
    13: "ExtendedHours",
    14: "OutOfSequence",
    15: "Split",
    16: "Acquisition",
    17: "Bunched",
    18: "StockOption",
    19: "Distribution",
    20: "AveragePrice",
    21: "Cross",
    22: "PriceVariation",
    23: "Rule155",
    24: "OfficialClose",
    25: "PriorReferencePrice",
    26: "OfficialOpen",
    27: "CapElection",
    28: "AutoExecution",
    29: "TradeThroughExempt",
    30: "UndocumentedFlag",
    31: "OddLot",
}

# the conditions that mark auction and official open/close prints
AUCTION_CONDITIONS = frozenset(
    {"OpeningPrints", "ClosingPrints", "ReOpeningPrints", "OfficialOpen", "OfficialClose"}
)


def mask_to_names(mask: int) -> str:
    """``0x20000020`` -> ``"IntermarketSweep TradeThroughExempt"`` (bit order)."""
    return " ".join(name for bit, name in LEAN_FLAGS.items() if mask >> bit & 1)


def lean_masks_to_conditions(masks: pd.Series) -> pd.Series:
    """Vectorized mask -> names: each distinct mask is translated once."""
    codes, uniques = pd.factorize(masks, sort=True)
    names = np.array([mask_to_names(int(m)) for m in uniques] + [""], dtype=object)
    return pd.Series(names[codes], index=masks.index, dtype="str")


def tokens(conditions: str) -> frozenset[str]:
    return frozenset(conditions.split())
