"""Trade-eligibility rule sets (DESIGN section 4).

A rule set decides, per tick, whether it may set prices (open, high, low, close) and
whether it counts in volume (volume, trade_count, vwap). The default counts every trade
with size > 0 for both. Vendor-style rule sets exclude conditions from price, volume or
both, and may let zero-size prints set prices (LEAN's futures bars do).

An exclusion entry is a condition name (``"AveragePrice"``) or a conjunction of names
separated by spaces, where ``!Name`` means the condition is absent:
``"AveragePrice !ExtendedHours"`` excludes average-price prints except those marked
extended hours. A tick is excluded when any entry matches its conditions.

Evaluation is vectorized: each distinct conditions string is judged once.

Vendor rule sets, measured against the vendor's own bars (BarEngine 1m, open-labelled
``[start, end)``; BarComparator with exact tolerances; bars with all five fields identical;
``phase1_platform_tests/parity/test_real_data.py`` asserts the 2013-10-07 figures):

``lean-equity`` is LEAN's own logic, not a fit. LEAN aggregates ticks with
``Common/Data/Consolidators/TickConsolidator.cs`` (first, max, min, last, sum of every
trade tick it is given); which equity ticks it is given is QuantConnect's documented
status of each ``TradeConditionFlags`` (QuantConnect/Documentation,
``Resources/data-feeds/trade-condition-flags-table.html``: Regular, FormT, Cash,
ExtendedHours, NextDay, OfficialClose, OfficialOpen, ClosingPrints, OpeningPrints
"Included"; IntermarketSweep, TradeThroughExempt, OddLot "Excluded"), with suspicious
ticks out of prices (``Common/Data/Market/Tick.cs``, ``Engine/DataFeeds/TimeSliceFactory.cs``;
LEAN's volume does count them, measured on SPY 2013-10-10, the one day with any).
Read with "an Included flag wins", a regular-session sweep sets no price and an
extended-hours sweep does::

    1m bars, all fields     2013-10-07                 2013-10-07..11 (20 symbol-days)
    symbol  bars   old fit   lean-equity               old fit    lean-equity
    SPY      828   87.7%     99.8% (826)               87.5%      99.7% (4117/4128)
    AIG      433   69.3%     99.3% (430)               70.5%      99.4% (2129/2142)
    BAC      595   95.6%     99.7% (593)               94.5%      99.7% (2939/2949)
    IBM      453   56.5%     99.3% (450)               50.8%      99.4% (2143/2155)

(10-08 to 10-11: LEAN's own files of those days, from its repository; not shipped here). Volume: the
auction and official open/close prints count in no LEAN minute volume (best of the
variants tried on all 20 symbol-days). What remains is the listing market's auction
prints, which LEAN places elsewhere: the session's first minute opens at the opening
auction price; the closing auction print, reported seconds to a minute after 16:00, closes
the 15:59 bar and counts in its volume (the parity report names both).

``lean-future``: ``ToolBox/AlgoSeekFuturesConverter`` turns every trade row into a tick,
zero-size rows included, and the consolidator lets each set prices. GC December 2013
(GCZ13), 39,702 rows vs LEAN's 1,314 minute bars: 1313/1314 identical (1376/1377 on
10-08, 1348/1349 on 10-09); each day's one miss is the last minute's volume, short by the
file's last print. LEAN's futures files are in UTC (market-hours database), see
``readers/lean.py``. Default rules (zero-size rows excluded): 1310/1314.

``sip``: the consolidated tape's matrix (``conditions.SIP_CONDITIONS``), the rule set to
compare with Alpaca or Polygon bars; not LEAN's (SPY 85.9% of LEAN's minutes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .conditions import SIP_CONDITIONS, SIP_INTRADAY_PRICE, sip_tokens, tokens
from .errors import ConfigError


def parse_entry(entry: str) -> tuple[frozenset[str], frozenset[str]]:
    """``"A !B C"`` -> (required {A, C}, forbidden {B})."""
    words = entry.split()
    if not words:
        raise ValueError("empty condition entry in a rule set")
    required = frozenset(w for w in words if not w.startswith("!"))
    forbidden = frozenset(w[1:] for w in words if w.startswith("!"))
    if not required or "" in forbidden:
        raise ValueError(f"condition entry {entry!r} must name at least one condition")
    return required, forbidden


def entry_matches(entry: str, toks: frozenset[str]) -> bool:
    required, forbidden = parse_entry(entry)
    return required <= toks and not (forbidden & toks)


def matching_entries(entries: frozenset[str], conditions: str) -> list[str]:
    """The entries of ``entries`` that match a tick with these conditions (sorted)."""
    toks = tokens(conditions)
    return sorted(e for e in entries if entry_matches(e, toks))


@dataclass(frozen=True)
class EligibilityRules:
    name: str
    exclude_from_price: frozenset[str] = field(default_factory=frozenset)
    exclude_from_volume: frozenset[str] = field(default_factory=frozenset)
    zero_size_sets_price: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        for entry in self.exclude_from_price | self.exclude_from_volume:
            parse_entry(entry)

    def judge(self, conditions: str) -> tuple[bool, bool]:
        """(may set price, counts in volume) for a tick with these conditions and size > 0."""
        toks = tokens(conditions)
        return (
            not any(entry_matches(e, toks) for e in self.exclude_from_price),
            not any(entry_matches(e, toks) for e in self.exclude_from_volume),
        )

    def evaluate(self, conditions: pd.Series, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boolean arrays (price_ok, volume_ok) for a column of ticks."""
        size = np.asarray(size, dtype="float64")
        n = len(size)
        if self.exclude_from_price or self.exclude_from_volume:
            codes, uniques = pd.factorize(conditions.to_numpy(dtype=object), use_na_sentinel=False)
            judged = np.array([self.judge(str(c)) for c in uniques], dtype=bool).reshape(-1, 2)
            price_ok, volume_ok = judged[codes, 0], judged[codes, 1]
        else:
            price_ok = np.ones(n, dtype=bool)
            volume_ok = np.ones(n, dtype=bool)
        traded = size > 0
        volume_ok = volume_ok & traded
        price_ok = price_ok if self.zero_size_sets_price else price_ok & traded
        return price_ok, volume_ok

    def all_eligible(self, size: np.ndarray) -> bool:
        """Whether every tick sets prices and counts in volume (what ``evaluate`` would say
        of each), decided without per-tick flags: with no exclusions only size > 0 matters."""
        return (not self.exclude_from_price and not self.exclude_from_volume
                and len(size) > 0 and bool(np.min(size) > 0))

    @property
    def volume_implies_price(self) -> bool:
        """Whether every tick that counts in volume also sets prices, whatever its conditions.

        True when each price exclusion is also a volume exclusion (size > 0 is required for
        volume in any case). Then every coarser bar is an exact roll-up of finer ones (no
        volume hides in an interval without a bar), which incremental recompute relies on.
        """
        return self.exclude_from_price <= self.exclude_from_volume

    def describe(self) -> str:
        parts = [self.name]
        if self.exclude_from_price:
            parts.append("price excludes " + ",".join(sorted(self.exclude_from_price)))
        if self.exclude_from_volume:
            parts.append("volume excludes " + ",".join(sorted(self.exclude_from_volume)))
        if self.zero_size_sets_price:
            parts.append("zero-size prints set prices")
        return "; ".join(parts)


DEFAULT_RULES = EligibilityRules(
    name="default",
    description="every trade with size > 0 sets prices and counts in volume",
)

RULE_SETS: dict[str, EligibilityRules] = {DEFAULT_RULES.name: DEFAULT_RULES}


def register(rules: EligibilityRules) -> EligibilityRules:
    RULE_SETS[rules.name] = rules
    return rules


class RuleSetError(ConfigError):
    pass


def get_rules(name: str) -> EligibilityRules:
    try:
        return RULE_SETS[name]
    except KeyError:
        raise RuleSetError(
            f"unknown rule set {name!r}: choose from {', '.join(sorted(RULE_SETS))}"
        ) from None


# LEAN futures minute bars: every row sets prices, zero-size rows included.
LEAN_FUTURE_RULES = register(
    EligibilityRules(
        name="lean-future",
        zero_size_sets_price=True,
        description="LEAN futures bars: zero-size rows move high and low",
    )
)


# LEAN's trade bars, by the status QuantConnect documents for each TradeConditionFlags
# (QuantConnect/Documentation, Resources/data-feeds/trade-condition-flags-table.html, shown
# under LEAN Engine > Data Format > Core Data Types > Trade Tick). A print carrying any
# "Included" flag sets prices (an extended-hours sweep does); otherwise one carrying an
# "Excluded" flag sets none (a regular-session sweep, a trade-through-exempt print with no
# other flag); prints with neither (AveragePrice, Sold OutOfSequence...) set prices.
LEAN_BAR_INCLUDED = ("Regular", "FormT", "Cash", "ExtendedHours", "NextDay", "OfficialClose",
                     "OfficialOpen", "ClosingPrints", "OpeningPrints")
LEAN_BAR_EXCLUDED = ("IntermarketSweep", "TradeThroughExempt", "OddLot")
# Volume: the auction and official open/close prints are reported again by the listing
# market; LEAN's minute volume leaves them out (measured on 20 symbol-days, see above).
LEAN_VOLUME_EXCLUDED = ("OpeningPrints", "ClosingPrints", "OfficialOpen", "OfficialClose")


def unless_any(flag: str, included: tuple[str, ...]) -> str:
    """The entry ``"flag !a !b ..."``: ``flag`` excludes unless one of ``included`` is present."""
    return " ".join((flag, *("!" + i for i in included)))


LEAN_EQUITY_RULES = register(
    EligibilityRules(
        name="lean-equity",
        exclude_from_price=frozenset(
            {unless_any(f, LEAN_BAR_INCLUDED) for f in LEAN_BAR_EXCLUDED} | {"Suspicious"}
        ),
        # suspicious prints set no price but count in LEAN's volume: on 2013-10-10 SPY's 10
        # suspicious after-hours prints (1,002,518 shares at 16:21...) are in LEAN's minute
        # volume and in none of its prices
        exclude_from_volume=frozenset(LEAN_VOLUME_EXCLUDED),
        description="LEAN/AlgoSeek equity bars (QuantConnect's documented condition status): "
        "a print with an Included flag sets prices, else one with IntermarketSweep, "
        "TradeThroughExempt or OddLot sets none; suspicious prints set no price; auction and "
        "official open/close prints count in no volume",
    )
)


def _sip_rules() -> EligibilityRules:
    """``sip``: the consolidated tape's own matrix (``conditions.SIP_CONDITIONS``).

    A print sets prices when its conditions update both high/low and the last sale (our
    bars take open, high, low and close from one set of prints, so a condition that
    updates only high/low, such as Sold (Out Of Sequence), sets none here; the parity
    report names such prints), and counts in volume when they update volume. Form T sets
    prices (vendors' extended-hours minute bars take them). Tokens are UTP codes (as
    Alpaca sends them) and LEAN's flag names; unknown tokens leave a print eligible.
    """
    no_price: set[str] = set()
    no_volume: set[str] = set()
    for row in SIP_CONDITIONS:
        utp, _pid, _lean, _name, hl, last, vol = row
        if not (hl and last) and utp not in SIP_INTRADAY_PRICE:
            no_price.update(sip_tokens(row))
        if not vol:
            no_volume.update(sip_tokens(row))
    return EligibilityRules(
        name="sip",
        exclude_from_price=frozenset(no_price | {"Suspicious"}),
        exclude_from_volume=frozenset(no_volume | {"Suspicious"}),
        description="consolidated tape (UTP/CTA) matrix: prints that update high/low and the "
        "last sale set prices, prints that update volume count in it (Alpaca, Polygon)",
    )


SIP_RULES = register(_sip_rules())
