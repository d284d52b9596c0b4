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

Writes. A landing locks its partitions (``<dir>/.lock``, the ``filelock`` package: writers
of one partition, threads or processes, take turns; locks are taken in path order). Each
partition's stored file is read and the batch's rows matched to it by the tick identity
(``core.identity``): new identities are merged in, repeats with the same content counted,
with other content refused (the caller quarantines them). The merged file is written to
a temp file in the same folder and fsynced, then renamed over the old one and the folder
fsynced: readers never see a half-written file, a crash leaves the old one (its temp
file is removed by the partition's next writer). A landing of many partitions sorts the
batch once and stages its partitions from slices of one Arrow table in ``WRITERS``
threads.

Landing log and transactions. Bar builds find new ticks through ``tick_landings`` in the
SQL store (``ticks.log_landing``: the rows ``TickRepository`` writes). They become visible
after the renames (a build reads the landings, then the ticks: what it reads covers at
least what the landings it consumes say). Outside a ``Store.transaction()`` a landing
renames, then commits its rows. Inside one (the live service's flush: ticks, watermarks,
quarantine and bars), every landing of the transaction stays staged (locked, temp files)
and is renamed in just before its COMMIT; a rollback deletes the staged files, so the
ticks go with the bars, as in SQL. Reads inside that transaction do not see its staged
ticks (no caller reads ticks after landing them there).

Crash safety. Before the first rename the landing rows go to a journal,
``<root>/_landings/<id>.json`` (fsynced, renamed in, ``flock``ed by the landing), deleted
once the rows are committed. A crash or a failed COMMIT between the renames and the
commit leaves the journal, unlocked: the next landing, in any process, writes its rows
and deletes it (``recover``). So every stored tick is covered by a landing row or by the
stored bars (at worst a span is rebuilt once more), and landing the same ticks again
stores nothing twice (the identity).

Reads scan the files of the dates a window touches with polars (the ``ts`` predicate is
pushed down to row-group statistics) and return what ``TickRepository`` returns: the same
columns, dtypes and order.
"""

from __future__ import annotations

import ctypes
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
from ._base import Repository, require_columns, window
from .store import Store, StoreError, _one_line
from .ticks import LandResult, log_landing, repeats_in_batch, symbol_spans

FILE = "part-0.parquet"
LOCK = ".lock"
JOURNALS = "_landings"
LOCK_TIMEOUT_S = 60.0
ROW_GROUP = 128 * 1024
WRITERS = 8  # partitions written at once (pyarrow and fsync release the GIL)
SYNCFS_FROM = 64  # files (or folders) to make durable from which one syncfs(2) does it
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
try:  # Linux: flush one file system (os.sync flushes them all)
    _SYNCFS = ctypes.CDLL(None, use_errno=True).syncfs
except (AttributeError, OSError):
    _SYNCFS = None


class ParquetTicks:
    """The ``storage.tick_store.TickStore`` of a Parquet dataset at ``root``; landing rows
    in ``store``."""

    def __init__(self, store: Store, root: Path):
        self.store = store
        self.root = Path(root)
        self._units: dict[int, _Stage] = {}  # stage of each open Store.transaction()
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
        stage, own = self._stage()
        try:
            new, refused = self._stage_batch(stage, batch)
            if new:
                stage.spans.append(spans)
            if own:
                stage.publish()
            if new:
                self.store_rows(spans)
        except BaseException:
            if own:
                stage.finish(False)
            raise
        if own:
            stage.finish(True)
        out = batch.iloc[refused]
        if conflicting.any():
            out = pd.concat([out, ticks[conflicting]])
        out = out.reset_index(drop=True).astype(TICK_COLUMNS)
        return LandResult(new, len(ticks) - new - len(out), out)

    def store_rows(self, spans: pd.DataFrame) -> None:
        """The landing rows of ``spans`` (``ticks.symbol_spans``) in the SQL store."""
        Repository(self.store)._run(lambda conn: log_landing(conn, spans))

    def recover(self) -> int:
        """Write the landing rows of journals left by a crashed landing (not locked by a
        live one), deleting each once its rows are committed; how many."""
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

    def _stage(self) -> tuple[_Stage, bool]:
        """(the stage to land into, whether this landing publishes it itself): inside a
        ``Store.transaction()`` one stage per transaction, published just before its
        COMMIT and ended with it; outside one, a stage of this landing's own."""
        unit = self.store.unit_connection()
        if unit is None:
            return _Stage(self.root / JOURNALS), True
        key = id(unit)
        stage = self._units.get(key)
        if stage is None:
            stage = self._units[key] = _Stage(self.root / JOURNALS)

            def end(committed: bool) -> None:
                self._units.pop(key, None)
                stage.finish(committed)

            self.store.before_commit(stage.publish)
            self.store.after_transaction(end)
        return stage, False

    def _stage_batch(self, stage: _Stage, batch: pd.DataFrame) -> tuple[int, np.ndarray]:
        """Stage a batch without repeats: (rows new, positions in ``batch`` refused)."""
        ordered = canonical_sort(batch.assign(_pos=np.arange(len(batch))))
        pos = ordered["_pos"].to_numpy("int64")
        symbols = ordered["symbol"].to_numpy(object)
        dates = trading_dates(ts_ns(ordered["ts"]))
        # rows of one (symbol, date) are contiguous: sorted by symbol, then ts
        sym, day = pd.factorize(symbols)[0], pd.factorize(dates)[0]
        change = (sym[1:] != sym[:-1]) | (day[1:] != day[:-1])
        cuts = np.r_[0, np.flatnonzero(change) + 1, len(pos)]
        table = pa.Table.from_pandas(ordered[FILE_COLUMNS], schema=SCHEMA, preserve_index=False)
        jobs = [(self._dir(str(dates[lo]), str(symbols[lo])), table.slice(lo, hi - lo),
                 pos[lo:hi]) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]
        stage.lock([folder for folder, _, _ in jobs])
        done = _parallel(lambda job: _stage_partition(stage, *job), jobs)
        refused = [r for _, r in done if len(r)]
        return (sum(n for n, _ in done),
                np.sort(np.concatenate(refused)) if refused else _NONE)

    # --------------------------------------------------------------------- reading
    def stored_mask(self, ticks: pd.DataFrame) -> np.ndarray:
        require_columns(ticks, TICK_COLUMNS, "tick")
        out = np.zeros(len(ticks), dtype=bool)
        if len(ticks) == 0:
            return out
        keys = pd.DataFrame({"symbol": ticks["symbol"].astype("str").to_numpy(object),
                             "date": trading_dates(ts_ns(ticks["ts"]))})
        for (symbol, date), rows in keys.groupby(["symbol", "date"], sort=False).indices.items():
            data = self._snapshot(symbol, date)
            if data is not None:
                part = pa.Table.from_pandas(ticks.iloc[rows][_ID_COLUMNS], preserve_index=False)
                stored = pq.read_table(pa.BufferReader(data), columns=_ID_COLUMNS, schema=SCHEMA)
                out[rows] = _match(stored, part) >= 0
        return out

    def count_at(self, symbol: str, source: str, ts_ns: int) -> int:
        data = self._snapshot(str(symbol), trading_date_of(int(ts_ns)))
        if data is None:
            return 0
        at = pl.lit(int(ts_ns), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
        query = pl.scan_parquet(data).filter(
            (pl.col("ts") == at) & (pl.col("source") == str(source))
            & (pl.col("trade_id") == "")).select(pl.len())
        return int(self._collect(query).item())

    def read(self, part: Partition) -> pd.DataFrame:
        return self._frame(self._scans([(part.symbol, part.start_ns, part.end_ns)]))

    def read_many(self, parts: Sequence[Partition]) -> pd.DataFrame:
        spans = sorted({(p.symbol, p.start_ns, p.end_ns) for p in parts})
        return self._frame(self._scans(spans))

    def read_since(self, part: Partition, since_ns: int,
                   until_ns: int | None = None) -> pd.DataFrame:
        start_ns, since_ns = window(part.start_ns, since_ns)
        since_ns, end_ns = window(since_ns, part.end_ns if until_ns is None
                                  else min(int(until_ns), part.end_ns))
        return self._frame(self._scans([(part.symbol, since_ns, end_ns)]))

    def find_trade(self, symbol: str, trade_id: str, start_ns: int, end_ns: int
                   ) -> list[int]:
        start_ns, end_ns = window(start_ns, end_ns)
        scans = self._scans([(symbol, start_ns, end_ns)])
        if not scans:
            return []
        found = self._collect(pl.concat(scans).filter(pl.col("trade_id") == str(trade_id))
                              .select(pl.col("ts").cast(pl.Int64)).sort("ts"))
        return [int(t) for t in found["ts"].to_list()]

    def count_canonical(self, part: Partition) -> int:
        scans = self._scans([(part.symbol, part.start_ns, part.end_ns)])
        if not scans:
            return 0
        return int(self._collect(pl.concat(scans).select(pl.len())).item())

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
                data = self._snapshot(symbol, date)
                if data is not None:
                    scans.append(pl.scan_parquet(data).filter(
                        (pl.col("ts") >= lo) & (pl.col("ts") < hi)).with_columns(
                        symbol=pl.lit(symbol, dtype=pl.String)))
        return scans

    def _snapshot(self, symbol: str, date: str) -> bytes | None:
        """The bytes of a partition's file, read in one open (a writer renaming a new file
        in meanwhile cannot mix two versions); None when it has none."""
        if not is_valid_symbol(symbol):
            return None  # never stored, never made into a path
        path = self._dir(date, symbol) / FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read tick store {path}: {_one_line(exc)}; check that "
                             "it is readable") from None

    def _frame(self, scans: list[pl.LazyFrame]) -> pd.DataFrame:
        if not scans:
            return empty_ticks()
        frame = self._collect(pl.concat(scans).select(list(TICK_COLUMNS)))
        if frame.height == 0:
            return empty_ticks()
        return frame.to_pandas().astype(TICK_COLUMNS)

    def _collect(self, query: pl.LazyFrame) -> pl.DataFrame:
        try:
            return query.collect()
        except pl.exceptions.PolarsError as exc:
            raise StoreError(f"cannot read tick store {self.root}: {_one_line(exc)}; a "
                             "partition file is not the Parquet phase1 writes (damaged or "
                             "replaced): restore it or land its ticks again") from None


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


def _canonical_order(table: pa.Table) -> np.ndarray:
    """Row order of one symbol's table in canonical order (``canonical_sort``)."""
    keys = pd.DataFrame({
        "symbol": "", "ts": _ts_array(table),
        "sequence": table.column("sequence").to_numpy(),
        "source": table.column("source").to_numpy(zero_copy_only=False),
        "source_row": table.column("source_row").to_numpy(),
    })
    return canonical_sort(keys).index.to_numpy()


def _stage_partition(stage: _Stage, folder: Path, part: pa.Table, pos: np.ndarray
                     ) -> tuple[int, np.ndarray]:
    """Merge one partition's rows (canonical order) into what it holds, staged: (rows new,
    positions in the batch of the rows refused)."""
    current = stage.current(folder)
    if current is None:
        stage.write(folder, part)
        return part.num_rows, _NONE
    with _os_errors(current, "read"):
        stored = pq.read_table(current, schema=SCHEMA)
    at = _match(stored, part)
    found = at >= 0
    differs = np.zeros(0, dtype=bool)
    if found.any():
        mine = part.filter(pa.array(found)).select(CONTENT_COLUMNS).to_pandas()
        theirs = stored.take(at[found]).select(CONTENT_COLUMNS).to_pandas()
        differs = ~same_content(mine, theirs)
    fresh = ~found
    if fresh.any():
        added = part.filter(pa.array(fresh)) if found.any() else part
        merged = pa.concat_tables([stored, added])
        if stored.num_rows and _ts_array(added)[0] <= _ts_array(stored)[-1]:
            merged = merged.take(_canonical_order(merged))  # else in order already
        stage.write(folder, merged)
    return int(fresh.sum()), pos[np.flatnonzero(found)[differs]]


class _Stage:
    """Partitions being landed (by one landing, or by every landing of one transaction):
    locked, their merged files written to temp files; ``publish`` makes those durable,
    journals the landing rows and renames them in; ``finish`` unlocks."""

    def __init__(self, journals: Path):
        self.journals = journals
        self.locks: dict[Path, filelock.FileLock] = {}
        self.temps: dict[Path, Path] = {}  # partition folder -> its staged file
        self.spans: list[pd.DataFrame] = []  # landing rows written (``symbol_spans``)
        self.journal: _Journal | None = None

    def lock(self, folders: Sequence[Path]) -> None:
        """Lock the partitions not locked yet, in path order (two landings never wait on
        each other in a cycle; transactions of several landings can, until the timeout);
        a lock still held after ``LOCK_TIMEOUT_S`` is an error."""
        wanted = sorted(set(folders) - self.locks.keys())
        with _os_errors(self.journals.parent, "write"):
            _make_dirs(self.journals.parent, wanted)
        for folder in wanted:
            lock = filelock.FileLock(folder / LOCK, timeout=LOCK_TIMEOUT_S, thread_local=False)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise StoreError(f"tick store partition {folder} is locked by another "
                                 f"writer (waited {LOCK_TIMEOUT_S:g} s): retry when it is "
                                 "done") from None
            self.locks[folder] = lock
            for stale in folder.glob(".*.tmp"):  # a crashed writer's: the lock is ours
                stale.unlink(missing_ok=True)

    def current(self, folder: Path) -> Path | None:
        """The partition's file as this stage left it: staged, stored, or none."""
        path = self.temps.get(folder) or folder / FILE
        return path if path.exists() else None

    def write(self, folder: Path, table: pa.Table) -> None:
        """Stage ``table`` as the partition's file (in place of an earlier stage of it;
        made durable by ``publish``)."""
        tmp = folder / f".{FILE}.{uuid.uuid4().hex}.tmp"
        try:
            with _os_errors(folder, "write"):
                pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        old, self.temps[folder] = self.temps.get(folder), tmp
        if old is not None:
            old.unlink(missing_ok=True)

    def publish(self) -> None:
        """Journal the landing rows, then rename every staged file in (each whole: readers
        see the old file or the new one) and fsync their folders."""
        if not self.temps:
            return
        root = self.journals.parent
        with _os_errors(root, "write"):
            _sync(root, list(self.temps.values()))
        self.journal = _Journal.begin(self.journals, pd.concat(self.spans))
        with _os_errors(root, "write"):
            folders = list(self.temps)
            for folder in folders:
                os.replace(self.temps[folder], folder / FILE)
                del self.temps[folder]
            _sync(root, folders)

    def finish(self, committed: bool) -> None:
        """End the stage: the journal goes once its rows are committed (else it stays for
        ``recover``), staged files not renamed in are deleted, the locks released."""
        try:
            if self.journal is not None:
                self.journal.end(committed)
            for tmp in self.temps.values():
                tmp.unlink(missing_ok=True)
        finally:
            for lock in self.locks.values():
                lock.release()


def _parallel(fn, items: list) -> list:
    """``fn`` of each item, in order; in ``WRITERS`` threads when there are several
    (pyarrow's encoding, file reads and fsync release the GIL)."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(min(WRITERS, len(items))) as pool:
        return list(pool.map(fn, items))


def _make_dirs(root: Path, folders: list[Path]) -> None:
    """Create the partition folders missing, durably: each distinct parent of a new
    folder fsynced once (a date folder holds many symbol folders)."""
    new = [f for f in folders if not f.is_dir()]
    if not new:
        return
    parents = {f.parent for f in new}
    changed = parents | {p.parent for p in parents if not p.is_dir()}
    for folder in new:
        folder.mkdir(parents=True, exist_ok=True)
    _sync(root, sorted(changed))


def _sync(root: Path, paths: list[Path]) -> None:
    """Make ``paths`` (files, or folders whose entries changed) durable: an fsync of each,
    or for ``SYNCFS_FROM`` paths and more one ``syncfs(2)`` of the dataset's file system
    (Linux; what every fsync would do, in one call)."""
    if len(paths) >= SYNCFS_FROM and _SYNCFS is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    _parallel(_fsync_dir, paths)


def _fsync_dir(folder: Path) -> None:  # a file or a folder
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _os_errors(where: Path, doing: str):
    """An ``OSError`` (read-only, full disk, permissions) as one ``StoreError`` line."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"cannot {doing} tick store {where}: {_one_line(exc)}; check that "
                         "the folder exists, is writable and its disk has space "
                         "(TICK_STORE=parquet:///PATH)") from None


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
