"""Canonical bar CSV (DESIGN section 5): the one deterministic text form of bars.

Number rule: prices, volume and vwap are printed in fixed-point with at most 8
decimals, trailing zeros and a trailing dot removed (``167.43``, ``100``); volume is
printed from its exact integer units; an unknown value (vwap of a bar without volume,
trade_count of a vendor bar that has none) is an empty field. No locale, no exponent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .csv_text import UnreadableCsvError, read_text_csv
from .engine import sort_bars
from .errors import InputError
from .schema import CANONICAL_COLUMNS, CANONICAL_HEADER, QTY_SCALE, bar_vwap
from .timeframes import is_timeframe, parse_timeframe

HEADER_LINE = ",".join(CANONICAL_HEADER) + "\n"

_TIME_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_INFO_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z")


class CanonicalFormatError(InputError):
    """A file that is not a canonical bar CSV (names the file and, for a bad row, its line)."""


class OutputWriteError(InputError):
    """An output file that cannot be written (names the file and the fix)."""


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file ``.NAME.tmp-PID`` beside it,
    renamed over it. On any failure the temp file is removed and the old file (if any)
    is left as it was; an OS error becomes ``OutputWriteError`` naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise OutputWriteError(
            f"cannot write {path}: {reason}; give a file path in a writable folder with "
            "free space") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):  # the write failed already: that error is reported
        tmp.unlink(missing_ok=True)


def to_canonical(bars: pd.DataFrame) -> pd.DataFrame:
    """Internal bar frame (integer sums) -> canonical frame (volume, vwap as floats)."""
    if "qty" not in bars.columns:
        return bars.astype(CANONICAL_COLUMNS)[list(CANONICAL_COLUMNS)]
    qty = bars["qty"].to_numpy("int64")
    out = bars[["symbol", "timeframe", "ts", "open", "high", "low", "close"]].copy()
    out["volume"] = qty / QTY_SCALE
    out["trade_count"] = bars["trade_count"].to_numpy("float64")
    out["vwap"] = bar_vwap(bars["notional"].to_numpy("int64"), qty)
    return out.astype(CANONICAL_COLUMNS)


def format_decimal(values: np.ndarray) -> list[str]:
    out = []
    for v in values.tolist():
        if v != v:  # NaN
            out.append("")
            continue
        s = f"{v:.8f}".rstrip("0").rstrip(".")
        out.append("0" if s in ("-0", "") else s)
    return out


def format_qty(qty: np.ndarray) -> list[str]:
    """Exact decimal text of integer volume units."""
    out = []
    for q in qty.tolist():
        whole, frac = divmod(q, QTY_SCALE)
        out.append(str(whole) if frac == 0 else f"{whole}.{frac:08d}".rstrip("0"))
    return out


def format_timestamps(ts: np.ndarray, info: np.ndarray | None = None) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SSZ`` per bar; rows marked ``info`` (information-driven bars,
    stamped with their first trade's time) with nanoseconds, ``...SS.fffffffffZ``."""
    text = pd.to_datetime(ts, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(object)
    if info is not None and info.any():
        rows = np.flatnonzero(info)
        nanos = np.mod(ts[rows], 10**9)
        text[rows] = [f"{t[:-1]}.{n:09d}Z" for t, n in zip(text[rows], nanos.tolist(),
                                                            strict=True)]
    return text


def info_rows(timeframes: pd.Series) -> np.ndarray:
    """Whether each row's timeframe is an information-driven one (``t``/``v``/``d``)."""
    codes, names = pd.factorize(timeframes)
    flags = np.array([is_timeframe(str(n)) and parse_timeframe(str(n)).is_info
                      for n in names], dtype=bool)
    return flags[codes] if len(codes) else np.zeros(0, dtype=bool)


class CanonicalExporter:
    """Renders bars (internal or canonical frame) as the canonical CSV."""

    def __init__(self, bars: pd.DataFrame):
        self.bars = sort_bars(bars)
        self._rows: list[str] | None = None
        self._bytes: bytes | None = None

    def rows(self) -> list[str]:
        """The CSV's data lines (with their newline), in canonical order."""
        if self._rows is None:
            b = self.bars
            if "qty" in b.columns:
                volume = format_qty(b["qty"].to_numpy("int64"))
                counts = [str(c) for c in b["trade_count"].to_numpy("int64").tolist()]
                vwap = format_decimal(
                    bar_vwap(b["notional"].to_numpy("int64"), b["qty"].to_numpy("int64"))
                )
            else:
                volume = format_decimal(b["volume"].to_numpy("float64"))
                tc = b["trade_count"].to_numpy("float64")
                counts = ["" if c != c else str(int(c)) for c in tc.tolist()]
                vwap = format_decimal(b["vwap"].to_numpy("float64"))
            columns = [
                b["symbol"].astype(str).tolist(),
                b["timeframe"].astype(str).tolist(),
                format_timestamps(b["ts"].to_numpy("int64"), info_rows(b["timeframe"])
                                  ).tolist(),
                format_decimal(b["open"].to_numpy("float64")),
                format_decimal(b["high"].to_numpy("float64")),
                format_decimal(b["low"].to_numpy("float64")),
                format_decimal(b["close"].to_numpy("float64")),
                volume,
                counts,
                vwap,
            ]
            self._rows = [",".join(row) + "\n" for row in zip(*columns, strict=True)]
        return self._rows

    def to_bytes(self) -> bytes:
        if self._bytes is None:
            self._bytes = (HEADER_LINE + "".join(self.rows())).encode("ascii")
        return self._bytes

    def timeframe_hashes(self) -> dict[str, str]:
        """``compute_hash`` of each timeframe's bars alone (the canonical CSV of that
        selection: the same rows in the same order), from this one rendering of all."""
        rows = self.rows()
        tf_col = self.bars["timeframe"].astype(str).to_numpy(object)
        return {str(tf): compute_hash((HEADER_LINE + "".join(
            rows[i] for i in np.flatnonzero(tf_col == tf))).encode("ascii"))
            for tf in pd.unique(tf_col)}

    def compute_hash(self) -> str:
        return compute_hash(self.to_bytes())

    def write(self, path: str | os.PathLike) -> str:
        """Write atomically (``write_atomic``); returns ``sha256:<hex>``."""
        write_atomic(path, self.to_bytes())
        return self.compute_hash()


def compute_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_hash(path: str | os.PathLike) -> str:
    return compute_hash(Path(path).read_bytes())


def read_canonical_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Parse a canonical bar CSV into a canonical frame; a clear one-line error if it is not
    one (the message names the file and, for a bad row, its line)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        header = data.split(b"\n", 1)[0].decode("ascii").rstrip("\r")
    except (OSError, UnicodeDecodeError) as exc:
        raise CanonicalFormatError(f"cannot read {path}: {exc}") from None
    if header != ",".join(CANONICAL_HEADER):
        raise CanonicalFormatError(
            f"{path} is not a canonical bar CSV: header must be {','.join(CANONICAL_HEADER)}"
        )
    try:
        table, bad = read_text_csv(data, CANONICAL_HEADER)
    except UnreadableCsvError as exc:
        raise CanonicalFormatError(f"{path}: not a readable CSV ({exc})") from None
    if bad:
        number, fields, _ = bad[0]
        where = f"line {number}" if number is not None else "a line"
        raise CanonicalFormatError(
            f"{path}: {where}: {fields} fields, expected {len(CANONICAL_HEADER)}"
        )
    text = {c: table.column(c).to_pandas().astype("str") for c in CANONICAL_HEADER}

    def line_of(mask: np.ndarray) -> int:
        return int(np.flatnonzero(mask)[0]) + 2

    unknown = sorted(t for t in set(text["timeframe"]) if not is_timeframe(t))
    if unknown:
        raise CanonicalFormatError(f"{path}: unknown timeframe(s) {', '.join(unknown)}")
    info = info_rows(text["timeframe"])
    stamps = text["timestamp"].to_numpy(object)
    shaped = np.array([bool((_INFO_STAMP if i else _TIME_STAMP).fullmatch(t))
                       for t, i in zip(stamps.tolist(), info.tolist(), strict=True)], dtype=bool)
    ts = pd.to_datetime(text["timestamp"], utc=True, format="ISO8601", errors="coerce")
    bad_ts = (ts.isna().to_numpy() | ~shaped) if len(ts) else np.zeros(0, dtype=bool)
    if bad_ts.any():
        raise CanonicalFormatError(
            f"{path}: line {line_of(bad_ts)}: timestamp is not YYYY-MM-DDTHH:MM:SSZ "
            "(information-driven bars: YYYY-MM-DDTHH:MM:SS.fffffffffZ)"
        )
    out = {"symbol": text["symbol"], "timeframe": text["timeframe"],
           "ts": ts.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").view("int64")}
    for name in ("open", "high", "low", "close", "volume", "trade_count", "vwap"):
        col = text[name].str.strip()
        values = pd.to_numeric(col, errors="coerce").to_numpy("float64", na_value=np.nan)
        bad_num = np.isnan(values) & ~((col == "") & (name in ("trade_count", "vwap"))).to_numpy(
            bool
        )
        if bad_num.any():
            raise CanonicalFormatError(
                f"{path}: line {line_of(bad_num)}: bad number in column {name}"
            )
        out[name] = values
    return pd.DataFrame(out).astype(CANONICAL_COLUMNS)[list(CANONICAL_COLUMNS)]
