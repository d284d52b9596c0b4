"""``ParquetTicks``: a store's ticks as a Parquet dataset (``TICK_STORE=parquet:///PATH``).

Layout (hive style: pyarrow, polars, DuckDB and Spark read it as a dataset with ``date``
and ``symbol`` columns)::

    <root>/date=YYYY-MM-DD/symbol=SPY/part-0.parquet

``date`` is the tick's trading date on the default calendar (``core.calendar.trading_dates``:
the New York calendar date), so a partition of that calendar is one file; a partition of
another calendar reads the files of the dates its window touches. A file holds one
(date, symbol) in canonical order (``core.normalizer.canonical_sort``), with the columns of
``core.schema.TICK_COLUMNS`` but ``symbol`` (its folder names it); ``ts`` is
``timestamp[ns, UTC]``; zstd, row groups of ``ROW_GROUP`` rows.

Writes, per partition, under an exclusive file lock (``<dir>/.lock``, the ``filelock``
package: writers of one partition, threads or processes, take turns): the stored file
is read, the batch's rows matched to it by the tick identity (``core.identity``): new
identities are merged in, repeats with the same content counted, with other content
refused (the caller quarantines them). The merged file is written to a temp file in the
same folder, fsynced and renamed over the old one, then the folder is fsynced: readers
never see a half-written file, a crash leaves the old one (the temp file it leaves is
removed by the partition's next writer). A landing of many partitions sorts the batch
once and writes its partitions from slices of one Arrow table in ``WRITERS`` threads.

Landing log: bar builds find new ticks through ``tick_landings`` in the SQL store
(``ticks.log_landing``: the same rows ``TickRepository`` writes). They are written after
the renames (a build reads the landings, then the ticks: what it reads covers at least
what the landings it consumes say), inside the caller's ``Store.transaction()`` when there
is one. A journal closes the gap between the two writes: before the first rename the
landing rows go to ``<root>/_landings/<id>.json`` (fsynced, renamed in), locked by the
landing; the file is deleted once the rows are committed. A crash (or a rollback of the
caller's transaction) in between leaves the journal, unlocked: the next landing, in any
process, writes its rows and deletes it (``recover``). So every stored tick is covered by
a landing row or by the stored bars, and at worst a span is rebuilt once more; landing
the same ticks again stores nothing twice (the identity).

Reads scan the files of the dates a window touches with polars (the ``ts`` predicate is
pushed down to row-group statistics) and return what ``TickRepository`` returns: the same
columns, dtypes and order.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import filelock
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.calendar import trading_date_of, trading_dates
from ..core.identity import CONTENT_COLUMNS, same_content
from ..core.normalizer import canonical_sort
from ..core.partition import Partition, is_valid_symbol
from ..core.schema import TICK_COLUMNS, empty_ticks, ts_ns
from ._base import require_columns, window
from .store import Store, StoreError
from .ticks import LandResult, log_landing, repeats_in_batch, symbol_spans

FILE = "part-0.parquet"
LOCK = ".lock"
JOURNALS = "_landings"
LOCK_TIMEOUT_S = 60.0
ROW_GROUP = 128 * 1024
WRITERS = 8  # partitions written at once (fsync-bound: threads wait on the disk)
FILE_COLUMNS = [c for c in TICK_COLUMNS if c != "symbol"]
SCHEMA = pa.schema([
    ("ts", pa.timestamp("ns", tz="UTC")),
    ("price", pa.float64()),
    ("size", pa.float64()),
    ("exchange", pa.string()),
    ("conditions", pa.string()),
    ("trade_id", pa.string()),
    ("sequence", pa.int64()),
    ("source", pa.string()),
    ("source_row", pa.int64()),
])
_ID_COLUMNS = ["ts", "trade_id", "source", "source_row"]  # identity within one symbol
_NONE = np.empty(0, dtype="int64")


class ParquetTicks:
    """The ``storage.tick_store.TickStore`` of a Parquet dataset at ``root``; landing rows
    in ``store``."""

    def __init__(self, store: Store, root: Path):
        self.store = store
        self.root = Path(root)
        with _os_errors(self.root, "open"):
            (self.root / JOURNALS).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ParquetTicks({self.root})"

    # --------------------------------------------------------------------- writing
    def land(self, ticks: pd.DataFrame) -> LandResult:
        """See ``TickStore.land``; the module doc says how it is atomic and crash-safe."""
        require_columns(ticks, TICK_COLUMNS, "tick")
        if self.store.pinned_connection() is not None:
            raise RuntimeError("a write inside Store.read_snapshot(): writes need their own "
                               "transaction")
        if len(ticks) == 0:
            return LandResult(0, 0, empty_ticks())
        ticks = ticks.reset_index(drop=True)
        keep, conflicting = repeats_in_batch(ticks)
        batch = ticks[keep].reset_index(drop=True).astype(TICK_COLUMNS)
        _check_symbols(batch)
        self.recover()
        spans = symbol_spans({"symbol": batch["symbol"], "ts": ts_ns(batch["ts"])})
        journal = _Journal.begin(self.root / JOURNALS, spans)
        try:
            new, refused = self._write(batch)
            if new:
                self.store_rows(spans)
        except BaseException:
            journal.end(False)  # left for ``recover`` (some partitions may be written)
            raise
        if new:
            self.store.after_transaction(journal.end)
        else:
            journal.end(True)  # nothing was renamed in
        out = batch.iloc[refused]
        if conflicting.any():
            out = pd.concat([out, ticks[conflicting]])
        out = out.reset_index(drop=True).astype(TICK_COLUMNS)
        return LandResult(new, len(ticks) - new - len(out), out)

    def store_rows(self, spans: pd.DataFrame) -> None:
        """The landing rows of ``spans`` (``ticks.symbol_spans``) in the SQL store."""
        from ._base import Repository

        Repository(self.store)._run(lambda conn: log_landing(conn, spans))

    def recover(self) -> int:
        """Write the landing rows of journals left by a crashed or rolled-back landing (not
        locked by a live one), deleting each once its rows are committed; how many."""
        n = 0
        folder = self.root / JOURNALS
        for tmp in folder.glob(".*.tmp"):  # a journal its landing never renamed in
            _Journal.drop_orphan(tmp)
        for path in sorted(folder.glob("*.json")):
            journal = _Journal.claim(path)
            if journal is None:
                continue
            try:
                self.store_rows(journal.spans)
            except BaseException:
                journal.end(False)
                raise
            self.store.after_transaction(journal.end)
            n += 1
        return n

    def _write(self, batch: pd.DataFrame) -> tuple[int, np.ndarray]:
        """Land a batch without repeats: (rows stored, positions in ``batch`` refused)."""
        ordered = canonical_sort(batch.assign(_pos=np.arange(len(batch))))
        pos = ordered["_pos"].to_numpy("int64")
        symbols = ordered["symbol"].to_numpy(object)
        dates = trading_dates(ts_ns(ordered["ts"]))
        # rows of one (symbol, date) are contiguous: sorted by symbol, then ts
        sym, day = pd.factorize(symbols)[0], pd.factorize(dates)[0]
        change = (sym[1:] != sym[:-1]) | (day[1:] != day[:-1])
        cuts = np.r_[0, np.flatnonzero(change) + 1, len(pos)]
        table = pa.Table.from_pandas(ordered[FILE_COLUMNS], schema=SCHEMA, preserve_index=False)
        jobs = [(str(dates[lo]), str(symbols[lo]), table.slice(lo, hi - lo), pos[lo:hi])
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]
        if len(jobs) == 1:
            done = [self._write_partition(*jobs[0])]
        else:
            with ThreadPoolExecutor(min(WRITERS, len(jobs))) as pool:
                done = list(pool.map(lambda job: self._write_partition(*job), jobs))
        refused = [r for _, r in done if len(r)]
        return (sum(n for n, _ in done),
                np.sort(np.concatenate(refused)) if refused else _NONE)

    def _write_partition(self, date: str, symbol: str, part: pa.Table, pos: np.ndarray
                         ) -> tuple[int, np.ndarray]:
        """Merge one partition's rows (canonical order) into its file: (rows stored,
        their positions in the batch that were refused)."""
        folder = self._dir(date, symbol)
        with _os_errors(folder, "write"):
            _make_dirs(folder)
            with _locked(folder):
                for stale in folder.glob(".*.tmp"):  # a crashed writer's: the lock is ours
                    stale.unlink()
                path = folder / FILE
                if not path.exists():
                    _write_atomic(path, part)
                    return part.num_rows, _NONE
                stored = pq.read_table(path, schema=SCHEMA)
                at = _match(stored, part)
                found = at >= 0
                if found.any():
                    mine = part.filter(pa.array(found)).select(CONTENT_COLUMNS).to_pandas()
                    theirs = stored.take(at[found]).select(CONTENT_COLUMNS).to_pandas()
                    differs = ~same_content(mine, theirs)
                else:
                    differs = np.zeros(0, dtype=bool)
                fresh = ~found
                if fresh.any():
                    merged = pa.concat_tables([stored, part.filter(pa.array(fresh))])
                    _write_atomic(path, merged.take(_canonical_order(merged, symbol)))
                return int(fresh.sum()), pos[np.flatnonzero(found)[differs]]

    # --------------------------------------------------------------------- reading
    def stored_mask(self, ticks: pd.DataFrame) -> np.ndarray:
        require_columns(ticks, TICK_COLUMNS, "tick")
        out = np.zeros(len(ticks), dtype=bool)
        if len(ticks) == 0:
            return out
        ts = ts_ns(ticks["ts"])
        symbols = ticks["symbol"].astype("str").to_numpy(object)
        key = pd.Series(symbols + "|" + trading_dates(ts))
        for _, rows in key.groupby(key, sort=False).groups.items():
            rows = np.asarray(rows)
            symbol, ts0 = str(symbols[rows[0]]), int(ts[rows[0]])
            if not is_valid_symbol(symbol):
                continue  # never stored (nor made into a path)
            path = self._dir(trading_date_of(ts0), symbol) / FILE
            if path.exists():
                part = pa.Table.from_pandas(ticks.iloc[rows][_ID_COLUMNS], preserve_index=False)
                stored = self._read_file(path, _ID_COLUMNS)
                out[rows] = _match(stored, part) >= 0
        return out

    def count_at(self, symbol: str, source: str, ts_ns: int) -> int:
        path = self._dir(trading_date_of(int(ts_ns)), str(symbol)) / FILE
        if not is_valid_symbol(symbol) or not path.exists():
            return 0
        at = pl.lit(int(ts_ns), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
        query = pl.scan_parquet(path).filter(
            (pl.col("ts") == at) & (pl.col("source") == str(source))
            & (pl.col("trade_id") == "")).select(pl.len())
        return int(self._collect(query, path).item())

    def read(self, part: Partition) -> pd.DataFrame:
        return self._frame(self._scans([(part.symbol, part.start_ns, part.end_ns)]))

    def read_many(self, parts: Sequence[Partition]) -> pd.DataFrame:
        spans = sorted({(p.symbol, p.start_ns, p.end_ns) for p in parts})
        return self._frame(self._scans(spans))

    def read_since(self, part: Partition, since_ns: int) -> pd.DataFrame:
        start_ns, since_ns = window(part.start_ns, since_ns)
        since_ns, end_ns = window(since_ns, part.end_ns)
        return self._frame(self._scans([(part.symbol, since_ns, end_ns)]))

    def count_canonical(self, part: Partition) -> int:
        scans = self._scans([(part.symbol, part.start_ns, part.end_ns)])
        if not scans:
            return 0
        return int(self._collect(pl.concat(scans).select(pl.len()), self.root).item())

    def count(self, symbol: str | None = None) -> int:
        pattern = f"date=*/symbol={symbol}/{FILE}" if symbol is not None else f"date=*/*/{FILE}"
        if symbol is not None and not is_valid_symbol(symbol):
            return 0
        with _os_errors(self.root, "read"):
            return sum(pq.read_metadata(p).num_rows for p in self.root.glob(pattern))

    def symbols(self) -> set[str]:
        with _os_errors(self.root, "read"):
            return {p.parent.name.removeprefix("symbol=")
                    for p in self.root.glob(f"date=*/symbol=*/{FILE}")}

    # -------------------------------------------------------------------- helpers
    def _dir(self, date: str, symbol: str) -> Path:
        return self.root / f"date={date}" / f"symbol={symbol}"

    def _scans(self, spans: Sequence[tuple[str, int, int]]) -> list[pl.LazyFrame]:
        """Lazy scans of the stored ticks of each (symbol, start, end), in that order
        (sorted spans give canonical order: files are, and dates follow ts)."""
        scans = []
        for symbol, start_ns, end_ns in spans:
            if end_ns <= start_ns:
                continue
            lo = pl.lit(int(start_ns), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
            hi = pl.lit(int(end_ns), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
            first, last = trading_date_of(start_ns), trading_date_of(end_ns - 1)
            for date in pd.date_range(first, last, freq="D").strftime("%Y-%m-%d"):
                path = self._dir(date, symbol) / FILE
                if path.exists():
                    scans.append(pl.scan_parquet(path).filter(
                        (pl.col("ts") >= lo) & (pl.col("ts") < hi)).with_columns(
                        symbol=pl.lit(symbol, dtype=pl.String)))
        return scans

    def _frame(self, scans: list[pl.LazyFrame]) -> pd.DataFrame:
        if not scans:
            return empty_ticks()
        frame = self._collect(pl.concat(scans).select(list(TICK_COLUMNS)), self.root)
        if frame.height == 0:
            return empty_ticks()
        return frame.to_pandas().astype(TICK_COLUMNS)

    @staticmethod
    def _collect(query: pl.LazyFrame, where: Path) -> pl.DataFrame:
        try:
            return query.collect()
        except (OSError, pl.exceptions.ComputeError) as exc:
            raise StoreError(f"cannot read tick store {where}: {_one_line(exc)}; check the "
                             "files are readable Parquet written by phase1") from None

    @staticmethod
    def _read_file(path: Path, columns: list[str]) -> pa.Table:
        with _os_errors(path, "read"):
            return pq.read_table(path, columns=columns, schema=SCHEMA)


def _check_symbols(batch: pd.DataFrame) -> None:
    """Symbols become folder names: refuse one outside DESIGN section 3's pattern (the
    normalizer never lets one through)."""
    bad = [s for s in pd.unique(batch["symbol"]) if not is_valid_symbol(s)]
    if bad:
        raise ValueError(f"tick frame holds invalid symbol(s) {bad[:3]!r}: normalize first")


def _match(stored: pa.Table, part: pa.Table) -> np.ndarray:
    """For each row of ``part`` (one symbol): its row in ``stored`` with the same identity
    (``core.identity``: ``(ts, trade_id)`` with a trade id, else ``(ts, source,
    source_row)``), -1 when none. Only stored rows at a ts of ``part`` are looked at."""
    part_ts = _ts_array(part)
    stored_ts = _ts_array(stored)
    near = np.flatnonzero(np.isin(stored_ts, part_ts))
    out = np.full(part.num_rows, -1, dtype="int64")
    if len(near) == 0:
        return out
    index = pd.MultiIndex.from_frame(_id_frame(stored.take(near)))
    at = index.get_indexer(pd.MultiIndex.from_frame(_id_frame(part)))
    found = at >= 0
    out[found] = near[at[found]]
    return out


def _ts_array(table: pa.Table) -> np.ndarray:
    return table.column("ts").cast(pa.int64()).to_numpy()


def _id_frame(table: pa.Table) -> pd.DataFrame:
    """The identity columns within one symbol; a row with a trade id has source "" and
    source_row -1 there (``core.identity.identity_keys``)."""
    trade_id = table.column("trade_id").to_numpy(zero_copy_only=False).astype(object)
    has_id = trade_id != ""
    source = table.column("source").to_numpy(zero_copy_only=False).astype(object)
    return pd.DataFrame({
        "ts": _ts_array(table),
        "trade_id": trade_id,
        "source": np.where(has_id, "", source),
        "source_row": np.where(has_id, -1, table.column("source_row").to_numpy()),
    })


def _canonical_order(table: pa.Table, symbol: str) -> np.ndarray:
    """Row order of one symbol's table in canonical order (``canonical_sort``)."""
    keys = pd.DataFrame({
        "symbol": symbol, "ts": _ts_array(table),
        "sequence": table.column("sequence").to_numpy(),
        "source": table.column("source").to_numpy(zero_copy_only=False),
        "source_row": table.column("source_row").to_numpy(),
    })
    return canonical_sort(keys).index.to_numpy()


def _write_atomic(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` whole or not at all: temp file, fsync, rename, fsync
    of the folder."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd", row_group_size=ROW_GROUP)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _make_dirs(folder: Path) -> None:
    """Create ``folder`` (and its date folder) durably: each new entry's parent fsynced."""
    if folder.is_dir():
        return
    made = [p for p in (folder.parent, folder) if not p.is_dir()]
    folder.mkdir(parents=True, exist_ok=True)
    for p in made:
        _fsync_dir(p.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(folder: Path):
    lock = filelock.FileLock(folder / LOCK, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise StoreError(f"tick store partition {folder} is locked by another writer "
                         f"(waited {LOCK_TIMEOUT_S:g} s): retry when it is done") from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _os_errors(where: Path, doing: str):
    """An ``OSError`` (read-only, full disk, permissions) as one ``StoreError`` line."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"cannot {doing} tick store {where}: {_one_line(exc)}; check that "
                         "the folder exists, is writable and its disk has space "
                         "(TICK_STORE=parquet:///PATH)") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


class _Journal:
    """The landing rows of one landing, on disk until they are committed to the store.
    The landing holds an exclusive ``flock`` on the file itself (taken before it is
    renamed in, released when the process ends): an unlocked journal is an orphan."""

    def __init__(self, path: Path, fd: int, spans: pd.DataFrame):
        self.path, self.fd, self.spans = path, fd, spans

    @classmethod
    def begin(cls, folder: Path, spans: pd.DataFrame) -> _Journal:
        """Write and lock a journal of ``spans`` (``ticks.symbol_spans``)."""
        path = folder / f"{uuid.uuid4().hex}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        rows = [[str(s), int(lo), int(hi), int(n)] for s, lo, hi, n in zip(
            spans.index, spans["min"], spans["max"], spans["size"], strict=True)]
        with _os_errors(folder, "write"):
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, json.dumps({"spans": rows}).encode())
                os.fsync(fd)
                os.replace(tmp, path)
                _fsync_dir(folder)
            except BaseException:
                tmp.unlink(missing_ok=True)
                os.close(fd)
                raise
        return cls(path, fd, spans)

    @classmethod
    def claim(cls, path: Path) -> _Journal | None:
        """The journal at ``path``, locked, when no live landing holds it; else None."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # its landing ended meanwhile
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
            with open(fd, "rb", closefd=False) as f:
                rows = json.loads(f.read())["spans"]
        except FileNotFoundError:
            os.close(fd)
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            os.close(fd)
            raise StoreError(f"unreadable landing journal {path}: {_one_line(exc)}; "
                             "move it away and rebuild the bars of the dates it names"
                             ) from None
        spans = pd.DataFrame(rows, columns=["symbol", "min", "max", "size"]).set_index("symbol")
        return cls(path, fd, spans)

    @staticmethod
    def drop_orphan(tmp: Path) -> None:
        """Delete a journal temp file no live landing holds."""
        try:
            fd = os.open(tmp, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink(missing_ok=True)
        except BlockingIOError:
            pass
        finally:
            os.close(fd)

    def end(self, committed: bool) -> None:
        """Delete the journal when its rows are committed; unlock it either way."""
        try:
            if committed:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)


__all__ = ["FILE", "ParquetTicks"]
