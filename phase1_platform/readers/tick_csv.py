"""Reader of the DESIGN tick CSV (section 3): raw text columns for the normalizer.

Every line becomes a row with its position (``source_row``, 0 = first data line) and
the file name as ``source``; nothing is parsed or dropped here, so the normalizer can
quarantine bad values with a reason. Lines with the wrong number of fields are kept
as rows whose timestamp is unparseable, never dropped silently.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from ..core.normalizer import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from .errors import InputFileError

KNOWN_COLUMNS = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)


def read_tick_csv(path: str | Path, source: str | None = None) -> pd.DataFrame:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"tick file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read tick file {path}: {exc}") from None
    header_line = text.split("\n", 1)[0].strip("\r\ufeff")
    header = [h.strip() for h in next(csv.reader([header_line]))] if header_line else []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputFileError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(header must name {', '.join(REQUIRED_COLUMNS)})"
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, csv.Error):
        frame = _read_ragged(text, header)
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame[[c for c in frame.columns if c in KNOWN_COLUMNS]]
    frame["source"] = source or path.name
    frame["source_row"] = range(len(frame))
    return frame


def _read_ragged(text: str, header: list[str]) -> pd.DataFrame:
    """Slow path for a file with malformed lines: those lines get an empty timestamp."""
    rows = []
    reader = csv.reader(io.StringIO(text))
    next(reader)
    for fields in reader:
        if not fields:
            continue
        if len(fields) != len(header):
            bad = dict.fromkeys(header, "")
            bad["symbol"] = "|".join(fields)[:64]
            bad["timestamp"] = "malformed line"
            rows.append(bad)
        else:
            rows.append(dict(zip(header, (f.strip() for f in fields), strict=True)))
    return pd.DataFrame(rows, columns=header, dtype=str)
