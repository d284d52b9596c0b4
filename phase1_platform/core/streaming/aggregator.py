"""``StreamingBarAggregator``: the public face of the streaming path. It validates the
settings and wires the parts, each in its own module: the minute book (``book``), the
per-tick entry (``per_tick``), micro-batches (``batches``), retention (``retention``),
restated minutes (``restate``) and the bars handed out (``emission``, built by ``rollup``)."""

from __future__ import annotations

import pandas as pd

from ..calendar import DEFAULT_CALENDAR
from ..rules import DEFAULT_RULES, EligibilityRules
from ..timeframes import DEFAULT_TIMEFRAMES, Timeframe, parse_timeframes
from .batches import MicroBatches
from .book import MinuteBook, StreamingError
from .emission import BarEmitter, Changes
from .info_book import InfoBook, with_info
from .per_tick import make_on_tick
from .restate import restate_minutes
from .retention import Retention


class StreamingBarAggregator:
    """Bars of ``timeframes`` from ticks arriving one by one or in micro-batches.

    ``on_tick`` adds one tick (a tight pure-Python path; pass Python ints and floats),
    ``on_batch`` a normalized tick frame, ``on_arrays`` lean arrays; ``bars()`` returns
    every current bar and ``drain_updates()`` the bars changed since the previous drain.
    ``retain_dates=N`` keeps per symbol only the newest N trading dates (``retention``).
    Information-driven timeframes (``t<N>``, ``v<V>``, ``d<X>``) are kept by ``info``
    (``info_book.InfoBook``); its ``restate_from`` restates a session from a changed tick.
    """

    def __init__(
        self,
        timeframes=DEFAULT_TIMEFRAMES,
        rules: EligibilityRules = DEFAULT_RULES,
        calendar: str = DEFAULT_CALENDAR,
        retain_dates: int | None = None,
    ) -> None:
        self.timeframes: list[Timeframe] = parse_timeframes(timeframes)
        self.rules = rules
        self.calendar = calendar
        if retain_dates is not None and (isinstance(retain_dates, bool)
                                         or int(retain_dates) != retain_dates
                                         or retain_dates < 1):
            raise StreamingError(
                f"retain_dates must be a whole number >= 1 (or None to keep everything), "
                f"got {retain_dates!r}")
        self.retain_dates = None if retain_dates is None else int(retain_dates)
        self._book = MinuteBook(rules, retain=self.retain_dates is not None)
        retention = Retention(self._book, calendar, self.retain_dates)
        info = [tf for tf in self.timeframes if tf.is_info]
        self.info = InfoBook(info, calendar) if info else None
        self._batches = MicroBatches(self._book, retention, self.info)
        self._emitter = BarEmitter(self._book, [tf for tf in self.timeframes if not tf.is_info],
                                   calendar, self.info)
        self.on_tick = make_on_tick(self._book, retention.roll_tick)
        if self.info is not None:
            self.on_tick = with_info(self.on_tick, self._book, self.info)

    @property
    def duplicates(self) -> int:
        """Ticks ignored because their identity (symbol, ts, trade_id) was already seen."""
        return self._book.counts[0]

    @property
    def ignored(self) -> int:
        """Ticks that may set neither price nor volume under the rule set."""
        return self._book.counts[1]

    @property
    def expired(self) -> int:
        """Ticks older than the retained trading dates (``retain_dates``), ignored."""
        return self._book.counts[2]

    def state_size(self) -> dict[str, int]:
        """What the aggregator holds: symbols, partial minute bars, trade ids."""
        return self._book.size()

    def floors(self) -> dict[str, int]:
        """Symbol -> the oldest tick time still kept (symbols that evicted state)."""
        return self._book.floors()

    def retains(self, symbol: str, ts_ns: int) -> bool:
        """Whether a tick of ``symbol`` at ``ts_ns`` would be kept (not expired)."""
        return self._book.retains(symbol, ts_ns)

    def on_batch(self, ticks: pd.DataFrame) -> int:
        """Add a micro-batch of normalized ticks (TICK_COLUMNS); returns ticks accepted."""
        return self._batches.on_batch(ticks)

    def on_arrays(self, symbol, ts, price, size, conditions=None, sequence=None,
                  trade_id=None, source="stream", source_row=None) -> int:
        """Lean micro-batch entry: ``symbol`` and ``source`` are one string or one per row;
        the rest are arrays (``ts`` int64 UTC ns). Returns ticks accepted."""
        return self._batches.on_arrays(symbol, ts, price, size, conditions, sequence,
                                       trade_id, source, source_row)

    def restate(self, symbol: str, minutes, ticks: pd.DataFrame):
        """Replace ``symbol``'s ``minutes`` with those of ``ticks`` (every tick of those
        minutes, as amended: a trade cancelled or corrected); the next drain restates their
        bars. Returns the minutes restated (``restate.restate_minutes``)."""
        return restate_minutes(self._book, self._batches, symbol, minutes, ticks)

    def bars(self) -> pd.DataFrame:
        """Every current bar of every timeframe (internal bar frame, canonical order)."""
        return self._emitter.bars()

    def drain_updates(self) -> pd.DataFrame:
        """Bars created or restated since the previous drain, all timeframes touched."""
        return self._emitter.drain_updates()

    def drain_changes(self) -> Changes:
        """``drain_updates()`` plus the base timeframe's intervals it touched and their
        volume-only rows (what a store of the bars keeps beside them, ``emission``)."""
        return self._emitter.drain_changes()
