"""The bars assets give exactly ``BarEngine(rules).build(ticks)`` for every rule set.

Under ``lean-equity`` an intermarket sweep in the regular session counts in volume
but sets no price: a minute holding only such a print has no 1m bar, yet its volume is
in the 5m/15m/1h/1d bars. Rolling the coarser bars up from the stored 1m bars would
lose it; the assets must export the same bytes as ``phase1 replay --rules lean-equity``.
"""

from __future__ import annotations

import dagster as dg

from phase1_platform.app.replay import replay
from phase1_platform.core.calendar import trading_day_window
from phase1_platform.core.export import CanonicalExporter, file_hash
from phase1_platform.defs.assets import ALL_ASSETS
from phase1_platform.defs.checks import ALL_CHECKS
from phase1_platform.defs.resources import SourcesResource, default_resources
from phase1_platform_tests.support.workdir import offline_workdir

TICKS = """timestamp,symbol,price,size,exchange,conditions,trade_id,sequence
2013-10-07T13:31:05.000000000Z,LEQ,100.00,100,P,Regular,1,1
2013-10-07T13:31:30.000000000Z,LEQ,100.50,200,P,Regular,2,2
2013-10-07T13:32:10.000000000Z,LEQ,250.00,5000,D,IntermarketSweep,3,3
2013-10-07T13:33:01.000000000Z,LEQ,100.25,300,P,Regular,4,4
2013-10-07T14:10:00.000000000Z,LEQ,99.75,50,P,Regular,5,5
2013-10-07T14:12:00.000000000Z,LEQ,260.00,700,D,IntermarketSweep,6,6
2013-10-07T19:59:00.000000000Z,LEQ,101.00,10,P,Regular,7,7
"""


def test_volume_only_minute_is_kept_like_replay(tmp_path, monkeypatch):
    offline_workdir(tmp_path, monkeypatch)
    csv = tmp_path / "drop" / "2013-10-07" / "LEQ.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(TICKS)

    start, end = trading_day_window("2013-10-07")
    expected = replay([csv], symbols=["LEQ"], rules="lean-equity", window=(start, end))
    bars = expected.bars
    one_minute = bars[bars["timeframe"] == "1m"]
    # the premise: the 13:32 and 14:12 minutes hold only a sweep -> no 1m bar,
    # but their volume is in the coarser bars
    assert len(one_minute) == 4
    five = bars[bars["timeframe"] == "5m"]
    assert int(five["qty"].sum()) == int(bars[bars["timeframe"] == "1d"]["qty"].sum())
    assert int(five["qty"].sum()) > int(one_minute["qty"].sum())

    resources = default_resources() | {
        "sources": SourcesResource(rule_sets={"LEQ": "lean-equity"})}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["LEQ"])
        result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], partition_key="2013-10-07|LEQ",
                                instance=instance, resources=resources, raise_on_error=False)
    assert result.success
    export = tmp_path / "exports" / "2013-10-07" / "LEQ.csv"
    assert export.read_bytes() == CanonicalExporter(expected.bars).to_bytes()
    assert file_hash(export) == CanonicalExporter(expected.bars).compute_hash()
    mats = {e.asset_key.path[-1]: e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert mats["bars_1m"]["bars"].value == 4
    assert mats["bars_1d"]["volume"].value == 6360.0
    assert mats["bars_1m"]["rule_set"].value == "lean-equity"
