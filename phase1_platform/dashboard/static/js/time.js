// Time helpers: bar timestamps are UTC (`YYYY-MM-DDTHH:MM:SSZ`, the bar's open); the chart
// shows them in the exchange's time zone (or UTC) with Intl, which works offline.

export const EXCHANGE_TZ = "America/New_York";

const formatters = new Map();

function formatter(timeZone, options) {
  const key = timeZone + JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", { timeZone, hourCycle: "h23", ...options });
    formatters.set(key, f);
  }
  return f;
}

function parts(seconds, timeZone, options) {
  const out = {};
  for (const p of formatter(timeZone, options).formatToParts(new Date(seconds * 1000))) {
    out[p.type] = p.value;
  }
  return out;
}

/** Seconds since the epoch of an API timestamp (RFC 3339, `Z` or an offset). */
export function toSeconds(timestamp) {
  const ms = Date.parse(timestamp);
  if (Number.isNaN(ms)) throw new Error(`bad timestamp ${JSON.stringify(timestamp)}`);
  return Math.round(ms / 1000);
}

/** `YYYY-MM-DD` of an instant in `timeZone`. */
export function dateIn(seconds, timeZone) {
  const p = parts(seconds, timeZone, { year: "numeric", month: "2-digit", day: "2-digit" });
  return `${p.year}-${p.month}-${p.day}`;
}

/** `HH:MM` (or `HH:MM:SS`) of an instant in `timeZone`. */
export function clockIn(seconds, timeZone, withSeconds = false) {
  const opts = { hour: "2-digit", minute: "2-digit" };
  if (withSeconds) opts.second = "2-digit";
  const p = parts(seconds, timeZone, opts);
  return withSeconds ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
}

/** Short zone label for the header and legend ("ET" for New York, else the zone name). */
export function zoneLabel(timeZone) {
  if (timeZone === "UTC") return "UTC";
  if (timeZone === EXCHANGE_TZ) return "ET";
  return timeZone;
}

/** The calendar day after `YYYY-MM-DD` (string arithmetic in UTC: no DST surprises). */
export function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** A label for a bar time: the date for daily bars, else date and clock. */
export function barLabel(seconds, timeframe, timeZone) {
  if (timeframe === "1d") return dateIn(seconds, timeZone);
  return `${dateIn(seconds, timeZone)} ${clockIn(seconds, timeZone)}`;
}

/** Tick-mark text for the chart's time axis (lightweight-charts TickMarkType 0..4). */
export function tickMark(seconds, tickMarkType, timeZone) {
  const date = dateIn(seconds, timeZone);
  switch (tickMarkType) {
    case 0: return date.slice(0, 4); // year
    case 1: return date.slice(0, 7); // month
    case 2: return date.slice(5); // day of month
    case 3: return clockIn(seconds, timeZone); // time
    default: return clockIn(seconds, timeZone, true); // time with seconds
  }
}

/** Local wall-clock `HH:MM:SS` of now (the status line's "last update"). */
export function nowClock() {
  return new Date().toLocaleTimeString("en-GB", { hour12: false });
}
