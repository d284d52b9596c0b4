"""The rule-set tables: ``sip`` against the consolidated tape's matrix, LEAN's flags mapped
onto it, and the LEAN data time zones the readers use."""

from __future__ import annotations

import csv

import pytest

from phase1_platform.core.conditions import (
    LEAN_FLAGS,
    SIP_CONDITIONS,
    SIP_INDICATORS,
    SIP_INTRADAY_PRICE,
    sip_tokens,
)
from phase1_platform.core.rules import RULE_SETS, get_rules
from phase1_platform.readers.lean import data_time_zone
from phase1_platform_tests.conftest import shared_file


def test_rule_sets_registered():
    assert {"default", "lean-equity", "lean-future", "sip"} <= set(RULE_SETS)


def test_sip_table_is_the_shared_utp_matrix():
    path = shared_file("conditions/utp_consolidated.csv")  # skips when absent
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = {row[0]: row for row in SIP_CONDITIONS}
    assert len(rows) == len(SIP_CONDITIONS)
    for r in rows:
        utp, pid, _lean, name, hl, last, vol = table[r["utp_code"]]
        assert (pid, name) == (int(r["id"]), r["condition"])
        # N1 (the day's first or only last-eligible trade) is "no" for intraday bars
        assert (hl, last, vol) == tuple(r[c] == "Y" for c in ("HL", "last", "vol")), utp


def test_every_lean_flag_maps_onto_the_table():
    mapped = {name for row in SIP_CONDITIONS for name in row[2]}
    for name in LEAN_FLAGS.values():
        assert (name in mapped) != (name in SIP_INDICATORS), name
    # one row per flag: a flag never means two conditions
    names = [name for row in SIP_CONDITIONS for name in row[2]]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("row", SIP_CONDITIONS, ids=lambda r: r[3])
def test_sip_judges_every_condition_by_the_matrix(row):
    utp, _pid, _lean, _name, hl, last, vol = row
    rules = get_rules("sip")
    price = (hl and last) or utp in SIP_INTRADAY_PRICE
    for token in sip_tokens(row):
        assert rules.judge(token) == (price, vol), token


def test_sip_indicators_and_unknown_codes_leave_a_print_eligible():
    rules = get_rules("sip")
    for token in (*SIP_INDICATORS, "Regular", "@", "not-a-code"):
        assert rules.judge(token) == (True, True)
    assert rules.judge("IntermarketSweep TradeThroughExempt") == (True, True)
    assert rules.judge("@ F") == (True, True)
    assert rules.judge("Sold OutOfSequence") == (False, True)  # Z: high/low only
    assert rules.judge("Regular Suspicious") == (False, False)


def test_lean_data_time_zones():
    """LEAN's market-hours database: US equities' data in New York time, futures in UTC."""
    assert data_time_zone("equity") == "America/New_York"
    assert data_time_zone("future") == "UTC"
