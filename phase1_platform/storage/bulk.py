"""Bulk row transfer: COPY (psycopg 3) into PostgreSQL, executemany into SQLite.

Both take a dict of equal-length columns (numpy arrays or pandas Series) in the
table's column order and run on the raw DBAPI connection of an open SQLAlchemy
transaction, so they commit or roll back with it.

PostgreSQL: the columns are rendered as CSV by Arrow's C++ writer (floats in their
shortest round-trip form, so doubles arrive bit-exact) and streamed with COPY.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection

COPY_CHUNK = 4 << 20  # bytes per write to the COPY stream
ROWS_PER_CSV_BATCH = 200_000


def dbapi(conn: Connection):
    return conn.connection.dbapi_connection


def uses_copy(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _arrow_table(columns: dict[str, object]) -> pa.Table:
    arrays = {}
    for name, values in columns.items():
        arr = values.to_numpy() if hasattr(values, "to_numpy") else values
        if isinstance(arr, np.ndarray) and arr.dtype.kind in "iuf":
            arrays[name] = pa.array(arr)
        else:
            arrays[name] = pa.array(np.asarray(arr, dtype=object), type=pa.string())
    return pa.table(arrays)


def csv_chunks(columns: dict[str, object]):
    """CSV text of the columns (no header), in chunks of about ROWS_PER_CSV_BATCH rows."""
    table = _arrow_table(columns)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed",
                                  batch_size=ROWS_PER_CSV_BATCH)
    for start in range(0, table.num_rows, ROWS_PER_CSV_BATCH):
        buf = io.BytesIO()
        pa_csv.write_csv(table.slice(start, ROWS_PER_CSV_BATCH), buf, options)
        yield buf.getvalue()


def copy_rows(conn: Connection, table: str, columns: dict[str, object]) -> int:
    """COPY the columns into ``table`` (PostgreSQL, psycopg 3); returns the row count."""
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        return 0
    cols = ", ".join(f'"{c}"' for c in names)
    sql = f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)"
    cur = dbapi(conn).cursor()
    chunks = csv_chunks(columns)
    if n <= ROWS_PER_CSV_BATCH:  # one batch: nothing to overlap
        try:
            with cur.copy(sql) as copy:
                copy.write(next(chunks))
        finally:
            cur.close()
        return n
    try:
        # render the next CSV batch (Arrow releases the GIL) while this one streams
        with ThreadPoolExecutor(max_workers=1) as pool, cur.copy(sql) as copy:
            pending = pool.submit(next, chunks, None)
            while (chunk := pending.result()) is not None:
                pending = pool.submit(next, chunks, None)
                view = memoryview(chunk)
                for i in range(0, len(view), COPY_CHUNK):
                    copy.write(view[i:i + COPY_CHUNK])
    finally:
        cur.close()
    return n


def execute_many(conn: Connection, sql: str, columns: dict[str, object]) -> int:
    """executemany on the raw DBAPI cursor; returns the driver's rowcount."""
    lists = [
        (v.to_numpy() if hasattr(v, "to_numpy") else np.asarray(v)).tolist()
        for v in columns.values()
    ]
    if not lists or not lists[0]:
        return 0
    cur = dbapi(conn).cursor()
    try:
        cur.executemany(sql, list(zip(*lists, strict=True)))
        return int(cur.rowcount)
    finally:
        cur.close()


def insert_rows(conn: Connection, table: str, columns: dict[str, object],
                on_conflict: str = "") -> int:
    """Insert the columns into ``table``: COPY on PostgreSQL (psycopg), else executemany.

    ``on_conflict`` is an ``ON CONFLICT ...`` clause. COPY cannot carry one: the rows are
    staged in a temporary table and moved with ``INSERT ... SELECT ... ON CONFLICT``.
    Returns the number of rows inserted or updated.
    """
    names = list(columns)
    cols = ", ".join(f'"{c}"' for c in names)
    if uses_copy(conn):
        if not on_conflict:
            return copy_rows(conn, table, columns)
        stage = f"_phase1_stage_{table}"
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.exec_driver_sql(f"TRUNCATE {stage}")
        copy_rows(conn, stage, columns)
        result = conn.exec_driver_sql(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} {on_conflict}"
        )
        return int(result.rowcount)
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    marks = ", ".join(mark for _ in names)
    return execute_many(conn, f"INSERT INTO {table} ({cols}) VALUES ({marks}) {on_conflict}",
                        columns)
