"""Reader of the DESIGN tick CSV (section 3): raw text columns for the normalizer.

Every data line becomes a row with its position (``source_row``, 0 = first data line,
blank lines not counted) and the file name as ``source``; nothing is parsed or dropped
here, so the normalizer can quarantine bad values with a reason. A line with the wrong
number of fields (too few or too many) is kept as a row whose ``malformed`` column holds
the line as written (the normalizer quarantines it as a malformed line), never dropped
and never shifted into the wrong columns. A row holding bytes that are not UTF-8 is kept
the same way, its ``undecodable`` column set and those bytes shown as ``\\xHH`` (the
normalizer quarantines it as an undecodable row); the rest of the file is read. Each of
these columns is present only when the file has such rows. A whole-file problem (missing,
unreadable, no required header) is one ``InputFileError`` line.

Parsing is pyarrow's CSV reader (vectorized, strict about field counts; its handler for
invalid rows runs only on the malformed lines).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.csv_text import UnreadableCsvError, escape_invalid_utf8, read_text_csv
from ..core.normalizer import (
    MALFORMED_COLUMN,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    UNDECODABLE_COLUMN,
)
from .errors import InputFileError

KNOWN_COLUMNS = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)


def read_tick_csv(path: str | Path, source: str | None = None) -> pd.DataFrame:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"tick file not found: {path}") from None
    except OSError as exc:
        raise InputFileError(f"cannot read tick file {path}: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        header_line = data.split(b"\n", 1)[0].decode("utf-8").strip("\r")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"cannot read tick file {path}: not UTF-8 text ({exc})") from None
    header = [h.strip() for h in next(csv.reader([header_line]))] if header_line.strip() else []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputFileError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(header must name {', '.join(REQUIRED_COLUMNS)})"
        )
    if len(set(header)) != len(header):
        raise InputFileError(f"{path}: duplicate column names in the header")

    try:
        data, marker = escape_invalid_utf8(data)
        table, bad = read_text_csv(data, header)
    except UnreadableCsvError as exc:
        raise InputFileError(f"{path}: not a readable CSV file ({exc})") from None
    if any(line.number is None for line in bad):  # row numbers unknown: cannot place them
        raise InputFileError(f"{path}: malformed lines whose position cannot be determined")

    keep = [c for c in header if c in KNOWN_COLUMNS]
    table = table.select(keep)
    undecodable = bad_undecodable = None
    if marker is not None:
        table, undecodable = _unmark_table(table, marker)
        bad_undecodable = [marker in line.text for line in bad]
        bad = [line._replace(text=line.text.replace(marker, "\\")) for line in bad]
    n = table.num_rows + len(bad)
    if not bad:
        frame = table.to_pandas(types_mapper=_str_dtype)
        rows_undecodable = undecodable
    else:
        frame, rows_undecodable = _with_malformed(table, keep, bad, n, undecodable,
                                                  bad_undecodable)
    if rows_undecodable is not None and rows_undecodable.any():
        frame[UNDECODABLE_COLUMN] = pd.Series(
            np.where(rows_undecodable, "not UTF-8", ""), dtype="str")
    frame["source"] = source or path.name
    frame["source_row"] = np.arange(n, dtype="int64")
    return frame


def _unmark_table(table: pa.Table, marker: str) -> tuple[pa.Table, np.ndarray]:
    """Rows holding the marker of escaped bytes, and the fields with it shown as ``\\``."""
    hit = np.zeros(table.num_rows, dtype=bool)
    cols = []
    for name in table.column_names:
        col = table.column(name)
        found = pc.match_substring(col, marker)
        hit |= found.to_numpy(zero_copy_only=False).astype(bool)
        cols.append(pc.replace_substring(col, marker, "\\"))
    return pa.table(cols, names=table.column_names), hit


def _with_malformed(table: pa.Table, keep: list[str], bad: list, n: int,
                    undecodable: np.ndarray | None = None,
                    bad_undecodable: list[bool] | None = None,
                    ) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Malformed lines put back at their positions, the fields empty, the line kept; and
    the undecodable mask spread the same way."""
    good = {c: table.column(c).to_numpy(zero_copy_only=False).astype(object) for c in keep}
    # BadLine.number counts non-blank rows from 1, the skipped header included
    bad_pos = np.array([line.number - 2 for line in bad], dtype="int64")
    is_bad = np.zeros(n, dtype=bool)
    is_bad[bad_pos] = True
    cols = {}
    for c in keep:
        col = np.full(n, "", dtype=object)
        col[~is_bad] = good[c]
        cols[c] = col
    malformed = np.full(n, "", dtype=object)
    malformed[bad_pos] = [line.text for line in bad]
    cols[MALFORMED_COLUMN] = malformed
    rows_undecodable = None
    if undecodable is not None:
        rows_undecodable = np.zeros(n, dtype=bool)
        rows_undecodable[~is_bad] = undecodable
        rows_undecodable[bad_pos] = bad_undecodable
    return pd.DataFrame(cols, dtype="str"), rows_undecodable


def _str_dtype(arrow_type):
    return pd.StringDtype("pyarrow", na_value=np.nan) if pa.types.is_string(arrow_type) else None
