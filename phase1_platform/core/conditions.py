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


# ---------------------------------------------------------------------------------------
# The consolidated tape's condition matrix, one table for every vocabulary we read.
#
# Each row is one UTP sale condition: its code (the letter Alpaca passes through for
# Tape C trades), Polygon's numeric id, LEAN's TradeConditionFlags name(s) for it, and
# whether it updates high/low, the last sale (open and close) and volume of consolidated
# bars. Source: the UTP Trade Data Feed matrix as published in Polygon's conditions
# glossary (../shared/data/conditions/utp_consolidated.csv); "N1" (only the day's first
# or only last-sale-eligible trade) is "no" for intraday bars. CTA (NYSE- and
# Arca-listed) letters differ from UTP's in places; LEAN's flag names cover both tapes.
SIP_COLUMNS = ("utp", "polygon", "lean", "name", "hl", "last", "volume")
SIP_CONDITIONS: tuple[tuple[str, int, tuple[str, ...], str, bool, bool, bool], ...] = (
    ("@", 0, ("Regular",), "Regular Sale", True, True, True),
    ("A", 1, ("Acquisition",), "Acquisition", True, True, True),
    ("W", 2, ("AveragePrice",), "Average Price Trade", False, False, True),
    ("B", 4, ("Bunched",), "Bunched Trade", True, True, True),
    ("G", 5, (), "Bunched Sold Trade", True, False, True),
    ("C", 7, ("Cash",), "Cash Sale", False, False, True),
    ("6", 8, ("ClosingPrints",), "Closing Prints", True, True, True),
    ("X", 9, ("Cross",), "Cross Trade", True, True, True),
    ("4", 10, ("DerivativelyPriced",), "Derivatively Priced", True, False, True),
    ("D", 11, ("Distribution",), "Distribution", True, True, True),
    ("T", 12, ("FormT", "ExtendedHours"), "Form T", False, False, True),
    ("U", 13, (), "Extended Hours (Sold Out Of Sequence)", False, False, True),
    ("F", 14, ("IntermarketSweep",), "Intermarket Sweep", True, True, True),
    ("M", 15, ("OfficialClose",), "Market Center Official Close", False, False, False),
    ("Q", 16, ("OfficialOpen",), "Market Center Official Open", False, False, False),
    ("N", 20, ("NextDay",), "Next Day", False, False, True),
    ("H", 21, ("PriceVariation",), "Price Variation", False, False, True),
    ("P", 22, ("PriorReferencePrice",), "Prior Reference Price", True, False, True),
    ("K", 23, ("Rule155",), "Rule 155", True, True, True),
    ("O", 25, ("OpeningPrints",), "Opening Prints", True, True, True),
    ("1", 27, ("Stopped",), "Stopped Stock", True, True, True),
    ("5", 28, ("ReOpeningPrints",), "Re-Opening Prints", True, True, True),
    ("R", 29, ("Seller",), "Seller", True, False, True),
    ("L", 30, ("Sold",), "Sold Last", True, True, True),
    ("Z", 33, ("OutOfSequence",), "Sold (Out Of Sequence)", True, False, True),
    ("S", 34, ("Split",), "Split Trade", True, True, True),
    ("Y", 36, ("YellowFlag",), "Yellow Flag", True, True, True),
    ("I", 37, ("OddLot",), "Odd Lot", False, False, True),
    ("9", 38, (), "Corrected Consolidated Close", True, True, False),
    ("V", 52, ("StockOption",), "Contingent Trade", False, False, True),
    ("7", 53, (), "Qualified Contingent Trade", False, False, True),
)
# LEAN flags that are no sale condition of the matrix: indicators that leave a trade's
# eligibility to its sale conditions (TradeThroughExempt is Rule 611's exemption flag).
SIP_INDICATORS = frozenset({"TradeThroughExempt", "AutoExecution", "CapElection",
                            "UndocumentedFlag"})
# Form T prints are the extended-hours session's trades: vendors' intraday bars before
# 09:30 and after 16:00 take their prices (only regular-session and daily bars do not).
SIP_INTRADAY_PRICE = frozenset({"T"})


def sip_tokens(row: tuple) -> tuple[str, ...]:
    """The condition tokens of one matrix row: its UTP code and LEAN's flag names."""
    utp, _polygon, lean, *_ = row
    return (utp, *lean)
