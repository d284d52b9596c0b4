"""Streaming bars: per-tick and micro-batch aggregation, identical to BarEngine.

The only state is the 1-minute partial bar of each (symbol, minute) that saw an eligible
tick (the minute book, ``book``); every requested timeframe (the 1d session included) is
aggregated from those minutes on demand (``bars()``, ``drain_updates()``: ``emission``,
``rollup``). That equals ``BarEngine.build`` on the same ticks because:

- volume and notional are integer units (``schema``) rounded per tick with the same
  float operations (``round(size * 1e8)`` == ``np.rint(size * 1e8)``), summed exactly;
  a total that does not fit int64 is refused (``BarOverflowError``), never wrapped, at
  every timeframe, as the engine refuses it;
- high/low are commutative, and each partial bar keeps the ordering key of the tick that
  set its open and of the one that set its close, so a LATE tick (older key than what
  the bar has seen) replaces the open and a newer one the close, whatever the arrival
  order;
- intraday timeframes and XNYS sessions start and end on minute boundaries (checked; a
  calendar whose sessions do not is refused with a clear error);
- a minute with only volume-only ticks (a condition excluded from prices) is kept
  "priceless": it makes no bar of its own but its volume counts in coarser bars, as the
  engine's build from ticks does.

Ordering key of a tick: ``(ts, sequence, source, source_row)``, as in
``normalizer.canonical_sort``; ``source_row`` defaults to an arrival counter.

Identity (``core.identity``, DESIGN section 3): a tick with a trade id is
``(symbol, ts, trade_id)``. A repeat of an identity already seen is counted in
``duplicates`` and ignored: the first ARRIVAL stays, whatever the content (a repeat with
other content is a conflicting duplicate, which the store also keeps out). The same
trade id at another time (a vendor reusing ids on a later day) is another trade. Ticks
without a trade id are identified by ``(ts, source, source_row)``, unique by
construction here (the arrival counter, or a caller such as the ingestion service that
passes only ticks new to the store), so they are not looked up.

Retention (``retain_dates``, ``retention``). By default every minute and trade id stays
for the life of the aggregator (a replay of any order of any span). A long-running
caller (the live ingestion service) passes ``retain_dates=N``: per symbol, only the
state of the newest N trading dates that had ticks and of what lies between them is
kept. A late tick of a retained date still restates its bars; an older one is ignored
and counted in ``expired``. With ``N=2`` a session's bars can be restated until the end
of the next trading date.

Per tick: ``on_tick`` (``per_tick``; pass Python ints and floats). Micro-batches:
``on_batch`` (normalized tick frame, its columns read by ``frame_columns``) or
``on_arrays`` (lean arrays), vectorized with numpy and merged into the book per partial
bar (``batches``; a one-symbol, fully eligible batch by ``minute_runs``). ``drain_updates()``
returns the bars changed since the previous drain (every timeframe touched), ``bars()``
all current bars; both are internal bar frames in canonical order.
"""

from .aggregator import StreamingBarAggregator
from .book import StreamingError

__all__ = ["StreamingBarAggregator", "StreamingError"]
