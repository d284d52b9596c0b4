"""Canonical bar CSV (DESIGN section 5): header, order, number rule, hash, round trip."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from phase1_platform.core import BarEngine, TickNormalizer, get_rules
from phase1_platform.core.export import (
    CanonicalExporter,
    CanonicalFormatError,
    compute_hash,
    file_hash,
    format_decimal,
    format_qty,
    read_canonical_csv,
    to_canonical,
)
from phase1_platform.core.schema import BAR_COLUMNS, NOTIONAL_SCALE, QTY_SCALE

HEADER = "symbol,timeframe,timestamp,open,high,low,close,volume,trade_count,vwap"
T = pd.Timestamp("2013-10-07T13:30:00Z").value


def bar(symbol="AAPL", tf="1m", ts=T, o=485.1, h=485.5, lo=484.9, c=485.2, volume=100,
        count=1, notional=None) -> dict:
    qty = round(volume * QTY_SCALE)
    if notional is None:
        notional = round(c * volume * NOTIONAL_SCALE)
    return {"symbol": symbol, "timeframe": tf, "ts": ts, "open": o, "high": h, "low": lo,
            "close": c, "qty": qty, "notional": notional, "trade_count": count}


def frame(*bars) -> pd.DataFrame:
    return pd.DataFrame(list(bars)).astype(BAR_COLUMNS)


def lines(bars: pd.DataFrame) -> list[str]:
    return CanonicalExporter(bars).to_bytes().decode("ascii").splitlines()


def test_header_exactly_and_line_endings():
    data = CanonicalExporter(frame(bar())).to_bytes()
    assert data.startswith((HEADER + "\n").encode())
    assert b"\r" not in data and data.endswith(b"\n")
    assert lines(frame(bar()))[1] == (
        "AAPL,1m,2013-10-07T13:30:00Z,485.1,485.5,484.9,485.2,100,1,485.2"
    )


def test_header_only_when_no_bars(tmp_path):
    assert CanonicalExporter(frame(bar()).iloc[0:0]).to_bytes() == (HEADER + "\n").encode()
    path = tmp_path / "empty.csv"
    path.write_text(HEADER + "\n")
    back = read_canonical_csv(path)
    assert len(back) == 0 and CanonicalExporter(back).to_bytes() == path.read_bytes()


def test_sort_order_symbol_then_timeframe_by_duration_then_timestamp():
    hour = 3600 * 10**9
    day_label = pd.Timestamp("2013-10-07T04:00:00Z").value
    bars = [
        bar("MSFT", "1m", T),
        bar("AAPL", "1d", day_label),
        bar("AAPL", "4h", T - T % (4 * hour)),
        bar("AAPL", "1h", T - T % hour + hour),
        bar("AAPL", "1h", T - T % hour),
        bar("AAPL", "30m", T),
        bar("AAPL", "15m", T),
        bar("AAPL", "5m", T),
        bar("AAPL", "1m", T + 60 * 10**9),
        bar("AAPL", "1m", T),
        bar("A", "1d", day_label),
    ]
    rng = np.random.default_rng(7)
    shuffled = frame(*[bars[i] for i in rng.permutation(len(bars))])
    got = [tuple(line.split(",")[:3]) for line in lines(shuffled)[1:]]
    assert got == [
        ("A", "1d", "2013-10-07T04:00:00Z"),
        ("AAPL", "1m", "2013-10-07T13:30:00Z"),
        ("AAPL", "1m", "2013-10-07T13:31:00Z"),
        ("AAPL", "5m", "2013-10-07T13:30:00Z"),
        ("AAPL", "15m", "2013-10-07T13:30:00Z"),
        ("AAPL", "30m", "2013-10-07T13:30:00Z"),
        ("AAPL", "1h", "2013-10-07T13:00:00Z"),
        ("AAPL", "1h", "2013-10-07T14:00:00Z"),
        ("AAPL", "4h", "2013-10-07T12:00:00Z"),
        ("AAPL", "1d", "2013-10-07T04:00:00Z"),
        ("MSFT", "1m", "2013-10-07T13:30:00Z"),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (167.43, "167.43"),
        (100.0, "100"),
        (0.1, "0.1"),
        (0.00001, "0.00001"),  # repr would be 1e-05
        (0.00000001, "0.00000001"),
        (123456789.12345678, "123456789.12345678"),
        (1e20, "100000000000000000000"),
        (485.10000000000002, "485.1"),
        (1e-10, "0"),
        (-0.0, "0"),
        (float("nan"), ""),
    ],
)
def test_decimal_rule(value, text):
    assert format_decimal(np.array([value])) == [text]


@pytest.mark.parametrize(
    ("qty", "text"),
    [
        (100 * QTY_SCALE, "100"),
        (QTY_SCALE // 2, "0.5"),
        (1, "0.00000001"),
        (1234 * QTY_SCALE + 1, "1234.00000001"),
        (10**17, "1000000000"),
        (0, "0"),
    ],
)
def test_volume_printed_exactly_from_integer_units(qty, text):
    assert format_qty(np.array([qty], dtype="int64")) == [text]


def test_fractional_volumes_sum_exactly():
    ticks = TickNormalizer().normalize(pd.DataFrame({
        "timestamp": ["2013-10-07T13:30:01Z", "2013-10-07T13:30:02Z", "2013-10-07T13:30:03Z"],
        "symbol": "BTC.X", "price": ["100", "100", "100"], "size": ["0.1", "0.2", "0.00000001"],
    })).ticks
    out = lines(BarEngine().build(ticks, "1m"))
    assert out[1] == "BTC.X,1m,2013-10-07T13:30:00Z,100,100,100,100,0.30000001,3,100"
    assert "e" not in "".join(out[1:]).replace("BTC.X", "")


def test_vwap_empty_when_no_volume():
    """A bar of zero-size prints (lean-future rules) has prices but no volume."""
    ticks = TickNormalizer().normalize(pd.DataFrame({
        "timestamp": ["2013-10-07T13:30:01Z"], "symbol": "GCZ13", "price": ["1310.5"],
        "size": ["0"],
    })).ticks
    out = lines(BarEngine(rules=get_rules("lean-future")).build(ticks, "1m"))
    assert out[1] == "GCZ13,1m,2013-10-07T13:30:00Z,1310.5,1310.5,1310.5,1310.5,0,0,"


def test_vwap_value():
    # notional 48510 + 97040 = 145550 over 300 shares = 485.1666...
    b = bar(volume=300, count=2, notional=145_550 * NOTIONAL_SCALE)
    assert lines(frame(b))[1].endswith(",300,2,485.16666667")


def test_compute_hash_is_sha256_of_file_bytes(tmp_path):
    bars = frame(bar(), bar("MSFT", c=33.1))
    exporter = CanonicalExporter(bars)
    path = tmp_path / "out" / "bars.csv"
    digest = exporter.write(path)
    data = path.read_bytes()
    want = "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest == want == exporter.compute_hash() == compute_hash(data) == file_hash(path)
    assert data == exporter.to_bytes()
    assert not list(path.parent.glob(".*tmp*"))  # the temp file was renamed away


def test_timeframe_hashes_equal_each_timeframes_own_export():
    """One rendering of many timeframes (and symbols, and an information-driven timeframe
    with nanosecond stamps) gives each timeframe's hash as its own export would."""
    bars = frame(bar(), bar(ts=T + 60 * 10**9, c=485.4), bar("MSFT", c=33.1),
                 bar(tf="5m"), bar("MSFT", tf="1d", ts=T - T % 86_400_000_000_000),
                 bar(tf="100t", ts=T + 123_456_789), bar(tf="100t", ts=T + 987_654_321),
                 bar("MSFT", tf="100t", ts=T + 5))
    hashes = CanonicalExporter(bars).timeframe_hashes()
    assert set(hashes) == {"1m", "5m", "1d", "100t"}
    for tf, digest in hashes.items():
        alone = bars[bars["timeframe"] == tf]
        assert digest == CanonicalExporter(alone).compute_hash()
        assert digest == CanonicalExporter(alone.sample(frac=1, random_state=1)).compute_hash()
    assert CanonicalExporter(bars.iloc[:0]).timeframe_hashes() == {}


def test_internal_and_canonical_frames_render_the_same_bytes():
    bars = frame(bar(volume=0.5, notional=242_550_000), bar("MSFT", tf="1h", ts=T - T % 3600e9))
    assert CanonicalExporter(to_canonical(bars)).to_bytes() == CanonicalExporter(bars).to_bytes()


def test_read_canonical_csv_round_trip(tmp_path):
    bars = frame(
        bar(),
        bar(tf="1d", ts=pd.Timestamp("2013-10-07T04:00:00Z").value, volume=1234.5),
        bar("GCZ13", o=1310.5, h=1310.5, lo=1310.5, c=1310.5, volume=0, count=0, notional=0),
    )
    path = tmp_path / "bars.csv"
    CanonicalExporter(bars).write(path)
    back = read_canonical_csv(path)
    assert list(back.columns) == ["symbol", "timeframe", "ts", "open", "high", "low", "close",
                                  "volume", "trade_count", "vwap"]
    assert CanonicalExporter(back).to_bytes() == path.read_bytes()
    gc = back[back["symbol"] == "GCZ13"].iloc[0]
    assert np.isnan(gc["vwap"]) and gc["volume"] == 0 and gc["trade_count"] == 0


def test_round_trip_of_vendor_bars_without_trade_count(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text(HEADER + "\nSPY,1m,2013-10-07T13:30:00Z,167.43,167.5,167.4,167.45,81000,,\n")
    back = read_canonical_csv(path)
    assert np.isnan(back["trade_count"].iloc[0]) and np.isnan(back["vwap"].iloc[0])
    assert CanonicalExporter(back).to_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "header must be " + HEADER),
        ("symbol,timeframe,timestamp,open,high,low,close,volume\n", "header must be"),
        (HEADER + "\nAAPL,2m,2013-10-07T13:30:00Z,1,1,1,1,1,1,1\n", "unknown timeframe(s) 2m"),
        (HEADER + "\nAAPL,1m,2013-10-07T13:30:00Z,1,1,1,1,1,1,1\n"
         "AAPL,1m,2013-10-07 13:31,1,1,1,1,1,1,1\n", "line 3: timestamp"),
        (HEADER + "\nAAPL,1m,2013-10-07T13:30:00Z,abc,1,1,1,1,1,1\n", "bad number"),
        (HEADER + "\nAAPL,1m,2013-10-07T13:30:00Z,1,1,1,1,,1,1\n", "bad number"),
        (HEADER + "\nAAPL,1m,2013-10-07T13:30:00Z,1,1,1,1,1,1,1,9\n", "line 2"),
        (HEADER + "\nAAPL,1m,2013-10-07T13:30:00Z,1,1,1\n", "line 2"),
    ],
)
def test_read_canonical_csv_errors_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CanonicalFormatError) as err:
        read_canonical_csv(path)
    text = str(err.value)
    assert message in text
    assert "\n" not in text and str(path) in text


def test_read_canonical_csv_missing_file(tmp_path):
    with pytest.raises(CanonicalFormatError, match="cannot read") as err:
        read_canonical_csv(tmp_path / "nope.csv")
    assert "\n" not in str(err.value)


# ------------------------------------------------- atomic write: no temp file left (12)
def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_write_into_a_folder_path_names_it_and_leaves_nothing(tmp_path):
    from phase1_platform.core.errors import InputError

    target = tmp_path / "bars.csv"
    target.mkdir()
    with pytest.raises(InputError, match=f"cannot write {target}: it is a directory"):
        CanonicalExporter(frame(bar())).write(target)
    assert _leftovers(tmp_path) == [] and target.is_dir()


@pytest.mark.parametrize("fail", ["replace", "write"])
def test_failed_write_removes_its_temp_file_and_keeps_the_old_file(tmp_path, monkeypatch,
                                                                   fail):
    import errno
    import os
    from pathlib import Path

    from phase1_platform.core import export as export_module
    from phase1_platform.core.export import OutputWriteError

    target = tmp_path / "bars.csv"
    target.write_bytes(b"old\n")
    if fail == "replace":
        def broken(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(export_module.os, "replace", broken)
    else:
        real = Path.write_bytes

        def full_disk(self, data):  # half the bytes land, then the disk is full
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OutputWriteError) as err:
        CanonicalExporter(frame(bar())).write(target)
    message = str(err.value)
    assert str(target) in message and "\n" not in message
    assert ("No space left" in message) if fail == "write" else ("cross-device" in message)
    assert _leftovers(tmp_path) == []
    assert target.read_bytes() == b"old\n"
