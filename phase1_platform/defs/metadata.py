"""Metadata for the Dagster UI: time ranges, markdown previews and a price/volume chart.

The chart is an SVG (candles on top, volume below) embedded in markdown as a
``data:image/svg+xml;base64`` image: the UI's markdown renderer allows ``data:`` image
sources, so it renders in the asset's materialization panel without any plotting
library.
"""

from __future__ import annotations

import base64

import dagster as dg
import numpy as np
import pandas as pd

from ..core.export import CanonicalExporter
from ..core.schema import QTY_SCALE


def ts_text(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_range(ns: np.ndarray) -> str:
    if len(ns) == 0:
        return "(empty)"
    return f"{ts_text(int(np.min(ns)))} .. {ts_text(int(np.max(ns)))}"


def bars_preview_md(bars: pd.DataFrame, rows: int = 10) -> dg.MarkdownMetadataValue:
    """The first bars as a markdown table (canonical CSV columns)."""
    if len(bars) == 0:
        return dg.MetadataValue.md("_no bars_")
    text = CanonicalExporter(bars.head(rows)).to_bytes().decode("ascii").splitlines()
    header = text[0].split(",")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line.split(",")) + " |" for line in text[1:]]
    more = f"\n\n_{len(bars) - rows} more bars_" if len(bars) > rows else ""
    return dg.MetadataValue.md("\n".join(lines) + more)


def ticks_preview_md(ticks: pd.DataFrame, rows: int = 8) -> dg.MarkdownMetadataValue:
    if len(ticks) == 0:
        return dg.MetadataValue.md("_no ticks_")
    head = ticks.head(rows)
    cols = ["ts", "symbol", "price", "size", "exchange", "conditions", "trade_id", "source"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in head[cols].astype(str).itertuples(index=False):
        lines.append("| " + " | ".join(v.replace("|", "/") for v in rec) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _fmt(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".")


def _subpaths(template: str, *columns: np.ndarray) -> str:
    """One SVG path's data: ``template`` filled with each row of ``columns`` (coordinates
    rounded to 0.1 px)."""
    return "".join(template.format(*row) for row in zip(*(np.round(c, 1).tolist()
                                                           for c in columns), strict=True))


def bars_chart_svg(bars: pd.DataFrame, title: str, width: int = 720, height: int = 320) -> str:
    """Candles (price) over volume bars, one timeframe; returns the SVG text. Each layer
    is one ``<path>`` (wicks, rising and falling bodies, volumes): a few dozen bytes per
    bar, since the chart is stored in every materialization event of the asset."""
    ts = bars["ts"].to_numpy("int64")
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    n = len(ts)
    pad_l, pad_r, pad_t = 60, 10, 24
    price_h, vol_h, gap = int(height * 0.62), int(height * 0.22), 8
    plot_w = width - pad_l - pad_r
    o, h, lo, cl = (bars[k].to_numpy("float64")[order] for k in ("open", "high", "low", "close"))
    vol = (bars["qty"].to_numpy("int64") / QTY_SCALE if "qty" in bars.columns  # internal
           else bars["volume"].to_numpy("float64"))[order]
    pmin, pmax = (float(np.nanmin(lo)), float(np.nanmax(h))) if n else (0.0, 1.0)
    if pmax <= pmin:
        pmax = pmin + 1e-6
    vmax = float(np.nanmax(vol)) if n and np.nanmax(vol) > 0 else 1.0
    step = plot_w / max(n, 1)
    body_w = round(max(step * 0.7, 1.0), 1)

    def py(p: np.ndarray) -> np.ndarray:
        return pad_t + (pmax - p) / (pmax - pmin) * price_h

    vol_top = pad_t + price_h + gap
    xs = pad_l + np.arange(n) * step + step / 2
    left = xs - body_w / 2
    top = py(np.maximum(o, cl))
    body_h = np.maximum(py(np.minimum(o, cl)) - top, 0.8)
    vh = vol / vmax * vol_h
    up = cl >= o
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{pad_l}" y="15" font-size="12">{title}</text>',
        f'<text x="4" y="{pad_t + 10}">{_fmt(pmax)}</text>',
        f'<text x="4" y="{pad_t + price_h}">{_fmt(pmin)}</text>',
        f'<text x="4" y="{vol_top + 10}">vol {int(vmax)}</text>',
    ]
    box = f"M{{}} {{}}h{body_w}v{{}}h-{body_w}z"  # a bar's rectangle: left, top, height
    for rising, color in ((True, "#2a9d55"), (False, "#d64545")):
        k = up == rising
        if k.any():
            wicks = _subpaths("M{} {}V{}", xs[k], py(h[k]), py(lo[k]))
            bodies = _subpaths(box, left[k], top[k], body_h[k])
            parts.append(f'<path class="wicks" d="{wicks}" stroke="{color}"/>')
            parts.append(f'<path class="bodies" d="{bodies}" fill="{color}"/>')
    if n:
        volumes = _subpaths(box, left, vol_top + vol_h - vh, vh)
        parts.append(f'<path class="volumes" d="{volumes}" fill="#7a8ca8"/>')
        first, last = pd.Timestamp(int(ts[0]), tz="UTC"), pd.Timestamp(int(ts[-1]), tz="UTC")
        y = vol_top + vol_h + 14
        parts.append(f'<text x="{pad_l}" y="{y}">{first:%Y-%m-%d %H:%M}Z</text>')
        parts.append(f'<text x="{width - pad_r}" y="{y}" text-anchor="end">'
                     f'{last:%Y-%m-%d %H:%M}Z</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_chart_md(bars: pd.DataFrame, title: str, max_bars: int = 400) -> dg.MarkdownMetadataValue:
    """Markdown with the SVG chart inline (the last ``max_bars`` bars of one timeframe)."""
    if len(bars) == 0:
        return dg.MetadataValue.md("_no bars to chart_")
    shown = bars.tail(max_bars)
    svg = bars_chart_svg(shown, title)
    b64 = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    note = f" (last {max_bars} of {len(bars)} bars)" if len(bars) > max_bars else ""
    return dg.MetadataValue.md(f"![{title}](data:image/svg+xml;base64,{b64})\n\n{title}{note}")


def counts_table_md(counts: dict[str, int], key: str = "reason",
                    value: str = "rows") -> dg.MarkdownMetadataValue:
    if not counts:
        return dg.MetadataValue.md("_none_")
    lines = [f"| {key} | {value} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    return dg.MetadataValue.md("\n".join(lines))


def json_entries(values: dict) -> dict:
    """``values`` as Dagster metadata: dicts and lists as JSON entries, scalars as they are
    (a verdict's ``summary()`` shown under the same keys it is stored with)."""
    return {k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v
            for k, v in values.items()}
