"""Representations of bars: JSON written from the canonical CSV's digits, and Arrow IPC.

``bars_json(text, next_page_token)`` writes ``{"bars":[{"symbol","timeframe","t","o","h",
"l","c","v","n","vw"}],"next_page_token":...}`` itself, assembling each object in Arrow's
C++ kernels from ``app.bar_text.BarText``: every number is a JSON number with exactly the
digits of the canonical CSV (``t`` is the canonical timestamp text; ``n`` and ``vw`` are
``null`` when unknown). Going through a float and ``json.dumps`` would print other digits
(``167.43000000000001``-style artefacts of a different rule, exponents for tiny values).

``bars_arrow(canonical, sha256)`` is an Arrow IPC stream of the same rows: columns named as
the canonical CSV's header, ``timestamp`` as ``timestamp[ns, UTC]``, unknown values null,
and the selection's ``sha256`` in the schema metadata.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..app.bar_text import BarText, join_lines

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
JSON_FIELDS = (("symbol", "symbol", True), ("timeframe", "timeframe", True),
               ("t", "timestamp", True), ("o", "open", False), ("h", "high", False),
               ("l", "low", False), ("c", "close", False), ("v", "volume", False),
               ("n", "trade_count", False), ("vw", "vwap", False))


def _or_null(text: pa.Array) -> pa.Array:
    """Empty text (an unknown value in the CSV) as the JSON literal null."""
    return pc.if_else(pc.equal(text, ""), pa.scalar("null"), text)


def bar_objects(text: BarText) -> pa.Array:
    """One JSON object text per bar."""
    parts: list[object] = []
    for i, (key, column, quoted) in enumerate(JSON_FIELDS):
        values = text.columns[column]
        opener = "{" if i == 0 else ","
        parts.append(pa.scalar(f'{opener}"{key}":' + ('"' if quoted else "")))
        parts.append(values if quoted else _or_null(values))
        if quoted:
            parts.append(pa.scalar('"'))
    parts.append(pa.scalar("}"))
    return pc.binary_join_element_wise(*parts, "")


def bars_json(text: BarText, next_page_token: str | None) -> bytes:
    """The JSON body of a page of bars."""
    objects = join_lines(bar_objects(text), ",") if len(text) else ""
    token = json.dumps(next_page_token)
    return f'{{"bars":[{objects}],"next_page_token":{token}}}'.encode("ascii")


def arrow_table(canonical: pd.DataFrame, sha256: str) -> pa.Table:
    """The canonical frame as an Arrow table (see the module doc)."""
    count = canonical["trade_count"].to_numpy("float64")
    vwap = canonical["vwap"].to_numpy("float64")
    table = pa.table({
        "symbol": pa.array(canonical["symbol"].to_numpy(object), pa.string()),
        "timeframe": pa.array(canonical["timeframe"].to_numpy(object), pa.string()),
        "timestamp": pa.array(canonical["ts"].to_numpy("int64"), pa.int64()).cast(
            pa.timestamp("ns", tz="UTC")),
        **{c: pa.array(canonical[c].to_numpy("float64"), pa.float64())
           for c in ("open", "high", "low", "close", "volume")},
        "trade_count": pa.array(np.nan_to_num(count, nan=0).astype("int64"), pa.int64(),
                                mask=np.isnan(count)),
        "vwap": pa.array(vwap, pa.float64(), mask=np.isnan(vwap)),
    })
    return table.replace_schema_metadata({"phase1.sha256": sha256,
                                          "phase1.schema": "canonical-bars/1"})


def bars_arrow(canonical: pd.DataFrame, sha256: str) -> bytes:
    """An Arrow IPC stream (one record batch) of the canonical frame."""
    table = arrow_table(canonical, sha256)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


__all__ = ["ARROW_MEDIA_TYPE", "arrow_table", "bar_objects", "bars_arrow", "bars_json"]
