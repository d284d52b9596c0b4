"""defs.metadata: the price/volume chart of the UI's materialization panel."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pandas as pd

from phase1_platform.core.engine import BarEngine
from phase1_platform.core.export import to_canonical
from phase1_platform.core.normalizer import TickNormalizer
from phase1_platform.defs.metadata import bars_chart_md, bars_chart_svg

NS = {"svg": "http://www.w3.org/2000/svg"}


def _bars() -> pd.DataFrame:
    raw = pd.DataFrame({  # minute 1 rises, minute 2 falls, minute 3 is flat (rising)
        "timestamp": ["2013-10-07T13:30:01Z", "2013-10-07T13:30:30Z", "2013-10-07T13:31:05Z",
                      "2013-10-07T13:31:50Z", "2013-10-07T13:32:10Z"],
        "symbol": "SPY", "price": ["167.40", "167.60", "167.50", "167.30", "167.45"],
        "size": ["100", "200", "50", "10", "400"],
    })
    return BarEngine().build(TickNormalizer().normalize(raw).ticks, "1m")


def _paths(svg: str) -> dict[tuple[str, str], str]:
    root = ET.fromstring(svg)
    return {(p.get("class"), p.get("fill") or p.get("stroke")): p.get("d")
            for p in root.iterfind("svg:path", NS)}


def _moves(d: str) -> list[list[float]]:
    """The numbers of each subpath (one per bar)."""
    return [[float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", sub)]
            for sub in d.split("M")[1:]]


def test_each_bar_is_one_subpath_of_its_layer_scaled_to_the_plot():
    bars = _bars()
    svg = bars_chart_svg(bars, "SPY 1m", width=720, height=320)
    paths = _paths(svg)
    green, red = "#2a9d55", "#d64545"
    assert len(_moves(paths[("wicks", green)])) == 2  # rising and flat minutes
    assert len(_moves(paths[("bodies", green)])) == 2
    assert len(_moves(paths[("wicks", red)])) == 1  # the falling minute
    volumes = _moves(paths[("volumes", "#7a8ca8")])
    assert len(volumes) == 3
    # the highest high is at the plot's top (pad 24), the lowest low at its bottom (24+198)
    (x, y_high, y_low), = _moves(paths[("wicks", red)])  # 167.50 -> 167.30: the day's low
    assert y_low == 222.0
    tops = [y for _, y, _ in _moves(paths[("wicks", green)])]
    assert min(tops) == 24.0  # 167.60, the day's high
    # volume heights in proportion to the bars' volumes (the largest fills 70 px)
    heights = [v[3] for v in volumes]  # "M left top h width v height h -width z"
    assert heights == [52.5, 10.5, 70.0]  # volumes 300, 60, 400 in time order
    lefts = [v[0] for v in volumes]
    assert lefts == sorted(lefts) and lefts[0] > 60  # left to right, right of the axis


def test_internal_canonical_and_unordered_frames_draw_the_same_chart():
    bars = _bars()
    shuffled = to_canonical(bars).sample(frac=1, random_state=3)
    assert bars_chart_svg(shuffled, "SPY 1m") == bars_chart_svg(bars, "SPY 1m")


def test_the_chart_is_inline_markdown_and_small():
    bars = BarEngine().build(TickNormalizer().normalize(pd.DataFrame({
        "timestamp": pd.date_range("2013-10-07T13:30:00Z", periods=6000, freq="3s")
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "symbol": "SPY", "price": [f"{167 + (i % 97) / 100:.2f}" for i in range(6000)],
        "size": "100"})).ticks, "1m")
    md = bars_chart_md(bars, "SPY 1m", max_bars=400).md_str
    b64 = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md).group(1)
    svg = base64.b64decode(b64).decode()
    assert sum(len(_moves(d)) for (cls, _), d in _paths(svg).items() if cls == "bodies") == 300
    assert len(md) < 300 * 100  # under 100 bytes a bar, as stored in every event
    assert "(last 400" not in md  # 300 bars: all shown
