"""Trade-eligibility rule sets (DESIGN section 4).

A rule set decides, per tick, whether it may set prices (open, high, low, close) and
whether it counts in volume (volume, trade_count, vwap). The default counts every trade
with size > 0 for both. Vendor-style rule sets exclude conditions from price, volume or
both, and may let zero-size prints set prices (LEAN's futures bars do).

Evaluation is vectorized: each distinct conditions string is judged once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .conditions import tokens


@dataclass(frozen=True)
class EligibilityRules:
    name: str
    exclude_from_price: frozenset[str] = field(default_factory=frozenset)
    exclude_from_volume: frozenset[str] = field(default_factory=frozenset)
    zero_size_sets_price: bool = False
    description: str = ""

    def judge(self, conditions: str) -> tuple[bool, bool]:
        """(may set price, counts in volume) for a tick with these conditions and size > 0."""
        toks = tokens(conditions)
        return not (toks & self.exclude_from_price), not (toks & self.exclude_from_volume)

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


class RuleSetError(ValueError):
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
