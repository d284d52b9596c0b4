"""The per-tick entry (``StreamingBarAggregator.on_tick``): one tick straight into its
partial minute bar, in tight pure Python.

It is a closure, not a method: the book's dicts, counters and helpers are held in locals
and cells, so the hot path does no attribute look-ups. State fields are indexed with
literals (see ``book.BARS``.. and ``book.OPEN``..) for the same reason. Volume and
notional are exact Python integers here (``float.__round__`` equals ``schema.qty_units`` and
``schema.notional_units``, the same float operations), so a sum past int64 is caught when
bars are built (``rollup.exact_int64``), never wrapped.
"""

from __future__ import annotations

from collections.abc import Callable

from .book import INF, NAN, MinuteBook, StreamingError

OnTick = Callable[..., bool]


def make_on_tick(book: MinuteBook, roll_tick: Callable[[list, int], None]) -> OnTick:
    """``on_tick`` over ``book``; ``roll_tick(state, ts)`` rolls retention to a newer
    trading date."""
    state_get = book.state.get
    elig_get = book.elig.get
    judge = book.judge
    new_symbol = book.new_symbol
    counts = book.counts
    arrival = book.arrival
    inf = INF
    # float.__round__ is round() on a float without round()'s special-method look-up
    # (about half its cost); the float literals below make every product a float
    fround = float.__round__

    def on_tick(
        symbol: str,
        ts_ns: int,
        price: float,
        size: float,
        conditions: str = "",
        sequence: int = -1,
        trade_id: str = "",
        source: str = "stream",
        source_row: int | None = None,
    ) -> bool:
        """Add one normalized tick (Python int ts in UTC ns, float price and size);
        False when its identity was seen before, it is older than the retained
        trading dates, or it may set neither price nor volume."""
        if not (inf > price > 0 and inf > size >= 0):
            raise StreamingError(
                f"bad tick for {symbol}: price {price!r} must be finite and > 0 and "
                f"size {size!r} finite and >= 0"
            )
        if source_row is None:
            source_row = arrival[0]
            arrival[0] = source_row + 1
        st = state_get(symbol)
        if st is None:
            st = new_symbol(symbol)
        if ts_ns >= st[6]:  # a newer trading date (only with retain_dates)
            roll_tick(st, ts_ns)
        if ts_ns < st[5]:  # older than the retained trading dates
            counts[2] += 1
            return False
        if trade_id:
            seen = st[2]
            ident = (ts_ns, trade_id)  # core.identity: (symbol, ts, trade_id)
            if ident in seen:
                counts[0] += 1
                return False
            seen.add(ident)
        e = elig_get(conditions) or judge(conditions)
        if size > 0:
            pok = e[0]
            vok = e[1]
        else:
            pok = e[2]
            vok = False
        if not (pok or vok):
            counts[1] += 1
            return False
        try:  # in the minute of the symbol's last tick? (try blocks cost nothing in 3.11)
            same_minute = 0 <= ts_ns - st[3] < 60_000_000_000
        except OverflowError:  # a numpy int64 ts against the NO_MINUTE sentinel (2**64)
            same_minute = False
        if same_minute:
            b = st[4]
        else:
            minute = ts_ns - ts_ns % 60_000_000_000
            st[1].add(minute)
            b = st[0].get(minute)
            if b is None:
                b = st[0][minute] = [NAN, -inf, inf, NAN, 0, 0, 0, None, None]
            st[3] = minute
            st[4] = b
        if pok:
            if b[7] is None:
                key = (ts_ns, sequence, source, source_row)
                b[0] = b[1] = b[2] = b[3] = price
                b[7] = b[8] = key
            else:
                if price > b[1]:
                    b[1] = price
                elif price < b[2]:
                    b[2] = price
                close_key = b[8]
                if ts_ns > close_key[0]:  # newer than the close (ticks in order): no tie
                    b[3] = price
                    b[8] = (ts_ns, sequence, source, source_row)
                else:
                    key = (ts_ns, sequence, source, source_row)
                    if key > close_key:
                        b[3] = price
                        b[8] = key
                    elif key < b[7]:
                        b[0] = price
                        b[7] = key
        if vok:
            b[4] += fround(size * 100_000_000.0)  # == schema.qty_units (same float ops)
            b[5] += fround(price * size * 1_000_000.0)  # == schema.notional_units
            b[6] += 1
        return True

    return on_tick
