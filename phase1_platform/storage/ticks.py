"""``TickRepository``: the landing table of normalized ticks, by the one tick identity.

Identity and content are ``core.identity``'s (DESIGN section 3): with a trade id
``(symbol, ts, trade_id)``, without ``(symbol, ts, source, source_row)``; two partial
unique indexes of ``tables.ticks`` enforce it. ``land`` stores the ticks whose identity
is new, counts those stored already with the same content, and refuses (returns, never
stores) those whose identity is stored with other content: **conflicting duplicates**,
which the caller quarantines (``app.land``).

The first landing of a span (the common case) is one COPY (PostgreSQL) or one
executemany (SQLite) straight into the table. When ticks of the batch's symbols are
already stored in its time span, the batch goes through a staging table: one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` and one join that finds the refused
rows, whatever the batch size (no per-row Python).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, func, literal_column, select, union_all

from ..core.identity import CONTENT_COLUMNS, find_repeats
from ..core.normalizer import canonical_sort
from ..core.partition import Partition
from ..core.schema import TICK_COLUMNS, empty_ticks, ts_ns
from . import bulk
from ._base import Repository, require_columns, rows_frame, window
from .tables import tick_landings as landings_t
from .tables import ticks as ticks_t

STAGE = "_phase1_land_ticks"
_EMPTY = literal_column("''")


@dataclass(frozen=True, eq=False)
class LandResult:
    """What ``TickRepository.land`` did with a batch: ``new + already + len(conflicting)``
    is the batch's length."""

    new: int  # stored now
    already: int  # identity stored before (or earlier in the batch) with the same content
    conflicting: pd.DataFrame  # refused ticks (TICK_COLUMNS): identity stored, other content

    @property
    def refused(self) -> int:
        return len(self.conflicting)


def _db_columns(ticks: pd.DataFrame) -> dict[str, object]:
    return {
        "ts": ts_ns(ticks["ts"]),
        "symbol": ticks["symbol"].astype("str"),
        "price": ticks["price"].to_numpy("float64"),
        "size": ticks["size"].to_numpy("float64"),
        "exchange": ticks["exchange"].astype("str"),
        "conditions": ticks["conditions"].astype("str"),
        "trade_id": ticks["trade_id"].astype("str"),
        "sequence": ticks["sequence"].to_numpy("int64"),
        "source": ticks["source"].astype("str"),
        "source_row": ticks["source_row"].to_numpy("int64"),
    }


class TickRepository(Repository):
    """The landing table of normalized ticks (idempotent identity, DESIGN section 3): the
    SQL ``storage.tick_store.TickStore``."""

    def land(self, ticks: pd.DataFrame) -> LandResult:
        """Store the ticks whose identity is new; see ``LandResult``. A repeat of an
        identity inside the batch counts as the store would count it after the first."""
        require_columns(ticks, TICK_COLUMNS, "tick")
        if len(ticks) == 0:
            return LandResult(0, 0, empty_ticks())
        ticks = ticks.reset_index(drop=True)
        keep, conflicting = repeats_in_batch(ticks)
        batch_conflicts = ticks[conflicting]
        batch = ticks[keep].reset_index(drop=True)
        columns = _db_columns(batch)
        spans = symbol_spans(columns)

        def land(conn: Connection) -> tuple[int, np.ndarray]:
            new, refused = self._land(conn, columns, spans)
            if new:
                log_landing(conn, spans)
            return new, refused

        new, refused = self._run(land)
        conflicting = pd.concat([batch.iloc[refused], batch_conflicts]) if len(
            batch_conflicts) else batch.iloc[refused]
        conflicting = conflicting.reset_index(drop=True).astype(TICK_COLUMNS)
        return LandResult(new, len(ticks) - new - len(conflicting), conflicting)

    @staticmethod
    def _land(conn: Connection, columns: dict[str, object],
              spans: pd.DataFrame) -> tuple[int, np.ndarray]:
        """(rows stored, positions refused as conflicting) of one batch without repeats."""
        none = np.empty(0, dtype="int64")
        if not _may_overlap(conn, spans):
            if not bulk.uses_copy(conn):  # SQLite holds the write lock: nothing can collide
                return bulk.insert_rows(conn, "ticks", columns), none
            # PostgreSQL: COPY straight into the table; a concurrent landing of the same
            # identities rolls back to the savepoint and takes the staged path
            import psycopg.errors

            savepoint = conn.begin_nested()
            try:
                n = bulk.copy_rows(conn, "ticks", columns)
            except psycopg.errors.UniqueViolation:
                savepoint.rollback()
            else:
                savepoint.commit()
                return n, none
        return _land_staged(conn, columns)

    def stored_mask(self, ticks: pd.DataFrame) -> np.ndarray:
        """Per row of ``ticks``: whether its identity (``core.identity``, ts included) is
        stored, whatever its content. One staged batch and one join per call (the
        staging table is temporary: nothing is written to the store)."""
        require_columns(ticks, TICK_COLUMNS, "tick")
        n = len(ticks)
        out = np.zeros(n, dtype=bool)
        if n == 0:
            return out
        columns = _db_columns(ticks.reset_index(drop=True))

        def probe(conn: Connection) -> np.ndarray:
            _stage(conn)
            bulk.insert_rows(conn, STAGE, {**columns, "pos": np.arange(n, dtype="int64")})
            return np.asarray(conn.exec_driver_sql(_matching(STAGE)).scalars().all(),
                              dtype="int64")

        out[self._run(probe, write=False)] = True
        return out

    def count_at(self, symbol: str, source: str, ts_ns: int) -> int:
        """How many ticks without a trade id of ``(symbol, source)`` are stored at exactly
        ``ts_ns`` (the live service's restart seed)."""
        c = ticks_t.c
        query = select(func.count()).select_from(ticks_t).where(
            c.symbol == str(symbol), c.ts == int(ts_ns), c.source == str(source),
            c.trade_id == _EMPTY)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), write=False))

    def read(self, part: Partition) -> pd.DataFrame:
        """Landed ticks of the partition (its symbol, ts in its window), canonical order."""
        symbol, start_ns, end_ns = part.symbol, part.start_ns, part.end_ns
        # one query per partial index (rows with and without a trade id)
        within = (ticks_t.c.symbol == symbol, ticks_t.c.ts >= start_ns, ticks_t.c.ts < end_ns)
        query = union_all(
            select(*ticks_t.columns).where(*within, ticks_t.c.trade_id == _EMPTY),
            select(*ticks_t.columns).where(*within, ticks_t.c.trade_id != _EMPTY),
        )
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return ticks_frame(rows)

    def read_many(self, parts: Sequence[Partition]) -> pd.DataFrame:
        """Landed ticks of several partitions, canonical order: one query per partial
        index over their symbols and the span of their windows (a backfill range is a
        rectangle: one date x many symbols, or one symbol x many dates), then only the rows
        of the partitions asked for."""
        if len(parts) == 1:
            return self.read(parts[0])
        symbols = sorted({p.symbol for p in parts})
        start_ns, end_ns = min(p.start_ns for p in parts), max(p.end_ns for p in parts)
        c = ticks_t.c
        within = (c.symbol.in_(symbols), c.ts >= start_ns, c.ts < end_ns)
        query = union_all(
            select(*ticks_t.columns).where(*within, c.trade_id == _EMPTY),
            select(*ticks_t.columns).where(*within, c.trade_id != _EMPTY),
        )
        frame = ticks_frame(self._run(lambda conn: conn.execute(query).all(), write=False))
        if len(frame) == 0:
            return frame
        ts = ts_ns(frame["ts"])
        keep = np.zeros(len(frame), dtype=bool)
        sym = frame["symbol"].to_numpy(object)
        for symbol in symbols:  # each symbol's rows inside one of its partitions' windows
            mine = sym == symbol
            for p in (p for p in parts if p.symbol == symbol):
                keep |= mine & (ts >= p.start_ns) & (ts < p.end_ns)
        return frame if keep.all() else frame[keep].reset_index(drop=True)

    def read_since(self, part: Partition, since_ns: int) -> pd.DataFrame:
        """Landed ticks of the partition with ts in [since_ns, end), canonical order. The
        identity holds the ts, so no earlier tick can be a repeat of one of them: their
        normalization drops what a normalization of the whole partition drops there."""
        start_ns, since_ns = window(part.start_ns, since_ns)
        since_ns, end_ns = window(since_ns, part.end_ns)
        c = ticks_t.c
        within = (c.symbol == part.symbol, c.ts >= since_ns, c.ts < end_ns)
        query = union_all(
            select(*ticks_t.columns).where(*within, c.trade_id == _EMPTY),
            select(*ticks_t.columns).where(*within, c.trade_id != _EMPTY),
        )
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return ticks_frame(rows)

    def count_canonical(self, part: Partition) -> int:
        """How many ticks the normalized partition holds, without reading them: every
        landed row (stored rows are unique by identity, so the normalizer keeps them all)."""
        c = ticks_t.c
        within = (c.symbol == part.symbol, c.ts >= part.start_ns, c.ts < part.end_ns)
        plain = select(func.count()).where(*within, c.trade_id == _EMPTY)
        traded = select(func.count()).where(*within, c.trade_id != _EMPTY)
        return int(self._run(lambda conn: conn.execute(plain).scalar_one()
                             + conn.execute(traded).scalar_one(), write=False))

    def count(self, symbol: str | None = None) -> int:
        query = select(func.count()).select_from(ticks_t)
        if symbol is not None:
            query = query.where(ticks_t.c.symbol == symbol)
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), write=False))

    def symbols(self) -> set[str]:
        """Every symbol with ticks landed: a loose index scan (one index probe per symbol)
        on each partial identity index, never a scan of the ticks."""
        loose = ("WITH RECURSIVE s(symbol) AS (SELECT MIN(symbol) FROM ticks WHERE {c} "
                 "UNION ALL SELECT (SELECT MIN(t.symbol) FROM ticks t WHERE t.{c} AND "
                 "t.symbol > s.symbol) FROM s WHERE s.symbol IS NOT NULL) "
                 "SELECT symbol FROM s WHERE symbol IS NOT NULL")

        def scan(conn: Connection) -> set[str]:
            return {str(r[0]) for c in ("trade_id = ''", "trade_id <> ''")
                    for r in conn.exec_driver_sql(loose.format(c=c))}

        return self._run(scan, write=False)


def repeats_in_batch(ticks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(rows to land, rows refused as conflicting) of a batch by ``core.identity``: the
    first arrival (frame order) of an identity lands. Only rows sharing a timestamp (and,
    without a trade id, a source row) with another can repeat one: ``find_repeats`` looks
    at those alone (normalized batches rarely hold any)."""
    n = len(ticks)
    keep, conflicting = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    has_id = ticks["trade_id"].astype("str").to_numpy(object) != ""
    second = np.where(has_id, -1, ticks["source_row"].to_numpy("int64"))
    cand = pd.DataFrame({"ts": ts_ns(ticks["ts"]), "k": second}).duplicated(
        keep=False).to_numpy(bool)
    if cand.any():
        at = np.flatnonzero(cand)
        repeats = find_repeats(ticks.iloc[at])
        keep[at[repeats.repeated]] = False
        conflicting[at[repeats.conflicting]] = True
    return keep, conflicting


def _stage(conn: Connection) -> None:
    """An empty per-connection staging table shaped like ``ticks`` plus ``pos``."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} "
                             "(LIKE ticks INCLUDING DEFAULTS, pos BIGINT) ON COMMIT DELETE ROWS")
        conn.exec_driver_sql(f"TRUNCATE {STAGE}")
    else:
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} AS "
                             "SELECT *, 0 AS pos FROM main.ticks WHERE 0")
        conn.exec_driver_sql(f"DELETE FROM {STAGE}")


def _land_staged(conn: Connection, columns: dict[str, object]) -> tuple[int, np.ndarray]:
    """Land a batch that may meet stored identities: stage it, insert the new identities,
    then find the staged rows whose identity is stored with other content."""
    n = len(columns["ts"])
    _stage(conn)
    bulk.insert_rows(conn, STAGE, {**columns, "pos": np.arange(n, dtype="int64")})
    cols = ", ".join(f'"{c}"' for c in columns)
    new = conn.exec_driver_sql(  # "WHERE 1 = 1": SQLite's upsert-after-SELECT rule
        f"INSERT INTO ticks ({cols}) SELECT {cols} FROM {STAGE} WHERE 1 = 1 ORDER BY pos "
        "ON CONFLICT DO NOTHING").rowcount
    differs = " OR ".join(f't."{c}" <> s."{c}"' for c in CONTENT_COLUMNS)
    refused = conn.exec_driver_sql(_matching(STAGE, f"({differs})")).scalars().all()
    return int(new), np.sort(np.asarray(refused, dtype="int64"))


def _matching(stage: str, where: str = "1 = 1") -> str:
    """SQL: ``pos`` of the staged rows whose identity is stored (and ``where`` holds for
    the pair ``s`` staged, ``t`` stored); one join per partial unique index."""
    same_ts = "t.symbol = s.symbol AND t.ts = s.ts"
    return (
        f"SELECT s.pos FROM {stage} s JOIN ticks t ON {same_ts} AND t.trade_id = s.trade_id "
        f"AND t.trade_id <> '' WHERE s.trade_id <> '' AND {where} "
        f"UNION ALL SELECT s.pos FROM {stage} s JOIN ticks t ON {same_ts} "
        "AND t.source = s.source AND t.source_row = s.source_row AND t.trade_id = '' "
        f"WHERE s.trade_id = '' AND {where}")


def symbol_spans(columns: dict[str, object]) -> pd.DataFrame:
    """Per symbol of a tick batch (index, sorted): min and max ts, and the row count."""
    return pd.DataFrame({"symbol": columns["symbol"], "ts": columns["ts"]}).groupby(
        "symbol", sort=True)["ts"].agg(["min", "max", "size"])


def _may_overlap(conn: Connection, span: pd.DataFrame) -> bool:
    """Whether ticks are already stored for a symbol of the batch (``symbol_spans``)
    within its time span."""
    probe = select(literal_column("1")).select_from(ticks_t).where(
        ticks_t.c.symbol == bindparam("s"), ticks_t.c.ts >= bindparam("a"),
        ticks_t.c.ts <= bindparam("b")).limit(1)
    for symbol, lo, hi in zip(span.index, span["min"], span["max"], strict=True):
        params = {"s": str(symbol), "a": int(lo), "b": int(hi)}
        for traded in (ticks_t.c.trade_id == _EMPTY, ticks_t.c.trade_id != _EMPTY):
            if conn.execute(probe.where(traded), params).first() is not None:
                return True
    return False


def log_landing(conn: Connection, span: pd.DataFrame) -> None:
    """One ``tick_landings`` row per symbol of a landed batch (``symbol_spans``): its time
    span (the whole batch's: re-sent ticks in it only widen the span, which recomputes
    more, never less)."""
    now = time.time_ns()
    conn.execute(landings_t.insert(), [
        {"symbol": str(sym), "lo_ts": int(lo), "hi_ts": int(hi), "ticks": int(n),
         "landed_ns": now}
        for sym, lo, hi, n in zip(span.index, span["min"], span["max"], span["size"],
                                  strict=True)
    ])


def ticks_frame(rows) -> pd.DataFrame:
    if not rows:
        return empty_ticks()
    names = [c.name for c in ticks_t.columns]
    frame = rows_frame(rows, names)
    frame["ts"] = pd.to_datetime(frame["ts"].to_numpy("int64"), utc=True).as_unit("ns")
    frame = canonical_sort(frame.astype({k: v for k, v in TICK_COLUMNS.items() if k != "ts"}))
    return frame.reset_index(drop=True).astype(TICK_COLUMNS)[list(TICK_COLUMNS)]


__all__ = ["LandResult", "TickRepository", "log_landing", "repeats_in_batch", "symbol_spans",
           "ticks_frame"]
