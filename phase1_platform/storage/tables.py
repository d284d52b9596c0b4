"""SQLAlchemy 2 schema of the store of record (the head revision of the migrations).

- ``ticks``: the landing table of normalized ticks. Identity (DESIGN section 3,
  ``core.identity``): ``(symbol, ts, trade_id)`` when the vendor gives a trade id, else
  the row's place in its source, ``(symbol, ts, source, source_row)``; two partial
  unique indexes enforce it, so landing the same rows twice stores them once (a repeat
  with other content is refused by ``TickRepository.land``). Reads query each half on its own
  partial index (a row without a trade id is in one index only: fast landing).
  Symbol and time are part of the second identity because source names repeat: a
  file drop names every day's file ``SPY.csv``, and a restarted live feed counts its
  rows from 0 again.
- ``bars``: key ``(symbol, timeframe, ts, nth)``: ``nth`` is 0 for time bars and numbers
  the information-driven bars of a symbol that share a first-trade time (0, 1, ... in
  tick order, ``BarRepository``); OHLC as double precision (bit-exact round
  trip), volume and notional as the exact integer units of ``core.schema``.
- ``quarantine``: rejected rows with their reason, unique per
  ``(partition, source, source_row, reason)``.
- ``watermarks``: ingestion progress per ``(source, symbol)``.
- ``tick_landings``: the time span ``[lo_ts, hi_ts]`` of each landing of new ticks of a
  symbol whose bars have not been rebuilt since: the work list of incremental recompute.
  ``TickRepository.land`` adds a row in the transaction that lands the ticks; a bar build
  of a window consumes the rows it saw in the transaction that writes its bars (the part
  of a row outside the window stays). Invariant: every landed tick is covered by a row
  here or counted in the stored bars.
- ``volume_only_bars``: per 1m interval of a partition holding ticks that count in
  volume but none that sets prices (rule sets such as ``lean-equity``), their volume,
  notional and trade count: what the 1d bar holds beyond the 1m bars, so it can be
  rolled up again when only part of the day is rebuilt. Written with the bars.
- ``check_results``: the latest verdict of each check of a partition (``check_name``:
  ``parity``, ``quality``, ``rejected_ratio``, ``live_equals_batch``; ``timeframe`` empty
  for checks of the ticks): passed, a JSON summary, and the canonical sha256 of the bars
  it judged (empty for checks of the ticks), so a reader can tell whether the bars
  changed since.
- ``trade_amendments``: the log of vendor cancels and corrections (``core.amendments``),
  each resolved to the stored trade it targets (``trade_ts``, ``trade_id``: its identity)
  and applied, in ``id`` order, whenever ticks are read for a build; the ticks table stays
  append-only. One row per vendor message: ``(symbol, msg_ts, action, vendor_id)`` is
  unique, so a redelivered message is recorded once. Recording one also adds a
  ``tick_landings`` row at the trade's time (the partition's bars are built again).

Timestamps are BigInteger UTC nanoseconds everywhere.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# Key text columns compare bytewise on PostgreSQL (collation "C"): index maintenance
# without locale-aware comparisons, and the same order as Python's sorting.
Key = Text().with_variant(Text(collation="C"), "postgresql")

ticks = Table(
    "ticks",
    metadata,
    Column("ts", BigInteger, nullable=False),
    Column("symbol", Key, nullable=False),
    Column("price", Double, nullable=False),
    Column("size", Double, nullable=False),
    Column("exchange", Text, nullable=False, server_default=""),
    Column("conditions", Text, nullable=False, server_default=""),
    Column("trade_id", Key, nullable=False, server_default=""),
    Column("sequence", BigInteger, nullable=False, server_default="-1"),
    Column("source", Key, nullable=False),
    Column("source_row", BigInteger, nullable=False),
    # rows with a trade id: (symbol, ts, trade_id) is the identity and the read index.
    # The timestamp belongs to the identity because vendors reuse trade ids across days
    # (Alpaca's and the SIP's ids restart every session); one trade re-sent has the same ts.
    Index(
        "ux_ticks_trade_id",
        "symbol",
        "ts",
        "trade_id",
        unique=True,
        sqlite_where=text("trade_id <> ''"),
        postgresql_where=text("trade_id <> ''"),
    ),
    # rows without: one index is both the identity and the read index
    Index(
        "ux_ticks_source_row",
        "symbol",
        "ts",
        "source",
        "source_row",
        unique=True,
        sqlite_where=text("trade_id = ''"),
        postgresql_where=text("trade_id = ''"),
    ),
)

bars = Table(
    "bars",
    metadata,
    Column("symbol", Key, nullable=False),
    Column("timeframe", Key, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("open", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("notional", BigInteger, nullable=False),
    Column("trade_count", BigInteger, nullable=False),
    Column("rule_set", Text, nullable=False),
    Column("source", Key, nullable=False),
    Column("nth", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("symbol", "timeframe", "ts", "nth", name="pk_bars"),
    Index("ix_bars_symbol_ts", "symbol", "ts"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("partition", Key, nullable=False),
    Column("source", Key, nullable=False),
    Column("source_row", BigInteger, nullable=False),
    Column("reason", Key, nullable=False),
    Column("raw", Text, nullable=False),
    UniqueConstraint("partition", "source", "source_row", "reason", name="uq_quarantine_row"),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("source", Key, nullable=False),
    Column("symbol", Key, nullable=False),
    Column("ts", BigInteger, nullable=False),
    PrimaryKeyConstraint("source", "symbol", name="pk_watermarks"),
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (BIGSERIAL on PostgreSQL)
Serial = BigInteger().with_variant(Integer(), "sqlite")

tick_landings = Table(
    "tick_landings",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("symbol", Key, nullable=False),
    Column("lo_ts", BigInteger, nullable=False),
    Column("hi_ts", BigInteger, nullable=False),
    Column("ticks", BigInteger, nullable=False),
    Column("landed_ns", BigInteger, nullable=False),  # wall clock of the landing, UTC ns
    Index("ix_tick_landings_symbol_lo", "symbol", "lo_ts"),
    sqlite_autoincrement=True,  # ids are never reused: a build compares the ids it read
)

volume_only_bars = Table(
    "volume_only_bars",
    metadata,
    Column("symbol", Key, nullable=False),
    Column("timeframe", Key, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("notional", BigInteger, nullable=False),
    Column("trade_count", BigInteger, nullable=False),
    PrimaryKeyConstraint("symbol", "timeframe", "ts", name="pk_volume_only_bars"),
)

check_results = Table(
    "check_results",
    metadata,
    Column("partition", Key, nullable=False),
    Column("check_name", Key, nullable=False),
    Column("timeframe", Key, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("bars_sha256", Text, nullable=False),
    Column("summary", Text, nullable=False),  # JSON
    Column("evaluated_ns", BigInteger, nullable=False),  # wall clock, UTC ns
    PrimaryKeyConstraint("partition", "check_name", "timeframe", name="pk_check_results"),
)

trade_amendments = Table(
    "trade_amendments",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("symbol", Key, nullable=False),
    Column("trade_ts", BigInteger, nullable=False),  # the stored trade amended: its identity
    Column("trade_id", Key, nullable=False),
    Column("action", Key, nullable=False),  # cancel | correct
    Column("price", Double, nullable=False),
    Column("size", Double, nullable=False),
    Column("conditions", Text, nullable=False),
    Column("new_trade_id", Key, nullable=False),  # correct: the trade's vendor id from now on
    Column("msg_ts", BigInteger, nullable=False),  # the vendor message: its time and the id
    Column("vendor_id", Key, nullable=False),  # it named
    Column("source", Key, nullable=False),
    Column("source_row", BigInteger, nullable=False),
    Column("received_ns", BigInteger, nullable=False),  # wall clock, UTC ns
    UniqueConstraint("symbol", "msg_ts", "action", "vendor_id", name="uq_trade_amendments_msg"),
    Index("ix_trade_amendments_symbol_ts", "symbol", "trade_ts"),
    sqlite_autoincrement=True,
)
