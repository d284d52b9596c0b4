"""Micro-batch entries (``on_batch``: a normalized tick frame; ``on_arrays``: lean
arrays), vectorized with numpy and merged into the minute book per partial bar.

A batch is put in canonical order (symbol, ts, sequence, source, source_row), rolled
through retention, deduplicated by trade identity, judged for eligibility, aggregated
into partial minute bars with the engine's kernel (``aggregate_arrays``, exact int64
sums) and merged (``book.merge_segments``); a one-symbol, fully eligible batch takes the
shorter ``minute_runs`` path, with the same result. A tick whose own volume or notional
units do not fit int64 is refused before any state changes (``BarOverflowError``):
numpy's cast would wrap it silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import BarOverflowError, aggregate_arrays
from ..schema import NOTIONAL_SCALE, QTY_SCALE, notional_units, qty_units
from ..timeframes import NS_PER_MINUTE
from .book import FLOOR, SEEN, MinuteBook, StreamingError, merge_segments
from .frame_columns import (
    CodedText,
    all_empty,
    column,
    objects,
    single_or_array,
    text_codes,
    ts_column,
)
from .info_book import InfoBook
from .minute_runs import merge_eligible_run
from .retention import Retention
from .rollup import OVERFLOW_HINT

_UNITS_LIMIT = float(2**63)  # integer units at or above this do not fit int64
_INF = float("inf")


class MicroBatches:
    """``on_batch`` and ``on_arrays`` of one aggregator."""

    def __init__(self, book: MinuteBook, retention: Retention,
                 info: InfoBook | None = None) -> None:
        self.book = book
        self.retention = retention
        self.info = info  # information-driven bars, when any is requested

    def on_batch(self, ticks: pd.DataFrame) -> int:
        """Add a micro-batch of normalized ticks (TICK_COLUMNS); returns ticks accepted.
        Columns are read through ``frame_columns`` (backing arrays, no Series)."""
        n = len(ticks)
        if n == 0:
            return 0
        names = ticks.columns
        has = names.__contains__
        trade_id = column(ticks, "trade_id") if has("trade_id") else None
        return self.on_arrays(
            single_or_array(column(ticks, "symbol")),
            ts_column(ticks),
            _numbers(ticks, "price", "float64"),
            _numbers(ticks, "size", "float64"),
            conditions=(
                text_codes(column(ticks, "conditions"))
                if not self.book.plain and has("conditions") else None
            ),
            sequence=_numbers(ticks, "sequence", "int64") if has("sequence") else None,
            trade_id=None if trade_id is None or all_empty(trade_id) else objects(trade_id),
            source=single_or_array(column(ticks, "source")) if has("source") else "stream",
            source_row=_numbers(ticks, "source_row", "int64") if has("source_row") else None,
        )

    def on_arrays(
        self,
        symbol,
        ts,
        price,
        size,
        conditions=None,
        sequence=None,
        trade_id=None,
        source="stream",
        source_row=None,
    ) -> int:
        """Lean micro-batch entry: ``symbol`` and ``source`` are one string or one per row;
        the rest are arrays (``ts`` int64 UTC ns). Returns ticks accepted."""
        book = self.book
        ts = np.asarray(ts, dtype="int64")
        n = len(ts)
        if n == 0:
            return 0
        price = np.asarray(price, dtype="float64")
        size = np.asarray(size, dtype="float64")
        if len(price) != n or len(size) != n:
            raise StreamingError("batch arrays differ in length")
        _check_ticks(ts, price, size)
        if source_row is None:
            row = np.arange(book.arrival[0], book.arrival[0] + n, dtype="int64")
            book.arrival[0] += n
        else:
            row = np.asarray(source_row, dtype="int64")
        seq = None if sequence is None else np.asarray(sequence, dtype="int64")

        # canonical order inside the batch: symbol, ts, sequence, source, source_row
        one_symbol = isinstance(symbol, str)
        one_source = isinstance(source, str)
        if not one_source:
            source = np.asarray(source, dtype=object)
        if one_symbol:
            sym_codes = None
            symbols = [symbol]
        else:
            sym_codes, uniq = pd.factorize(np.asarray(symbol, dtype=object), sort=True)
            symbols = list(uniq)
        src_codes = None if one_source else pd.factorize(source, sort=True)[0]
        if one_symbol and bool((ts[1:] > ts[:-1]).all()):
            order = None  # already in canonical order (the usual micro-batch)
        else:
            keys = [row]
            if src_codes is not None:
                keys.append(src_codes)
            if seq is not None:
                keys.append(seq)
            keys.append(ts)
            if sym_codes is not None:
                keys.append(sym_codes)
            order = np.lexsort(keys)
            ts, price, size, row = ts[order], price[order], size[order], row[order]
            if seq is not None:
                seq = seq[order]
            if sym_codes is not None:
                sym_codes = sym_codes[order]
            if src_codes is not None:
                source = source[order]
        states = book.states_of(symbols)

        keep = None
        if self.retention.retain_dates is not None:
            keep = self.retention.retain(ts, sym_codes, states)
        if trade_id is not None:
            tid = np.asarray(trade_id, dtype=object)
            if order is not None:
                tid = tid[order]
            if keep is not None:
                tid = np.where(keep, tid, "")  # expired rows are not looked up
            fresh = self._dedup(ts, tid, sym_codes, states)
            if fresh is not None:
                keep = fresh if keep is None else keep & fresh

        price_ok, volume_ok = self._eligibility(conditions, size, order)
        excluded = 0
        if keep is not None:
            price_ok &= keep
            volume_ok &= keep
            excluded = n - int(np.count_nonzero(keep))
        accepted = int(np.count_nonzero(price_ok | volume_ok))
        book.counts[1] += n - accepted - excluded
        if accepted == 0:
            return 0
        if self.info is not None:
            self._to_info(symbols, sym_codes, states, ts, seq, source, row, price, size,
                          price_ok, volume_ok)
        if (sym_codes is None and accepted == n and bool(price_ok.all())
                and bool(volume_ok.all())
                and merge_eligible_run(states, ts, price, size, seq, source, row)):
            return accepted
        seg = aggregate_arrays(
            sym_codes, ts // NS_PER_MINUTE, price, qty_units(size), notional_units(price, size),
            price_ok, volume_ok, bucket_scale=NS_PER_MINUTE, keep_priceless=True,
        )
        merge_segments(seg, states, ts, seq, source, row)
        return accepted

    def _to_info(self, symbols, sym_codes, states, ts, seq, source, row, price, size,
                 price_ok, volume_ok) -> None:
        """Hand the accepted rows (canonical order) to the info book, per symbol."""
        accepted = price_ok | volume_ok
        for code, symbol in enumerate(symbols):
            rows = accepted if sym_codes is None else accepted & (sym_codes == code)
            if not rows.any():
                continue
            i = np.flatnonzero(rows)
            self.info.evict_before(symbol, states[code][FLOOR])
            self.info.add_rows(symbol, ts[i], None if seq is None else seq[i],
                               source if isinstance(source, str) else source[i], row[i],
                               price[i], size[i], price_ok[i], volume_ok[i])

    def _dedup(self, ts: np.ndarray, tid: np.ndarray, sym_codes: np.ndarray,
               states: list) -> np.ndarray | None:
        """Mask of rows to keep (None: all): rows whose identity ``(symbol, ts,
        trade_id)`` (``core.identity``) was not seen before; rows in canonical order."""
        has = np.fromiter(map(bool, tid), dtype=bool, count=len(tid))
        if not has.any():
            return None
        rows = np.flatnonzero(has)
        idents = list(zip(ts[rows].tolist(), tid[rows].tolist(), strict=True))
        if len(states) == 1:
            seen = states[0][SEEN]
            if seen.isdisjoint(idents) and len(set(idents)) == len(idents):
                seen.update(idents)
                return None
        keep = np.ones(len(tid), dtype=bool)
        codes = [0] * len(rows) if sym_codes is None else sym_codes[rows].tolist()
        for i, code, ident in zip(rows.tolist(), codes, idents, strict=True):
            seen = states[code][SEEN]
            if ident in seen:
                keep[i] = False
                self.book.counts[0] += 1
            else:
                seen.add(ident)
        return keep

    def _eligibility(self, conditions, size: np.ndarray, order) -> tuple[np.ndarray, np.ndarray]:
        """(price_ok, volume_ok) per row in canonical order, from the book's cache."""
        book = self.book
        traded = size > 0
        if book.plain or conditions is None:
            pok = np.ones(len(size), dtype=bool) if book.rules.zero_size_sets_price else traded
            return pok.copy(), traded
        if isinstance(conditions, CodedText):  # from on_batch: already encoded
            codes, uniq = conditions.codes, conditions.uniques
            if order is not None:
                codes = codes[order]
        else:
            cond = conditions.to_numpy(dtype=object) if isinstance(conditions, pd.Series) else (
                np.asarray(conditions, dtype=object)
            )
            if order is not None:
                cond = cond[order]
            codes, uniq = pd.factorize(cond, use_na_sentinel=False)
        table = np.array(
            [book.elig.get(c) or book.judge(c) for c in map(str, uniq)], dtype=bool
        ).reshape(-1, 3)
        pok = np.where(traded, table[codes, 0], table[codes, 2])
        return pok, traded & table[codes, 1]


def _check_ticks(ts: np.ndarray, price: np.ndarray, size: np.ndarray) -> None:
    """Refuse a batch with a price not finite and > 0 or a size not finite and >= 0
    (``StreamingError``), or a tick whose volume or notional units alone do not fit int64
    (``BarOverflowError``: numpy's cast in ``qty_units`` would wrap them silently); the
    first offending row is named. Four reductions in the common case."""
    pmin, pmax = float(price.min()), float(price.max())  # NaN propagates: refused
    smin, smax = float(size.min()), float(size.max())
    if not (pmin > 0 and smin >= 0 and pmax < _INF and smax < _INF):
        bad = int(np.flatnonzero(~((price > 0) & (size >= 0) & np.isfinite(price)
                                   & np.isfinite(size)))[0])
        raise StreamingError(
            f"bad tick in batch row {bad}: price {price[bad]!r} must be finite and > 0 "
            f"and size {size[bad]!r} finite and >= 0"
        )
    # rint(x * scale) >= 2**63 exactly when x * scale >= 2**63 (no float lies between
    # 2**63 - 0.5 and 2**63); float products are monotone, so the maxima bound every row
    if smax * QTY_SCALE < _UNITS_LIMIT and pmax * smax * NOTIONAL_SCALE < _UNITS_LIMIT:
        return
    if smax * QTY_SCALE >= _UNITS_LIMIT:
        what, bad = "volume", int(np.argmax(size))
    else:
        value = np.multiply(price, size)
        if float(value.max()) * NOTIONAL_SCALE < _UNITS_LIMIT:
            return
        what, bad = "price x size", int(np.argmax(value))
    at = pd.Timestamp(int(ts[bad]), tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise BarOverflowError(
        f"the tick in batch row {bad} (at {at}): its {what} alone does not fit "
        f"{OVERFLOW_HINT}")


def _numbers(frame: pd.DataFrame, name: str, dtype: str) -> np.ndarray:
    """A numeric column as ``dtype`` (the backing array itself when it already is)."""
    arr = column(frame, name)
    return arr.astype(dtype, copy=False) if isinstance(arr, np.ndarray) else (
        frame[name].to_numpy(dtype))
