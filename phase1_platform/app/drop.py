"""The file drop: where a partition's tick files and vendor bar files are on disk.

A drop folder (``$PHASE1_DROP_DIR``) holds, for a ``core.partition.Partition`` (date, SYMBOL):

- ``<drop>/<YYYY-MM-DD>/<SYMBOL>.csv``: a DESIGN tick CSV;
- LEAN tick zips in LEAN's own layout, the drop being a LEAN ``Data/`` folder or holding
  one under ``lean/``: ``[lean/]equity/<market>/tick/<symbol>/<YYYYMMDD>_trade.zip``;
- the partition's reference bars in the same LEAN tree: the ``minute`` zip of the date, else
  its ``second`` zip, plus ``equity/<market>/daily/<symbol>.zip``.

The repository's ``fixtures/`` folder has the same layout (``fixtures/2013-10-07/AAPL.csv``,
``fixtures/lean/equity/usa/tick/spy/20131007_trade.zip``) and is searched after the drop, so
a fixture serves exactly the partitions it holds data for (DESIGN section 9) and never
leaks into another date's partition. The first folder with tick files for the partition
serves its ticks and reference bars.

Safety (DESIGN section 7): every path is built from a validated ``Partition`` (never from a
raw key string), and a file or folder on the way that resolves outside its drop (or
fixtures) folder, through a symlink, is refused with ``DropPathError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.partition import Partition
from ..readers.lean import LEAN_LAYOUT, lean_daily_file, lean_intraday_file

REPO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LEAN_SUBFOLDER = "lean"
EQUITY = "equity"


class DropPathError(InputError):
    """A drop file or folder that cannot be used (outside the drop, wrong layout)."""


@dataclass(frozen=True)
class DropFolder:
    """One searched folder: the drop or the fixtures."""

    root: Path
    is_fixtures: bool = False

    @property
    def what(self) -> str:
        return "fixtures folder" if self.is_fixtures else "file drop"

    def inside(self, path: Path) -> Path | None:
        """``path`` when it exists inside this folder (symlinks resolved), None if absent.

        ``DropPathError`` when it exists but resolves outside the folder.
        """
        if not path.exists():
            return None
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise DropPathError(
                f"refusing {path}: {self._link_of(path)} resolves to {path.resolve()}, "
                f"outside the {self.what} {self.root}; copy the data into it (or point "
                "PHASE1_DROP_DIR at that folder) instead of linking out")
        return path

    def _link_of(self, path: Path) -> str:
        """The first symlink between the folder and ``path`` (for the message)."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return "it"
        at = self.root
        for part in rel.parts:
            at = at / part
            if at.is_symlink():
                return f"the symlink {at}"
        return "it"

    def lean_roots(self) -> list[Path]:
        """The LEAN ``Data/`` folders here: the folder itself and its ``lean/``."""
        roots = []
        for root in (self.root, self.root / LEAN_SUBFOLDER):
            if self.inside(root) is not None and self.inside(root / EQUITY) is not None:
                roots.append(root)
        return roots

    def markets(self, lean_root: Path) -> list[str]:
        equity = lean_root / EQUITY
        return sorted(p.name for p in equity.iterdir() if self.inside(p) and p.is_dir())

    def lean_files(self, part: Partition, resolution: str) -> list[Path]:
        """The partition's LEAN equity zips of one resolution, over every market."""
        out = []
        for root in self.lean_roots():
            for market in self.markets(root):
                if resolution in ("daily", "hour"):
                    path = lean_daily_file(root, EQUITY, market, part.symbol, resolution)
                else:
                    path = lean_intraday_file(root, EQUITY, market, resolution, part.symbol,
                                              part.date)
                if self.inside(path) is not None and path.is_file():
                    out.append(path)
        return out

    def tick_files(self, part: Partition) -> list[Path]:
        files = []
        csv = self.root / part.date / f"{part.symbol}.csv"
        if self.inside(self.root / part.date) is not None and self.inside(csv) is not None \
                and csv.is_file():
            files.append(csv)
        files += self.lean_files(part, "tick")
        if not files:
            self._refuse_symbol_first_layout(part)
        return files

    def _refuse_symbol_first_layout(self, part: Partition) -> None:
        """A zip in the old symbol-first layout would be silently ignored: say so."""
        for root in self.lean_roots():
            for market in self.markets(root):
                old = root / EQUITY / market / part.symbol.lower() / "tick" / \
                    f"{part.date.replace('-', '')}_trade.zip"
                if old.is_file():
                    new = lean_intraday_file(root, EQUITY, market, "tick", part.symbol,
                                             part.date)
                    raise DropPathError(f"{old}: symbol-first layout; move it to {new} "
                                        f"(LEAN's layout {LEAN_LAYOUT})")

    def intraday_reference(self, part: Partition) -> list[Path]:
        return self.lean_files(part, "minute") or self.lean_files(part, "second")


class FileDrop:
    """The drop folder, then (unless turned off) the fixtures folder."""

    def __init__(self, drop_dir: str | Path, fixtures_dir: str | Path | None = REPO_FIXTURES):
        self.drop = DropFolder(Path(drop_dir))
        self.folders = [self.drop]
        if fixtures_dir is not None:
            fixtures = DropFolder(Path(fixtures_dir), is_fixtures=True)
            if fixtures.root.resolve() != self.drop.root.resolve():
                self.folders.append(fixtures)

    @staticmethod
    def _partition(part: Partition) -> Partition:
        if not isinstance(part, Partition):
            raise TypeError(f"the file drop takes a validated Partition, not {part!r}: "
                            "use Partition.parse(key)")
        return part

    def tick_files(self, part: Partition) -> list[Path]:
        """The partition's tick files from the first folder that has any."""
        part = self._partition(part)
        for folder in self.folders:
            files = folder.tick_files(part)
            if files:
                return files
        return []

    def reference_files(self, part: Partition) -> list[Path]:
        """The partition's vendor bar files (LEAN minute, else second, plus daily).

        From the folder of its ticks; when no folder has its ticks (ticks from a vendor),
        from the first folder with its bars. A fixtures folder's daily file serves only the
        partitions the fixtures hold ticks or intraday bars for.
        """
        part = self._partition(part)
        for folder in self.folders:
            intraday = folder.intraday_reference(part)
            daily = folder.lean_files(part, "daily")
            if intraday or folder.tick_files(part):
                return intraday + daily
            if daily and not folder.is_fixtures:
                return daily
        return []

    def describe(self) -> str:
        return ", ".join(str(f.root) for f in self.folders)
