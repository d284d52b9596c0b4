"""Per-symbol sources and rule set: one explicit setting, never guessed from the drop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phase1_platform.app.sources import (
    BUILTIN_SYMBOLS,
    SOURCES_ENV,
    SymbolSource,
    SymbolSources,
    load_sources,
)
from phase1_platform.core.errors import ConfigError
from phase1_platform.defs.resources import SourcesResource


@pytest.fixture(autouse=True)
def _no_sources_file(monkeypatch):
    monkeypatch.delenv(SOURCES_ENV, raising=False)


def test_builtin_table_keeps_the_shipped_outcomes():
    s = SymbolSources()
    assert s.for_symbol("SPY") == SymbolSource("drop", "drop", "lean-equity")
    for sym in ("AIG", "BAC", "IBM"):
        assert s.for_symbol(sym).rule_set == "lean-equity"
    assert s.for_symbol("AAPL") == SymbolSource("drop", "drop", "default")
    assert s.for_symbol("MSFT") == SymbolSource()
    assert set(BUILTIN_SYMBOLS) == {"SPY", "AIG", "BAC", "IBM"}


def test_rule_set_is_not_guessed_from_the_files_in_the_drop():
    res = SourcesResource()
    # a LEAN zip among the tick files used to turn any symbol into lean-equity
    assert res.rules_for("MSFT", [Path("equity/usa/tick/msft/20131007_trade.zip")]) == "default"
    assert res.rules_for("AAPL", [Path("drop/2013-10-07/AAPL.csv")]) == "default"
    assert res.rules_for("SPY", []) == "lean-equity"
    assert res.rules_for("SPY") == "lean-equity"


def test_resource_dicts_still_override_per_symbol():
    res = SourcesResource(tick_sources={"AAPL": "alpaca"}, reference_sources={"AAPL": "yfinance"},
                          rule_sets={"LEQ": "lean-equity", "SPY": "default"})
    assert res.tick_source("AAPL") == "alpaca" and res.reference_source("AAPL") == "yfinance"
    assert res.tick_source("SPY") == "drop" and res.reference_source("SPY") == "drop"
    assert res.rules_for("LEQ") == "lean-equity" and res.rules_for("SPY") == "default"
    assert res.for_symbol("AAPL") == SymbolSource("alpaca", "yfinance", "default")


@pytest.mark.parametrize(("field", "value", "hint"), [
    ("rule_sets", "lean-equty", "lean-equity"),  # the registry's names are listed
    ("tick_sources", "polygon", "alpaca"),
    ("reference_sources", "bloomberg", "yfinance"),
])
def test_bad_values_are_one_line_config_errors(field, value, hint):
    res = SourcesResource(**{field: {"SPY": value}})
    with pytest.raises(ConfigError) as err:
        res.for_symbol("SPY")
    text = str(err.value)
    assert value in text and hint in text and "SPY" in text and "\n" not in text


def test_bad_symbol_is_refused():
    with pytest.raises(ConfigError, match="invalid symbol"):
        SymbolSources({"spy/../x": SymbolSource()})
    with pytest.raises(ConfigError, match="invalid symbol"):
        SymbolSources().for_symbol("../etc")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_file_from_the_environment(tmp_path, monkeypatch):
    path = _write(tmp_path, "sources.toml", """
[default]
reference_source = "none"

[symbols.AAPL]
tick_source = "finnhub"
rule_set = "lean-equity"

[symbols.SPY]
reference_source = "alpaca"
""")
    monkeypatch.setenv(SOURCES_ENV, str(path))
    s = load_sources()
    assert s.for_symbol("AAPL") == SymbolSource("finnhub", "none", "lean-equity")
    # SPY keeps its built-in rule set, takes the file's reference source
    assert s.for_symbol("SPY") == SymbolSource("drop", "alpaca", "lean-equity")
    assert s.for_symbol("MSFT") == SymbolSource("drop", "none", "default")
    # Dagster reads the same setting
    assert SourcesResource().for_symbol("AAPL") == s.for_symbol("AAPL")
    assert SourcesResource(rule_sets={"AAPL": "default"}).rules_for("AAPL") == "default"


def test_json_file_and_builtin_table_off(tmp_path):
    path = _write(tmp_path, "sources.json", json.dumps({
        "builtin_symbols": False,
        "default": {"rule_set": "lean-future"},
        "symbols": {"GCZ13": {"reference_source": "none"}},
    }))
    s = load_sources(path)
    assert s.for_symbol("SPY").rule_set == "lean-future"
    assert s.for_symbol("GCZ13") == SymbolSource("drop", "none", "lean-future")


@pytest.mark.parametrize(("text", "match"), [
    ('[symbols.SPY]\nrule_set = "nope"\n', "unknown rule set 'nope'"),
    ('[symbols.SPY]\nrules = "default"\n', "unknown key 'rules'"),
    ('colour = "red"\n', "unknown key 'colour'"),
    ('[symbols]\nSPY = "lean-equity"\n', "SPY"),
    ("not toml = = =\n", "not valid TOML"),
])
def test_bad_file_is_one_line_naming_the_file(tmp_path, text, match):
    path = _write(tmp_path, "sources.toml", text)
    with pytest.raises(ConfigError, match=match) as err:
        load_sources(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(SOURCES_ENV, str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=SOURCES_ENV):
        load_sources()
