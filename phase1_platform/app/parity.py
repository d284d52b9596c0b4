"""Judge parity: our bars against a vendor's, the use case of the Dagster parity checks and
``phase1 parity``.

- ``load_reference_file`` / ``ticks_from_files`` / ``compare_files``: the CLI's path (a
  generated canonical CSV against a canonical CSV or a LEAN bar zip, optionally with the
  ticks, for mismatch categories); its verdict is exact parity.
- ``reference_from_lean`` / ``read_reference_csv``: a partition's vendor bars, from LEAN
  files (clipped to the partition's window) or the canonical CSV the pipeline kept.
- ``judge_partition``: the stored bars of one partition and timeframe against the reference,
  categorized with the partition's normalized ticks and rule set, judged by
  ``ParityThresholds``: the share of differences no known vendor convention explains stays
  under ``max_unexplained_pct`` and, with at least ``min_bars_for_match_pct`` bars compared,
  the exact-match share reaches ``min_match_pct``. Result: ``ParityVerdict``, whose
  ``summary()`` is what ``judge_and_record_partition`` (the Dagster checks) keeps in the
  store as the partition's parity verdict of the timeframe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from ..core.calendar import DEFAULT_CALENDAR, exchange_tz
from ..core.errors import InputError
from ..core.export import read_canonical_csv, to_canonical
from ..core.normalizer import TickNormalizer
from ..core.parity import UNEXPLAINED, BarComparator, ParityReport
from ..core.partition import Partition
from ..core.rules import get_rules
from ..core.timeframes import parse_timeframes
from ..readers import read_lean_bars, read_ticks
from ..storage import BarRepository, Store
from . import tick_log
from .build import normalize_partition
from .checks import PARITY, record_check
from .quality import jsonable

EPS = 1e-9


@dataclass(frozen=True)
class ParityThresholds:
    min_match_pct: float = 75.0
    max_unexplained_pct: float = 10.0
    min_bars_for_match_pct: int = 20
    price_tolerance: float = 1e-6
    volume_tolerance: float = 0.0

    def comparator(self, calendar: str = DEFAULT_CALENDAR) -> BarComparator:
        return BarComparator(price_tolerance=self.price_tolerance,
                             volume_tolerance=self.volume_tolerance, calendar=calendar)


@dataclass(frozen=True)
class ParityVerdict:
    """The outcome of judging one partition and timeframe."""

    partition: Partition
    timeframe: str
    passed: bool
    thresholds: ParityThresholds
    report: ParityReport | None = None  # None: nothing to compare (not a failure)
    note: str = ""  # why nothing was compared
    rule_set: str | None = None
    unexplained_bars: int = 0
    unexplained_pct: float = 0.0
    match_pct_judged: bool = False

    @property
    def compared(self) -> bool:
        return self.report is not None

    @cached_property  # in the stored summary and in the Dagster check's metadata
    def worst_rows(self) -> dict[str, list[dict]]:
        """Per field, the largest differences (JSON-able rows); fields without any left out."""
        if self.report is None:
            return {}
        largest = self.report.to_dict()["largest_differences"]
        return {f: rows for f, rows in largest.items() if rows}

    def summary(self) -> dict:
        """The verdict as the store keeps it (JSON-able, the same keys compared or not)."""
        r, t = self.report, self.thresholds
        out = {
            "partition": self.partition.key,
            "timeframe": self.timeframe,
            "passed": self.passed,
            "compared": self.compared,
            "rule_set": self.rule_set,
            "bars_compared": int(r.compared) if r else 0,
            "bars_matched": int(r.matched) if r else 0,
            "match_pct": float(round(r.match_pct, 4)) if r else None,
            "required_match_pct": float(t.min_match_pct) if self.match_pct_judged else None,
            "unexplained_bars": int(self.unexplained_bars),
            "unexplained_pct": float(round(self.unexplained_pct, 4)) if r else None,
            "allowed_unexplained_pct": float(t.max_unexplained_pct),
            "is_exact_parity": bool(r.is_parity) if r else None,
            "missing_in_generated": int(len(r.missing_in_generated)) if r else 0,
            "missing_in_reference": int(len(r.missing_in_reference)) if r else 0,
            "mismatched_by_field": {k: int(n) for k, n in r.field_mismatched.items()} if r
            else {},
            "mismatched_by_category": {k: int(n) for k, n in r.category_counts.items()} if r
            else {},
            "worst_rows": self.worst_rows,
        }
        if not self.compared:
            out["note"] = self.note
        return jsonable(out)


def unexplained_bars(report: ParityReport) -> int:
    """Mismatched bars with at least one difference no known vendor convention explains."""
    if len(report.mismatches) == 0:
        return 0
    return int(sum(1 for cats in report.mismatches["categories"]
                   if any(str(c).startswith(UNEXPLAINED) for c in cats)))


def judge(report: ParityReport, part: Partition, timeframe: str, rule_set: str | None,
          thresholds: ParityThresholds) -> ParityVerdict:
    """The verdict on ``report`` under ``thresholds``."""
    unexplained = unexplained_bars(report)
    pct = 100.0 * unexplained / report.compared if report.compared else 0.0
    judged = report.compared >= thresholds.min_bars_for_match_pct
    passed = pct <= thresholds.max_unexplained_pct + EPS and (
        not judged or report.match_pct >= thresholds.min_match_pct - EPS)
    return ParityVerdict(part, timeframe, passed, thresholds, report=report, rule_set=rule_set,
                         unexplained_bars=unexplained, unexplained_pct=pct,
                         match_pct_judged=judged)


def not_compared(part: Partition, timeframe: str, thresholds: ParityThresholds,
                 note: str, rule_set: str | None = None) -> ParityVerdict:
    return ParityVerdict(part, timeframe, True, thresholds, note=note, rule_set=rule_set)


# ------------------------------------------------------------------ a partition's reference
def reference_from_lean(files: list[Path], part: Partition) -> pd.DataFrame | None:
    """The vendor's bars of ``part`` from LEAN bar files (None: no file)."""
    if not files:
        return None
    frames = [read_lean_bars(f, start=part.date, end=part.date) for f in files]
    ref = pd.concat(frames, ignore_index=True)
    ts = ref["ts"].to_numpy("int64")
    keep = (ref["symbol"] == part.symbol).to_numpy() & (ts >= part.start_ns) & (ts < part.end_ns)
    return ref[keep].reset_index(drop=True)


def read_reference_csv(path: Path) -> pd.DataFrame | None:
    """The reference bars kept as a canonical CSV (None: no such file)."""
    return read_canonical_csv(path) if Path(path).is_file() else None


def judge_partition(store: Store, part: Partition, timeframe: str,
                    reference: pd.DataFrame | None, rule_set: str,
                    thresholds: ParityThresholds, ticks: pd.DataFrame | None = None,
                    bars: pd.DataFrame | None = None
                    ) -> tuple[ParityVerdict, pd.DataFrame | None]:
    """The partition's stored ``timeframe`` bars against ``reference`` (canonical frame);
    the verdict and the stored bars it judged (None: nothing compared). ``ticks`` (the
    partition's normalized ticks: they explain mismatches) and ``bars`` (its stored
    ``timeframe`` bars) when the caller has them in hand, else read."""
    if reference is None:
        return not_compared(part, timeframe, thresholds,
                            f"none: no vendor bars for {part.key}, nothing to compare "
                            "(not a failure)", rule_set), None
    ref = reference[reference["timeframe"] == timeframe]
    if len(ref) == 0:
        return not_compared(part, timeframe, thresholds,
                            f"the reference has no {timeframe} bars (not a failure)",
                            rule_set), None
    gen = BarRepository(store).read_partition(part, [timeframe]) if bars is None else bars
    if ticks is None:
        ticks = normalize_partition(tick_log.read_partition(store, part), part).ticks
    report = thresholds.comparator(part.calendar).compare(
        to_canonical(gen), ref, ticks=ticks, rules=rule_set)
    return judge(report, part, timeframe, rule_set, thresholds), gen


def judge_and_record_partition(store: Store, part: Partition, timeframe: str,
                               reference: pd.DataFrame | None, rule_set: str,
                               thresholds: ParityThresholds,
                               ticks: pd.DataFrame | None = None,
                               bars: pd.DataFrame | None = None,
                               digest: str | None = None) -> ParityVerdict:
    """``judge_partition``, its verdict kept in the store as the partition's ``PARITY``
    check of ``timeframe`` (the Dagster parity checks; ``phase1 parity`` records nothing).
    ``digest``: the sha256 of ``bars`` when the caller knows it (``record_check``)."""
    verdict, judged = judge_partition(store, part, timeframe, reference, rule_set,
                                      thresholds, ticks, bars)
    record_check(store, part, PARITY, verdict.passed, verdict.summary(), timeframe,
                 judged if judged is not None else bars, digest if bars is not None else None)
    return verdict


# ------------------------------------------------------------------------ files (the CLI)
def load_reference_file(path: str | Path, gen: pd.DataFrame, contract: str | None = None,
                        calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """Reference bars from a canonical CSV or a LEAN bar zip (a daily zip holds years: only
    the dates of the generated daily bars are kept)."""
    if Path(path).suffix.lower() != ".zip":
        return read_canonical_csv(path)
    daily = gen[gen["timeframe"] == "1d"]
    start = end = None
    if len(daily):
        days = pd.to_datetime(daily["ts"].to_numpy("int64"), utc=True).tz_convert(
            exchange_tz(calendar))
        start, end = days.min().strftime("%Y-%m-%d"), days.max().strftime("%Y-%m-%d")
    return read_lean_bars(path, contract=contract, start=start, end=end)


def ticks_from_files(paths: list[str], contract: str | None = None) -> pd.DataFrame:
    """The normalized ticks of tick files (DESIGN tick CSV or LEAN tick zips)."""
    kwargs = {"contract": contract} if contract else {}
    frames = [read_ticks(p, **kwargs) if str(p).lower().endswith(".zip") else read_ticks(p)
              for p in paths]
    raw = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ticks = TickNormalizer().normalize(raw).ticks
    if len(ticks) == 0:
        raise InputError(f"no valid ticks in {', '.join(map(str, paths))}")
    return ticks


@dataclass
class FileParity:
    report: ParityReport
    timeframes: list[str]  # compared
    skipped: list[str] = field(default_factory=list)  # generated only, not compared

    @property
    def is_parity(self) -> bool:
        return self.report.is_parity


def compare_files(reference: str | Path, generated: str | Path, *,
                  price_tolerance: float = 1e-9, volume_tolerance: float = 0.0,
                  ticks: list[str] | None = None, rules: str = "default",
                  timeframes: str | None = None, contract: str | None = None,
                  calendar: str = DEFAULT_CALENDAR) -> FileParity:
    """A generated canonical CSV against reference bars (only the reference's timeframes,
    or ``timeframes``); with ``ticks``, every mismatch gets a category."""
    rule_set = get_rules(rules)
    comparator = BarComparator(price_tolerance, volume_tolerance, calendar=calendar)
    gen = read_canonical_csv(generated)
    ref = load_reference_file(reference, gen, contract, calendar)
    if timeframes:
        keep = [t.name for t in parse_timeframes(timeframes)]
    else:
        keep = list(dict.fromkeys(ref["timeframe"])) or list(dict.fromkeys(gen["timeframe"]))
    skipped = sorted(set(gen["timeframe"]) - set(keep))
    gen = gen[gen["timeframe"].isin(keep)]
    ref = ref[ref["timeframe"].isin(keep)]
    tick_frame = ticks_from_files(ticks, contract) if ticks else None
    report = comparator.compare(gen, ref, ticks=tick_frame,
                                rules=rule_set if tick_frame is not None else None)
    return FileParity(report, keep, skipped)
