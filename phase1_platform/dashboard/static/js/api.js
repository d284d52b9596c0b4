// The read API client (DESIGN section 10). The API sits on another port: its base URL
// comes from the dashboard server's /config.json. Errors are RFC 9457 problem documents;
// ApiError carries their one-line `detail`.

export class ApiError extends Error {
  constructor(message, status = 0, unreachable = false) {
    super(message);
    this.status = status;
    this.unreachable = unreachable;
  }
}

const PAGE_LIMIT = 10000; // the API's maximum page size: a day of 1m bars is one page
const MAX_PAGES = 1000; // a guard against a server that never ends its pagination

const WILDCARD_HOSTS = ["0.0.0.0", "[::]"];

/** An address on a wildcard interface (0.0.0.0, ::) made the host this page came from. */
export function reachable(address, pageHost = location.hostname) {
  const url = new URL(address);
  if (WILDCARD_HOSTS.includes(url.hostname)) url.hostname = pageHost;
  return url.toString().replace(/\/$/, "");
}

/** The dashboard server's /config.json: where the read API and its stream are. */
export async function loadConfig() {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new ApiError(`/config.json: HTTP ${response.status}`, response.status);
  const config = await response.json();
  return {
    api_url: reachable(config.api_url),
    stream_url: config.stream_url ? reachable(config.stream_url) : null,
  };
}

export class ApiClient {
  constructor(baseUrl) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  url(path, params = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    return url.toString();
  }

  async get(path, params, { allow404 = false, signal } = {}) {
    const url = this.url(path, params);
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" }, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(`cannot reach the read API at ${this.baseUrl}`, 0, true);
    }
    if (allow404 && response.status === 404) return null;
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch {
        // not a problem document: keep the status line
      }
      throw new ApiError(`${path}: ${detail}`, response.status);
    }
    return response.json();
  }

  health(opts) {
    return this.get("/v1/health", {}, opts);
  }

  /** [{symbol, first_date, last_date, timeframes}] sorted by symbol. */
  async symbols(opts) {
    const body = await this.get("/v1/symbols", {}, opts);
    const list = Array.isArray(body.symbols) ? body.symbols : [];
    return list.slice().sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  }

  /** Every bar of the selection, following next_page_token to its end. */
  async bars({ symbol, timeframe, start, end }, opts = {}) {
    const out = [];
    let token = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const body = await this.get("/v1/bars", {
        symbols: symbol, timeframe, start, end, limit: PAGE_LIMIT, page_token: token,
      }, opts);
      for (const bar of body.bars || []) out.push(bar);
      token = body.next_page_token;
      if (!token) return out;
    }
    throw new ApiError(`/v1/bars: more than ${MAX_PAGES} pages for ${symbol} ${timeframe}`);
  }

  /** The partition's counts, parity and quality; null when the API has no such partition. */
  partition(date, symbol, opts = {}) {
    const path = `/v1/partitions/${encodeURIComponent(date)}/${encodeURIComponent(symbol)}`;
    return this.get(path, {}, { ...opts, allow404: true });
  }
}

/** A bar of the API (numbers as canonical strings) as chart numbers. */
export function parseBar(bar, toSeconds) {
  return {
    time: toSeconds(bar.t),
    open: Number(bar.o),
    high: Number(bar.h),
    low: Number(bar.l),
    close: Number(bar.c),
    volume: Number(bar.v),
    trades: Number(bar.n),
    vwap: bar.vw === null || bar.vw === undefined || bar.vw === "" ? null : Number(bar.vw),
  };
}

/** Decimal places of a canonical number string ("168.1" -> 1). */
export function decimals(text) {
  const s = String(text);
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}
