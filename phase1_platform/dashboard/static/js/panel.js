// The parity and quality panel of the shown partition, from GET /v1/partitions/{date}/{symbol}
// (phase1_platform/api/models.py PartitionInfo). partitionView() reads that document into one
// view model; the render functions draw it. The matched % is shown exactly as the API
// reports it (no rounding here); a verdict the pipeline never recorded reads "not judged";
// a verdict on bars that changed since is flagged stale.

import { h, setField } from "./dom.js";

const DURATION = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"];
const rank = (tf) => (DURATION.includes(tf) ? DURATION.indexOf(tf) : DURATION.length);
const byDuration = (a, b) => rank(a.timeframe) - rank(b.timeframe);

const entries = (obj) => (obj && typeof obj === "object" && !Array.isArray(obj)
  ? Object.entries(obj) : []);

/** [[name, count]] largest first (ties by name). */
function counts(obj) {
  return entries(obj).map(([k, v]) => [k, Number(v)])
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

function verdict(timeframe, raw) {
  return {
    timeframe,
    status: raw.status || null,
    passed: typeof raw.passed === "boolean" ? raw.passed : null,
    stale: Boolean(raw.stale),
    evaluatedAt: raw.evaluated_at || null,
    summary: raw.summary || {},
  };
}

/** The panel's view of a PartitionInfo document. */
export function partitionView(body) {
  const c = body.counts || {};
  const q = c.quarantined || {};
  const parity = body.parity || null;
  const quality = body.quality || null;
  return {
    key: body.partition || "",
    ticks: c.ticks,
    quarantineTotal: q.total,
    reasons: counts(q.by_reason),
    bars: entries(c.bars).map(([tf, n]) => ({ timeframe: tf, n: Number(n) })).sort(byDuration),
    ruleSet: body.rule_set,
    exportSha256: body.export ? body.export.sha256 : null,
    parity: entries(parity && parity.timeframes).map(([tf, v]) => ({
      ...verdict(tf, v),
      compared: Boolean(v.compared),
      matchedPct: v.matched_pct,
      barsCompared: v.bars_compared,
      barsMatched: v.bars_matched,
      unexplainedPct: v.unexplained_pct,
      categories: counts(v.mismatches_by_category),
      note: v.note || null,
    })).sort(byDuration),
    quality: entries(quality && quality.timeframes).map(([tf, v]) => ({
      ...verdict(tf, v), failedRules: v.failed_rules || [],
    })).sort(byDuration),
    rejected: quality && quality.rejected_ratio ? verdict("", quality.rejected_ratio) : null,
  };
}

/** The matched % text, exactly as the API wrote the number. */
export function matchedText(value) {
  return value === undefined || value === null ? null : `${String(value)}%`;
}

// ------------------------------------------------------------------ small pieces
function badge(v, { unjudged = "not judged" } = {}) {
  if (!v || v.passed === null) {
    return h("span", { class: "badge none", "data-verdict": "none" }, unjudged);
  }
  const word = v.passed ? "pass" : "fail";
  return h("span", { class: `badge ${word}`, "data-verdict": word }, word);
}

function staleBadge(v) {
  if (!v || !v.stale) return null;
  const when = v.evaluatedAt ? ` (judged ${v.evaluatedAt.slice(0, 19).replace("T", " ")} UTC)` : "";
  return h("span", { class: "badge stale", "data-testid": "stale-flag",
    title: `the bars changed since this verdict${when}: rerun the pipeline` }, "stale");
}

function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).flatMap(([k, v, attrs]) => [
    h("dt", {}, k), h("dd", attrs || {}, v === undefined || v === null ? "–" : v)]));
}

function countTable(rows, head, testid) {
  if (!rows.length) return h("p", { class: "note", "data-testid": testid }, "none");
  return h("table", { class: "mini counts", "data-testid": testid },
    h("tr", {}, h("th", {}, head), h("th", { class: "num" }, "count")),
    rows.map(([k, n]) => h("tr", {}, h("td", {}, k),
      h("td", { class: "num" }, n.toLocaleString("en-US")))));
}

// ------------------------------------------------------------------ sections
function paritySection(view, timeframe) {
  const shown = view.parity.find((v) => v.timeframe === timeframe) || null;
  const section = h("section", { "data-testid": "parity-section" },
    h("h3", {}, `Parity ${timeframe}`, badge(shown), staleBadge(shown)));
  if (!shown) {
    const judged = view.parity.map((v) => v.timeframe);
    section.append(h("div", { class: "big muted", "data-testid": "parity-match-pct" },
      "not judged"), h("p", { class: "note" }, judged.length
      ? `parity was judged for ${judged.join(", ")} only`
      : "no parity verdict recorded for this partition: run the Dagster pipeline (make run)"));
    return section;
  }
  const pct = matchedText(shown.matchedPct);
  if (!shown.compared || pct === null) {
    section.append(h("div", { class: "big muted", "data-testid": "parity-match-pct" },
      "not compared"), h("p", { class: "note" }, shown.note || "no vendor bars to compare"));
    return section;
  }
  section.append(
    h("div", { class: "big", "data-testid": "parity-match-pct",
      "data-value": String(shown.matchedPct) }, pct, h("span", { class: "muted" }, " matched")),
    kv([
      ["bars compared", shown.barsCompared],
      ["bars matched", shown.barsMatched],
      shown.summary.required_match_pct != null
        ? ["required", `${shown.summary.required_match_pct}%`] : null,
      ["unexplained", shown.unexplainedPct == null ? null : `${shown.unexplainedPct}%`],
      ["missing in ours", shown.summary.missing_in_generated],
      ["missing in reference", shown.summary.missing_in_reference],
    ]),
    h("h4", {}, "mismatches by category"),
    countTable(shown.categories, "category", "mismatch-categories"));
  return section;
}

function parityOthers(view, timeframe) {
  const others = view.parity.filter((v) => v.timeframe !== timeframe);
  if (!others.length) return null;
  return h("section", { "data-testid": "parity-timeframes" },
    h("h3", {}, "Parity, other timeframes"),
    h("table", { class: "mini" }, others.map((v) => h("tr", {},
      h("td", {}, v.timeframe),
      h("td", { class: "num" }, v.compared ? matchedText(v.matchedPct) : "not compared"),
      h("td", { class: "num" }, badge(v), staleBadge(v))))));
}

function qualitySection(view, timeframe) {
  const shown = view.quality.find((v) => v.timeframe === timeframe) || null;
  const section = h("section", { "data-testid": "quality-section" },
    h("h3", {}, `Quality ${timeframe}`, badge(shown), staleBadge(shown)));
  if (shown && shown.passed === false) {
    section.append(h("p", { class: "note fail-text" },
      `failed: ${shown.failedRules.join(", ") || "see the Dagster UI"}`));
  }
  if (!view.quality.length) {
    section.append(h("p", { class: "note" }, "no quality verdict recorded"));
  } else {
    section.append(h("table", { class: "mini", "data-testid": "quality-table" },
      view.quality.map((v) => h("tr", { class: v.timeframe === timeframe ? "current" : "" },
        h("td", {}, v.timeframe),
        h("td", { class: "num" }, v.summary.bars ?? ""),
        h("td", { class: "num" }, badge(v), staleBadge(v))))));
  }
  const r = view.rejected;
  const ratio = r && r.summary.rejected_ratio != null ? `${r.summary.rejected_ratio} ` : "";
  section.append(kv([["rejected ratio", h("span", { "data-testid": "rejected-ratio" }, ratio,
    badge(r))]]));
  return section;
}

function quarantineSection(view) {
  return h("section", { "data-testid": "quarantine-section" },
    h("h3", {}, "Quarantined",
      h("span", { class: "count", "data-testid": "quarantine-total" },
        view.quarantineTotal == null ? "–" : String(view.quarantineTotal))),
    countTable(view.reasons, "reason", "quarantine-reasons"));
}

function storeSection(view) {
  const sha = view.exportSha256 ? String(view.exportSha256) : null;
  return h("section", { "data-testid": "partition-section" },
    h("h3", {}, "Store"),
    kv([
      ["ticks", view.ticks == null ? null : Number(view.ticks).toLocaleString("en-US")],
      ["rule set", view.ruleSet],
      ["export", sha ? sha.replace(/^(sha256:)?(.{12}).*$/, "$1$2…") : null,
        { title: sha || "", "data-testid": "export-sha256" }],
      ["bars", view.bars.map((b) => `${b.timeframe} ${b.n}`).join(" · ") || null,
        { "data-testid": "bars-by-timeframe" }],
    ]));
}

// ------------------------------------------------------------------ entry points
export function renderPanelLoading(panel, date, symbol) {
  setField(panel, "key", `${date} ${symbol}`);
  panel.dataset.state = "loading";
}

export function renderPanel(panel, body, data, { date, symbol, timeframe }) {
  setField(panel, "key", `${date} ${symbol}`);
  if (!data) {
    panel.dataset.state = "absent";
    body.replaceChildren(h("section", { "data-testid": "parity-section" },
      h("div", { class: "big muted", "data-testid": "parity-match-pct" }, "not judged"),
      h("p", { class: "note" }, `the store holds nothing for ${date}|${symbol}`)));
    return;
  }
  const view = partitionView(data);
  body.replaceChildren(...[paritySection(view, timeframe), qualitySection(view, timeframe),
    quarantineSection(view), parityOthers(view, timeframe), storeSection(view)].filter(Boolean));
  panel.dataset.state = "ready";
}

export function renderPanelError(panel, body, err, { date, symbol }) {
  setField(panel, "key", `${date} ${symbol}`);
  panel.dataset.state = "error";
  body.replaceChildren(h("p", { class: "note" }, `partition not available: ${err.message || err}`));
}
