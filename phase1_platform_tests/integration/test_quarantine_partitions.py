"""Quarantine rows land in their own ``<date>|<SYMBOL>`` partition on every path: a
replay into a store keys each reject by its raw row (``app.land.quarantine_partitions``),
rows without a readable timestamp or a valid symbol stay under ``replay``, and conflicting
duplicates go to the partition of the refused tick."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.app.land import quarantine_partitions, raw_partitions
from phase1_platform.app.replay import REPLAY_QUARANTINE_PARTITION, persist, replay
from phase1_platform.core.identity import CONFLICTING_DUPLICATE
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.core.schema import QUARANTINE_COLUMNS
from phase1_platform.storage import QuarantineRepository
from phase1_platform_tests.conftest import FIXTURES

from .test_store import DAY

AAPL = FIXTURES / DAY / "AAPL.csv"
KEY = f"{DAY}|AAPL"
NO_PARTITION = {"timestamp without zone", "unparseable timestamp"}



def _identities(frame: pd.DataFrame) -> list[tuple[str, int, str]]:
    return sorted(zip(frame["source"], frame["source_row"].astype(int), frame["reason"],
                      strict=True))


def test_a_replay_keeps_its_rejects_under_their_partition(store):
    result = replay([AAPL])
    rejects = result.normalized.quarantine
    assert len(rejects) and set(rejects["reason"]) & NO_PARTITION  # the fixture has both kinds
    landed = persist(result, store).landed
    assert landed.quarantine_new == len(rejects)
    repo = QuarantineRepository(store)
    day, rest = repo.read(KEY), repo.read(REPLAY_QUARANTINE_PARTITION)
    keyed = ~rejects["reason"].isin(NO_PARTITION)
    assert _identities(day) == _identities(rejects[keyed])
    assert _identities(rest) == _identities(rejects[~keyed])
    assert persist(replay([AAPL]), store).landed.quarantine_new == 0  # idempotent


def test_a_conflicting_duplicate_is_quarantined_under_its_partition(store, tmp_path):
    persist(replay([AAPL]), store)
    lines = AAPL.read_text().splitlines()
    fields = lines[1].split(",")  # a good row with a trade id: same identity, other price
    fields[2] = str(float(fields[2]) + 1)
    other = tmp_path / "other" / "AAPL.csv"
    other.parent.mkdir()
    other.write_text("\n".join([lines[0], ",".join(fields)]) + "\n")
    landed = persist(replay([other]), store).landed
    assert landed.conflicting == 1
    day = QuarantineRepository(store).read(KEY)
    assert list(day.loc[day["reason"] == CONFLICTING_DUPLICATE, "source_row"]) == [0]
    assert CONFLICTING_DUPLICATE not in set(
        QuarantineRepository(store).read(REPLAY_QUARANTINE_PARTITION)["reason"])


def test_per_row_partitions_are_one_bulk_insert_and_must_match_the_rows(store):
    rows = pd.DataFrame({"source": ["a", "a", "b"], "source_row": [0, 1, 0],
                         "reason": ["r", "r", "r"], "raw": ["x", "y", "z"]}
                        ).astype(QUARANTINE_COLUMNS)
    repo = QuarantineRepository(store)
    assert repo.add(rows, np.array([KEY, "fallback", KEY], dtype=object)) == 3
    assert list(repo.read(KEY)["raw"]) == ["x", "z"]
    assert list(repo.read("fallback")["raw"]) == ["y"]
    with pytest.raises(ValueError, match="one key per row"):
        repo.add(rows, np.array([KEY, KEY], dtype=object))


def test_raw_rows_without_a_valid_timestamp_or_symbol_keep_the_fallback():
    raw = pd.DataFrame({
        "timestamp": ["2013-10-07T14:30:00Z", "2013-10-07T14:30:00", "not a time",
                      "1969-12-31T23:59:59Z", "2300-01-01T00:00:00Z", "2013-10-07T14:30:00Z",
                      "2013-10-07T14:30:00Z", "2013-10-08T01:00:00Z"],
        "symbol": ["AAPL", "AAPL", "AAPL", "AAPL", "AAPL", "aapl", "BAD SYMBOL", " SPY "],
    })
    keys = raw_partitions(raw, "fb")
    assert list(keys) == [KEY, "fb", "fb", "fb", "fb", "fb", "fb", f"{DAY}|SPY"]  # 21:00 NY
    assert list(raw_partitions(raw, "fb", symbols=["SPY"])) == ["fb"] * 7 + [f"{DAY}|SPY"]
    ns = pd.DataFrame({"timestamp": pd.Series([pd.Timestamp("2013-10-07T14:30Z").value],
                                              dtype="int64"), "symbol": ["AAPL"]})
    assert list(raw_partitions(ns, "fb")) == [KEY]
    assert list(raw_partitions(raw.drop(columns=["symbol"]), "fb")) == ["fb"] * len(raw)


def test_rejects_find_their_raw_row_by_source_and_row():
    raw = pd.DataFrame({
        "timestamp": ["2013-10-07T14:30:00Z", "2013-10-08T14:30:00Z", "2013-10-07T14:30:00Z",
                      "x"],
        "symbol": ["AAPL", "AAPL", "AAPL", "AAPL"], "price": ["-1", "-1", "-1", "1"],
        "size": ["1", "1", "1", "1"], "source": ["a.csv", "a.csv", "b.csv", "b.csv"],
        "source_row": [0, 0, 5, 6],  # a.csv row 0 twice, on two days: ambiguous
    })
    rejects = TickNormalizer().normalize(raw).quarantine
    got = dict(zip(zip(rejects["source"], rejects["source_row"], strict=True),
                   quarantine_partitions(rejects, raw, "fb"), strict=True))
    assert got == {("a.csv", 0): "fb", ("b.csv", 5): KEY, ("b.csv", 6): "fb"}
    assert list(quarantine_partitions(rejects, None, "fb")) == ["fb"] * len(rejects)
    unknown = rejects.assign(source="elsewhere")
    assert list(quarantine_partitions(unknown, raw, "fb")) == ["fb"] * len(rejects)
