"""Regression tests of tick-input defects: conflicting duplicates (3), timestamps out of
range (5), undecodable rows (8), out-of-range sequences (9) and the symbol rule (6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.app.replay import replay
from phase1_platform.core import BarEngine, CanonicalExporter, get_rules
from phase1_platform.core.calendar import MAX_TS_NS, sessions_between
from phase1_platform.core.identity import (
    CONFLICTING_DUPLICATE,
    find_repeats,
    identity_keys,
    same_content,
)
from phase1_platform.core.normalizer import Reason, TickNormalizer
from phase1_platform.core.schema import ts_ns
from phase1_platform.readers import read_tick_csv

ALL = "1m,5m,15m,30m,1h,4h,1d"
HEADER = "timestamp,symbol,price,size,exchange,conditions,trade_id,sequence\n"


def write(tmp_path, name: str, body: str | bytes, header: str = HEADER):
    path = tmp_path / name
    data = body if isinstance(body, bytes) else body.encode()
    path.write_bytes(header.encode() + data)
    return path


def reasons(result) -> dict[tuple[str, int], str]:
    q = result.quarantine
    return {(s, int(r)): why for s, r, why in zip(q["source"], q["source_row"], q["reason"],
                                                  strict=True)}


# ---------------------------------------------------------------- identity (defect 3)


def _ticks(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"ts": np.full(n, 10, dtype="int64"), "symbol": ["A"] * n, "price": [1.0] * n,
            "size": [1.0] * n, "exchange": [""] * n, "conditions": [""] * n,
            "trade_id": [""] * n, "sequence": np.full(n, -1, dtype="int64"),
            "source": ["s"] * n, "source_row": np.arange(n, dtype="int64")}
    base.update(cols)
    return pd.DataFrame(base)


def test_identity_keys_use_trade_id_or_source_position():
    ticks = _ticks(trade_id=["7", ""], source_row=np.array([3, 4]))
    keys = identity_keys(ticks)
    assert keys.to_dict("records") == [
        {"symbol": "A", "ts": 10, "trade_id": "7", "source": "", "source_row": -1},
        {"symbol": "A", "ts": 10, "trade_id": "", "source": "s", "source_row": 4},
    ]


def test_same_content_compares_every_non_identity_field():
    a = _ticks(price=[1.0] * 5)
    b = _ticks(price=[1.0, 2.0, 1.0, 1.0, 1.0], size=[1.0, 1.0, 3.0, 1.0, 1.0],
               exchange=["", "", "", "Q", ""], sequence=np.array([-1, -1, -1, -1, 4]))
    assert same_content(a, b).tolist() == [True, False, False, False, False]


def test_find_repeats_first_arrival_stays():
    ticks = _ticks(trade_id=["x", "x", "x", "x"], price=[1.0, 1.0, 2.0, 1.0],
                   ts=np.array([10, 10, 10, 11], dtype="int64"))
    rep = find_repeats(ticks)
    assert rep.duplicate.tolist() == [False, True, False, False]
    assert rep.conflicting.tolist() == [False, False, True, False]  # ts 11: another trade
    assert rep.first.tolist() == [-1, 0, 0, -1]
    late_first = find_repeats(ticks, arrival=np.array([3, 2, 1, 0]))
    assert late_first.conflicting.tolist() == [True, True, False, False]


def test_conflicting_trade_id_in_one_file_keeps_the_first(tmp_path):
    path = write(tmp_path, "t.csv",
                 "2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@,71,5\n"
                 "2013-10-07T13:30:01Z,AAPL,485.20,100,Q,@,72,6\n"
                 "2013-10-07T13:30:00Z,AAPL,485.90,100,Q,@,71,5\n"  # same id, other price
                 "2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@,71,5\n")  # plain re-send
    result = replay([path], ALL).normalized
    assert result.ticks["price"].tolist() == [485.10, 485.20]
    assert result.ticks["source_row"].tolist() == [0, 1]
    assert reasons(result) == {("t.csv", 2): CONFLICTING_DUPLICATE,
                               ("t.csv", 3): Reason.DUPLICATE_TRADE_ID}
    assert "485.9" in result.quarantine["raw"].iloc[0]
    assert Reason.CONFLICTING_DUPLICATE == "conflicting duplicate"


def test_conflicting_duplicate_across_two_files(tmp_path):
    a = write(tmp_path, "a.csv", "2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@,71,5\n")
    b = write(tmp_path, "b.csv", "2013-10-07T13:30:00Z,AAPL,485.10,200,Q,@,71,5\n")
    result = replay([b, a], ALL).normalized  # order given does not decide: a < b
    assert result.ticks["size"].tolist() == [100.0]
    assert reasons(result) == {("b.csv", 0): CONFLICTING_DUPLICATE}


def test_same_row_position_with_other_content_is_a_conflict():
    row = {"timestamp": "2013-10-07T13:30:00Z", "symbol": "AAPL", "price": "1", "size": "1",
           "source": "f.csv", "source_row": "0"}
    frame = pd.DataFrame([row, {**row, "price": "2"}, row], dtype="str")
    result = TickNormalizer().normalize(frame)
    assert result.ticks["price"].tolist() == [1.0]
    assert sorted(result.quarantine["reason"]) == [CONFLICTING_DUPLICATE, Reason.DUPLICATE_ROW]


def test_same_trade_id_at_two_timestamps_is_two_trades():
    """DESIGN 3: the identity of a trade with a trade_id includes its timestamp."""
    frame = pd.DataFrame({"timestamp": ["2013-10-07T13:30:00Z", "2013-10-07T13:30:01Z"],
                          "symbol": "AAPL", "price": "1", "size": "1", "trade_id": "9"},
                         dtype="str")
    result = TickNormalizer().normalize(frame)
    assert len(result.ticks) == 2 and result.rejected == 0


# ---------------------------------------------------------------- timestamps (defect 5)


def test_timestamp_outside_range_is_a_bad_row_not_a_crash(tmp_path):
    path = write(tmp_path, "t.csv",
                 "2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@,,\n"
                 "2300-01-01T00:00:00Z,AAPL,485.20,100,Q,@,,\n"
                 "1969-12-31T23:59:59Z,AAPL,485.30,100,Q,@,,\n"
                 "2262-04-11T00:00:00Z,AAPL,485.40,100,Q,@,,\n"
                 "9999-12-31T23:59:59-14:00,AAPL,485.50,100,Q,@,,\n"
                 "2013-10-07T13:31:00Z,AAPL,485.60,100,Q,@,,\n")
    result = replay([path], ALL)
    assert result.normalized.ticks["price"].tolist() == [485.10, 485.60]
    assert reasons(result.normalized) == {
        ("t.csv", 1): Reason.TIMESTAMP_AFTER_2262,
        ("t.csv", 2): Reason.TIMESTAMP_BEFORE_1970,
        ("t.csv", 3): Reason.TIMESTAMP_AFTER_2262,
        ("t.csv", 4): Reason.TIMESTAMP_AFTER_2262,
    }
    assert len(result.bars[result.bars["timeframe"] == "1m"]) == 2


def test_nanosecond_timestamps_out_of_range_are_not_called_unparseable(tmp_path):
    path = write(tmp_path, "t.csv",
                 "2013-10-07T13:30:00.123456789Z,AAPL,485.10,100,Q,@,,\n"
                 "2300-01-01T00:00:00.5Z,AAPL,485.20,100,Q,@,,\n"
                 "1900-01-01T00:00:00.000000001+01:00,AAPL,485.20,100,Q,@,,\n")
    result = replay([path], ALL).normalized
    assert reasons(result) == {("t.csv", 1): Reason.TIMESTAMP_AFTER_2262,
                               ("t.csv", 2): Reason.TIMESTAMP_BEFORE_1970}


@pytest.mark.parametrize("stamp", ["2262-04-10T23:59:59.999999999Z", "2262-04-10T00:00:00Z",
                                   "1970-01-01T00:00:00Z"])
def test_tick_at_the_edge_of_the_range_builds_every_timeframe(tmp_path, stamp):
    path = write(tmp_path, "t.csv", f"{stamp},AAPL,485.10,100,Q,@,,\n")
    result = replay([path], ALL)
    assert result.normalized.rejected == 0
    bars = result.bars
    assert set(bars["timeframe"]) >= {"1m", "5m", "15m", "30m", "1h", "4h"}
    assert CanonicalExporter(bars).compute_hash().startswith("sha256:")


def test_sessions_between_at_the_edges_of_the_range():
    assert len(sessions_between(0, 0).opens) == 0  # before the calendar: no session
    assert len(sessions_between(MAX_TS_NS - 1, MAX_TS_NS - 1).opens) == 0


def test_typed_timestamps_out_of_range():
    stamps = pd.to_datetime(["2013-10-07T13:30:00", "2300-01-01T00:00:00"]).as_unit("s")
    frame = pd.DataFrame({
        "timestamp": pd.Series(stamps).dt.tz_localize("UTC"),
        "symbol": "AAPL", "price": 1.0, "size": 1.0})
    result = TickNormalizer().normalize(frame, source="typed")
    assert result.rejected_by_reason == {Reason.TIMESTAMP_AFTER_2262: 1}
    ints = frame.assign(timestamp=np.array([5, MAX_TS_NS], dtype="int64"))
    assert TickNormalizer().normalize(ints).rejected_by_reason == {
        Reason.TIMESTAMP_AFTER_2262: 1}
    negative = frame.assign(timestamp=np.array([-1, 5], dtype="int64"))
    assert TickNormalizer().normalize(negative).rejected_by_reason == {
        Reason.TIMESTAMP_BEFORE_1970: 1}


# ---------------------------------------------------------------- undecodable rows (defect 8)


def test_one_invalid_utf8_byte_quarantines_only_its_row(tmp_path):
    path = write(tmp_path, "t.csv",
                 b"2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@,,\n"
                 b"2013-10-07T13:30:01Z,AA\xffPL,485.20,100,Q,@,,\n"
                 b"2013-10-07T13:30:02Z,AAPL,485.30,100,Q,\"@ \xe2\x82\",,\n"
                 b"2013-10-07T13:30:03Z,AAPL,485.40,100,Q,\xc3\xa9,,\n")  # valid: e-acute
    result = replay([path], ALL).normalized
    assert result.rows_in == 4
    assert result.ticks["price"].tolist() == [485.10, 485.40]
    assert result.ticks["conditions"].tolist() == ["@", "\u00e9"]
    assert reasons(result) == {("t.csv", 1): Reason.UNDECODABLE_ROW,
                               ("t.csv", 2): Reason.UNDECODABLE_ROW}
    raw = result.quarantine["raw"].tolist()
    assert "AA\\xffPL" in raw[0] and "\\xe2\\x82" in raw[1]


def test_invalid_utf8_in_a_line_with_the_wrong_field_count(tmp_path):
    path = write(tmp_path, "t.csv",
                 b"2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@,,\n"
                 b"2013-10-07T13:30:01Z,AA\xffPL,485.20\n"
                 b"2013-10-07T13:30:02Z,AAPL,485.30,100,Q,@,,\n")
    frame = read_tick_csv(path)
    result = TickNormalizer().normalize(frame)
    assert result.ticks["price"].tolist() == [485.10, 485.30]
    assert reasons(result) == {("t.csv", 1): Reason.UNDECODABLE_ROW}
    assert result.quarantine["raw"].iloc[0] == "2013-10-07T13:30:01Z,AA\\xffPL,485.20"


# ---------------------------------------------------------------- sequence (defect 9)


def test_sequence_outside_0_to_2_63_is_a_bad_row(tmp_path):
    rows = ["9223372036854775807", "9223372036854775808", "18446744073709551616", "-5",
            "1e30", "1.5", "abc", "nan", "inf", "", "0", "007", "12.0"]
    body = "".join(f"2013-10-07T13:30:00Z,AAPL,{100 + i},1,Q,@,,{s}\n"
                   for i, s in enumerate(rows))
    result = replay([write(tmp_path, "t.csv", body)], ALL).normalized
    bad = {r for (_, r), why in reasons(result).items() if why == Reason.SEQUENCE_BAD}
    assert bad == {1, 2, 3, 4, 5, 6, 8}  # "nan" and "" mean no sequence
    ticks = result.ticks
    assert ticks["sequence"].tolist() == [-1, -1, 0, 7, 12, 2**63 - 1]  # canonical order kept
    assert ticks["price"].tolist() == [107.0, 109.0, 110.0, 111.0, 112.0, 100.0]


def test_typed_sequence_out_of_range():
    frame = pd.DataFrame({"timestamp": np.array([1, 2, 3], dtype="int64"), "symbol": "A",
                          "price": 1.0, "size": 1.0,
                          "sequence": np.array([2**64 - 1, 2**63, 5], dtype="uint64")})
    result = TickNormalizer().normalize(frame)
    assert result.rejected_by_reason == {Reason.SEQUENCE_BAD: 2}
    signed = frame.assign(sequence=np.array([-7, 5, -1], dtype="int64"))
    result = TickNormalizer().normalize(signed)
    assert result.rejected_by_reason == {Reason.SEQUENCE_BAD: 1}  # -1 means "none"
    assert result.ticks["sequence"].tolist() == [5, -1]


# ---------------------------------------------------------------- symbols (defect 6)


@pytest.mark.parametrize("symbol", [".ABC", "-X", "."])
def test_symbol_must_start_with_a_letter_or_digit(symbol):
    frame = pd.DataFrame({"timestamp": ["2013-10-07T13:30:00Z"] * 2, "symbol": [symbol, "BRK.B"],
                          "price": "1", "size": "1"}, dtype="str")
    result = TickNormalizer().normalize(frame)
    assert result.rejected_by_reason == {Reason.SYMBOL_MALFORMED: 1}


def test_symbol_pattern_is_the_partition_one():
    from phase1_platform.core import normalizer, partition

    assert normalizer.SYMBOL_PATTERN is partition.SYMBOL_PATTERN


def test_bars_of_an_edge_tick_from_the_engine_directly():
    ts = pd.to_datetime(np.array([MAX_TS_NS - 1], dtype="int64"), utc=True)
    ticks = TickNormalizer().normalize(pd.DataFrame({
        "timestamp": ts, "symbol": ["A"], "price": [1.0], "size": [1.0]})).ticks
    bars = BarEngine(rules=get_rules("default")).build(ticks, ALL)
    assert bars[bars["timeframe"] == "1m"]["ts"].tolist() == [
        (MAX_TS_NS - 1) // 60_000_000_000 * 60_000_000_000]
    assert ts_ns(ticks["ts"]).tolist() == [MAX_TS_NS - 1]


def test_lower_case_t_and_z_are_read(tmp_path):
    """RFC 3339 allows lower-case t and z; they were quarantined as unparseable."""
    path = write(tmp_path, "t.csv", "2013-10-07t13:30:00.5z,AAPL,485.10,100,Q,@,,\n"
                                    "2300-01-01t00:00:00.5z,AAPL,485.10,100,Q,@,,\n")
    result = replay([path], ALL).normalized
    assert ts_ns(result.ticks["ts"]).tolist() == [pd.Timestamp("2013-10-07T13:30:00.5Z").value]
    assert result.rejected_by_reason == {Reason.TIMESTAMP_AFTER_2262: 1}
