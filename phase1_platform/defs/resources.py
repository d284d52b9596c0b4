"""Dagster resources: the store, the file drop, the source choice per symbol, the settings.

Defaults run offline on the shipped fixtures:

- ``store``: the store of record, ``DATABASE_URL`` (default: ``phase1.sqlite`` in the
  working directory, migrated on first use).
- ``drop``: the file drop, ``$PHASE1_DROP_DIR`` (default ``./drop``). A partition
  (date, SYMBOL) takes ``<drop>/<YYYY-MM-DD>/<SYMBOL>.csv`` (DESIGN tick CSV) and LEAN
  tick zips in LEAN's layout (``<drop>/[lean/]equity/<market>/<sym>/tick/<yyyymmdd>_trade.zip``);
  its reference bars are LEAN minute/second/daily zips in the same layout. When the drop
  has nothing for a partition, the repository's ``fixtures/`` folder is searched the same
  way (plus ``<symbol>_*.csv`` tick files at its top, e.g. ``aapl_test_ticks.csv``): that is
  how ``2013-10-07|SPY`` and ``2013-10-07|AAPL`` work from a fresh clone. Set
  ``fixtures_dir`` to ``"-"`` to turn that off.
- ``sources``: per symbol, where ticks and reference bars come from and which rule set
  builds the bars (default: the file drop; LEAN ticks use ``lean-equity`` when that rule
  set is registered, other ticks ``default``).
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

from ..core.rules import RULE_SETS

REPO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LEAN_RULES = "lean-equity"


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


def _ymd(date: str) -> str:
    return date.replace("-", "")


class FileDropResource(dg.ConfigurableResource):
    """Tick files and vendor bar files dropped per trading date and symbol."""

    drop_dir: str = Field(default="", description="empty: $PHASE1_DROP_DIR, else ./drop")
    fixtures_dir: str = Field(
        default="",
        description="searched when the drop has nothing for a partition; empty: the "
        "repository's fixtures/ folder; '-' turns it off",
    )

    def drop_path(self) -> Path:
        return Path(self.drop_dir or os.environ.get("PHASE1_DROP_DIR") or "drop")

    def search_dirs(self) -> list[tuple[Path, bool]]:
        """(folder, is_fixtures) in search order."""
        dirs = [(self.drop_path(), False)]
        if self.fixtures_dir != "-":
            fixtures = Path(self.fixtures_dir) if self.fixtures_dir else REPO_FIXTURES
            if fixtures.resolve() != dirs[0][0].resolve():
                dirs.append((fixtures, True))
        return dirs

    @staticmethod
    def _lean(base: Path, symbol: str, resolution: str, name: str) -> list[Path]:
        out: list[Path] = []
        for prefix in ("", "lean/"):
            out += sorted(base.glob(f"{prefix}equity/*/{symbol.lower()}/{resolution}/{name}"))
        return out

    def _ticks_in(self, base: Path, fixtures: bool, date: str, symbol: str) -> list[Path]:
        files = [p for p in (base / date / f"{symbol}.csv",) if p.is_file()]
        files += self._lean(base, symbol, "tick", f"{_ymd(date)}_trade.zip")
        if fixtures:
            files += sorted(p for p in base.glob(f"{symbol.lower()}_*.csv") if p.is_file())
        return files

    def tick_files(self, date: str, symbol: str) -> list[Path]:
        """The partition's tick files: the drop's, else the fixtures'."""
        for base, fixtures in self.search_dirs():
            files = self._ticks_in(base, fixtures, date, symbol)
            if files:
                return files
        return []

    def reference_files(self, date: str, symbol: str) -> list[Path]:
        """Vendor bar files (LEAN minute or second, and daily) from the folder of its ticks."""
        for base, fixtures in self.search_dirs():
            ymd = f"{_ymd(date)}_trade.zip"
            files = self._lean(base, symbol, "minute", ymd) or self._lean(
                base, symbol, "second", ymd)
            files += self._lean(base, symbol, "daily", f"{symbol.lower()}.zip")
            if files or self._ticks_in(base, fixtures, date, symbol):
                return files
        return []

    def describe(self) -> str:
        return ", ".join(str(d) for d, _ in self.search_dirs())


class SourcesResource(dg.ConfigurableResource):
    """Per symbol: where ticks and reference bars come from, and the rule set."""

    tick_sources: dict[str, str] = Field(
        default_factory=dict, description="SYMBOL -> drop | alpaca (default drop)"
    )
    reference_sources: dict[str, str] = Field(
        default_factory=dict, description="SYMBOL -> drop (LEAN files) | alpaca | yfinance | "
        "none (default drop)",
    )
    rule_sets: dict[str, str] = Field(
        default_factory=dict,
        description="SYMBOL -> rule set; default: lean-equity for LEAN ticks when "
        "registered, else default",
    )

    def tick_source(self, symbol: str) -> str:
        return self.tick_sources.get(symbol, "drop")

    def reference_source(self, symbol: str) -> str:
        return self.reference_sources.get(symbol, "drop")

    def rules_for(self, symbol: str, tick_files: list[Path]) -> str:
        if symbol in self.rule_sets:
            return self.rule_sets[symbol]
        lean = any(p.suffix.lower() == ".zip" for p in tick_files)
        return LEAN_RULES if lean and LEAN_RULES in RULE_SETS else "default"


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
        "Vendor rules cannot all be told from trade conditions: lean-equity matches 87.7% of "
        "LEAN's SPY minutes of 2013-10-07, 81.25% of the fixture slice",
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

    def export_path(self) -> Path:
        return Path(self.export_dir or os.environ.get("PHASE1_EXPORT_DIR") or "exports")

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
