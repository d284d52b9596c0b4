"""Reader of LEAN data zips (QuantConnect LEAN's on-disk format), in LEAN's own layout.

A LEAN ``Data/`` folder puts the resolution before the symbol (DESIGN section 3):

- ``equity/<market>/<resolution>/<symbol>/<YYYYMMDD>_trade.zip`` (tick, second, minute),
- ``equity/<market>/<daily|hour>/<symbol>.zip``,
- ``future/<market>/<resolution>/<root>/<YYYYMMDD>_trade.zip``.

``parse_lean_path`` reads exactly that layout (any other path, including the symbol-first
``equity/usa/spy/tick/...`` this project once used, is one ``InputFileError`` naming the
expected layout); ``lean_intraday_file`` / ``lean_daily_file`` build the same paths.

- Times are read in the file's data time zone (``data_time_zone``: New York for equities,
  UTC for futures, as LEAN's market-hours database says).
- Ticks come out as raw rows for the normalizer: UTC nanosecond timestamps, prices in
  dollars, conditions as LEAN ``TradeConditionFlags`` names (plus ``Suspicious`` when
  LEAN flags the row), the zip member as ``source``.
- Bars come out as a canonical frame (no trade_count or vwap: LEAN has none). Second
  bars are rolled up to 1m so they can serve as a 1m reference too.
- Only ``_trade`` files are read (quote and open-interest files have other columns).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.conditions import lean_masks_to_conditions
from ..core.schema import CANONICAL_COLUMNS
from .errors import InputFileError

LEAN_TZ = "America/New_York"
# The zone LEAN's files are written in ("dataTimeZone" of LEAN's market-hours database,
# Data/market-hours/market-hours-database.json): America/New_York for US equities, UTC for
# every futures market (Future-comex-[*], Future-cme-[*], ...: AlgoSeek's futures
# timestamps are kept as they come, see ToolBox/AlgoSeekFuturesConverter/
# AlgoSeekFuturesReader.cs, "this is all in the 'data-time-zone'").
DATA_TIME_ZONES = {"equity": LEAN_TZ, "future": "UTC"}


def data_time_zone(asset: str) -> str:
    """The time zone of a LEAN data file's timestamps (its market-hours "dataTimeZone")."""
    return DATA_TIME_ZONES[asset]
EQUITY_PRICE_SCALE = 10_000
MONTH_CODES = "FGHJKMNQUVXZ"
ASSETS = ("equity", "future")
INTRADAY = ("tick", "second", "minute")
WHOLE_FILE = ("hour", "daily")  # one <symbol>.zip holding every date
LEAN_LAYOUT = (
    "<asset>/<market>/<tick|second|minute>/<symbol>/<YYYYMMDD>_trade.zip or "
    "<asset>/<market>/<hour|daily>/<symbol>.zip (asset equity or future)"
)
_DATE_ZIP = re.compile(r"^(\d{8})_(trade|quote|openinterest)\.zip$")
_SYMBOL_ZIP = re.compile(r"^([a-z0-9][a-z0-9.\-]*)\.zip$")


@dataclass(frozen=True)
class LeanPath:
    asset: str  # equity | future
    market: str
    symbol: str  # upper-case ticker or futures root (SPY, GC)
    resolution: str  # tick | second | minute | hour | daily
    date: str | None  # YYYY-MM-DD for intraday files
    kind: str = "trade"  # trade | quote | openinterest


def _not_lean(p: Path, why: str) -> InputFileError:
    return InputFileError(f"{p}: {why}; expected LEAN's layout {LEAN_LAYOUT}")


def _iso_date(p: Path, ymd: str) -> str:
    try:
        return pd.Timestamp(f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}").strftime("%Y-%m-%d")
    except ValueError:
        raise _not_lean(p, f"{ymd} is not a date") from None


def parse_lean_path(path: str | Path) -> LeanPath:
    """The asset, market, symbol, resolution and date of a file in LEAN's layout."""
    p = Path(path)
    parts = p.parts
    m = _DATE_ZIP.match(p.name)
    if m and len(parts) >= 5 and parts[-5] in ASSETS and parts[-3] in INTRADAY:
        asset, market, resolution, symbol = parts[-5], parts[-4], parts[-3], parts[-2]
        return LeanPath(asset, market, symbol.upper(), resolution, _iso_date(p, m.group(1)),
                        m.group(2))
    s = _SYMBOL_ZIP.match(p.name)
    if s and not m and len(parts) >= 4 and parts[-4] in ASSETS and parts[-2] in WHOLE_FILE:
        return LeanPath(parts[-4], parts[-3], s.group(1).upper(), parts[-2], None)
    if len(parts) >= 5 and parts[-5] in ASSETS and parts[-2] in INTRADAY + WHOLE_FILE:
        raise _not_lean(p, "symbol-first layout (<asset>/<market>/<symbol>/<resolution>/...) "
                        "is not LEAN's: the resolution comes before the symbol")
    if m and len(parts) >= 5 and parts[-3] in WHOLE_FILE:
        raise _not_lean(p, f"{parts[-3]} data is one <symbol>.zip, not a file per date")
    raise _not_lean(p, "not a LEAN equity or future data file")


def lean_intraday_file(root: str | Path, asset: str, market: str, resolution: str,
                       symbol: str, date: str, kind: str = "trade") -> Path:
    """``<root>/<asset>/<market>/<resolution>/<symbol>/<YYYYMMDD>_<kind>.zip``."""
    return Path(root) / asset / market / resolution / symbol.lower() / \
        f"{date.replace('-', '')}_{kind}.zip"


def lean_daily_file(root: str | Path, asset: str, market: str, symbol: str,
                    resolution: str = "daily") -> Path:
    """``<root>/<asset>/<market>/<daily|hour>/<symbol>.zip``."""
    return Path(root) / asset / market / resolution / f"{symbol.lower()}.zip"


def _require_trade(path: Path, lp: LeanPath) -> None:
    if lp.kind != "trade":
        raise InputFileError(f"{path}: a LEAN {lp.kind} file; only <YYYYMMDD>_trade.zip "
                             "files (trades and trade bars) are read")


def future_symbol(root: str, contract: str) -> str:
    """``GC`` + ``201312`` -> ``GCZ13``."""
    year, month = contract[:4], int(contract[4:6])
    return f"{root}{MONTH_CODES[month - 1]}{year[2:]}"


def _members(path: Path, contract: str | None) -> list[tuple[str, str | None]]:
    """(member name, contract yyyymm or None) of the CSVs to read."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".csv")]
    except FileNotFoundError:
        raise InputFileError(f"LEAN file not found: {path}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputFileError(f"{path}: not a readable zip archive ({exc})") from None
    out = []
    for n in sorted(names):
        m = re.search(r"_(\d{6})\.csv$", n)
        c = m.group(1) if m else None
        if contract is None or c == contract:
            out.append((n, c))
    if not out:
        want = f" for contract {contract}" if contract else ""
        raise InputFileError(f"{path}: no CSV{want} inside the zip")
    return out


def _read_member(path: Path, member: str, names: list[str], dtypes: dict) -> pd.DataFrame:
    with zipfile.ZipFile(path) as zf, zf.open(member) as fh:
        data = fh.read()
    if not data.strip():
        return pd.DataFrame({n: pd.Series(dtype=dtypes.get(n, "str")) for n in names})
    try:
        return pd.read_csv(io.BytesIO(data), header=None, names=names, dtype=dtypes,
                           keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputFileError(f"{path}:{member}: not in LEAN's format ({exc})") from None


def _local_ms_to_utc_ns(date: str, ms: np.ndarray, tz: str = LEAN_TZ) -> np.ndarray:
    """ms since midnight (the file's data time zone) on ``date`` -> UTC ns; NaT-safe (-1)."""
    naive = pd.Timestamp(date).value + ms.astype("int64") * 1_000_000
    local = pd.DatetimeIndex(naive.astype("datetime64[ns]")).tz_localize(
        tz, ambiguous="NaT", nonexistent="NaT"
    )
    return local.tz_convert("UTC").as_unit("ns")


def _hex_masks(col: pd.Series, where: str) -> pd.Series:
    """LEAN's hex condition masks -> int64; each distinct text is parsed once."""
    codes, uniques = pd.factorize(col.fillna(""))
    try:
        values = np.array([int(h, 16) if h.strip() else 0 for h in uniques], dtype="int64")
    except ValueError:
        bad = next(h for h in uniques if h.strip() and not _is_hex(h))
        raise InputFileError(f"{where}: condition {bad!r} is not a hex mask") from None
    return pd.Series(values[codes] if len(values) else np.zeros(len(col), dtype="int64"),
                     index=col.index)


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def read_lean_ticks(path: str | Path, contract: str | None = None) -> pd.DataFrame:
    """Raw tick rows of a LEAN tick zip (every contract of a futures zip unless given)."""
    path = Path(path)
    lp = parse_lean_path(path)
    if lp.resolution != "tick":
        raise InputFileError(f"{path}: not a LEAN tick file (resolution {lp.resolution})")
    _require_trade(path, lp)
    frames = []
    for member, c in _members(path, contract):
        names = ["ms", "price", "size", "exchange", "condition", "suspicious"]
        raw = _read_member(path, member, names, {"exchange": "str", "condition": "str"})
        ms = raw["ms"].to_numpy("int64")
        if lp.asset == "equity":
            price = raw["price"].to_numpy("float64") / EQUITY_PRICE_SCALE
            masks = _hex_masks(raw["condition"], f"{path}:{member}")
            conditions = lean_masks_to_conditions(masks)
            symbol = lp.symbol
        else:
            price = raw["price"].to_numpy("float64")
            conditions = raw["condition"].astype("str")
            symbol = future_symbol(lp.symbol, c) if c else lp.symbol
        suspicious = raw["suspicious"].to_numpy("int64") == 1
        if suspicious.any():
            conditions = conditions.where(~suspicious, (conditions + " Suspicious").str.strip())
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": _local_ms_to_utc_ns(lp.date, ms, data_time_zone(lp.asset)),
                    "symbol": symbol,
                    "price": price,
                    "size": raw["size"].to_numpy("float64"),
                    "exchange": raw["exchange"].astype("str"),
                    "conditions": conditions.to_numpy(),
                    "source": f"{path.name}:{member}",
                    "source_row": np.arange(len(raw), dtype="int64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def read_lean_bars(path: str | Path, contract: str | None = None,
                   start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Canonical frame of a LEAN bar zip: second -> 1m (rolled up), minute -> 1m, daily -> 1d.

    ``start``/``end`` (YYYY-MM-DD, inclusive) limit daily files to a date range.
    """
    path = Path(path)
    lp = parse_lean_path(path)
    if lp.resolution not in ("second", "minute", "daily"):
        raise InputFileError(f"{path}: not a LEAN second, minute or daily bar file")
    _require_trade(path, lp)
    frames = []
    for member, c in _members(path, contract):
        symbol = future_symbol(lp.symbol, c) if (lp.asset == "future" and c) else lp.symbol
        scale = EQUITY_PRICE_SCALE if lp.asset == "equity" else 1
        names = ["time", "open", "high", "low", "close", "volume"]
        raw = _read_member(path, member, names, {"time": "str"})
        if lp.resolution == "daily":
            day = pd.to_datetime(raw["time"].str.slice(0, 8), format="%Y%m%d")
            keep = np.ones(len(raw), dtype=bool)
            if start:
                keep &= (day >= pd.Timestamp(start)).to_numpy()
            if end:
                keep &= (day <= pd.Timestamp(end)).to_numpy()
            raw, day = raw[keep], day[keep]
            ts = pd.DatetimeIndex(day).tz_localize(data_time_zone(lp.asset)).tz_convert(
                "UTC").as_unit("ns").asi8
            timeframe = "1d"
        else:
            ts = _local_ms_to_utc_ns(lp.date, raw["time"].astype("int64").to_numpy(),
                                     data_time_zone(lp.asset)).asi8
            timeframe = "1m"
        bars = pd.DataFrame(
            {
                "symbol": symbol,
                "timeframe": timeframe,
                "ts": ts,
                "open": raw["open"].to_numpy("float64") / scale,
                "high": raw["high"].to_numpy("float64") / scale,
                "low": raw["low"].to_numpy("float64") / scale,
                "close": raw["close"].to_numpy("float64") / scale,
                "volume": raw["volume"].to_numpy("float64"),
                "trade_count": np.nan,
                "vwap": np.nan,
            }
        )
        if lp.resolution == "second":
            bars = _seconds_to_minutes(bars)
        frames.append(bars)
    return pd.concat(frames, ignore_index=True).astype(CANONICAL_COLUMNS)


def _seconds_to_minutes(bars: pd.DataFrame) -> pd.DataFrame:
    bars = bars.assign(ts=bars["ts"] - bars["ts"] % 60_000_000_000)
    g = bars.groupby(["symbol", "ts"], sort=True)
    out = g.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                close=("close", "last"), volume=("volume", "sum")).reset_index()
    out["timeframe"] = "1m"
    out["trade_count"] = np.nan
    out["vwap"] = np.nan
    return out
