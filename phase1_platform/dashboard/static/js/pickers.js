// The header's pickers: which timeframes a symbol offers and which dates it has bars on
// (from /v1/symbols and the symbol's coarsest bars), and filling the <select>s.

import { EXCHANGE_TZ, dateIn, nextDay, toSeconds } from "./time.js";

export const TIMEFRAMES = ["1m", "5m", "15m", "1h", "1d"]; // what the switch offers
const BY_DURATION = ["1d", "4h", "1h", "30m", "15m", "5m", "1m"]; // coarsest first

/** The timeframes a symbol has bars for (all, when /v1/symbols does not say). */
export function timeframesOf(info) {
  const list = info && Array.isArray(info.timeframes) ? info.timeframes : null;
  return list && list.length ? list : TIMEFRAMES;
}

/** The trading dates with bars, newest first: the exchange dates of the symbol's coarsest
 * bars from its first to its last date (one bar per date for 1d). */
export async function listDates(api, info) {
  if (!info.first_date || !info.last_date) return [];
  const coarsest = BY_DURATION.find((tf) => timeframesOf(info).includes(tf)) || "1d";
  const bars = await api.bars({
    symbol: info.symbol, timeframe: coarsest, start: info.first_date,
    end: nextDay(info.last_date),
  });
  let dates = [...new Set(bars.map((b) => dateIn(toSeconds(b.t), EXCHANGE_TZ)))];
  if (!dates.length) dates = [...new Set([info.last_date, info.first_date])];
  return dates.sort().reverse();
}

export function fillDates(select, dates) {
  select.replaceChildren(...dates.map((d) => new Option(d, d)));
  select.disabled = !dates.length;
}

/** Grey out the timeframes the symbol lacks; the timeframe to show (`current` if offered). */
export function fillTimeframes(select, info, current) {
  const available = timeframesOf(info);
  for (const option of select.options) option.disabled = !available.includes(option.value);
  const chosen = available.includes(current)
    ? current : TIMEFRAMES.find((tf) => available.includes(tf)) || "1m";
  select.value = chosen;
  return chosen;
}
