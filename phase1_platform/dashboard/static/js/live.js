// The live bar stream: a WebSocket to the API's /v1/stream/bars?symbols=S, which relays the
// ingestion broadcast (phase1_platform/ingestion/broadcast.py, phase1_platform/api/relay.py).
// Frames are JSON objects:
//   {"type":"subscribed","symbols":[...],"schema":1,"stream":STATE}
//   {"type":"status","stream":STATE}     the relay's upstream came or went
//   {"type":"bar","symbol","timeframe","timestamp","open","high","low","close","volume",
//    "trade_count","vwap","revision","restated"}   (numbers as canonical strings)
//   {"type":"dropped","count":N}
// STATE is "connected", "connecting", "disconnected" or "not configured" (a frame without
// it comes straight from a broadcast: connected). A bar's current state is its message with
// the highest revision: RevisionBook keeps that. Revisions count per broadcaster lifetime,
// so after any reconnect (to the API or of the API to the broadcast) the client resyncs:
// it forgets the revisions and reloads from the store. The connection to the API is
// retried with exponential backoff (with jitter) until closed.

/** Per (symbol, timeframe, timestamp), the highest revision accepted so far. */
export class RevisionBook {
  constructor() {
    this.revisions = new Map();
  }

  static key(msg) {
    return `${msg.symbol}|${msg.timeframe}|${msg.timestamp}`;
  }

  /** True when `msg` is newer than what was accepted for its bar (and records it). */
  accept(msg) {
    const revision = Number(msg.revision);
    if (!Number.isFinite(revision)) return false;
    const key = RevisionBook.key(msg);
    const seen = this.revisions.get(key);
    if (seen !== undefined && revision <= seen) return false;
    this.revisions.set(key, revision);
    return true;
  }

  revisionOf(symbol, timeframe, timestamp) {
    return this.revisions.get(`${symbol}|${timeframe}|${timestamp}`);
  }

  clear() {
    this.revisions.clear();
  }

  get size() {
    return this.revisions.size;
  }
}

/** Backoff delays in ms: 0.5 s doubling to `max`, with +-20 % jitter. */
export function backoffDelay(attempt, base = 500, max = 10000, random = Math.random) {
  const raw = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/** A well-formed bar message of the broadcast schema (other frames and junk are refused). */
export function isBarMessage(msg) {
  if (!msg || msg.type !== "bar") return false;
  const fields = ["symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume"];
  if (!fields.every((f) => msg[f] !== undefined && msg[f] !== null)) return false;
  if (Number.isNaN(Date.parse(msg.timestamp))) return false;
  return ["open", "high", "low", "close", "volume"].every((f) => Number.isFinite(Number(msg[f])));
}

/**
 * One subscription to the stream. Callbacks:
 *   onBar(msg)             every well-formed bar frame (revision filtering is the caller's),
 *   onStatus(status, info) "connecting" | "disconnected" (no connection to the API) |
 *                          "connected" (bars flow) | "waiting" (the API has no broadcast
 *                          connection right now) | "not configured" (serve has no
 *                          --stream-url) | "closed",
 *   onResync()             after a reconnect: frames may have been missed meanwhile,
 *   onDropped(count)       the server dropped `count` frames for this slow client.
 */
export class BarStream {
  constructor(url, symbols, callbacks = {}) {
    this.url = url;
    this.symbols = symbols;
    this.cb = callbacks;
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.closed = false;
    this.everConnected = false;
    this.upstream = null;
    this.messages = 0;
  }

  endpoint() {
    const url = new URL(this.url);
    if (this.symbols.length) url.searchParams.set("symbols", this.symbols.join(","));
    return url.toString();
  }

  start() {
    this.closed = false;
    this.open();
    return this;
  }

  status(name, info = {}) {
    if (this.cb.onStatus) this.cb.onStatus(name, info);
  }

  open() {
    if (this.closed) return;
    this.status("connecting", { attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(this.endpoint());
    } catch (err) {
      this.retry(String(err));
      return;
    }
    this.socket = socket;
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket === socket) this.socket = null;
      this.retry(event.reason || `closed (code ${event.code})`);
    };
    socket.onerror = () => {
      // onclose follows and schedules the retry
    };
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return; // not JSON: ignore the frame, keep the connection
    }
    this.messages += 1;
    if (msg && msg.type === "subscribed") {
      const resync = this.everConnected;
      this.everConnected = true;
      this.attempt = 0;
      this.upstream = null;
      this.setUpstream(msg.stream || "connected", { symbols: msg.symbols });
      if (resync && this.cb.onResync) this.cb.onResync();
    } else if (msg && msg.type === "status") {
      const was = this.upstream;
      this.setUpstream(msg.stream);
      if (msg.stream === "connected" && was !== "connected" && this.cb.onResync) {
        this.cb.onResync();
      }
    } else if (msg && msg.type === "dropped") {
      if (this.cb.onDropped) this.cb.onDropped(Number(msg.count) || 0);
    } else if (isBarMessage(msg)) {
      if (this.cb.onBar) this.cb.onBar(msg);
    }
  }

  setUpstream(state, info = {}) {
    this.upstream = state;
    const shown = state === "connected" ? "connected"
      : state === "not configured" ? "not configured" : "waiting";
    this.status(shown, { ...info, upstream: state });
  }

  retry(reason) {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.status("disconnected", { reason, retryInMs: delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onclose = null;
      socket.close();
    }
    this.status("closed");
  }
}

const STATUS_TEXT = {
  connecting: "stream: connecting",
  connected: "stream: connected",
  disconnected: "stream: disconnected",
  waiting: "stream: waiting for the ingest broadcast",
  "not configured": "stream: off (phase1 serve --stream-url)",
  closed: "stream: closed",
};

/** The header's stream status (`el` holds a `.status-text`; its dot follows data-stream). */
export function renderStreamStatus(el, status, info = {}) {
  el.dataset.stream = status;
  let text = STATUS_TEXT[status] || `stream: ${status}`;
  if (status === "disconnected" && info.retryInMs !== undefined) {
    text += ` (retry in ${(info.retryInMs / 1000).toFixed(1)} s)`;
  }
  el.querySelector(".status-text").textContent = text;
  el.title = info.reason ? String(info.reason)
    : info.upstream ? `broadcast relay: ${info.upstream}` : "";
}
