"""Parity vocabulary: compared fields, the join key, and the category labels of a
difference (which vendor convention explains it)."""

from __future__ import annotations

import math

import numpy as np

from ..conditions import AUCTION_CONDITIONS, LEAN_FLAGS
from ..errors import InputError

PRICE_FIELDS = ("open", "high", "low", "close")
CORE_FIELDS = (*PRICE_FIELDS, "volume")
OPTIONAL_FIELDS = ("trade_count", "vwap")
FIELDS = (*CORE_FIELDS, *OPTIONAL_FIELDS)
KEY = ["symbol", "timeframe", "ts"]

UNEXPLAINED = "unexplained"
NO_TICKS = "unexplained (no ticks given)"
ZERO_SIZE = "zero-size print"
SUSPICIOUS = "suspicious print"
ODD_LOT = "odd lot"
# prints the vendor places in another interval, or data the vendor's bar does not hold
OPENING_AUCTION = "opening auction print: the vendor opens the bar at the auction price"
CLOSING_AUCTION = ("closing auction print reported after the close: the vendor closes the "
                   "session's last bar with it and counts its volume there")
AUCTION_REPORT_DELAY_NS = 5 * 60 * 1_000_000_000  # how late a closing print may be reported
AUCTION_VOLUME = "auction print the vendor counts in volume"
LAST_PRINT = "the data's last print, which the vendor's last bar leaves out"
VENDOR_ONLY_VOLUME = "volume the vendor reports beyond every print in the data"
OPEN_AUCTION_TOKENS = ("OpeningPrints", "ReOpeningPrints")
CLOSE_AUCTION_TOKENS = ("ClosingPrints", "OfficialClose")
AUCTION_GROUP = "auction"
ZERO_GROUP = "zero-size"
# generic tokens: tried last, they travel with more specific ones (a sweep is trade-through exempt)
LAST_TOKENS = ("IntermarketSweep", "TradeThroughExempt", "Regular")
# too generic to explain a difference alone: tried after every other explanation
GENERIC_TOKENS = frozenset({"TradeThroughExempt", "Regular"})
TOLERANCE_EPS = 1e-9  # float noise of decimal prices printed and parsed back


class ParityInputError(InputError):
    pass


def token_priority(token: str) -> tuple[int, int, str]:
    flags = {name: bit for bit, name in LEAN_FLAGS.items()}
    if token == "Suspicious":
        return (0, 0, token)
    if token in AUCTION_CONDITIONS:
        return (1, flags.get(token, 99), token)
    if token == "OddLot":
        return (2, 0, token)
    if token in LAST_TOKENS:
        return (4, LAST_TOKENS.index(token), token)
    return (3, flags.get(token, 99), token)


def category_label(group: str, tokens: list[str] | None = None) -> str:
    """Human name of an explaining group of prints."""
    if group == AUCTION_GROUP:
        return f"auction/official open-close print ({', '.join(tokens or [])})"
    if group == ZERO_GROUP:
        return ZERO_SIZE
    if group == "Suspicious":
        return SUSPICIOUS
    if group == "OddLot":
        return ODD_LOT
    if group in AUCTION_CONDITIONS:
        return f"auction/official open-close print ({group})"
    return f"condition treated differently by vendor: {group}"


def plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        v = float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def num(v, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = f"{float(v):+.8f}" if signed else f"{float(v):.8f}"
    s = s.rstrip("0").rstrip(".")
    return s


# ---------------------------------------------------------------------------------------
# the comparator
