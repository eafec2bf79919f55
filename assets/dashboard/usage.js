// The usage section: charts over the chosen range (requests and errors per
// key or per model, tokens, cost) and totals per key and per model, all
// from the ledger's GET /api/usage.

import { api } from "./api.js";
import { h } from "./dom.js";
import { drawBars } from "./chart.js";
import { fmtInt, fmtCompact, fmtPct, fmtUsd, fmtTime, fmtDay, fmtDayTime } from "./format.js";

const HOUR = 3600e3;
const DAY = 24 * HOUR;
// Hourly bars up to a day, daily beyond: at most a few thousand groups
// (100 keys × 30 days) per answer.
export const RANGES = {
  "1h": { from: "1h", bucket: "hour", ms: HOUR },
  "24h": { from: "24h", bucket: "hour", ms: HOUR },
  "7d": { from: "7d", bucket: "day", ms: DAY },
  "30d": { from: "30d", bucket: "day", ms: DAY },
};
const TOP = 6;

// Fetches the range's groups; null when this keygate has no ledger.
export async function loadUsage(rangeName) {
  const range = RANGES[rangeName];
  try {
    const [byKey, byModel, byProvider] = await Promise.all([
      api.usage({ from: range.from, group_by: `key,${range.bucket}` }),
      api.usage({ from: range.from, group_by: `model,${range.bucket}` }),
      api.usage({ from: range.from, group_by: "provider" }),
    ]);
    return { range, byKey, byModel, byProvider };
  } catch (e) {
    if (e.missing) return null;
    throw e;
  }
}

const zero = () => ({ requests: 0, successes: 0, errors: 0, input: 0, output: 0, cost: 0 });
function add(into, g) {
  for (const f of ["requests", "successes", "errors", "input", "output", "cost"]) into[f] += g[f];
  return into;
}

export function totalsBy(groups, field) {
  const totals = new Map();
  for (const g of groups) {
    const name = g[field] ?? null;
    totals.set(name, add(totals.get(name) || zero(), g));
  }
  return totals;
}

export class UsageView {
  constructor() {
    this.figures = ["requests", "errors", "tokens", "cost"].map((n) => document.getElementById(`chart-${n}`));
  }

  update(state) {
    const message = document.getElementById("usage-message");
    if (!state.usage) {
      message.textContent = state.usageAvailable
        ? "Loading usage…"
        : "This keygate has no usage ledger (GET /api/usage answered 404): charts and totals are not available.";
      return;
    }
    message.textContent = "";
    const { range, byKey, byModel } = state.usage;
    const start = Math.floor(byKey.from / range.ms) * range.ms;
    const buckets = [];
    for (let t = start; t < byKey.to; t += range.ms) buckets.push(t);
    const index = new Map(buckets.map((t, i) => [t, i]));
    const label = range.ms === DAY ? fmtDay : fmtTime;
    const tip = range.ms === DAY ? fmtDay : fmtDayTime;
    const keyName = (id) => (id === null ? "(no key)" : state.keyNames.get(id) || id);
    const split = state.split === "model"
      ? { groups: byModel.groups, field: "model", name: (m) => m ?? "(no model)" }
      : { groups: byKey.groups, field: "key", name: keyName };

    const series = (metric) => seriesOf(split, metric, buckets.length, index);
    const [requests, errors, tokens, cost] = this.figures;
    drawBars(requests, { buckets, label, tip, integer: true, series: series("requests"), format: count });
    drawBars(errors, { buckets, label, tip, integer: true, series: series("errors"), format: count, empty: "No errors in this range." });
    const sum = (metric) => {
      const values = new Array(buckets.length).fill(0);
      for (const g of byKey.groups) if (index.has(g.time)) values[index.get(g.time)] += g[metric];
      return values;
    };
    drawBars(tokens, { buckets, label, tip, integer: true, format: count,
      series: [{ name: "input", values: sum("input") }, { name: "output", values: sum("output") }] });
    drawBars(cost, { buckets, label, tip, series: series("cost"), format: money });

    fillTotals(document.getElementById("totals-key"), "Key", totalsBy(byKey.groups, "key"), keyName);
    fillTotals(document.getElementById("totals-model"), "Model", totalsBy(byModel.groups, "model"), (m) => m ?? "(no model)");
  }

  redraw(state) {
    if (state.usage) this.update(state);
  }
}

const count = (v, axis) => (axis ? fmtCompact(v) : fmtInt(v));
const money = (v, axis) => (axis && v > 0 && v < 0.01 ? `$${v.toPrecision(1)}` : fmtUsd(v));

// The busiest entries (by requests, so each keeps its colour in every
// chart), the rest summed as "other".
function seriesOf(split, metric, n, index) {
  const totals = totalsBy(split.groups, split.field);
  const ranked = [...totals.entries()].filter(([, t]) => t.requests > 0).sort((a, b) => b[1].requests - a[1].requests);
  const top = ranked.slice(0, TOP).map(([name]) => name);
  const series = top.map((name) => ({ name: split.name(name), values: new Array(n).fill(0) }));
  const other = { name: "other", values: new Array(n).fill(0) };
  for (const g of split.groups) {
    if (!index.has(g.time) || !g[metric]) continue;
    const k = top.indexOf(g[split.field] ?? null);
    (k >= 0 ? series[k] : other).values[index.get(g.time)] += g[metric];
  }
  if (ranked.length > TOP) series.push(other);
  return series;
}

function fillTotals(table, title, totals, name) {
  const rows = [...totals.entries()].sort((a, b) => b[1].requests - a[1].requests);
  const heads = [title, "Requests", "Errors", "Error rate", "Input tokens", "Output tokens", "Cost"];
  table.replaceChildren(
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.length ? rows.map(([key, t]) => h("tr", {},
      h("td", { dataset: { label: title }, class: "name" }, name(key)),
      h("td", { dataset: { label: "Requests" }, class: "num" }, fmtInt(t.requests)),
      h("td", { dataset: { label: "Errors" }, class: "num" }, fmtInt(t.errors)),
      h("td", { dataset: { label: "Error rate" }, class: "num" }, fmtPct(t.errors, t.requests)),
      h("td", { dataset: { label: "Input tokens" }, class: "num" }, fmtInt(t.input)),
      h("td", { dataset: { label: "Output tokens" }, class: "num" }, fmtInt(t.output)),
      h("td", { dataset: { label: "Cost" }, class: "num" }, fmtUsd(t.cost))))
      : h("tr", {}, h("td", { colspan: heads.length, class: "muted" }, "No requests in this range."))));
}
