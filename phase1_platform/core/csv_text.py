"""Strict, vectorized reading of CSV text with pyarrow: every field a string.

Shared by the canonical bar CSV reader (``export``) and the tick CSV reader
(``readers.tick_csv``): the fields stay text (no type guessing, no nulls) so the caller
parses and judges them itself, and a line with the wrong number of fields is never
shifted into the wrong columns: it is skipped by pyarrow and handed back to the caller
(pyarrow's handler runs only on those lines).

``escape_invalid_utf8`` prepares bytes that are not all UTF-8 for that reader: each
invalid byte becomes a marker character plus ``xHH``, so a row holding one can be told
apart and quarantined on its own while the rest of the file is read (DESIGN section 3).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa
import pyarrow.csv as pacsv

from .errors import InputError


class UnreadableCsvError(InputError):
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


# surrogateescape decodes each byte that is not UTF-8 to one of U+DC80..U+DCFF
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_MARKERS = range(0xE000, 0xF900)  # private-use code points: one not in the text is chosen


def escape_invalid_utf8(data: bytes) -> tuple[bytes, str | None]:
    """``data`` itself and None when it is valid UTF-8; else the bytes with each invalid
    byte replaced by ``marker + "xHH"`` (valid UTF-8, same CSV structure: invalid bytes
    are never ASCII, so no delimiter, quote or line end changes) and the marker, a
    character that does not occur in the text. Replace the marker by a backslash to show
    the field as written (``AA\\xffPL``)."""
    try:
        data.decode("utf-8")
        return data, None
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "surrogateescape")
    marker = next((chr(c) for c in _MARKERS if chr(c) not in text), None)
    if marker is None:
        raise UnreadableCsvError("not UTF-8 text, and no private-use character left to mark it")
    fixed = _ESCAPED_BYTE.sub(lambda m: f"{marker}x{ord(m.group()) - 0xDC00:02x}", text)
    return fixed.encode("utf-8"), marker
