"""Fuzz suite of the tick input (DESIGN sections 3 and 7): hostile tick CSV bytes through
the reader, the normalizer and the bar engine.

Inputs: random bytes in every field, extreme and non-finite numbers, random UTC offsets
and 0..9 fraction digits, missing zones, timestamps outside 1970..2262, huge, negative
and non-integer sequences, invalid UTF-8, wrong field counts, blank lines, CRLF, exact
and conflicting duplicates (same trade id, or the same file position read twice).

For every input:

- nothing escapes but an ``InputError`` for a whole-file problem (a header without a
  required column or with a repeated one);
- every row read is accepted or quarantined with a non-empty reason, and exactly once:
  ``accepted + quarantined == rows read``, and the (source, source_row) pairs of both
  together are those read, as a multiset. A duplicate (or conflicting duplicate) is one
  row read: its first arrival is accepted, each later copy is one quarantined row
  (``duplicate trade_id``, ``duplicate row`` or ``conflicting duplicate``), so the
  equation is exact with repeats in it;
- accepted ticks are valid (range of timestamps, prices, sizes, sequences, symbols) and
  have distinct identities; each repeat has an accepted twin;
- the default-rules 1m and 1d bars of the accepted ticks equal a plain-Python
  aggregation written here (minute floor / XNYS session from exchange_calendars itself).

Bounded and derandomized for CI (no example database, no deadline).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from phase1_platform.core import BarEngine, get_rules
from phase1_platform.core.engine import BarOverflowError
from phase1_platform.core.errors import InputError
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.schema import ts_ns
from phase1_platform.readers import read_tick_csv
from phase1_platform_tests.support.hypothesis_ci import bounded

SETTINGS = bounded(120)

NS = 10**9
DAY_NS = 86_400 * NS
MINUTE_NS = 60 * NS
MAX_NS = int(pd.Timestamp("2262-04-11T00:00:00Z").value)  # exclusive (DESIGN section 3)
INT64_MAX = 2**63 - 1
SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")
REPEAT_REASONS = {"duplicate trade_id", "duplicate row", "conflicting duplicate"}
REQUIRED = ["timestamp", "symbol", "price", "size"]
OPTIONAL = ["exchange", "conditions", "trade_id", "sequence"]
NY = ZoneInfo("America/New_York")
EPOCH = dt.datetime(1970, 1, 1)

# ---------------------------------------------------------------- field strategies

raw_bytes = st.binary(max_size=6)  # anything, invalid UTF-8 and CSV syntax included
odd_text = st.text(max_size=6).map(lambda s: s.encode("utf-8", "surrogatepass"))
hostile = st.one_of(raw_bytes, odd_text)

DAYS = [pd.Timestamp(d).value for d in (
    "2013-10-07T00:00:00Z", "2013-10-08T00:00:00Z", "2013-10-05T00:00:00Z",  # Mon Tue Sat
    "1970-01-01T00:00:00Z", "2262-04-10T00:00:00Z")]
SESSION_NS = st.integers(13 * 3600 * NS, 20 * 3600 * NS + 5 * MINUTE_NS)  # the 7th's session
EDGE_STAMPS = [
    "1969-12-31T23:59:59.999999999Z", "1970-01-01T00:00:00Z", "2262-04-10T23:59:59.999999999Z",
    "2262-04-11T00:00:00Z", "2300-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999+14:00", "1900-06-01T12:00:00.5-05:00",
]
BAD_STAMPS = ["", "garbage", "2013-10-07", "10/07/2013 09:30 AM", "2013-13-45T99:99:99Z",
              "nan", "NaT", "2013-10-07T13:30:00+25:00", "2013-10-07T13:30:00.1234567891Z"]


def _zone(offset_min: int, style: str) -> str:
    if style == "none":
        return ""
    if offset_min == 0 and style in ("Z", "z"):
        return style
    sign = "-" if offset_min < 0 else "+"
    hh, mm = divmod(abs(offset_min), 60)
    if style == "HH" and mm == 0:
        return f"{sign}{hh:02d}"
    if style == "HHMM":
        return f"{sign}{hh:02d}{mm:02d}"
    return f"{sign}{hh:02d}:{mm:02d}"


@st.composite
def stamp_text(draw, good: bool = False) -> bytes:
    kind = "good" if good else draw(st.sampled_from(["good"] * 5 + ["edge"] * 2 + ["bad", "any"]))
    if kind == "good":
        day = draw(st.sampled_from(DAYS))
        within = draw(st.one_of(SESSION_NS, st.integers(0, DAY_NS - 1))) if day == DAYS[0] \
            else draw(st.integers(0, DAY_NS - 1))
        offset = draw(st.one_of(st.just(0), st.sampled_from([-240, -300, 330, 60]),
                                st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
        local = day + within + offset * MINUTE_NS
        secs, frac = divmod(local, NS)
        text = (EPOCH + dt.timedelta(seconds=secs)).strftime(
            "%Y-%m-%d" + draw(st.sampled_from(["T", " "])) + "%H:%M:%S")
        digits = draw(st.integers(0, 9))
        if digits:
            text += "." + f"{frac:09d}"[:digits]
        style = draw(st.sampled_from(["Z", "z", "HH:MM", "HHMM", "HH", "none"]))
        return (text + _zone(offset, style)).encode()
    if kind == "edge":
        return draw(st.sampled_from(EDGE_STAMPS)).encode()
    if kind == "bad":
        return draw(st.sampled_from(BAD_STAMPS)).encode()
    return draw(hostile)


EXTREME_NUMBERS = ["0", "-0", "-0.0", "-1", "nan", "NaN", "inf", "-inf", "1e400", "-1e400",
                   "1e-400", "0.00000001", "0.000000004", "123456789012345678901234567890",
                   "9999999999", "1e10", "1e11", "0x10", "", " 5 ", "1,5", "+3", "1_000"]
prices = st.one_of(
    st.integers(48000, 49000).map(lambda c: f"{c / 100:.2f}".encode()),
    st.sampled_from(EXTREME_NUMBERS).map(str.encode),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    st.integers(-10**30, 10**30).map(lambda i: str(i).encode()),
    hostile,
)
sizes = st.one_of(
    st.sampled_from([b"100", b"200", b"0", b"10", b"0.5", b"1234.5678"]),
    st.integers(1, 10**6).map(lambda u: str(u / 10**4).encode()),
    st.sampled_from(EXTREME_NUMBERS).map(str.encode),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    hostile,
)
sequences = st.one_of(
    st.sampled_from(["", "0", "1", "7", "9223372036854775807", "9223372036854775808",
                     "18446744073709551616", "-1", "-5", "1.5", "12.0", "1e3", "nan", "abc",
                     "-0", "+4", " 3 "]).map(str.encode),
    st.integers(-(2**70), 2**70).map(lambda i: str(i).encode()),
    hostile,
)


def one_in(k: int):
    """True about once in ``k`` draws (sampled, so hypothesis' edge bias stays small)."""
    return st.sampled_from([True] + [False] * (k - 1))


GOOD_FIELDS = {
    "timestamp": stamp_text(good=True),
    "symbol": st.sampled_from([b"AAPL", b"AAPL", b"MSFT", b"BRK.B"]),
    "price": st.integers(48000, 49000).map(lambda c: f"{c / 100:.2f}".encode()),
    "size": st.sampled_from([b"100", b"200", b"0", b"10", b"0.5", b"1234.5678", b"1e-9"]),
    "exchange": st.sampled_from([b"", b"Q", b"P", b"D"]),
    "conditions": st.sampled_from([b"", b"@", b"@ F", b"@ I", b"T", b"T I"]),
    "trade_id": st.sampled_from([b"", b"", b"", b"1", b"2", b"3", b"71001"]),
    "sequence": st.one_of(st.just(b""), st.integers(0, 9).map(lambda i: str(i).encode())),
}
ANY_FIELDS = {
    "timestamp": stamp_text(),
    "symbol": st.one_of(st.sampled_from(["AAPL", "AAPL", "MSFT", "BRK.B", " AAPL ", "aapl",
                                         ".X", "-X", "", "A" * 17, "AAPL$"]).map(str.encode),
                        hostile),
    "price": prices,
    "size": sizes,
    "exchange": st.one_of(st.sampled_from([b"", b"Q", b"P", b"D"]), hostile),
    "conditions": st.one_of(st.sampled_from([b"", b"@", b"@ F", b"@ I", b"T", b"T I"]),
                            hostile),
    "trade_id": st.one_of(st.sampled_from([b"", b"", b"1", b"2", b"3", b"71001"]), hostile),
    "sequence": sequences,
}


@st.composite
def tick_files(draw):
    """(header columns, body bytes, a second body for the same source or None)."""
    columns = REQUIRED + draw(st.lists(st.sampled_from(OPTIONAL), unique=True))
    columns = draw(st.permutations(columns))
    if draw(one_in(30)):  # a whole-file problem now and then
        columns = columns[1:] if draw(st.booleans()) else [*columns, columns[0]]
    rows = []
    for _ in range(draw(st.integers(0, 25))):
        fields = ANY_FIELDS if draw(one_in(4)) else GOOD_FIELDS  # hostile rows: 1 in 4
        rows.append([draw(fields.get(c, hostile)) for c in columns])
    # exact copies and conflicting copies (another price) of some rows, anywhere
    for _ in range(draw(st.integers(0, 4))):
        if not rows:
            break
        row = list(draw(st.sampled_from(rows)))
        if draw(st.booleans()) and "price" in columns:
            row[columns.index("price")] = draw(GOOD_FIELDS["price"])
        rows.insert(draw(st.integers(0, len(rows))), row)
    shapes = [draw(st.sampled_from(["ok"] * 18 + ["short", "long"])) for _ in rows]
    extra = [draw(hostile) for _ in rows]
    ends = [draw(st.sampled_from([b"\n", b"\n", b"\r\n"])) for _ in rows]
    blanks = [draw(one_in(15)) for _ in rows]

    def render(rows) -> bytes:
        lines = []
        for row, shape, more, end, blank in zip(rows, shapes, extra, ends, blanks, strict=True):
            if shape == "short":
                row = row[:-1]  # a field short
            elif shape == "long":
                row = [*row, more]  # a field too many
            lines.append(b",".join(row) + end + (b"\n" if blank else b""))
        return b"".join(lines)

    body = render(rows)
    second = None
    if rows and draw(one_in(4)):  # the same source read again: copies, some prices changed
        again = [list(r) for r in rows]
        if "price" in columns:
            for i in draw(st.lists(st.integers(0, len(rows) - 1), max_size=3)):
                again[i][columns.index("price")] = draw(GOOD_FIELDS["price"])
        second = render(again)
    return columns, body, second


# ---------------------------------------------------------------- independent model


@lru_cache(maxsize=1)
def _xnys():
    return xcals.get_calendar("XNYS", start="1990-01-01")


@lru_cache(maxsize=4096)
def _session_of_date(date: dt.date):
    """(open_ns, close_ns, label_ns) of the XNYS session on that date, or None."""
    cal = _xnys()
    day = pd.Timestamp(date)
    if day < cal.first_session or day > cal.last_session or not cal.is_session(day):
        return None
    row = cal.schedule.loc[day]
    label = int(pd.Timestamp(date).tz_localize("America/New_York").tz_convert("UTC").value)
    return int(row["open"].value), int(row["close"].value), label


def _daily_label(ts: int) -> int | None:
    if ts < pd.Timestamp("1990-01-01T12:00:00Z").value or ts >= pd.Timestamp("2200-01-01").value:
        return None
    local = dt.datetime.fromtimestamp(ts // NS, tz=dt.UTC).astimezone(NY)
    session = _session_of_date(local.date())
    if session is None or not session[0] <= ts < session[1]:
        return None
    return session[2]


def expected_bars(ticks: pd.DataFrame, timeframe: str) -> list[tuple]:
    """Default rules: every tick with size > 0 sets prices and counts; plain Python."""
    rows = sorted(
        zip(ticks["symbol"], ts_ns(ticks["ts"]).tolist(), ticks["sequence"].tolist(),
            ticks["source"], ticks["source_row"].tolist(), ticks["price"].tolist(),
            ticks["size"].tolist(), strict=True),
        key=lambda r: r[:5],
    )
    bars: dict[tuple[str, int], list] = {}
    for sym, ts, _, _, _, price, size in rows:
        if not size > 0:
            continue
        start = ts // MINUTE_NS * MINUTE_NS if timeframe == "1m" else _daily_label(ts)
        if start is None:
            continue
        qty, notional = round(size * 1e8), round(price * size * 1e6)
        bar = bars.get((sym, start))
        if bar is None:
            bars[(sym, start)] = [price, price, price, price, qty, notional, 1]
        else:
            bar[1], bar[2], bar[3] = max(bar[1], price), min(bar[2], price), price
            bar[4] += qty
            bar[5] += notional
            bar[6] += 1
    return [(sym, start, *bar) for (sym, start), bar in sorted(bars.items())]


def engine_bars(bars: pd.DataFrame, timeframe: str) -> list[tuple]:
    part = bars[bars["timeframe"] == timeframe]
    cols = ["symbol", "ts", "open", "high", "low", "close", "qty", "notional", "trade_count"]
    return [tuple(r) for r in part[cols].itertuples(index=False, name=None)]


# ---------------------------------------------------------------- invariants


def check_accounting(frame: pd.DataFrame, result) -> None:
    ticks, q = result.ticks, result.quarantine
    assert result.rows_in == len(frame)
    assert len(ticks) + len(q) == result.rows_in
    assert q["reason"].map(lambda r: isinstance(r, str) and r.strip() != "").all()
    read = Counter(zip(frame["source"], frame["source_row"].tolist(), strict=True))
    out = Counter(zip(ticks["source"], ticks["source_row"].tolist(), strict=True))
    out.update(zip(q["source"], q["source_row"].tolist(), strict=True))
    assert out == read


def check_accepted(frame: pd.DataFrame, result) -> None:
    ticks = result.ticks
    ts = ts_ns(ticks["ts"]).tolist()
    assert all(0 <= t < MAX_NS for t in ts)
    assert all(p > 0 and p != float("inf") for p in ticks["price"].tolist())
    assert all(0 <= s < float("inf") for s in ticks["size"].tolist())
    assert all(-1 <= s <= INT64_MAX for s in ticks["sequence"].tolist())
    assert all(SYMBOL.match(s) for s in ticks["symbol"])
    ids = [(sym, t, tid) if tid else (sym, t, "", src, row) for sym, t, tid, src, row in zip(
        ticks["symbol"], ts, ticks["trade_id"], ticks["source"], ticks["source_row"].tolist(),
        strict=True)]
    assert len(set(ids)) == len(ids), "two accepted ticks share an identity"
    # each repeat has an accepted twin (same symbol, ts and trade_id, or the same
    # position) that arrived first ((source, source_row) order), and is a duplicate
    # exactly when its content equals the twin's
    by_pos = {(s, r): i for i, (s, r) in enumerate(
        zip(frame["source"], frame["source_row"].tolist(), strict=True))}
    twins = {}
    for i, t in enumerate(ticks.itertuples(index=False)):
        key = (t.symbol, ts[i], t.trade_id) if t.trade_id else (t.source, t.source_row)
        twins[key] = ((t.price, t.size, t.exchange, t.conditions, t.sequence),
                      (t.source, t.source_row))
    q = result.quarantine[result.quarantine["reason"].isin(REPEAT_REASONS)]
    if len(q) == 0:
        return
    # the repeats parsed on their own, in one call: unique probe trade ids keep them apart
    pos = [by_pos[(src, int(row))] for src, row in zip(q["source"], q["source_row"], strict=True)]
    tids = [_trade_id(frame, i) for i in pos]
    probe = frame.iloc[pos].assign(trade_id=[f"probe{k}" for k in range(len(pos))])
    alone = TickNormalizer().normalize(probe).ticks
    assert len(alone) == len(pos), "a repeat is not a valid tick on its own"
    alone = alone.assign(k=alone["trade_id"].str.slice(5).astype(int)).sort_values("k")
    alone_ts = ts_ns(alone["ts"])
    for j, t in enumerate(alone.itertuples(index=False)):
        src, row, why, tid = q["source"].iloc[t.k], int(q["source_row"].iloc[t.k]), \
            q["reason"].iloc[t.k], tids[t.k]
        key = (t.symbol, alone_ts[j], tid) if tid else (src, row)
        assert key in twins, f"{why} without an accepted twin: {src}:{row}"
        content, arrived = twins[key]
        assert arrived <= (src, row), f"{why}: the later arrival {arrived} was kept"
        same = content == (t.price, t.size, t.exchange, t.conditions, t.sequence)
        assert same == (why != "conflicting duplicate"), f"{why} but same content: {same}"


def _trade_id(frame: pd.DataFrame, i: int) -> str:
    """The trade id of a raw row as the normalizer reads it ("" for none)."""
    if "trade_id" not in frame.columns:
        return ""
    text = str(frame["trade_id"].iloc[i]).strip()
    return "" if text == "nan" else text


def check_bars(ticks: pd.DataFrame) -> None:
    want = {tf: expected_bars(ticks, tf) for tf in ("1m", "1d")}
    if any(b[6] > INT64_MAX or b[7] > INT64_MAX for bars in want.values() for b in bars):
        with pytest.raises(BarOverflowError):  # DESIGN 4: refused, never a wrapped value
            BarEngine(rules=get_rules("default")).build(ticks, "1m,1d")
        return
    bars = BarEngine(rules=get_rules("default")).build(ticks, "1m,1d")
    for tf, expected in want.items():
        assert engine_bars(bars, tf) == expected, tf
        event(f"{tf} bars: {'some' if expected else 'none'}")


# ---------------------------------------------------------------- tests


@SETTINGS
@given(case=tick_files())
def test_hostile_tick_csv_is_read_accounted_and_aggregated(tmp_path_factory, case):
    columns, body, second = case
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "ticks.csv"
    path.write_bytes(",".join(columns).encode() + b"\n" + body)
    whole_file_problem = (not set(REQUIRED) <= set(columns)) or len(set(columns)) != len(columns)
    try:
        frame = read_tick_csv(path)
        if second is not None:
            other = tmp / "again.csv"
            other.write_bytes(",".join(columns).encode() + b"\n" + second)
            frame = pd.concat([frame, read_tick_csv(other, source="ticks.csv")],
                              ignore_index=True)
    except InputError:
        event("whole-file InputError")
        assert whole_file_problem, "a whole-file error for a file with a valid header"
        return
    assert not whole_file_problem
    if second is None and b'"' not in body and b"\r" not in body.replace(b"\r\n", b""):
        lines = [ln for ln in body.split(b"\n")[:-1] if ln.rstrip(b"\r")]
        assert len(frame) == len(lines)  # one row read per non-blank line
    result = TickNormalizer().normalize(frame)
    for why in sorted(set(result.quarantine["reason"])):
        event(f"quarantined: {why}")
    event("some accepted" if len(result.ticks) else "none accepted")
    check_accounting(frame, result)
    check_accepted(frame, result)
    check_bars(result.ticks)


typed_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 485.1, 100.0]),
)


@SETTINGS
@given(data=st.data(), n=st.integers(0, 20))
def test_typed_ticks_from_connectors(data, n):
    """Typed columns as connectors give them: int64 ns (any value), floats, int sequences."""
    frame = pd.DataFrame({
        "timestamp": pd.Series(data.draw(st.lists(st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.integers(pd.Timestamp("2013-10-07T13:30:00Z").value,
                        pd.Timestamp("2013-10-07T20:00:00Z").value),
            st.sampled_from([0, -1, MAX_NS - 1, MAX_NS])), min_size=n, max_size=n)),
            dtype="int64"),
        "symbol": data.draw(st.lists(st.sampled_from(["AAPL", "MSFT", "aapl", ""]),
                                     min_size=n, max_size=n)),
        "price": data.draw(st.lists(typed_numbers, min_size=n, max_size=n)),
        "size": data.draw(st.lists(typed_numbers, min_size=n, max_size=n)),
        "trade_id": data.draw(st.lists(st.sampled_from(["", "1", "2"]), min_size=n,
                                       max_size=n)),
        "sequence": pd.Series(data.draw(st.lists(st.integers(-(2**63), 2**63 - 1),
                                                 min_size=n, max_size=n)), dtype="int64"),
    })
    frame = frame.assign(source="stream", source_row=range(n))
    result = TickNormalizer().normalize(frame)
    check_accounting(frame, result)
    check_accepted(frame, result)
    check_bars(result.ticks)
