"""TickNormalizer semantics: DESIGN section 3 (ordering, dedup) and section 7 (quarantine)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.core.normalizer import (
    MissingColumnsError,
    Reason,
    TickNormalizer,
    canonical_sort,
)
from phase1_platform.core.schema import TICK_COLUMNS, ts_ns
from phase1_platform.readers import read_tick_csv

T0 = "2013-10-07T13:30:00"
T0_NS = 1381152600 * 10**9  # 2013-10-07T13:30:00Z


def raw(rows: list[dict], **defaults) -> pd.DataFrame:
    """A raw text frame as a CSV reader gives it (every value a string)."""
    base = {"timestamp": T0 + "Z", "symbol": "AAPL", "price": "485.10", "size": "100"}
    base.update(defaults)
    filled = [{**base, **r} for r in rows]
    cols = list(dict.fromkeys(k for r in filled for k in r))
    return pd.DataFrame([{c: str(r.get(c, "")) for c in cols} for r in filled], dtype="str")


def norm(frame: pd.DataFrame, **kwargs):
    return TickNormalizer(**kwargs).normalize(frame, source="test.csv")


def reasons(result) -> dict[int, str]:
    q = result.quarantine
    return dict(zip(q["source_row"].tolist(), q["reason"].tolist(), strict=True))


# ---------------------------------------------------------------- ordering


def test_canonical_order_is_timestamp_sequence_source_row():
    frame = raw(
        [
            {"timestamp": T0 + ".000000002Z", "sequence": "1", "source": "b", "source_row": "0",
             "price": "1"},
            {"timestamp": T0 + ".000000001Z", "sequence": "9", "source": "b", "source_row": "1",
             "price": "2"},
            {"timestamp": T0 + ".000000001Z", "sequence": "3", "source": "b", "source_row": "2",
             "price": "3"},
            {"timestamp": T0 + ".000000001Z", "sequence": "3", "source": "a", "source_row": "7",
             "price": "4"},
            {"timestamp": T0 + ".000000001Z", "sequence": "3", "source": "a", "source_row": "5",
             "price": "5"},
        ]
    )
    ticks = norm(frame).ticks
    # ts first; then sequence; then source name; then position in the source
    assert ticks["price"].tolist() == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert ticks["source"].tolist() == ["a", "a", "b", "b", "b"]
    assert ticks["source_row"].tolist() == [5, 7, 2, 1, 0]


def test_symbol_is_the_outer_sort_key():
    frame = raw(
        [
            {"symbol": "MSFT", "timestamp": T0 + "Z"},
            {"symbol": "AAPL", "timestamp": T0 + ".5Z"},
            {"symbol": "AAPL", "timestamp": T0 + ".1Z"},
        ]
    )
    ticks = norm(frame).ticks
    assert ticks["symbol"].tolist() == ["AAPL", "AAPL", "MSFT"]
    assert ts_ns(ticks["ts"]).tolist() == [T0_NS + 100_000_000, T0_NS + 500_000_000, T0_NS]


def test_same_timestamp_ordered_by_sequence_then_arrival():
    frame = raw(
        [
            {"sequence": "12", "price": "485.12"},
            {"sequence": "10", "price": "485.10"},  # first of the two sequence-10 rows
            {"sequence": "11", "price": "485.11"},
            {"sequence": "10", "price": "485.13"},  # same ts and sequence: arrival decides
        ]
    )
    ticks = norm(frame).ticks
    assert ticks["price"].tolist() == [485.10, 485.13, 485.11, 485.12]
    assert ticks["sequence"].tolist() == [10, 10, 11, 12]
    assert ticks["source_row"].tolist() == [1, 3, 2, 0]


def test_same_timestamp_without_sequence_keeps_arrival_order():
    frame = raw([{"price": "3"}, {"price": "1"}, {"price": "2"}])
    ticks = norm(frame).ticks
    assert ticks["price"].tolist() == [3.0, 1.0, 2.0]
    assert ticks["sequence"].tolist() == [-1, -1, -1]


def test_order_does_not_depend_on_input_order():
    rows = [
        {"timestamp": f"{T0}.{i % 3:09d}Z", "sequence": str(10 - i), "price": str(480 + i)}
        for i in range(9)
    ]
    a = norm(raw(rows)).ticks
    b = norm(raw(rows[::-1])).ticks
    assert a["price"].tolist() == b["price"].tolist()


def test_canonical_sort_accepts_int_timestamps():
    frame = pd.DataFrame(
        {"ts": np.array([3, 1, 2], dtype="int64"), "symbol": ["A", "A", "A"],
         "sequence": [-1, -1, -1], "source": ["s", "s", "s"], "source_row": [0, 1, 2]}
    )
    assert canonical_sort(frame)["ts"].tolist() == [1, 2, 3]


# ---------------------------------------------------------------- dedup


def test_duplicate_trade_id_counted_once_and_quarantined():
    frame = raw(
        [
            {"trade_id": "71001", "price": "485.10", "sequence": "1"},
            {"trade_id": "71002", "price": "485.20", "sequence": "2"},
            {"trade_id": "71001", "price": "485.10", "sequence": "1"},  # re-sent
        ]
    )
    result = norm(frame)
    assert result.ticks["trade_id"].tolist() == ["71001", "71002"]
    assert result.ticks["source_row"].tolist() == [0, 1]  # the first arrival is kept
    assert result.rejected_by_reason == {"duplicate trade_id": 1}
    q = result.quarantine.iloc[0]
    assert (q["source"], int(q["source_row"]), q["reason"]) == ("test.csv", 2, "duplicate trade_id")
    assert "71001" in q["raw"] and "485.1" in q["raw"]


def test_repeated_trade_id_keeps_the_first_arrival():
    # the copy that arrived second has the lower sequence (first in canonical order), but
    # the first arrival stays; its other content makes it a conflicting duplicate
    frame = raw(
        [
            {"trade_id": "9", "sequence": "5", "price": "2"},
            {"trade_id": "9", "sequence": "4", "price": "2"},
        ]
    )
    result = norm(frame)
    assert result.ticks["sequence"].tolist() == [5]
    assert reasons(result) == {1: Reason.CONFLICTING_DUPLICATE}


def test_same_trade_id_on_two_symbols_is_two_trades():
    frame = raw([{"trade_id": "1", "symbol": "AAPL"}, {"trade_id": "1", "symbol": "MSFT"}])
    result = norm(frame)
    assert len(result.ticks) == 2 and result.rejected == 0


def test_identical_rows_without_trade_id_both_counted():
    row = {"timestamp": T0 + ".250Z", "price": "484.87", "size": "10", "exchange": "D",
           "conditions": "@ I", "trade_id": "", "sequence": ""}
    result = norm(raw([row, row]))
    assert len(result.ticks) == 2
    assert result.rejected == 0
    assert result.ticks["source_row"].tolist() == [0, 1]


def test_same_row_read_twice_is_one_trade():
    """DESIGN 3: a row without trade_id is identified by its source and position."""
    frame = raw([{"price": "1", "source": "f.csv", "source_row": "0"},
                 {"price": "2", "source": "f.csv", "source_row": "1"}])
    twice = pd.concat([frame, frame], ignore_index=True)
    result = norm(twice)
    assert result.ticks["price"].tolist() == [1.0, 2.0]
    assert result.rejected_by_reason == {Reason.DUPLICATE_ROW: 2}


def test_same_position_in_two_sources_is_two_trades():
    a = raw([{"source": "a.csv", "source_row": "0"}])
    b = raw([{"source": "b.csv", "source_row": "0"}])
    result = norm(pd.concat([a, b], ignore_index=True))
    assert len(result.ticks) == 2 and result.rejected == 0


# ---------------------------------------------------------------- quarantine reasons


@pytest.mark.parametrize(
    ("row", "reason", "raw_text"),
    [
        ({"timestamp": "10/07/2013 09:30 AM"}, "unparseable timestamp", "10/07/2013 09:30 AM"),
        ({"timestamp": "garbage"}, "unparseable timestamp", "timestamp=garbage"),
        ({"timestamp": ""}, "unparseable timestamp", "symbol=AAPL"),
        ({"timestamp": "2013-10-07T25:00:00Z"}, "unparseable timestamp", "T25:00:00Z"),
        ({"timestamp": T0}, "timestamp without zone", f"timestamp={T0},"),
        ({"timestamp": T0 + ".123456789"}, "timestamp without zone", T0 + ".123456789"),
        ({"timestamp": "2013-10-07"}, "timestamp without zone", "timestamp=2013-10-07,"),
        ({"price": "0"}, "price <= 0 or NaN", "price=0,"),
        ({"price": "-485.1"}, "price <= 0 or NaN", "price=-485.1"),
        ({"price": ""}, "price <= 0 or NaN", "price=,"),
        ({"price": "NaN"}, "price <= 0 or NaN", "price=NaN"),
        ({"price": "abc"}, "price <= 0 or NaN", "price=abc"),
        ({"price": "inf"}, "price <= 0 or NaN", "price=inf"),
        ({"size": "-100"}, "negative size", "size=-100"),
        ({"size": "lots"}, "size unparseable or NaN", "size=lots"),
        ({"size": "1e11"}, "price x size out of range", "size=1e11"),
        ({"symbol": "aapl"}, "malformed symbol", "symbol=aapl"),
        ({"symbol": "AAPL$"}, "malformed symbol", "symbol=AAPL$"),
        ({"symbol": ""}, "malformed symbol", "symbol=,"),
        ({"symbol": "A" * 17}, "malformed symbol", "A" * 17),
        ({"sequence": "1.5"}, "unparseable sequence", "sequence=1.5"),
    ],
)
def test_bad_row_is_quarantined_with_reason_and_raw(row, reason, raw_text):
    frame = raw([{"price": "485.00"}, row, {"price": "485.01"}])
    result = norm(frame)
    assert result.ticks["source_row"].tolist() == [0, 2]
    assert result.rows_in == 3
    assert result.rejected_by_reason == {reason: 1}
    q = result.quarantine.iloc[0]
    assert (q["source"], int(q["source_row"]), q["reason"]) == ("test.csv", 1, reason)
    assert raw_text in q["raw"]


def test_unknown_symbol_with_symbols_filter():
    frame = raw([{"symbol": "AAPL"}, {"symbol": "MSFT"}, {"symbol": "SPY"}])
    result = norm(frame, symbols=["aapl", " spy "])
    assert result.ticks["symbol"].tolist() == ["AAPL", "SPY"]
    assert reasons(result) == {1: "unknown symbol"}
    assert "symbol=MSFT" in result.quarantine["raw"].iloc[0]


def test_symbols_filter_as_comma_separated_string():
    frame = raw([{"symbol": "AAPL"}, {"symbol": "MSFT"}, {"symbol": "SPY"}])
    result = norm(frame, symbols="AAPL, spy")
    assert result.ticks["symbol"].tolist() == ["AAPL", "SPY"]
    assert reasons(result) == {1: "unknown symbol"}


def test_timestamp_before_1970_is_quarantined_not_lost():
    """Bars are epoch-aligned with -1 meaning "no bar": such a tick would vanish there."""
    frame = raw([{"timestamp": "1969-12-31T23:59:30Z"}, {"timestamp": "1970-01-01T00:00:00Z"}])
    result = norm(frame)
    assert reasons(result) == {0: "timestamp before 1970"}
    assert ts_ns(result.ticks["ts"]).tolist() == [0]


def test_outside_partition_with_window():
    start, end = T0_NS, T0_NS + 60 * 10**9
    frame = raw(
        [
            {"timestamp": "2013-10-07T13:29:59.999999999Z"},
            {"timestamp": T0 + "Z"},  # start is inside
            {"timestamp": "2013-10-07T13:30:59.999999999Z"},
            {"timestamp": "2013-10-07T13:31:00Z"},  # end is outside
        ]
    )
    result = norm(frame, window=(start, end))
    assert result.ticks["source_row"].tolist() == [1, 2]
    assert reasons(result) == {0: "outside partition", 3: "outside partition"}
    assert "13:29:59.999999999" in result.quarantine["raw"].iloc[0]


def test_first_reason_applies_and_every_bad_row_is_counted():
    frame = raw(
        [
            {"timestamp": "garbage", "price": "0", "size": "-1"},
            {"price": "0", "size": "-1"},
            {"size": "-1"},
            {},
        ]
    )
    result = norm(frame)
    assert reasons(result) == {0: "unparseable timestamp", 1: "price <= 0 or NaN",
                               2: "negative size"}
    assert len(result.ticks) + result.rejected == result.rows_in == 4


def test_zero_size_is_a_valid_tick():
    """Size 0 is a price update: kept as a tick (the engine decides whether it counts)."""
    result = norm(raw([{"size": "0"}]))
    assert result.rejected == 0 and result.ticks["size"].tolist() == [0.0]


def test_missing_required_column_is_an_error():
    frame = raw([{}]).drop(columns=["size"])
    with pytest.raises(MissingColumnsError, match="size"):
        norm(frame)


# ---------------------------------------------------------------- timestamps


def test_nanoseconds_preserved():
    frame = raw(
        [
            {"timestamp": "2013-10-07T13:30:00.123456789Z"},
            {"timestamp": "2013-10-07T13:30:00.000000001Z"},
            {"timestamp": "2013-10-07T09:30:00.999999999-04:00"},
        ]
    )
    ticks = norm(frame).ticks
    assert ts_ns(ticks["ts"]).tolist() == [T0_NS + 1, T0_NS + 123456789, T0_NS + 999999999]
    assert str(ticks["ts"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    "text",
    [
        "2013-10-07T09:30:00-04:00",
        "2013-10-07T09:30:00-0400",
        "2013-10-07T13:30:00+00:00",
        "2013-10-07T19:00:00+05:30",
        "2013-10-08T02:30:00+13:00",
        "2013-10-07 13:30:00Z",
        "2013-10-07T13:30Z",
    ],
)
def test_offsets_converted_to_utc(text):
    result = norm(raw([{"timestamp": text}]))
    assert result.rejected == 0
    assert ts_ns(result.ticks["ts"]).tolist() == [T0_NS]


def test_typed_timestamps_from_connectors():
    aware = pd.DataFrame({
        "timestamp": pd.to_datetime(["2013-10-07T09:30:00.000000007"]).tz_localize(
            "America/New_York"),
        "symbol": ["AAPL"], "price": [485.1], "size": [100.0],
    })
    assert ts_ns(norm(aware).ticks["ts"]).tolist() == [T0_NS + 7]
    ints = aware.assign(timestamp=np.array([T0_NS + 7], dtype="int64"))
    assert ts_ns(norm(ints).ticks["ts"]).tolist() == [T0_NS + 7]
    naive = aware.assign(timestamp=pd.to_datetime(["2013-10-07T13:30:00"]))
    assert reasons(norm(naive)) == {0: "timestamp without zone"}
    nat = aware.assign(timestamp=pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"))
    assert reasons(norm(nat)) == {0: "unparseable timestamp"}


# ---------------------------------------------------------------- symbols and text


def test_symbol_whitespace_is_stripped_and_dotted_symbols_accepted():
    frame = raw([{"symbol": " AAPL "}, {"symbol": "BRK.B"}, {"symbol": "GCZ13"}])
    result = norm(frame)
    assert result.rejected == 0
    assert sorted(result.ticks["symbol"]) == ["AAPL", "BRK.B", "GCZ13"]


def test_output_columns_and_dtypes():
    frame = raw([{"exchange": "Q", "conditions": "@ F", "trade_id": "5", "sequence": "7"},
                 {"exchange": "", "conditions": "", "trade_id": "", "sequence": "",
                  "timestamp": T0 + ".5Z"}])
    ticks = norm(frame).ticks
    assert list(ticks.columns) == list(TICK_COLUMNS)
    assert ticks["conditions"].tolist() == ["@ F", ""]
    assert ticks["trade_id"].tolist() == ["5", ""]
    assert ticks["sequence"].tolist() == [7, -1]
    assert ticks["exchange"].tolist() == ["Q", ""]
    assert ticks["source"].tolist() == ["test.csv", "test.csv"]


def test_empty_input():
    result = norm(raw([{}]).iloc[0:0])
    assert result.rows_in == 0 and len(result.ticks) == 0 and result.rejected == 0


# ---------------------------------------------------------------- files


def test_malformed_csv_lines_are_quarantined_not_dropped(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text(
        "timestamp,symbol,price,size,exchange,conditions\n"
        "2013-10-07T13:30:00Z,AAPL,485.10,100,Q,@\n"
        "2013-10-07T13:30:01Z,AAPL,485.20\n"  # too few fields
        "2013-10-07T13:30:02Z,AAPL,485.30,100,Q,@,extra\n"  # too many
        "2013-10-07T13:30:03Z,AAPL,485.40,100,Q,@\n"
    )
    frame = read_tick_csv(path)
    result = TickNormalizer().normalize(frame)
    assert result.rows_in == 4
    assert result.ticks["price"].tolist() == [485.10, 485.40]
    assert result.ticks["source_row"].tolist() == [0, 3]
    q = result.quarantine
    assert q["reason"].tolist() == ["malformed line", "malformed line"]
    assert q["source"].tolist() == ["ticks.csv", "ticks.csv"]
    assert q["source_row"].tolist() == [1, 2]
    assert q["raw"].tolist() == ["2013-10-07T13:30:01Z,AAPL,485.20",
                                 "2013-10-07T13:30:02Z,AAPL,485.30,100,Q,@,extra"]


def test_short_line_is_not_padded_into_a_trade(tmp_path):
    """A line missing only optional fields must not pass as a trade with empty venue."""
    path = tmp_path / "short.csv"
    path.write_text(
        "timestamp,symbol,price,size,exchange,conditions\n"
        "2013-10-07T13:30:00Z,AAPL,485.10,100\n"
    )
    result = TickNormalizer().normalize(read_tick_csv(path))
    assert len(result.ticks) == 0
    assert result.rejected_by_reason == {"malformed line": 1}


def test_every_line_with_an_extra_field_is_not_shifted(tmp_path):
    """pandas would silently take the first column as an index here."""
    path = tmp_path / "extra.csv"
    path.write_text("timestamp,symbol,price,size\n2013-10-07T13:30:00Z,AAPL,485.10,100,7\n")
    result = TickNormalizer().normalize(read_tick_csv(path))
    assert len(result.ticks) == 0
    assert result.rejected_by_reason == {"malformed line": 1}


def test_csv_quoting_blank_lines_and_bom(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(
        b"\xef\xbb\xbftimestamp,symbol,price,size,conditions\r\n"
        b"\r\n"
        b'"2013-10-07T13:30:00Z",AAPL,485.10,100,"@ F"\r\n'
        b"2013-10-07T13:30:01Z,AAPL,485.20,100,\"@,I\"\r\n"
    )
    frame = read_tick_csv(path)
    result = TickNormalizer().normalize(frame)
    assert result.rejected == 0
    assert result.ticks["conditions"].tolist() == ["@ F", "@,I"]
    assert result.ticks["source_row"].tolist() == [0, 1]


def _lean_zip(tmp_path, rows: str):
    import zipfile

    path = tmp_path / "equity" / "usa" / "tick" / "xyz" / "20131007_trade.zip"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("20131007_xyz_Trade_Tick.csv", rows)
    return path


def test_lean_equity_ticks_to_canonical(tmp_path):
    from phase1_platform.readers import read_ticks

    # 09:30:00.000 New York = 13:30Z; price x10000; 0x20 = intermarket sweep; suspicious
    path = _lean_zip(tmp_path, "34200000,1674300,100,P,20,0\n34200001,1674400,5,Q,0,1\n")
    result = TickNormalizer().normalize(read_ticks(path))
    ticks = result.ticks
    assert result.rejected == 0
    assert ts_ns(ticks["ts"]).tolist() == [T0_NS, T0_NS + 1_000_000]
    assert ticks["price"].tolist() == [167.43, 167.44]
    assert ticks["symbol"].tolist() == ["XYZ", "XYZ"]
    assert ticks["conditions"].tolist() == ["IntermarketSweep", "Suspicious"]
    assert ticks["source"].iloc[0] == "20131007_trade.zip:20131007_xyz_Trade_Tick.csv"


def test_lean_bad_condition_mask_is_one_clear_error(tmp_path):
    from phase1_platform.readers import InputFileError, read_ticks

    path = _lean_zip(tmp_path, "34200000,1674300,100,P,zz,0\n")
    with pytest.raises(InputFileError, match="condition 'zz' is not a hex mask") as err:
        read_ticks(path)
    assert "\n" not in str(err.value)
