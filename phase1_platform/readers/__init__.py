"""File readers: the DESIGN tick CSV and LEAN zip archives (ticks and bars)."""

from .errors import InputFileError
from .lean import LeanPath, parse_lean_path, read_lean_bars, read_lean_ticks
from .tick_csv import read_tick_csv

__all__ = [
    "InputFileError",
    "LeanPath",
    "parse_lean_path",
    "read_lean_bars",
    "read_lean_ticks",
    "read_tick_csv",
    "read_ticks",
]


def read_ticks(path, **kwargs):
    """Raw ticks from a DESIGN tick CSV or a LEAN tick zip, chosen by the file name."""
    from pathlib import Path

    if Path(path).suffix.lower() == ".zip":
        return read_lean_ticks(path, **kwargs)
    return read_tick_csv(path)
