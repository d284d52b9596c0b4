"""Kill the ingestion service (a real ``phase1 ingest`` process) at several moments and
restart it: no tick is lost or doubled, and the stored bars equal a batch build of the
stored ticks at every kill (ticks and bars of a flush are one transaction) and at the end,
where the live_bars verification finds nothing to correct. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import signal

import pandas as pd
import pytest

from phase1_platform.app.build import build_bars
from phase1_platform.app.verify_live import VERIFIED
from phase1_platform.simulator.finnhub_server import FinnhubSimulator
from phase1_platform.storage import BarRepository

from .test_ingestion import as_served, morning_tape, served, stored_ticks
from .test_ingestion_faults import count, start_service, until
from .test_live_path import PART, RULES, assert_stored_equals_batch

# killed while the tape streams: run alone (`make test` runs them after the parallel pass)
pytestmark = pytest.mark.serial

KILL_AT = (1_500, 6_000, 11_000)  # ticks landed when each running service is SIGKILLed


def test_sigkill_at_several_moments_then_restart_keeps_bars_equal_to_a_batch_build(backend):  # noqa: E501
    db, store = backend
    tape = morning_tape(16_000)
    span = (int(tape.t_ms[-1]) - int(tape.t_ms[0])) / 1000
    args = ("--flush-interval", "0.1", "--rules", RULES, "--dagster-report", "off")

    async def scenario():
        killed = []
        sim = FinnhubSimulator(tape, speed=span / 8, pause_when_idle=True)
        async with sim:
            for threshold in KILL_AT:
                proc = start_service(sim.url, db, *args, rest_url=sim.rest_url)
                try:
                    await until(lambda t=threshold: count(store) > t, 90)
                finally:
                    proc.send_signal(signal.SIGKILL)  # no flush, no goodbye
                    await asyncio.to_thread(proc.wait, 10)
                # whatever the moment: the bars stored are those of the ticks stored
                await asyncio.to_thread(assert_stored_equals_batch, store)
                killed.append((proc.returncode, count(store)))
            last = start_service(sim.url, db, *args, rest_url=sim.rest_url)
            await asyncio.wait_for(sim.done.wait(), 180)
            await until(lambda: count(store) >= len(tape), 90)
            await asyncio.sleep(0.5)
            last.send_signal(signal.SIGTERM)
            out, err = await asyncio.to_thread(last.communicate, timeout=60)
        return killed, last, out, err

    killed, last, out, err = asyncio.run(scenario())
    assert [rc for rc, _ in killed] == [-signal.SIGKILL] * len(KILL_AT)
    landed = [n for _, n in killed]
    assert landed == sorted(landed) and landed[0] > 0 and landed[-1] < len(tape)
    assert last.returncode == 0, err[-2000:]
    assert "bars stored" in out
    # every trade of the tape exactly once: nothing lost, nothing doubled
    pd.testing.assert_frame_equal(as_served(stored_ticks(db)), served(tape))
    assert_stored_equals_batch(store)
    assert len(BarRepository(store).read_partition(PART, ["1d"])) == 1
    # the live_bars verification of all those landings: equal, nothing to write
    verdict = build_bars(store, PART, RULES, incremental=True).verdict
    assert verdict.mode == VERIFIED and verdict.equal and not verdict.written, \
        verdict.summary()
