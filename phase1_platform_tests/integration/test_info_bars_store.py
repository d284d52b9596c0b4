"""Information-driven bars through every entry point: ``phase1 replay --timeframes`` (names
and one-line errors), the store (SQLite and PostgreSQL: bars sharing a first-trade time),
keyset pages of the read API's application layer, and the canonical export."""

from __future__ import annotations

import pandas as pd
import pytest

from phase1_platform.app.read_bars import BarSelection, read_all, read_page
from phase1_platform.app.read_params import InvalidParameterError
from phase1_platform.app.replay import persist, replay
from phase1_platform.core import CanonicalExporter
from phase1_platform.storage import Store
from phase1_platform_tests.integration.test_cli_replay import AAPL, assert_one_line_error, run
from phase1_platform_tests.support.stores import BACKENDS, make_url

TIMEFRAMES = "1m,1d,t1,t50,v5000,d100000"


@pytest.mark.parametrize("bad, says", [("t0", "t0: the threshold must be a whole number"),
                                       ("v-5", "v-5: the threshold after 'v'"),
                                       ("dabc", "dabc: the threshold after 'd'")])
def test_replay_refuses_bad_names_in_one_line(tmp_path, bad, says):
    proc = run("replay", "--csv", AAPL, "--timeframes", f"1m,{bad}", "--output",
               tmp_path / "out.csv")
    assert_one_line_error(proc, says)
    assert not (tmp_path / "out.csv").exists()


def test_replay_writes_information_bars_after_the_time_bars(tmp_path):
    out = tmp_path / "out.csv"
    proc = run("replay", "--csv", AAPL, "--timeframes", "t50,1m", "--output", out)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()[1:]
    kinds = [line.split(",")[1] for line in lines]
    assert kinds == sorted(kinds, key=lambda k: k != "1m") and "t50" in kinds
    assert all(len(line.split(",")[2]) == 30 for line in lines if ",t50," in line)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stored_information_bars_page_and_export_as_replayed(backend, tmp_path, request):
    result = replay([AAPL], TIMEFRAMES)
    store = Store.from_url(make_url(backend, tmp_path, request))
    try:
        persist(result, store)
        for tf in ("t1", "t50", "v5000", "d100000"):
            selection = BarSelection.parse("AAPL", tf, "2013-10-07", "2013-10-08")
            whole = read_all(store, selection)
            mine = result.bars[result.bars["timeframe"] == tf]
            assert whole.data == CanonicalExporter(mine).to_bytes()
            rows, cursor = [], None
            while True:  # pages of 7: every bar once, ties on the first-trade time included
                page = read_page(store, selection, 7, cursor)
                rows.append(page.bars)
                cursor = page.next_cursor
                if cursor is None:
                    break
            paged = CanonicalExporter(pd.concat(rows, ignore_index=True)).to_bytes()
            assert paged == whole.data
        t1 = result.bars[result.bars["timeframe"] == "t1"]
        assert t1["ts"].duplicated().any()  # the store keeps bars sharing a first-trade time
    finally:
        store.dispose()


def test_read_api_names_a_bad_timeframe():
    with pytest.raises(InvalidParameterError, match="timeframe: timeframe t0: the threshold"):
        BarSelection.parse("AAPL", "t0")
    assert BarSelection.parse("AAPL", "v100").timeframe == "v100"
