"""The latest verdict of each check of a partition (table ``check_results``).

A check records ``(partition, check_name, timeframe)`` once per evaluation, replacing the
previous verdict; ``timeframe`` is ``""`` for checks of the ticks. ``summary`` is the
check's JSON-able summary, stored as canonical JSON (sorted keys) so equal summaries are
equal text.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import select

from ._base import Repository, insert_for
from .tables import check_results as results_t


@dataclass(frozen=True)
class StoredCheck:
    partition: str
    check_name: str
    timeframe: str  # "" for checks of the ticks
    passed: bool
    bars_sha256: str  # canonical sha256 of the bars judged ("" for checks of the ticks)
    summary: dict
    evaluated_ns: int  # wall clock of the evaluation, UTC ns


class CheckResultRepository(Repository):
    def record(self, partition: str, check_name: str, timeframe: str, passed: bool,
               summary: dict, bars_sha256: str = "") -> StoredCheck:
        stored = StoredCheck(str(partition), str(check_name), str(timeframe), bool(passed),
                             str(bars_sha256), summary, time.time_ns())
        values = {
            "partition": stored.partition, "check_name": stored.check_name,
            "timeframe": stored.timeframe, "passed": stored.passed,
            "bars_sha256": stored.bars_sha256,
            "summary": json.dumps(summary, sort_keys=True, separators=(",", ":"),
                                  allow_nan=False, default=str),
            "evaluated_ns": stored.evaluated_ns,
        }

        def upsert(conn):
            stmt = insert_for(conn, results_t).values(**values)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["partition", "check_name", "timeframe"],
                set_={k: stmt.excluded[k] for k in
                      ("passed", "bars_sha256", "summary", "evaluated_ns")}))

        self._run(upsert)
        return stored

    def read(self, partition: str) -> list[StoredCheck]:
        """The partition's latest verdicts, ordered by check name then timeframe."""
        c = results_t.c
        query = (select(*results_t.columns).where(c.partition == str(partition))
                 .order_by(c.check_name, c.timeframe))
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        return [StoredCheck(r.partition, r.check_name, r.timeframe, bool(r.passed),
                            r.bars_sha256, json.loads(r.summary), int(r.evaluated_ns))
                for r in rows]


__all__ = ["CheckResultRepository", "StoredCheck"]
