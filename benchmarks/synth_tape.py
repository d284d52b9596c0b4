"""A synthetic day of the US equity tape, shaped like the real one, for ``bench_scale``.

Deterministic (seeded) and vectorized; a symbol's trades depend only on the seed, the
shape and the symbol's index, so the day is the same whatever the slicing. Generated in
symbol slices (``slices``) so memory stays bounded.

The shape (``TapeShape``), and where each part comes from:

- **Trades per symbol**: Zipf by rank, ``n(r) ~ r ** -0.72`` over a seeded permutation of
  the symbols, scaled to the day's total (largest-remainder rounding, at least one trade
  each). At 40M trades over 8,000 symbols: top 973k (the largest names print about 1M
  trades a day), 10th 154k, median 2.5k, smallest 1.5k (``describe``).
- **Time of day**: ``extended_share`` = 2.9% of a symbol's trades in extended hours (39% of
  them 04:00-09:30 ET, the rest 16:00-20:00, uniform), the rest over the regular session
  with a U-shaped density ``1 + 3 u**2`` (u = -1 at the open, +1 at the close: four times
  the midday rate at each end); microsecond timestamps.
- **Prices**: a random walk per symbol in log price (2% daily volatility), from an opening
  price drawn log-normal (median $25, clipped to [$1, $3,000]), rounded to cent ticks.
- **Sizes**: 92% round lots, 100 x k with k Zipf(2) (53% one lot in the real files,
  here 61%) capped at 1,000 lots; 8% mixed or odd lots, 1..99 plus 100 x (k - 1), of which
  those under 100 shares carry the ``OddLot`` condition (as the tape has since 2014).
- **Exchange and condition codes**: drawn from the frequencies measured on the real
  2013-10-07 LEAN tick files of SPY, BAC, AIG and IBM (``../shared/data``, 388k trades
  pooled), separately for the regular session and extended hours; conditions are LEAN
  ``TradeConditionFlags`` names, as ``readers/lean.py`` emits them (``core/conditions.py``).
  Auction conditions are left out of the draw (a random trade is no auction print).
- **Identity**: ``trade_id`` and ``sequence`` are the trade's 1-based number in its
  symbol's day (unique per symbol); ``source`` names the synthetic day, ``source_row`` is
  the trade's position in the whole day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from phase1_platform.core.calendar import trading_day_window

STR = pd.Series([""]).dtype  # pandas' default string dtype

# Measured on the real 2013-10-07 tick files (SPY, BAC, AIG, IBM pooled), top codes
# (the rest, under 0.03% each, folded into the largest).
REGULAR_EXCHANGES = {"D": .2272, "Q": .1815, "P": .1563, "Z": .1389, "K": .0734, "B": .0664,
                     "J": .0522, "Y": .0510, "N": .0321, "X": .0157, "C": .0029, "W": .0018,
                     "M": .0004}
EXTENDED_EXCHANGES = {"P": .4229, "Q": .3407, "Z": .0910, "K": .0671, "B": .0380, "D": .0220,
                      "J": .0061, "X": .0061, "Y": .0042, "M": .0013, "C": .0003, "N": .0003}
REGULAR_CONDITIONS = {
    "Regular": .55881, "IntermarketSweep TradeThroughExempt": .38868,
    "IntermarketSweep": .04827, "Regular TradeThroughExempt": .00166,
    "DerivativelyPriced AveragePrice TradeThroughExempt": .00080,
    "AveragePrice TradeThroughExempt": .00024, "Sold OutOfSequence": .00021,
    "DerivativelyPriced TradeThroughExempt": .00011,
    "DerivativelyPriced StockOption TradeThroughExempt": .00004,
    "Cash TradeThroughExempt": .00003,
}
EXTENDED_CONDITIONS = {
    "IntermarketSweep ExtendedHours TradeThroughExempt": .49447, "ExtendedHours": .46955,
    "ExtendedHours TradeThroughExempt": .00981, "ExtendedHours AveragePrice": .00279,
    "ExtendedHours AveragePrice TradeThroughExempt": .00063,
    "ExtendedHours OutOfSequence AveragePrice": .00018, "ExtendedHours StockOption": .00009,
    "NextDay ExtendedHours OutOfSequence": .00009,
}
ODD_LOT = "OddLot"

SECOND_NS = 10**9
REGULAR_START_S = 9 * 3600 + 1800  # 09:30 ET
REGULAR_END_S = 16 * 3600
PRE_START_S = 4 * 3600
POST_END_S = 20 * 3600


@dataclass(frozen=True)
class TapeShape:
    """The parameters of a synthetic day (see the module's docstring)."""

    day: str = "2024-03-14"
    ticks: int = 40_000_000
    symbols: int = 8_000
    seed: int = 14
    zipf_exponent: float = 0.72
    extended_share: float = 0.029
    pre_market_share: float = 0.39  # of the extended-hours trades
    daily_volatility: float = 0.02
    median_price: float = 25.0
    price_sigma: float = 1.0
    odd_lot_share: float = 0.08  # trades that are not a whole number of round lots
    lot_zipf: float = 2.0
    max_lots: int = 1_000

    def __post_init__(self) -> None:
        if self.symbols < 1 or self.ticks < self.symbols:
            raise ValueError(f"need at least one trade per symbol: {self.ticks} trades, "
                             f"{self.symbols} symbols")


def symbol_names(n: int) -> np.ndarray:
    """``n`` distinct four-letter tickers in alphabetical order (``AAAA``, ``AAAB``...),
    spread over the alphabet."""
    step = max(1, 26**4 // n)
    idx = np.arange(n, dtype="int64") * step
    letters = np.stack([(idx // 26**p) % 26 for p in (3, 2, 1, 0)], axis=1) + ord("A")
    return letters.astype("uint8").view("S4").ravel().astype(str).astype(object)


def trades_per_symbol(shape: TapeShape) -> np.ndarray:
    """Trades of each symbol (by symbol index): Zipf by a seeded rank, summing to
    ``shape.ticks``, each at least 1."""
    rank = np.random.default_rng([shape.seed, 0]).permutation(shape.symbols) + 1
    weight = rank.astype("float64") ** -shape.zipf_exponent
    spare = shape.ticks - shape.symbols  # one trade each, the rest by weight
    exact = spare * weight / weight.sum()
    counts = np.floor(exact).astype("int64")
    short = spare - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts + 1


def describe(counts: np.ndarray) -> dict[str, int]:
    """The distribution of trades per symbol, for the report."""
    ordered = np.sort(counts)[::-1]
    return {"symbols": len(counts), "ticks": int(counts.sum()), "top": int(ordered[0]),
            "tenth": int(ordered[min(9, len(ordered) - 1)]),
            "median": int(np.median(counts)), "smallest": int(ordered[-1])}


@dataclass(frozen=True)
class Slice:
    """Consecutive symbols generated (and built) together."""

    first: int  # symbol index
    stop: int
    ticks: int


def slices(counts: np.ndarray, max_ticks: int, max_symbols: int) -> list[Slice]:
    """Consecutive symbol ranges of at most ``max_ticks`` trades (or one symbol, when it
    alone has more) and at most ``max_symbols`` symbols."""
    out, first, total = [], 0, 0
    for i, c in enumerate(counts.tolist()):
        if i > first and (total + c > max_ticks or i - first >= max_symbols):
            out.append(Slice(first, i, total))
            first, total = i, 0
        total += c
    out.append(Slice(first, len(counts), total))
    return out


def _draw(rng: np.random.Generator, extended: np.ndarray, regular: tuple, ext: tuple
          ) -> np.ndarray:
    """A code per trade: drawn from the regular or the extended-hours frequency table,
    each ``(table, codes of its entries)``."""
    out = np.empty(len(extended), dtype="int32")
    for mask, (table, codes) in ((~extended, regular), (extended, ext)):
        p = np.array(list(table.values()))
        out[mask] = codes[rng.choice(len(p), size=int(mask.sum()), p=p / p.sum())]
    return out


def _u_shaped_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into the regular session, density ``1 + 3 u**2`` (u in [-1, 1])."""
    u = np.linspace(-1.0, 1.0, 4097)
    cdf = (u + u**3 + 2.0) / 4.0  # integral of the density, normalized to [0, 1]
    return (np.interp(rng.random(n), cdf, u) + 1.0) / 2.0 * (REGULAR_END_S - REGULAR_START_S)


def _symbol_trades(shape: TapeShape, index: int, n: int, vocab: dict[str, dict[str, int]]
                   ) -> dict[str, np.ndarray]:
    """The trades of one symbol, in time order: offsets (ns after local midnight), prices,
    sizes, exchange and condition codes (into ``vocab``)."""
    rng = np.random.default_rng([shape.seed, 1, index])
    n_ext = rng.binomial(n, shape.extended_share)
    n_pre = rng.binomial(n_ext, shape.pre_market_share)
    seconds = np.concatenate([
        PRE_START_S + rng.random(n_pre) * (REGULAR_START_S - PRE_START_S),
        REGULAR_START_S + _u_shaped_seconds(rng, n - n_ext),
        REGULAR_END_S + rng.random(n_ext - n_pre) * (POST_END_S - REGULAR_END_S),
    ])
    extended = np.zeros(n, dtype=bool)
    extended[:n_pre] = True
    extended[n - (n_ext - n_pre):] = True
    offset = (seconds * 1e6).astype("int64") * 1000  # microsecond stamps
    order = np.argsort(offset, kind="stable")
    offset, extended = offset[order], extended[order]

    p0 = np.clip(shape.median_price * np.exp(shape.price_sigma * rng.standard_normal()),
                 1.0, 3000.0)
    walk = np.cumsum(rng.standard_normal(n)) * (shape.daily_volatility / np.sqrt(n))
    price = np.maximum(np.round(p0 * np.exp(walk), 2), 0.01)

    lots = np.minimum(rng.zipf(shape.lot_zipf, n), shape.max_lots)
    odd = rng.random(n) < shape.odd_lot_share
    size = np.where(odd, 100 * (lots - 1) + rng.integers(1, 100, n), 100 * lots)

    exchange = _draw(rng, extended, (REGULAR_EXCHANGES, vocab["reg_exchange"]),
                     (EXTENDED_EXCHANGES, vocab["ext_exchange"]))
    condition = _draw(rng, extended, (REGULAR_CONDITIONS, vocab["reg_condition"]),
                      (EXTENDED_CONDITIONS, vocab["ext_condition"]))
    condition = np.where(size < 100, vocab["odd_lot"][condition], condition)
    return {"offset": offset, "price": price, "size": size.astype("float64"),
            "exchange": exchange, "condition": condition}


def _vocabularies() -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """The exchange and condition strings, and code maps from each table's positions (and
    from a condition to the same condition with ``OddLot`` added) into them."""
    exchanges = sorted(set(REGULAR_EXCHANGES) | set(EXTENDED_EXCHANGES))
    base = list(REGULAR_CONDITIONS) + list(EXTENDED_CONDITIONS)
    conditions = base + [f"{c} {ODD_LOT}" for c in base]
    pos = {c: i for i, c in enumerate(conditions)}
    vocab = {
        "reg_exchange": np.array([exchanges.index(e) for e in REGULAR_EXCHANGES]),
        "ext_exchange": np.array([exchanges.index(e) for e in EXTENDED_EXCHANGES]),
        "reg_condition": np.array([pos[c] for c in REGULAR_CONDITIONS]),
        "ext_condition": np.array([pos[c] for c in EXTENDED_CONDITIONS]),
    }
    odd = [pos[f"{c} {ODD_LOT}"] for c in base]
    vocab["odd_lot"] = np.array(odd + odd)  # a condition -> the same with OddLot
    return exchanges, conditions, vocab


def _strings(codes: np.ndarray, values: list[str]) -> pd.Series:
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), pa.array(values))
    return pd.Series(arr.cast(pa.string()), dtype=STR)


def generate_slice(shape: TapeShape, counts: np.ndarray, part: Slice) -> pd.DataFrame:
    """The raw trades of the slice's symbols (the normalizer's input columns), by symbol
    then time."""
    names = symbol_names(shape.symbols)
    exchanges, conditions, vocab = _vocabularies()
    day_start = trading_day_window(shape.day)[0]
    first_row = int(counts[:part.first].sum())
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("offset", "price", "size", "exchange", "condition")}
    number = []
    for index in range(part.first, part.stop):
        trades = _symbol_trades(shape, index, int(counts[index]), vocab)
        for k, v in trades.items():
            cols[k].append(v)
        number.append(np.arange(1, counts[index] + 1, dtype="int64"))
    seq = np.concatenate(number)
    own = counts[part.first:part.stop]
    ids = pa.array(seq).cast(pa.string())
    return pd.DataFrame({
        "timestamp": pd.to_datetime(day_start + np.concatenate(cols["offset"]),
                                    utc=True).as_unit("ns"),
        "symbol": pd.Series(pd.Categorical(np.repeat(names[part.first:part.stop], own))
                            ).astype(STR),
        "price": np.concatenate(cols["price"]),
        "size": np.concatenate(cols["size"]),
        "exchange": _strings(np.concatenate(cols["exchange"]), exchanges),
        "conditions": _strings(np.concatenate(cols["condition"]), conditions),
        "trade_id": pd.Series(ids, dtype=STR),
        "sequence": seq,
        "source": f"synth-tape-{shape.day}",
        "source_row": np.arange(first_row, first_row + len(seq), dtype="int64"),
    })


def generate(shape: TapeShape, max_ticks: int = 2_000_000, max_symbols: int = 500
             ) -> Iterator[tuple[Slice, pd.DataFrame]]:
    """The whole day, one symbol slice at a time."""
    counts = trades_per_symbol(shape)
    for part in slices(counts, max_ticks, max_symbols):
        yield part, generate_slice(shape, counts, part)


__all__ = ["Slice", "TapeShape", "describe", "generate", "generate_slice", "slices",
           "symbol_names", "trades_per_symbol"]
