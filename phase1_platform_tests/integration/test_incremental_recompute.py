"""Incremental recompute against the store, on SQLite and PostgreSQL.

Ticks land in micro-batches (late ones, re-sent trade ids and batches spanning two days
included); after each, ``build_bars(incremental=True)`` rewrites only what the
new ticks touch, reading only the ticks from the cut, and the stored bars always equal a
full recompute of everything landed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from phase1_platform.app.build import (
    Full,
    Incremental,
    UpToDate,
    build_bars,
    prepare_build,
    write_bars,
)
from phase1_platform.core import (
    BarEngine,
    CanonicalExporter,
    TickNormalizer,
    get_rules,
    trading_day_window,
)
from phase1_platform.core.partition import Partition
from phase1_platform.core.schema import ts_ns
from phase1_platform.readers import read_ticks
from phase1_platform.storage import (
    BarRepository,
    ConcurrentBuildError,
    LandingRepository,
    Store,
)
from phase1_platform_tests.conftest import FIXTURES

from ..support.stores import make_url

DAY, NEXT = "2013-10-07", "2013-10-08"
START, END = trading_day_window(DAY)
PART = Partition(DAY, "AAPL")
HOUR = 3600 * 10**9



def aapl_raw() -> pd.DataFrame:
    return read_ticks(FIXTURES / "2013-10-07" / "AAPL.csv")


def land(store: Store, raw: pd.DataFrame, source: str = "feed") -> int:
    res = TickNormalizer(symbols=["AAPL"]).normalize(
        raw.drop(columns=["source", "source_row"], errors="ignore"), source=source)
    return store.ticks.land(res.ticks).new


def full_export(store: Store, day: str = DAY, rule_set: str = "default") -> bytes:
    """The canonical bytes of a full recompute of everything landed for the partition."""
    start, end = trading_day_window(day)
    landed = store.ticks.read(Partition(day, "AAPL"))
    ticks = TickNormalizer(symbols=["AAPL"], window=(start, end)).normalize(
        landed.rename(columns={"ts": "timestamp"})).ticks
    bars = BarEngine(rules=get_rules(rule_set)).build(ticks, "1m,5m,15m,1h,1d")
    return CanonicalExporter(bars).to_bytes()


def stored_export(store: Store, day: str = DAY) -> bytes:
    start, end = trading_day_window(day)
    return CanonicalExporter(BarRepository(store).read("AAPL", None, start, end)).to_bytes()


def recompute(store: Store, day: str = DAY, rule_set: str = "default"):
    part = build_bars(store, Partition(day, "AAPL"), rule_set, incremental=True).input
    assert stored_export(store, day) == full_export(store, day, rule_set)
    assert len(LandingRepository(store).pending(Partition(day, "AAPL"))) == 0
    return part


def mode(inp) -> str:
    return {Full: "full", Incremental: "incremental", UpToDate: "up to date"}[type(inp.plan)]


def at(raw: pd.DataFrame, when: str, **values) -> pd.DataFrame:
    return raw.iloc[[0]].assign(timestamp=when, **values)


def test_micro_batches_rebuild_only_what_they_touch_and_equal_a_full_recompute(store):
    raw = aapl_raw()
    cuts = [0, 40, 41, 120, 200, len(raw)]
    modes = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        land(store, raw.iloc[a:b])
        part = recompute(store)
        modes.append(mode(part))
        if a == 0:
            assert part.plan.reason == "no bars stored for the partition yet"
        if mode(part) == "incremental":
            first = ts_ns(TickNormalizer().normalize(raw.iloc[a:b], source="x").ticks["ts"])
            assert part.plan.since_ns == int(first.min()) // HOUR * HOUR  # first new tick's hour
            assert (ts_ns(part.ticks["ts"]) >= part.plan.since_ns).all()  # read only from the cut
            assert len(part.ticks) < len(store.ticks.read(PART))
    assert modes == ["full"] + ["incremental"] * (len(cuts) - 2)
    assert mode(recompute(store)) == "up to date"  # nothing landed since: nothing read

    # a late tick far behind the last one: rebuilt from its hour, 1d bar included
    late = at(raw, "2013-10-07T14:31:10.5Z", trade_id="9000001", size="777", price="480.01")
    land(store, late)
    part = recompute(store)
    assert mode(part) == "incremental" and part.plan.since_ns == START + 10 * HOUR  # 14:00 UTC
    daily = BarRepository(store).read("AAPL", ["1d"], START, END)
    assert daily["low"].iloc[0] == 480.01


def test_trade_ids_seen_before_the_cut_are_other_trades_like_a_full_read(store):
    raw = aapl_raw()
    land(store, raw)
    recompute(store)
    # the trade id of the morning's first trade, stamped in the afternoon: another trade
    # (the identity is (symbol, ts, trade_id), DESIGN section 3), in a full read and in
    # the incremental one (which reads from 19:00); recompute checks they agree
    first = raw.iloc[0]
    resent = at(raw, "2013-10-07T19:30:00Z", trade_id=first["trade_id"], size="999")
    assert land(store, resent, source="other-feed") == 1
    part = recompute(store)
    assert mode(part) == "incremental" and part.plan.since_ns == START + 15 * HOUR
    assert part.normalized.rejected_by_reason == {}
    assert int((part.ticks["size"] == 999).sum()) == 1
    # and the other way round: a copy stamped before the stored trade wins over it
    last = raw.iloc[len(raw) - 1]
    earlier = at(raw, "2013-10-07T13:45:00Z", trade_id=last["trade_id"], size="5")
    land(store, earlier, source="other-feed")
    part = recompute(store)
    assert mode(part) == "incremental" and part.plan.since_ns == START + 9 * HOUR


def test_landings_spanning_two_days_leave_the_other_day_pending(store):
    raw = aapl_raw()
    land(store, raw)
    recompute(store)
    span = pd.concat([at(raw, "2013-10-07T19:59:00Z", trade_id="9100001"),
                      at(raw, "2013-10-08T13:31:00Z", trade_id="9100002")])
    land(store, span)
    recompute(store)  # the 7th: consumes its part of the landing only
    start8, end8 = trading_day_window(NEXT)
    spans = LandingRepository(store).spans()  # the 8th's part of the landing is left
    assert spans[["lo_ts", "hi_ts"]].values.tolist() == [
        [start8, pd.Timestamp("2013-10-08T13:31Z").value]]
    assert len(LandingRepository(store).pending(PART)) == 0
    assert mode(recompute(store, NEXT)) == "full"  # no bars of the 8th yet
    assert LandingRepository(store).spans().empty


def test_a_changed_rule_set_rebuilds_in_full(store):
    land(store, aapl_raw())
    recompute(store)
    land(store, at(aapl_raw(), "2013-10-07T19:00:00Z", trade_id="9200001"))
    part = recompute(store, rule_set="lean-future")
    assert mode(part) == "full" and "rule set default, not lean-future" in part.plan.reason
    land(store, at(aapl_raw(), "2013-10-07T19:01:00Z", trade_id="9200002"))
    assert mode(recompute(store, rule_set="lean-future")) == "incremental"


def test_volume_only_minutes_keep_the_daily_bar_exact_under_lean_equity(store):
    """lean-equity: a regular-session intermarket sweep counts in volume but sets no price,
    so a minute holding only such prints has no 1m bar; its volume must stay in the 1d bar
    when a later micro-batch rebuilds the day from the stored 1m bars."""
    raw = aapl_raw()
    land(store, raw.iloc[:150])
    assert mode(recompute(store, rule_set="lean-equity")) == "full"
    block = at(raw, "2013-10-07T15:07:30Z", trade_id="9400001", size="100000",
               price="470.00", conditions="IntermarketSweep")
    land(store, block)
    part = recompute(store, rule_set="lean-equity")
    assert mode(part) == "incremental"
    vo = BarRepository(store).read_volume_only(PART, "1m")
    assert vo[["ts", "qty"]].values.tolist() == [[pd.Timestamp("2013-10-07T15:07Z").value,
                                                  100000 * 10**8]]
    for a, b in [(150, 250), (250, len(raw))]:  # later batches: the day is
        land(store, raw.iloc[a:b])  # rolled up from stored rows before each cut
        assert mode(recompute(store, rule_set="lean-equity")) == "incremental"
    daily = BarRepository(store).read("AAPL", ["1d"], START, END)
    assert daily["low"].iloc[0] > 470.0  # the block set no price ...
    one_minute = BarRepository(store).read("AAPL", ["1m"], START, END)
    session = one_minute[(one_minute["ts"] >= pd.Timestamp("2013-10-07T13:30Z").value)
                         & (one_minute["ts"] < pd.Timestamp("2013-10-07T20:00Z").value)]
    assert int(daily["qty"].iloc[0]) == int(session["qty"].sum()) + 100000 * 10**8  # ... but
    # counts in the day's volume


def test_a_concurrent_build_of_the_same_landings_is_detected_and_retried(store):
    land(store, aapl_raw())
    recompute(store)
    land(store, at(aapl_raw(), "2013-10-07T18:00:00Z", trade_id="9300001"))
    first = prepare_build(store, PART, "default", incremental=True)
    second = prepare_build(store, PART, "default", incremental=True)
    assert first.landings.ids == second.landings.ids
    write_bars(store, first, "default")
    before = stored_export(store)
    with pytest.raises(ConcurrentBuildError, match="consumed"):
        write_bars(store, second, "default")
    assert stored_export(store) == before == full_export(store)  # nothing written
    land(store, at(aapl_raw(), "2013-10-07T18:30:00Z", trade_id="9300002"))
    stale = prepare_build(store, PART, "default", incremental=True)
    write_bars(store, prepare_build(store, PART, "default", incremental=True), "default")
    part = build_bars(store, PART, "default", incremental=True,
                      prepared=stale).input  # conflicts, reads again: up to date
    assert mode(part) == "up to date"
    assert stored_export(store) == full_export(store)


def test_upgrading_a_store_marks_its_ticks_for_a_first_full_build(request, tmp_path):
    """Ticks landed before revision 0002 may not be in the bars: the upgrade marks them."""
    import sqlalchemy as sa

    store = Store.from_url(make_url("sqlite", tmp_path, request), migrate=False)
    try:
        assert store.upgrade("0001_initial") == "0001_initial"
        with store.begin(write=True) as conn:
            for i, (sym, ts) in enumerate([("AAPL", START + 14 * HOUR), ("AAPL", START),
                                           ("MSFT", START + HOUR)]):
                conn.execute(sa.text("INSERT INTO ticks (ts, symbol, price, size, source, "
                                     "source_row) VALUES (:ts, :s, 1.5, 100, 'old.csv', :i)"),
                             {"ts": ts, "s": sym, "i": i})
        store.upgrade()
        spans = LandingRepository(store).spans()
        assert spans[["symbol", "lo_ts", "hi_ts"]].values.tolist() == [
            ["AAPL", START, START + 14 * HOUR], ["MSFT", START + HOUR, START + HOUR]]
        part = prepare_build(store, PART, "default", incremental=True)
        assert mode(part) == "full" and len(part.ticks) == 2
    finally:
        store.dispose()


def test_a_replay_into_the_store_rebuilds_from_all_its_ticks(store):
    """``phase1 replay --database-url`` lands the file's ticks, then rebuilds the partition
    from every tick stored for it (not the file's bars alone): nothing is left pending."""
    from phase1_platform.app.replay import persist, replay

    land(store, aapl_raw().iloc[:100], source="other-feed")
    recompute(store)
    persist(replay([FIXTURES / "2013-10-07" / "AAPL.csv"], symbols=["AAPL"], window=(START, END)),
            store)
    assert stored_export(store) == full_export(store)  # both sources' ticks
    assert len(LandingRepository(store).pending(PART)) == 0
    assert mode(recompute(store)) == "up to date"
    # other timeframes than the default set: marked for a full rebuild with the default set
    persist(replay([FIXTURES / "2013-10-07" / "AAPL.csv"], timeframes="1m,1d",
                   symbols=["AAPL"], window=(START, END)), store)
    part = recompute(store)
    assert mode(part) == "full" and "reach back to the start" in part.plan.reason
