// The dashboard controller: pickers -> REST bars -> chart; live stream -> chart; partition
// -> panel. State lives here; the URL hash (#/SYMBOL/TF/DATE) keeps the selection across
// reloads. window.__dashboard is the test hook (read-only views of what is shown).

import { ApiClient, ApiError, decimals, loadConfig, parseBar } from "./api.js";
import { BarChart } from "./chart.js";
import { setField } from "./dom.js";
import { BarStream, RevisionBook, renderStreamStatus } from "./live.js";
import { renderPanel, renderPanelError, renderPanelLoading } from "./panel.js";
import { TIMEFRAMES, fillDates, fillTimeframes, listDates } from "./pickers.js";
import { EXCHANGE_TZ, dateIn, nextDay, nowClock, toSeconds, zoneLabel } from "./time.js";

const SYMBOLS_POLL_MS = 15000; // new symbols and dates show up by themselves
const EMPTY_POLL_MS = 4000;
const PANEL_AFTER_LIVE_MS = 3000; // live bars changed the partition: look again soon
const PANEL_POLL_MS = 15000; // verdicts change when the pipeline runs: keep the panel fresh
const STREAM_LOG_MAX = 500;

const $ = (id) => document.getElementById(id);
const ui = {
  symbol: $("symbol-select"), timeframe: $("timeframe-select"), date: $("date-select"),
  prev: $("date-prev"), next: $("date-next"), tz: $("tz-toggle"), status: $("stream-status"),
  updated: $("last-update"), empty: $("empty-state"), error: $("error-state"),
  noBars: $("no-bars"), panel: $("parity-panel"), panelBody: $("panel-body"),
  apiUrl: $("api-url"), count: $("bar-count"), note: $("view-note"),
};

const state = {
  config: null, api: null, chart: null, stream: null, book: new RevisionBook(),
  symbols: [], dates: new Map(), symbol: "", timeframe: "1m", date: "",
  timeZone: EXCHANGE_TZ, seq: 0, loading: false, pending: [], query: null,
  loads: 0, live: { received: 0, applied: 0, last: null }, streamStatus: "idle",
  log: [], panelTimer: null, pollTimer: null, panelData: null,
};

function setPageState(name) {
  document.body.dataset.state = name;
  ui.empty.hidden = name !== "empty";
  ui.error.hidden = name !== "error";
}

// ------------------------------------------------------------------ symbols and dates
async function refreshSymbols() {
  let symbols;
  try {
    symbols = await state.api.symbols();
  } catch (err) {
    showError(err);
    return false;
  }
  const had = state.symbols.map((s) => s.symbol).join(",");
  const span = (s) => `${s.first_date}|${s.last_date}|${(s.timeframes || []).join(",")}`;
  const before = new Map(state.symbols.map((s) => [s.symbol, span(s)]));
  state.symbols = symbols;
  // a symbol whose dates or timeframes changed lists its dates afresh
  for (const s of symbols) if (before.get(s.symbol) !== span(s)) state.dates.delete(s.symbol);
  if (!symbols.length) {
    setPageState("empty");
    stopStream();
    ui.symbol.replaceChildren();
    ui.symbol.disabled = true;
    ui.date.disabled = true;
    return false;
  }
  if (had !== symbols.map((s) => s.symbol).join(",")) {
    ui.symbol.replaceChildren(...symbols.map((s) => new Option(s.symbol, s.symbol)));
    if (symbolInfo()) ui.symbol.value = state.symbol;
  }
  ui.symbol.disabled = false;
  return true;
}

function symbolInfo(symbol = state.symbol) {
  return state.symbols.find((s) => s.symbol === symbol) || null;
}

/** The symbol's dates with bars (cached until its span in /v1/symbols changes). */
async function datesOf(info) {
  if (!state.dates.has(info.symbol)) state.dates.set(info.symbol, await listDates(state.api, info));
  return state.dates.get(info.symbol);
}

function showTimeframes(info) {
  state.timeframe = fillTimeframes(ui.timeframe, info, state.timeframe);
}

async function refreshDates() {
  const info = symbolInfo();
  try {
    fillDates(ui.date, await datesOf(info));
  } catch {
    return; // the next poll tries again; the view stays as it is
  }
  showTimeframes(info);
  ui.date.value = state.date;
}

// ------------------------------------------------------------------ selection
async function selectSymbol(symbol, { date, timeframe } = {}) {
  const info = symbolInfo(symbol) || state.symbols[0];
  const changed = info.symbol !== state.symbol;
  state.symbol = info.symbol;
  ui.symbol.value = info.symbol;
  if (timeframe) state.timeframe = timeframe;
  showTimeframes(info);
  let dates;
  try {
    dates = await datesOf(info);
  } catch (err) {
    showError(err);
    return;
  }
  fillDates(ui.date, dates);
  state.date = dates.includes(date) ? date : dates[0] || info.last_date || "";
  ui.date.value = state.date;
  if (changed || !state.stream) startStream();
  await loadView();
}

function writeHash() {
  const hash = `#/${state.symbol}/${state.timeframe}/${state.date}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function readHash() {
  const [symbol, timeframe, date] = location.hash.replace(/^#\/?/, "").split("/");
  return { symbol, timeframe: TIMEFRAMES.includes(timeframe) ? timeframe : undefined, date };
}

function viewQuery() {
  const info = symbolInfo();
  const start = state.timeframe === "1d" && info && info.first_date ? info.first_date : state.date;
  return { symbol: state.symbol, timeframe: state.timeframe, start, end: nextDay(state.date) };
}

/** Does a bar time belong to what is shown (the date; for 1d, up to the date)? */
function inView(seconds) {
  const date = dateIn(seconds, EXCHANGE_TZ);
  if (state.timeframe === "1d") return date <= state.date;
  return date === state.date;
}

async function loadView() {
  if (!state.symbol || !state.date) return;
  const seq = ++state.seq;
  state.loading = true;
  state.pending = [];
  writeHash();
  document.body.dataset.view = "loading";
  const query = viewQuery();
  renderPanelLoading(ui.panel, state.date, state.symbol);
  let raw;
  try {
    raw = await state.api.bars(query);
  } catch (err) {
    if (seq === state.seq) showError(err);
    return;
  }
  if (seq !== state.seq) return; // a newer selection replaced this one
  const bars = raw.map((b) => parseBar(b, toSeconds));
  const places = raw.reduce((m, b) => Math.max(m, decimals(b.o), decimals(b.h), decimals(b.l),
    decimals(b.c)), 2);
  state.query = query;
  state.chart.setBars(bars, { symbol: state.symbol, timeframe: state.timeframe,
    precision: Math.min(places, 6) });
  state.loading = false;
  for (const bar of state.pending) applyBar(bar);
  state.pending = [];
  setPageState("ready");
  showCounts();
  state.loads += 1;
  document.body.dataset.view = "ready";
  document.body.dataset.loads = String(state.loads);
  await refreshPanel();
}

function showCounts() {
  const n = state.chart.bars.length;
  ui.count.textContent = `${n} bar${n === 1 ? "" : "s"}`;
  ui.noBars.hidden = n > 0;
  setField(ui.noBars, "what", `${state.symbol} ${state.timeframe}`);
  ui.note.textContent = state.timeframe === "1d"
    ? `daily bars ${state.query.start} .. ${state.date}` : `${state.date} (${zoneLabel(state.timeZone)})`;
}

// ------------------------------------------------------------------ panel
async function refreshPanel() {
  clearTimeout(state.panelTimer);
  const { date, symbol, timeframe } = state;
  try {
    const data = await state.api.partition(date, symbol);
    if (date === state.date && symbol === state.symbol) {
      state.panelData = data;
      renderPanel(ui.panel, ui.panelBody, data, { date, symbol, timeframe: state.timeframe });
    }
  } catch (err) {
    if (date === state.date && symbol === state.symbol) {
      renderPanelError(ui.panel, ui.panelBody, err, { date, symbol, timeframe });
    }
  }
  clearTimeout(state.panelTimer);
  state.panelTimer = setTimeout(refreshPanel, PANEL_POLL_MS);
}

function schedulePanelRefresh() {
  clearTimeout(state.panelTimer);
  state.panelTimer = setTimeout(refreshPanel, PANEL_AFTER_LIVE_MS);
}

// ------------------------------------------------------------------ live stream
function stopStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}

function startStream() {
  stopStream();
  if (!state.config.stream_url || !state.symbol) return;
  state.book.clear();
  state.stream = new BarStream(state.config.stream_url, [state.symbol], {
    onStatus: showStreamStatus,
    onBar: onStreamBar,
    onResync: () => {
      state.book.clear(); // the broadcaster may have restarted: revisions start again
      loadView();
    },
    onDropped: (count) => {
      logStream({ type: "dropped", count });
      loadView(); // frames were lost: the store has the bars' current state
    },
  }).start();
}

function showStreamStatus(status, info) {
  state.streamStatus = status;
  renderStreamStatus(ui.status, status, info);
}

function logStream(entry) {
  state.log.push(entry);
  if (state.log.length > STREAM_LOG_MAX) state.log.shift();
}

function onStreamBar(msg) {
  state.live.received += 1;
  const accepted = state.book.accept(msg);
  const entry = { symbol: msg.symbol, timeframe: msg.timeframe, timestamp: msg.timestamp,
    revision: Number(msg.revision), restated: Boolean(msg.restated), close: msg.close,
    accepted, applied: null };
  logStream(entry);
  if (!accepted || msg.symbol !== state.symbol) return;
  state.live.last = nowClock();
  ui.updated.textContent = `last update ${state.live.last}`;
  const date = dateIn(toSeconds(msg.timestamp), EXCHANGE_TZ);
  addDate(msg.symbol, date);
  if (msg.timeframe !== state.timeframe) return;
  const bar = parseBar({ t: msg.timestamp, o: msg.open, h: msg.high, l: msg.low, c: msg.close,
    v: msg.volume, n: msg.trade_count, vw: msg.vwap }, toSeconds);
  if (!inView(bar.time)) return;
  if (state.loading) {
    state.pending.push(bar);
    entry.applied = "pending";
    return;
  }
  entry.applied = applyBar(bar);
}

function applyBar(bar) {
  const how = state.chart.applyLive(bar);
  state.live.applied += 1;
  showCounts();
  schedulePanelRefresh();
  return how;
}

function addDate(symbol, date) {
  const dates = state.dates.get(symbol);
  if (!dates || dates.includes(date)) return;
  dates.push(date);
  dates.sort().reverse();
  if (symbol === state.symbol) {
    fillDates(ui.date, dates);
    ui.date.value = state.date;
  }
}

/** The store the API reads (its health names it, password masked): the empty state's
 * replay command then targets exactly that store. */
async function showStore() {
  try {
    const health = await state.api.health();
    if (!health.store) return;
    state.store = health.store;
    setField(ui.empty, "store", health.store);
    setField(ui.empty, "replay", "phase1 replay --csv fixtures/2013-10-07/AAPL.csv "
      + `--output aapl.csv --database-url ${health.store}`);
  } catch {
    // the symbols call reports an unreachable API
  }
}

// ------------------------------------------------------------------ errors and polling
function showError(err) {
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  setField(ui.error, "message", message);
  const heading = ui.error.querySelector("h2");
  heading.textContent = err instanceof ApiError && !err.unreachable
    ? "The read API refused a request" : "Cannot reach the read API";
  setPageState("error");
  document.body.dataset.view = "error";
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  const wait = document.body.dataset.state === "ready" ? SYMBOLS_POLL_MS : EMPTY_POLL_MS;
  state.pollTimer = setTimeout(poll, wait);
}

async function poll() {
  const before = document.body.dataset.state;
  const ok = await refreshSymbols();
  if (ok && before !== "ready") {
    state.dates.clear();
    const wanted = readHash();
    await selectSymbol(wanted.symbol || state.symbols[0].symbol, wanted);
  } else if (ok && !symbolInfo()) {
    await selectSymbol(state.symbols[0].symbol);
  } else if (ok && !state.dates.has(state.symbol)) {
    await refreshDates(); // new dates (or timeframes) for the shown symbol: list them
  }
  schedulePoll();
}

// ------------------------------------------------------------------ wiring
function wire() {
  ui.symbol.addEventListener("change", () => selectSymbol(ui.symbol.value,
    { timeframe: state.timeframe }));
  ui.timeframe.addEventListener("change", () => {
    state.timeframe = ui.timeframe.value;
    loadView();
  });
  ui.date.addEventListener("change", () => {
    state.date = ui.date.value;
    loadView();
  });
  const step = (delta) => {
    const i = ui.date.selectedIndex + delta; // options are newest first
    if (i < 0 || i >= ui.date.options.length) return;
    ui.date.selectedIndex = i;
    state.date = ui.date.value;
    loadView();
  };
  ui.prev.addEventListener("click", () => step(+1));
  ui.next.addEventListener("click", () => step(-1));
  ui.tz.addEventListener("click", () => {
    state.timeZone = state.timeZone === "UTC" ? EXCHANGE_TZ : "UTC";
    ui.tz.textContent = zoneLabel(state.timeZone);
    state.chart.setTimeZone(state.timeZone);
    if (state.query) showCounts();
  });
  window.addEventListener("hashchange", () => {
    const wanted = readHash();
    if (wanted.symbol && symbolInfo(wanted.symbol)) selectSymbol(wanted.symbol, wanted);
  });
}

function exposeHook() {
  window.__dashboard = {
    candles: () => state.chart.data(),
    state: () => ({
      page: document.body.dataset.state, view: document.body.dataset.view,
      symbol: state.symbol, timeframe: state.timeframe, date: state.date,
      timeZone: state.timeZone, loads: state.loads, query: state.query,
      stream: state.streamStatus, live: { ...state.live },
      dates: [...(state.dates.get(state.symbol) || [])],
    }),
    streamLog: () => state.log.map((e) => ({ ...e })),
    panel: () => state.panelData,
    // x pixel of a bar time on the chart (null when off screen): lets a test hover a bar
    coordinateOf: (time) => state.chart.chart.timeScale().timeToCoordinate(time),
  };
}

async function boot() {
  exposeHook();
  try {
    state.config = await loadConfig();
  } catch (err) {
    showError(err);
    return;
  }
  state.api = new ApiClient(state.config.api_url);
  ui.apiUrl.textContent = state.config.api_url;
  setField(ui.empty, "api", state.config.api_url);
  showStore();
  state.chart = new BarChart($("chart"), $("legend"), { timeZone: state.timeZone });
  wire();
  const ok = await refreshSymbols();
  if (ok) {
    const wanted = readHash();
    await selectSymbol(wanted.symbol || state.symbols[0].symbol, wanted);
  }
  schedulePoll();
}

boot();
