"""BarComparator: parity of generated bars against reference (vendor) bars.

Both inputs are canonical frames (``schema.CANONICAL_COLUMNS``; internal bar frames are
converted with ``to_canonical``). Bars are joined on (symbol, timeframe, ts) and compared
field by field: open, high, low, close and volume always; trade_count and vwap only where
both sides have a value (LEAN bars have neither).

Tolerances: prices (and vwap) within ``price_tolerance`` absolute price units; volume
(and trade_count) within ``volume_tolerance`` relative to the reference (0.01 = 1%).

With the ticks the bars came from (a normalized tick frame) and the rule set that built
them, every mismatched bar gets a category where the data tells why. For each mismatched
field the comparator recomputes the bar with a group of special prints taken out (or put
back in, when the rule set excluded them): the prints carrying one condition, the auction
and official open/close prints, the zero-size prints; a group that makes the field match
the reference explains it. A single print just outside the bar that the vendor counted
inside it (both its size and price fit) is a boundary print. A volume difference that a
group explains only for the most part is reported as approximate, with the residual.
Only mismatched bars are recomputed, each on its own slice of ticks.
"""


from .compare import BarComparator
from .labels import (
    AUCTION_GROUP,
    CORE_FIELDS,
    FIELDS,
    KEY,
    NO_TICKS,
    ODD_LOT,
    OPTIONAL_FIELDS,
    PRICE_FIELDS,
    SUSPICIOUS,
    UNEXPLAINED,
    ZERO_GROUP,
    ZERO_SIZE,
    ParityInputError,
    category_label,
)
from .report import ParityReport

__all__ = [
    "AUCTION_GROUP", "CORE_FIELDS", "FIELDS", "KEY", "NO_TICKS", "ODD_LOT", "OPTIONAL_FIELDS",
    "PRICE_FIELDS", "SUSPICIOUS", "UNEXPLAINED", "ZERO_GROUP", "ZERO_SIZE", "BarComparator",
    "ParityInputError", "ParityReport", "category_label",
]
