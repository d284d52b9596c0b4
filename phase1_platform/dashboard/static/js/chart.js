// The candlestick + volume chart (TradingView lightweight-charts 5, vendored standalone
// build: window.LightweightCharts). BarChart keeps its own time-sorted copy of the bars so a
// live bar can append (series.update), replace its candle (update with historicalUpdate)
// or, for a new bar between two others, be inserted (setData of the merged bars).

import { barLabel, tickMark, zoneLabel } from "./time.js";

const LWC = window.LightweightCharts;

export const COLORS = {
  background: "#0d1117",
  text: "#aab2bf",
  grid: "#161b22",
  border: "#262c36",
  up: "#26a69a",
  down: "#ef5350",
  upVolume: "rgba(38, 166, 154, 0.45)",
  downVolume: "rgba(239, 83, 80, 0.45)",
  crosshair: "#5d6673",
};

function volumeBar(bar) {
  return {
    time: bar.time,
    value: bar.volume,
    color: bar.close >= bar.open ? COLORS.upVolume : COLORS.downVolume,
  };
}

function candle(bar) {
  return { time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
}

function formatNumber(value, precision) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: precision, maximumFractionDigits: precision,
  });
}

export class BarChart {
  constructor(container, legend, { timeZone }) {
    if (!LWC) throw new Error("lightweight-charts did not load (static/vendor)");
    this.container = container;
    this.legend = legend;
    this.timeZone = timeZone;
    this.bars = []; // sorted by time, parsed numbers
    this.index = new Map(); // time -> position in this.bars
    this.meta = { symbol: "", timeframe: "", precision: 2 };
    this.chart = LWC.createChart(container, {
      autoSize: true,
      layout: {
        background: { type: "solid", color: COLORS.background },
        textColor: COLORS.text,
        fontSize: 11,
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
        attributionLogo: true, // TradingView's attribution (inline SVG, nothing remote)
      },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      rightPriceScale: { borderColor: COLORS.border, scaleMargins: { top: 0.08, bottom: 0.28 } },
      timeScale: { borderColor: COLORS.border, timeVisible: true, secondsVisible: false,
        rightOffset: 4 },
      crosshair: {
        mode: LWC.CrosshairMode.Normal,
        vertLine: { color: COLORS.crosshair, labelBackgroundColor: "#2a2f3a" },
        horzLine: { color: COLORS.crosshair, labelBackgroundColor: "#2a2f3a" },
      },
    });
    this.candles = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, wickUpColor: COLORS.up,
      wickDownColor: COLORS.down, borderVisible: false,
    });
    this.volume = this.chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: "volume", priceFormat: { type: "volume" }, lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    this.watermark = LWC.createTextWatermark(this.chart.panes()[0], {
      horzAlign: "center", vertAlign: "center",
      lines: [{ text: "", color: "rgba(170, 178, 191, 0.07)", fontSize: 64 }],
    });
    this.setTimeZone(timeZone);
    this.chart.subscribeCrosshairMove((param) => this.onCrosshair(param));
  }

  setTimeZone(timeZone) {
    this.timeZone = timeZone;
    this.chart.applyOptions({
      localization: {
        timeFormatter: (t) => `${barLabel(t, this.meta.timeframe, timeZone)} ${zoneLabel(timeZone)}`,
      },
      timeScale: { tickMarkFormatter: (t, type) => tickMark(t, type, timeZone) },
    });
    this.renderLegend(this.lastBar());
  }

  /** Replace every bar (a new symbol, timeframe or date). */
  setBars(bars, { symbol, timeframe, precision }) {
    this.meta = { symbol, timeframe, precision };
    this.bars = bars.slice().sort((a, b) => a.time - b.time);
    this.reindex();
    const minMove = 1 / 10 ** precision;
    this.candles.applyOptions({ priceFormat: { type: "price", precision, minMove } });
    this.chart.applyOptions({ timeScale: { timeVisible: timeframe !== "1d" } });
    this.candles.setData(this.bars.map(candle));
    this.volume.setData(this.bars.map(volumeBar));
    this.watermark.applyOptions({
      lines: [{ text: symbol ? `${symbol} · ${timeframe}` : "", color: "rgba(170, 178, 191, 0.07)",
        fontSize: 64 }],
    });
    if (this.bars.length) this.chart.timeScale().fitContent();
    this.renderLegend(this.lastBar());
  }

  reindex() {
    this.index = new Map(this.bars.map((bar, i) => [bar.time, i]));
  }

  /** Apply one live bar: "appended" | "replaced" | "inserted". */
  applyLive(bar) {
    const last = this.lastBar();
    let how;
    if (!last || bar.time > last.time) {
      this.bars.push(bar);
      this.index.set(bar.time, this.bars.length - 1);
      this.candles.update(candle(bar));
      this.volume.update(volumeBar(bar));
      how = "appended";
    } else if (this.index.has(bar.time)) {
      const at = this.index.get(bar.time);
      this.bars[at] = bar;
      const historical = at !== this.bars.length - 1;
      this.candles.update(candle(bar), historical);
      this.volume.update(volumeBar(bar), historical);
      how = "replaced";
    } else {
      this.bars.push(bar);
      this.bars.sort((a, b) => a.time - b.time);
      this.reindex();
      this.candles.setData(this.bars.map(candle));
      this.volume.setData(this.bars.map(volumeBar));
      how = "inserted";
    }
    if (!this.hovering) this.renderLegend(this.lastBar());
    return how;
  }

  lastBar() {
    return this.bars.length ? this.bars[this.bars.length - 1] : null;
  }

  /** What the chart's series hold (the test hook reads this). */
  data() {
    const volumes = new Map(this.volume.data().map((v) => [v.time, v.value]));
    return this.candles.data().map((c) => ({
      time: c.time, open: c.open, high: c.high, low: c.low, close: c.close,
      volume: volumes.get(c.time),
    }));
  }

  onCrosshair(param) {
    const point = param && param.time !== undefined ? this.bars[this.index.get(param.time)] : null;
    this.hovering = Boolean(point);
    this.renderLegend(point || this.lastBar());
  }

  renderLegend(bar) {
    const el = this.legend;
    const { symbol, timeframe, precision } = this.meta;
    const field = (name) => el.querySelector(`[data-field="${name}"]`);
    field("title").textContent = symbol ? `${symbol} · ${timeframe}` : "";
    if (!bar) {
      for (const name of ["time", "o", "h", "l", "c", "v", "n", "vw", "chg"]) {
        field(name).textContent = "–";
      }
      el.dataset.direction = "";
      return;
    }
    field("time").textContent = `${barLabel(bar.time, timeframe, this.timeZone)} `
      + zoneLabel(this.timeZone);
    field("o").textContent = formatNumber(bar.open, precision);
    field("h").textContent = formatNumber(bar.high, precision);
    field("l").textContent = formatNumber(bar.low, precision);
    field("c").textContent = formatNumber(bar.close, precision);
    field("v").textContent = formatNumber(bar.volume, 0);
    field("n").textContent = Number.isFinite(bar.trades) ? formatNumber(bar.trades, 0) : "–";
    field("vw").textContent = bar.vwap === null ? "–" : formatNumber(bar.vwap, precision + 2);
    const change = bar.open ? (100 * (bar.close - bar.open)) / bar.open : 0;
    field("chg").textContent = `${change >= 0 ? "+" : ""}${change.toFixed(2)}%`;
    el.dataset.direction = bar.close >= bar.open ? "up" : "down";
  }
}
