"""Strict, vectorized reading of CSV text with pyarrow: every field a string.

Shared by the canonical bar CSV reader (``export``) and the tick CSV reader
(``readers.tick_csv``): the fields stay text (no type guessing, no nulls) so the caller
parses and judges them itself, and a line with the wrong number of fields is never
shifted into the wrong columns: it is skipped by pyarrow and handed back to the caller
(pyarrow's handler runs only on those lines).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.csv as pacsv


class UnreadableCsvError(ValueError):
    """pyarrow could not read the text as CSV; the message is its first line."""


class BadLine(NamedTuple):
    number: int | None  # 1-based row number, header included, blank lines not counted
    fields: int  # the number of fields the line has
    text: str  # the line as written


def read_text_csv(data: bytes, columns: Sequence[str]) -> tuple[pa.Table, list[BadLine]]:
    """Parse ``data`` (header line first, skipped: ``columns`` are its names) into a table
    of string columns, and the lines whose field count differs from the header's."""
    bad: list[BadLine] = []

    def on_invalid(row) -> str:
        bad.append(BadLine(row.number, row.actual_columns, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=list(columns), skip_rows=1
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableCsvError(msg) from None
    return table, bad
