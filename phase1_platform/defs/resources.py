"""Dagster resources: the store, the file drop, the source choice per symbol, the settings.

Defaults run offline on the shipped fixtures:

- ``store``: the store of record, ``DATABASE_URL`` (default: ``phase1.sqlite`` in the
  working directory, migrated on first use).
- ``drop``: the file drop, ``$PHASE1_DROP_DIR`` (default ``./drop``), see ``app.drop``. A
  partition (date, SYMBOL) takes ``<drop>/<YYYY-MM-DD>/<SYMBOL>.csv`` (DESIGN tick CSV) and
  LEAN tick zips in LEAN's layout
  (``<drop>/[lean/]equity/<market>/tick/<sym>/<yyyymmdd>_trade.zip``);
  its reference bars are LEAN minute/second/daily zips in the same layout. When the drop
  has nothing for a partition, the repository's ``fixtures/`` folder (same layout) is
  searched: that is how ``2013-10-07|SPY`` and ``2013-10-07|AAPL`` work from a fresh clone,
  and only those. Set ``fixtures_dir`` to ``"-"`` to turn that off.
- ``sources``: per symbol, where ticks and reference bars come from and which rule set
  builds the bars (``app.sources``: ``$PHASE1_SOURCES`` over a built-in table, SPY, AIG,
  BAC and IBM ``lean-equity``, else the file drop and ``default``).
- ``settings``: the mode (``INGESTION_MODE``, ``mock`` by default here: no network), the
  export folder (``$PHASE1_EXPORT_DIR``, default ``./exports``) and the check thresholds.
- ``alpaca``, ``yfinance``: connector resources (keys through ``EnvVar``), used only in
  ``live`` mode when ``sources`` names them for a symbol.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from ..app.drop import REPO_FIXTURES, FileDrop
from ..app.sources import BUILTIN_SYMBOLS, SymbolSource, SymbolSources, load_sources
from ..core.errors import ConfigError
from ..core.partition import Partition
from ..core.timeframes import parse_timeframes
from .keys import BAR_TIMEFRAMES

LEAN_RULES = BUILTIN_SYMBOLS["SPY"]["rule_set"]  # the rule set of the shipped LEAN data


class StoreResource(dg.ConfigurableResource):
    """The store of record (SQLite or PostgreSQL), opened lazily and migrated on first use."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty: $DATABASE_URL, else sqlite:///phase1.sqlite",
    )
    _store: object = PrivateAttr(default=None)

    def get(self):
        """The ``storage.Store`` (one per run)."""
        if self._store is None:
            from ..storage.store import Store

            self._store = Store.from_url(self.database_url or None)
        return self._store

    def teardown_after_execution(self, context) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


def _partition(part: Partition | str, symbol: str | None = None) -> Partition:
    """A validated Partition from one, or from (date, symbol): ConfigError when invalid."""
    if isinstance(part, Partition):
        return part
    if symbol is None:
        return Partition.parse(part)
    return Partition(part, symbol)


class FileDropResource(dg.ConfigurableResource):
    """Tick files and vendor bar files dropped per trading date and symbol (``app.drop``)."""

    drop_dir: str = Field(default="", description="empty: $PHASE1_DROP_DIR, else ./drop")
    fixtures_dir: str = Field(
        default="",
        description="searched after the drop, same layout, serving only the partitions it "
        "holds data for; empty: the repository's fixtures/ folder; '-' turns it off",
    )

    def drop_path(self) -> Path:
        return Path(self.drop_dir or os.environ.get("PHASE1_DROP_DIR") or "drop")

    def file_drop(self) -> FileDrop:
        if self.fixtures_dir == "-":
            return FileDrop(self.drop_path(), fixtures_dir=None)
        return FileDrop(self.drop_path(), Path(self.fixtures_dir or REPO_FIXTURES))

    def tick_files(self, part: Partition | str, symbol: str | None = None) -> list[Path]:
        """The partition's tick files: the drop's, else the fixtures' (``FileDrop``)."""
        return self.file_drop().tick_files(_partition(part, symbol))

    def reference_files(self, part: Partition | str, symbol: str | None = None) -> list[Path]:
        """Vendor bar files (LEAN minute, else second, and daily) from the folder of its ticks."""
        return self.file_drop().reference_files(_partition(part, symbol))

    def describe(self) -> str:
        return self.file_drop().describe()


class SourcesResource(dg.ConfigurableResource):
    """Per symbol: where ticks and reference bars come from, and the rule set (``app.sources``).

    The setting is ``$PHASE1_SOURCES`` (or ``config_file``) over the built-in table; the
    dicts below override it per symbol. Never guessed from the files in the drop.
    """

    tick_sources: dict[str, str] = Field(
        default_factory=dict, description="SYMBOL -> drop | alpaca | finnhub (default drop)"
    )
    reference_sources: dict[str, str] = Field(
        default_factory=dict, description="SYMBOL -> drop (LEAN files) | alpaca | yfinance | "
        "none (default drop)",
    )
    rule_sets: dict[str, str] = Field(
        default_factory=dict,
        description="SYMBOL -> rule set (default: the sources setting: lean-equity for SPY, "
        "AIG, BAC, IBM, else default)",
    )
    config_file: str = Field(default="", description="sources file; empty: $PHASE1_SOURCES")

    def setting(self) -> SymbolSources:
        return load_sources(self.config_file or None).with_overrides(
            self.tick_sources, self.reference_sources, self.rule_sets)

    def for_symbol(self, symbol: str) -> SymbolSource:
        return self.setting().for_symbol(symbol)

    def tick_source(self, symbol: str) -> str:
        return self.for_symbol(symbol).tick_source

    def reference_source(self, symbol: str) -> str:
        return self.for_symbol(symbol).reference_source

    def rules_for(self, symbol: str, tick_files: object = None) -> str:
        """The symbol's rule set; ``tick_files`` is ignored (kept for old callers)."""
        return self.for_symbol(symbol).rule_set


class PipelineSettings(dg.ConfigurableResource):
    """Mode, export folder and check thresholds."""

    mode: str = Field(default="mock", description="mock (file drop only, offline) | live")
    export_dir: str = Field(default="", description="empty: $PHASE1_EXPORT_DIR, else ./exports")
    max_rejected_ratio: float = Field(
        default=0.05, description="data-quality check: most quarantined ticks / rows read"
    )
    min_parity_match_pct: float = Field(
        default=75.0,
        description="parity check: least % of bars (either side) that must match exactly. "
        "The vendor places its auction prints in other bars: lean-equity matches 99.8% of "
        "LEAN's SPY minutes of 2013-10-07, 93.75% of the fixture slice (32 minutes)",
    )
    max_unexplained_pct: float = Field(
        default=10.0,
        description="parity check: most % of compared bars whose mismatch no known vendor "
        "convention explains (a corrupted reference or corrupted bars land here)",
    )
    min_bars_for_match_pct: int = Field(
        default=20,
        description="parity check: with fewer bars compared (a daily bar, a short slice) only "
        "the unexplained share is judged; one differing bar out of one says little",
    )
    price_tolerance: float = Field(
        default=1e-6,
        description="parity: absolute price (and vwap) tolerance; 1e-6 absorbs the float "
        "noise of vendor vwap, far below a price tick",
    )
    volume_tolerance: float = Field(default=0.0, description="parity: relative volume tolerance")
    information_bars: str = Field(
        default="",
        description="information-driven timeframes the bars asset also builds and stores per "
        "partition, comma-separated (t<N> every N trades, v<V> every V shares, d<X> every X "
        "of price x size, per trading session), e.g. t1000,v100000; they are no assets of "
        "their own (bars_<tf> are the time bars) and are in the canonical export; default "
        "$PHASE1_INFORMATION_BARS")
    great_expectations: bool = Field(
        default=False,
        description="quality checks: also validate the bars with great-expectations (a second "
        "opinion on the rules core.quality evaluates; its import costs seconds per run)",
    )

    def bar_timeframes(self) -> tuple[str, ...]:
        """The timeframes a bar build stores: the bars_<tf> assets' and
        ``information_bars`` (a bad name is a ``ConfigError`` naming it)."""
        spec = self.information_bars or os.environ.get("PHASE1_INFORMATION_BARS", "")
        extra = parse_timeframes(spec) if spec.strip() else []
        not_info = [tf.name for tf in extra if not tf.is_info]
        if not_info:
            raise ConfigError(f"information_bars: {', '.join(not_info)} is a time bar (its "
                              "bars_<tf> asset builds it): name t<N>, v<V> or d<X> only")
        return (*BAR_TIMEFRAMES, *(tf.name for tf in extra))

    def export_path(self) -> Path:
        return Path(self.export_dir or os.environ.get("PHASE1_EXPORT_DIR") or "exports")

    def parity_thresholds(self):
        """The parity checks' thresholds as ``app.parity.ParityThresholds``."""
        from ..app.parity import ParityThresholds

        return ParityThresholds(
            min_match_pct=self.min_parity_match_pct,
            max_unexplained_pct=self.max_unexplained_pct,
            min_bars_for_match_pct=self.min_bars_for_match_pct,
            price_tolerance=self.price_tolerance, volume_tolerance=self.volume_tolerance)

    def export_file(self, date: str, symbol: str) -> Path:
        return self.export_path() / date / f"{symbol}.csv"

    def reference_file(self, date: str, symbol: str) -> Path:
        """Where reference_bars keeps the partition's vendor bars (canonical CSV)."""
        return self.export_path() / "_reference" / date / f"{symbol}.csv"


class AlpacaResource(dg.ConfigurableResource):
    """Alpaca market data (historical trades and bars), used in live mode only.

    Keys: ``EnvVar("APCA_API_KEY_ID")`` / ``EnvVar("APCA_API_SECRET_KEY")`` when set when the
    definitions load, else the connector reads them from the environment or ``keys.env``
    when a run needs them (a missing key is one clear error naming the variable).
    """

    api_key_id: str | None = None
    api_secret_key: str | None = None
    base_url: str | None = Field(default=None, description="replaces the Alpaca data host")
    feed: str | None = Field(default=None, description="iex | sip | delayed_sip")

    def connector(self):
        from ..connectors.alpaca import AlpacaConnector

        return AlpacaConnector(self.api_key_id or None, self.api_secret_key or None,
                               base_url=self.base_url or None, feed=self.feed or None)


class YFinanceResource(dg.ConfigurableResource):
    """Yahoo Finance bars (a reference source, no ticks), used in live mode only."""

    base_url: str | None = Field(default=None, description="replaces every *.yahoo.com host")

    def connector(self):
        from ..connectors.yfinance_source import YFinanceConnector

        return YFinanceConnector(base_url=self.base_url or None) if self.base_url else \
            YFinanceConnector()


def _env_or_none(name: str):
    return dg.EnvVar(name) if os.environ.get(name) else None


def default_resources() -> dict[str, object]:
    return {
        "store": StoreResource(),
        "drop": FileDropResource(),
        "sources": SourcesResource(),
        "settings": PipelineSettings(mode=os.environ.get("INGESTION_MODE", "mock")),
        "alpaca": AlpacaResource(api_key_id=_env_or_none("APCA_API_KEY_ID"),
                                 api_secret_key=_env_or_none("APCA_API_SECRET_KEY")),
        "yfinance": YFinanceResource(),
    }
