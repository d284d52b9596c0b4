"""A run's partitions built at once (``app.run_build``) equal each partition built alone,
on SQLite and PostgreSQL: one read, one normalizer pass, one engine pass per rule set,
each partition written atomically (DESIGN section 6: "one partition per run or many")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phase1_platform.app.build import build_bars
from phase1_platform.app.run_build import (
    build_run,
    hand_over_landed,
    hand_over_prepared,
    prepare_builds,
    take_prepared,
)
from phase1_platform.core import CanonicalExporter, TickNormalizer
from phase1_platform.core.calendar import session_bounds
from phase1_platform.core.partition import Partition
from phase1_platform.core.timeframes import DEFAULT_TIMEFRAMES
from phase1_platform.storage import BarRepository, Store

from ..support.stores import TICK_BACKENDS, make_url

DAYS = ["2013-10-07", "2013-10-08", "2013-10-09"]
SYMBOLS = ["AAA", "BBB", "CCC"]
RULES = {"AAA": "default", "BBB": "lean-equity", "CCC": "lean-equity"}


def synthetic(seed: int = 7) -> pd.DataFrame:
    """Ticks of 3 symbols x 3 days, some with conditions lean-equity keeps out of prices
    (volume-only minutes), some zero-size, a few pre/post-market, repeated trade ids with
    the same content in a second source (duplicates across sources), shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for d_i, day in enumerate(DAYS):
        open_ns, close_ns, _ = session_bounds(day)
        for s_i, sym in enumerate(SYMBOLS):
            n = 600 + 100 * s_i
            ts = np.sort(rng.integers(open_ns - 3600 * 10**9, close_ns + 1800 * 10**9, n))
            cond = rng.choice(["", "", "", "AveragePrice", "OfficialClose", "IntermarketSweep"], n)
            rows.append(pd.DataFrame({
                "timestamp": pd.to_datetime(ts, utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "symbol": sym,
                "price": np.round(20 + 5 * s_i + np.cumsum(rng.normal(0, 0.01, n)), 2),
                "size": rng.choice([0, 1, 50, 100, 300], n),
                "exchange": "P",
                "conditions": cond,
                "trade_id": [f"{d_i}-{s_i}-{k}" for k in range(n)],
                "sequence": np.arange(n),
            }))
    raw = pd.concat(rows, ignore_index=True)
    return raw.iloc[rng.permutation(len(raw))].reset_index(drop=True)


PARTS = [Partition(d, s) for d in DAYS for s in SYMBOLS]
RULE_SETS = {p: RULES[p.symbol] for p in PARTS}


def land(store: Store, raw: pd.DataFrame, source: str) -> pd.DataFrame:
    ticks = TickNormalizer(symbols=SYMBOLS).normalize(raw, source=source).ticks
    store.ticks.land(ticks)
    return ticks


def stored(store: Store) -> dict[Partition, bytes]:
    repo = BarRepository(store)
    out = {}
    for part in PARTS:
        bars = repo.read_partition(part)
        vo = repo.read_volume_only(part, "1m")
        out[part] = CanonicalExporter(bars).to_bytes() + vo.to_csv(index=False).encode()
    return out


@pytest.fixture(params=TICK_BACKENDS)
def stores(request, tmp_path):
    made = []
    for name in ("one", "alone"):
        (tmp_path / name).mkdir()
        made.append(Store.from_url(make_url(request.param, tmp_path / name, request)))
    one, alone = made
    yield one, alone
    one.dispose()
    alone.dispose()


def test_a_run_of_many_partitions_equals_each_partition_built_alone(stores):
    one, alone = stores
    raw = synthetic()
    for store in (one, alone):
        land(store, raw, "feed")
        land(store, raw.iloc[::5], "replay")  # the same trades again: already stored
    built = build_run(one, PARTS, RULE_SETS)
    for part in PARTS:
        build_bars(alone, part, RULE_SETS[part])
    assert [b.input.partition for b in built] == PARTS
    ours, theirs = stored(one), stored(alone)
    assert ours == theirs
    assert all(len(v) > 200 for v in ours.values())
    # volume-only minutes exist under lean-equity (ticks that set no price)
    assert len(BarRepository(one).read_volume_only(Partition(DAYS[0], "BBB"), "1m")) > 0
    # one read split per partition: each holds exactly its own stored ticks
    inputs = prepare_builds(one, PARTS, RULE_SETS)
    for inp in inputs:
        alone_ticks = one.ticks.read(inp.partition)
        assert len(inp.ticks) == len(alone_ticks) > 0
        assert set(inp.ticks["symbol"]) == {inp.partition.symbol}


def test_ticks_handed_over_are_used_only_when_they_are_all_the_store_holds(stores,
                                                                          monkeypatch):
    one, alone = stores
    raw = synthetic(11)
    landed = land(one, raw, "feed")
    land(alone, raw, "feed")
    extra = raw[(raw["symbol"] == "CCC") & raw["timestamp"].str.startswith(DAYS[1])].iloc[:3]
    extra = extra.assign(trade_id=extra["trade_id"] + "x")
    land(one, extra, "late")  # CCC holds more than what is handed over for it
    land(alone, extra, "late")
    for part in PARTS:
        mine = landed[(landed["symbol"] == part.symbol)
                      & (landed["ts"].astype("int64") >= part.start_ns)
                      & (landed["ts"].astype("int64") < part.end_ns)].reset_index(drop=True)
        hand_over_landed("run-1", one, part, mine)
    asked = []
    repo = type(one.ticks)  # whichever TickStore the backend uses
    real = repo.read_many

    def read_many(self, parts):
        asked.append(sorted(p.key for p in parts))
        return real(self, parts)

    monkeypatch.setattr(repo, "read_many", read_many)
    inputs = prepare_builds(one, PARTS, RULE_SETS, scope="run-1")
    hand_over_prepared("run-1", one, inputs, RULE_SETS, False, DEFAULT_TIMEFRAMES)
    assert asked == [[f"{DAYS[1]}|CCC"]]
    # the count that decided is kept for the rejected-ratio check: the store's own count
    assert [i.stored_ticks for i in inputs] == [one.ticks.count_canonical(p) for p in PARTS]
    build_run(one, PARTS, RULE_SETS, scope="run-1")  # takes the prepared inputs
    assert take_prepared("run-1", one, PARTS[0], RULE_SETS[PARTS[0]], False,
                         DEFAULT_TIMEFRAMES) is None  # each taken once
    assert len(asked) == 1  # the build read nothing more
    for part in PARTS:
        build_bars(alone, part, RULE_SETS[part])
    assert stored(one) == stored(alone)
    assert prepare_builds(one, PARTS[:1], RULE_SETS)[0].stored_ticks is None  # not counted

