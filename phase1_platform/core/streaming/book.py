"""The minute book: the streaming aggregator's only state.

Per symbol it holds one partial 1-minute bar per minute that saw an eligible tick, the
minutes changed since the last drain, the trade identities seen, and what retention
needs. Partial bars and per-symbol states are plain lists indexed by the constants
below, not objects: the per-tick path reads and writes them in place, and list indexing
is the cheapest access pure Python has. ``merge_segments`` folds the partial bars of a
micro-batch into the book.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import Segments
from ..errors import InputError
from ..rules import EligibilityRules

NAN = math.nan
INF = math.inf

# Partial bar (a list, mutated in place): open, high, low, close, qty, notional, count,
# open key, close key. A bar that so far has only volume-only ticks (a condition that
# is excluded from prices) is "priceless": open/close NaN, keys None.
OPEN, HIGH, LOW, CLOSE, QTY, NOTIONAL, COUNT, OPEN_KEY, CLOSE_KEY = range(9)

# Per-symbol state (a list): {minute: partial bar}, {dirty minutes}, {(ts, trade_id) seen},
# minute of the last tick and its partial bar (a cache for on_tick), and for retention:
# the floor (ticks before it are expired), the end of the newest trading date seen, and
# the start of each retained trading date (oldest first).
BARS, DIRTY, SEEN, LAST_MIN, LAST_BAR, FLOOR, DAY_END, DAYS = range(8)
NO_FLOOR = -(2**63)
NO_MINUTE = 2**64  # LAST_MIN when no minute is cached: no int64 tick time is within it
NEVER = 2**63 - 1  # the day end without retention: nothing is ever rolled or evicted


class StreamingError(InputError):
    """A tick or a setting the streaming aggregator refuses (bad price, size, symbol)."""


class MinuteBook:
    """Per-symbol states, counters and the eligibility cache of one aggregator.

    ``counts`` and ``arrival`` are one-element-per-field lists, not attributes, so the
    per-tick closure can hold them in cells and update them without attribute look-ups.
    """

    def __init__(self, rules: EligibilityRules, retain: bool) -> None:
        self.rules = rules
        self.retain = retain  # whether retention rolls trading dates (retain_dates given)
        self.state: dict[str, list] = {}  # symbol -> state (see BARS..DAYS)
        self.counts = [0, 0, 0]  # duplicates, ignored, expired
        # conditions -> (price_ok if size > 0, volume_ok if size > 0, price_ok if size == 0)
        self.elig: dict[str, tuple[bool, bool, bool]] = {}
        # no condition excluded from price or volume: eligibility depends on size only
        self.plain = not (rules.exclude_from_price or rules.exclude_from_volume)
        self.arrival = [0]  # the next arrival counter (a tick's default source_row)

    def judge(self, conditions: str) -> tuple[bool, bool, bool]:
        """Eligibility of a condition string under the rule set, cached."""
        pok, vok = self.rules.judge(conditions)
        e = (pok, vok, pok and self.rules.zero_size_sets_price)
        self.elig[conditions] = e
        return e

    def new_symbol(self, symbol: str) -> list:
        """The empty state of a symbol not seen before (a non-empty string)."""
        if not isinstance(symbol, str) or not symbol:
            raise StreamingError(f"bad symbol {symbol!r}: a non-empty string is required")
        # without retention the day end never comes: nothing is ever rolled or evicted
        day_end = NO_FLOOR if self.retain else NEVER
        st = self.state[symbol] = [{}, set(), set(), NO_MINUTE, None, NO_FLOOR, day_end, []]
        return st

    def states_of(self, symbols: list[str]) -> list[list]:
        """The state of each symbol, created for those not seen before."""
        return [self.state.get(s) or self.new_symbol(s) for s in symbols]

    def size(self) -> dict[str, int]:
        """What the book holds: symbols, partial minute bars, trade ids."""
        return {"symbols": len(self.state),
                "minutes": sum(len(st[BARS]) for st in self.state.values()),
                "trade_ids": sum(len(st[SEEN]) for st in self.state.values())}

    def floors(self) -> dict[str, int]:
        """Symbol -> the oldest tick time still kept (symbols that evicted state)."""
        return {s: st[FLOOR] for s, st in self.state.items() if st[FLOOR] != NO_FLOOR}

    def retains(self, symbol: str, ts_ns: int) -> bool:
        """Whether a tick of ``symbol`` at ``ts_ns`` would be kept (not expired)."""
        st = self.state.get(symbol)
        return st is None or ts_ns >= st[FLOOR]


def merge_segments(seg: Segments, states: list, ts, seq, source, row) -> None:
    """Merge the partial bars of a batch (``seg``, minute buckets; first/last -1 marks a
    priceless one) into the book. ``ts``, ``seq``, ``source`` and ``row`` are the batch
    rows in canonical order, from which the ordering keys of each segment's open and
    close ticks are taken: the older open and the newer close win."""
    gfirst, glast = seg.first, seg.last
    ng = len(seg.bucket)
    has = gfirst >= 0
    fi, li = (gfirst, glast) if bool(has.all()) else (
        np.where(has, gfirst, 0), np.where(has, glast, 0)
    )

    def keys(i):  # ordering keys of the ticks at rows i
        return zip(
            ts[i].tolist(),
            [-1] * ng if seq is None else seq[i].tolist(),
            [source] * ng if isinstance(source, str) else source[i].tolist(),
            row[i].tolist(),
            strict=True,
        )

    merge_bars(states, zip(
        seg.sym.tolist(), seg.bucket.tolist(), seg.open.tolist(), seg.high.tolist(),
        seg.low.tolist(), seg.close.tolist(), seg.qty.tolist(), seg.notional.tolist(),
        seg.count.tolist(), gfirst.tolist(), keys(fi), keys(li), strict=True,
    ))


def merge_bars(states: list, bars_of_batch) -> None:
    """Fold partial minute bars into the book: each is (symbol code, minute, open, high,
    low, close, qty units, notional units, count, first row (< 0: priceless), open key,
    close key), with Python ints for the units (exact sums)."""
    for s, m, o, h, lo, c, q, nv, k, f, okey, ckey in bars_of_batch:
        st = states[s]
        st[DIRTY].add(m)
        bars = st[BARS]
        b = bars.get(m)
        if f >= 0:
            if b is None:
                bars[m] = [o, h, lo, c, q, nv, k, okey, ckey]
                continue
            if b[OPEN_KEY] is None:
                b[OPEN], b[HIGH], b[LOW], b[CLOSE], b[OPEN_KEY], b[CLOSE_KEY] = (
                    o, h, lo, c, okey, ckey)
            else:
                if h > b[HIGH]:
                    b[HIGH] = h
                if lo < b[LOW]:
                    b[LOW] = lo
                if okey < b[OPEN_KEY]:
                    b[OPEN] = o
                    b[OPEN_KEY] = okey
                if ckey > b[CLOSE_KEY]:
                    b[CLOSE] = c
                    b[CLOSE_KEY] = ckey
        elif b is None:
            bars[m] = [NAN, -INF, INF, NAN, q, nv, k, None, None]
            continue
        b[QTY] += q
        b[NOTIONAL] += nv
        b[COUNT] += k
