"""The canonical exports are pinned: `phase1 replay` of every shipped and shared tick file.

The hashes are the baseline taken before the LEAN layout change (``sh_*`` from the shared
files, ``fx_*`` from ``fixtures/``); the files are read from their LEAN-layout homes now.
A changed hash means a changed export: DESIGN section 6 says it must not change.
"""

from __future__ import annotations

import hashlib

import pytest

from phase1_platform.cli import main
from phase1_platform_tests.conftest import FIXTURES, shared_file

TIMEFRAMES = "1m,5m,15m,30m,1h,4h,1d"

# name: (where, file, rule set, sha256 of the export)
BASELINE = {
    "sh_spy_default": ("shared", "lean/equity/usa/tick/spy/20131007_trade.zip", "default",
                       "33f05efdf4c5572b285b2cad79e75d69cca8e3bcbdaef63bcdc47dca873af76c"),
    "sh_spy_lean": ("shared", "lean/equity/usa/tick/spy/20131007_trade.zip", "lean-equity",
                    "4f500c837cc877193b37bfca52387c706e68e3ce7222e0720342603ea8117791"),
    "sh_aig": ("shared", "lean/equity/usa/tick/aig/20131007_trade.zip", "lean-equity",
               "667cd7e16b7becc4404be92facaf55632152e77e7f92a722c3706956e31ca67b"),
    "sh_bac": ("shared", "lean/equity/usa/tick/bac/20131007_trade.zip", "lean-equity",
               "abc3e51dd2e3932c0502decb81c8a283cb58901c4178ab87987eeea069c11720"),
    "sh_ibm": ("shared", "lean/equity/usa/tick/ibm/20131007_trade.zip", "lean-equity",
               "d3f237688e8c20eef0b10c3d2cc8c1077be8b46a6ca07e807a51445cd122b156"),
    "sh_gc": ("shared", "lean/future/comex/tick/gc/20131007_trade.zip", "lean-future",
              "078f6051cfa51aa2a0a6cc8f59ffcb382fa72d0026e1f77e02d5a4c6b5b83e4b"),
    "fx_spy_default": ("fixtures", "lean/equity/usa/tick/spy/20131007_trade.zip", "default",
                       "474bbf40b02dd6f0e1dd9ca941a0fce1f24f047e3a54b2769ef6fc4991a7f82c"),
    "fx_spy_lean": ("fixtures", "lean/equity/usa/tick/spy/20131007_trade.zip", "lean-equity",
                    "76dba4a39cb4d1118d4042066c3b87c1de51d6d833b16a3a13807181b1624a2e"),
    "fx_aapl": ("fixtures", "2013-10-07/AAPL.csv", "default",
                "3568d615a1c1d5d263f82897af005d9956f420e2c844fb83b97657c5471ae60d"),
}


@pytest.mark.parametrize("name", list(BASELINE))
def test_replay_export_matches_the_baseline(name, tmp_path, capsys):
    where, rel, rules, digest = BASELINE[name]
    path = shared_file(rel) if where == "shared" else FIXTURES / rel
    out = tmp_path / f"{name}.csv"
    code = main(["replay", "--csv", str(path), "--timeframes", TIMEFRAMES, "--rules", rules,
                 "--output", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert f"rule set: {rules}" in printed
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert printed[-1] == f"sha256:{digest}"
