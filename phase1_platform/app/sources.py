"""Per-symbol sources and rule set: the one setting the live service and Dagster both read.

For each symbol: where its ticks come from (``tick_source``: ``drop`` | ``alpaca`` |
``finnhub``), where its reference bars come from (``reference_source``: ``drop`` |
``alpaca`` | ``yfinance`` | ``none``) and which rule set builds its bars (``rule_set``, a
name of ``core.rules.RULE_SETS``). It is set, never guessed from the files that happen to
be in the drop.

Where the setting comes from, later wins field by field:

1. ``SymbolSource()``: ``drop``, ``drop``, ``default``;
2. the file's ``[default]`` table;
3. the built-in table ``BUILTIN_SYMBOLS`` (the real LEAN data the project ships or reads:
   SPY, AIG, BAC, IBM use ``lean-equity``, the rules LEAN's own bars follow), unless the
   file says ``builtin_symbols = false``;
4. the file's ``[symbols.<SYMBOL>]`` table;
5. explicit overrides (``SymbolSources.with_overrides``: the Dagster resource's dicts).

The file is ``$PHASE1_SOURCES`` (TOML, or JSON when it ends in ``.json``)::

    [default]
    reference_source = "none"

    [symbols.AAPL]
    tick_source = "finnhub"
    rule_set = "default"

Every value is checked when the setting is built (one ``ConfigError`` line naming the
symbol, the bad value and the choices).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..core.errors import ConfigError
from ..core.partition import validate_symbol
from ..core.rules import RULE_SETS

SOURCES_ENV = "PHASE1_SOURCES"
TICK_SOURCES = ("drop", "alpaca", "finnhub")
REFERENCE_SOURCES = ("drop", "alpaca", "yfinance", "none")
_CHOICES = {"tick_source": TICK_SOURCES, "reference_source": REFERENCE_SOURCES}


@dataclass(frozen=True)
class SymbolSource:
    """The sources and rule set of one symbol."""

    tick_source: str = "drop"
    reference_source: str = "drop"
    rule_set: str = "default"

    def check(self, who: str) -> SymbolSource:
        """``self`` when every value is valid, else ``ConfigError`` naming ``who``."""
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"{who}: unknown {name.replace('_', ' ')} {value!r}: "
                                  f"choose from {', '.join(choices)}")
        if self.rule_set not in RULE_SETS:
            raise ConfigError(f"{who}: unknown rule set {self.rule_set!r}: choose from "
                              f"{', '.join(sorted(RULE_SETS))}")
        return self


FIELDS = tuple(f.name for f in fields(SymbolSource))

# The shipped and shared LEAN data: its vendor bars follow LEAN's equity rules.
BUILTIN_SYMBOLS: dict[str, dict[str, str]] = {
    sym: {"rule_set": "lean-equity"} for sym in ("SPY", "AIG", "BAC", "IBM")
}


@dataclass(frozen=True)
class SymbolSources:
    """The per-symbol setting: ``for_symbol(symbol)`` is the one answer."""

    symbols: Mapping[str, SymbolSource] = field(
        default_factory=lambda: {s: SymbolSource(**v) for s, v in BUILTIN_SYMBOLS.items()})
    default: SymbolSource = SymbolSource()

    def __post_init__(self) -> None:
        self.default.check("default sources")
        for symbol, setting in self.symbols.items():
            validate_symbol(symbol)
            setting.check(f"sources of {symbol}")

    def for_symbol(self, symbol: str) -> SymbolSource:
        return self.symbols.get(validate_symbol(symbol), self.default)

    def with_overrides(self, tick_sources: Mapping[str, str] | None = None,
                       reference_sources: Mapping[str, str] | None = None,
                       rule_sets: Mapping[str, str] | None = None) -> SymbolSources:
        """A copy with these per-symbol values replacing the setting's (checked)."""
        by_field = {"tick_source": tick_sources or {}, "reference_source":
                    reference_sources or {}, "rule_set": rule_sets or {}}
        symbols = dict(self.symbols)
        for name, values in by_field.items():
            for symbol, value in values.items():
                base = symbols.get(symbol) or self.default
                symbols[symbol] = replace(base, **{name: value})
        return SymbolSources(symbols, self.default)


def _table(path: Path, where: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: {where} must be a table of {', '.join(FIELDS)}")
    for key, v in value.items():
        if key not in FIELDS:
            raise ConfigError(f"{path}: {where}: unknown key {key!r}: use {', '.join(FIELDS)}")
        if not isinstance(v, str):
            raise ConfigError(f"{path}: {where}.{key} must be a string, not {v!r}")
    return dict(value)


def sources_from_mapping(data: Mapping, path: Path | str = "sources") -> SymbolSources:
    """The setting of a parsed file (see the module doc for the order of precedence)."""
    path = Path(path)
    for key in data:
        if key not in ("default", "symbols", "builtin_symbols"):
            raise ConfigError(f"{path}: unknown key {key!r}: use default, symbols, "
                              "builtin_symbols")
    default_table = _table(path, "default", data.get("default", {}))
    symbols_table = data.get("symbols", {})
    if not isinstance(symbols_table, Mapping):
        raise ConfigError(f"{path}: symbols must be a table of [symbols.<SYMBOL>] tables")
    builtin = data.get("builtin_symbols", True)
    if not isinstance(builtin, bool):
        raise ConfigError(f"{path}: builtin_symbols must be true or false")
    try:
        default = SymbolSource(**default_table).check("default sources")
        symbols = {s: SymbolSource(**{**default_table, **v})
                   for s, v in (BUILTIN_SYMBOLS if builtin else {}).items()}
        for symbol, table in symbols_table.items():
            validate_symbol(symbol)
            base = {**default_table, **(BUILTIN_SYMBOLS.get(symbol, {}) if builtin else {})}
            symbols[symbol] = SymbolSource(**{**base, **_table(path, symbol, table)})
        return SymbolSources(symbols, default)
    except ConfigError as exc:
        if str(path) in str(exc):
            raise
        raise ConfigError(f"{path}: {exc.one_line()}") from None


def load_sources(path: str | Path | None = None) -> SymbolSources:
    """The setting of ``path`` (else ``$PHASE1_SOURCES``; neither: the built-in defaults)."""
    if path is None or path == "":
        path = os.environ.get(SOURCES_ENV) or None
        if path is None:
            return SymbolSources()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"sources file {path} ({SOURCES_ENV}) cannot be read: "
                          f"{exc.strerror or exc}; fix the path or unset {SOURCES_ENV}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sources file {path}: not UTF-8 text") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"sources file {path}: not valid {kind} ({exc})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"sources file {path}: expected a table at the top")
    return sources_from_mapping(data, path)
