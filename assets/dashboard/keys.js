// The keys table: one row per key, per provider, updated in place on every
// refresh (rows are keyed by id and a cell is written only when its text
// changes), so nothing jumps and an open menu or selection survives. The
// buttons carry data-action; key_actions.js handles them.

import { h, setText, setAttr } from "./dom.js";
import { fmtInt, fmtMs, fmtUsd, fmtCountdown, fmtCompact, providerName, STATE_TEXT } from "./format.js";

const COLUMNS = [
  ["key", "Key"], ["state", "State"], ["cooldown", "Back in"], ["weight", "Weight"],
  ["scope", "Cache scope"], ["requests", "Requests"], ["latency", "p50 / p95"], ["headroom", "Headroom"],
  ["cost", "Cost"], ["error", "Last error"], ["actions", ""],
];

export class KeysView {
  constructor(root) {
    this.root = root;
    this.pools = new Map(); // provider -> {section, tbody, rows: Map(id -> row)}
  }

  update(state) {
    for (const provider of state.providers) {
      const status = state.pools[provider];
      if (!status) continue;
      const pool = this.pool(provider);
      this.header(pool, status);
      this.rows(pool, status, state);
    }
    for (const [provider, pool] of this.pools) {
      if (!state.providers.includes(provider)) {
        pool.section.remove();
        this.pools.delete(provider);
      }
    }
  }

  pool(provider) {
    let pool = this.pools.get(provider);
    if (pool) return pool;
    const summary = h("span", { class: "muted pool-summary" });
    const tbody = h("tbody");
    const empty = h("p", { class: "muted empty", hidden: true }, "No keys yet: add one above.");
    const section = h("section", { class: "pool panel", dataset: { provider } },
      h("div", { class: "pool-head" },
        h("h3", {}, providerName(provider)),
        summary,
        h("div", { class: "pool-buttons" },
          h("button", { type: "button", class: "ghost", dataset: { action: "test-all", provider } }, "Test all keys"),
          h("button", { type: "button", class: "ghost danger", dataset: { action: "reset", provider } }, "Reset pool"))),
      h("div", { class: "table-wrap" },
        h("table", { class: "data keys" },
          h("thead", {}, h("tr", {}, COLUMNS.map(([name, title]) => h("th", { class: `col-${name}` }, title)))),
          tbody)),
      empty);
    pool = { section, tbody, summary, empty, rows: new Map() };
    this.pools.set(provider, pool);
    this.root.append(section);
    return pool;
  }

  header(pool, status) {
    const s = status.stats;
    setText(pool.summary, `${status.strategy || ""} · ${fmtInt(s.total_keys)} keys · ${fmtInt(s.total_requests)} requests since start`);
    pool.empty.hidden = status.keys.length > 0;
  }

  rows(pool, status, state) {
    const seen = new Set();
    status.keys.forEach((key, index) => {
      seen.add(key.id);
      let row = pool.rows.get(key.id);
      if (!row) {
        row = newRow(status.provider, key.id);
        pool.rows.set(key.id, row);
      }
      if (pool.tbody.children[index] !== row.tr) pool.tbody.insertBefore(row.tr, pool.tbody.children[index] || null);
      fillRow(row, key, state.keyTotals.get(key.id), state.usageAvailable);
    });
    for (const [id, row] of pool.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        pool.rows.delete(id);
      }
    }
  }

  // Once a second between refreshes: the countdowns run down smoothly.
  tick(now) {
    for (const pool of this.pools.values()) {
      for (const row of pool.rows.values()) writeCountdown(row, now);
    }
  }
}

function newRow(provider, id) {
  const cells = {};
  const tr = h("tr", { dataset: { keyId: id, provider } });
  for (const [name, title] of COLUMNS) {
    cells[name] = h("td", { class: `col-${name}`, dataset: { label: title } });
    tr.append(cells[name]);
  }
  const row = {
    tr, cells,
    label: h("span", { class: "key-label" }),
    masked: h("code", { class: "key-masked" }),
    badge: h("span", { class: "badge" }),
    reason: h("span", { class: "reason" }),
    countdown: h("span", { class: "countdown" }),
    requests: h("span", { class: "num" }),
    split: h("span", { class: "sub" }),
    latency: h("span", { class: "num" }),
    cost: h("span", { class: "num" }),
    error: h("span", { class: "error-text" }),
    toggle: h("button", { type: "button", class: "ghost small", dataset: { action: "toggle" } }),
    bars: [],
    until: 0,
  };
  cells.key.append(row.label, row.masked);
  cells.state.append(row.badge, row.reason);
  cells.cooldown.append(row.countdown);
  cells.requests.append(row.requests, row.split);
  cells.latency.append(row.latency);
  cells.cost.append(row.cost);
  cells.error.append(row.error);
  cells.actions.append(
    h("button", { type: "button", class: "ghost small", dataset: { action: "edit" } }, "Edit"),
    row.toggle,
    h("button", { type: "button", class: "ghost small", dataset: { action: "test" } }, "Test"),
    h("button", { type: "button", class: "ghost small danger", dataset: { action: "delete" } }, "Delete"));
  return row;
}

function fillRow(row, key, totals, usageAvailable) {
  row.key = key;
  const named = key.label && key.label !== key.masked;
  setText(row.label, named ? key.label : key.masked);
  setText(row.masked, named ? key.masked : "");
  setAttr(row.badge, "class", `badge state-${key.state}`);
  setText(row.badge, STATE_TEXT[key.state] || key.state);
  setText(row.reason, key.reason);
  setAttr(row.reason, "title", key.reason);
  setText(row.cells.weight, fmtInt(key.weight));
  // A key without a scope is its own: its id says nothing more.
  setText(row.cells.scope, key.scope && key.scope !== key.id ? key.scope : "own");
  setText(row.requests, fmtInt(key.requests));
  setText(row.split, `${fmtInt(key.successes)} ok · ${fmtInt(key.failures)} failed`);
  setText(row.latency, key.p50 === null ? "–" : `${fmtMs(key.p50)} / ${fmtMs(key.p95)}`);
  setText(row.cost, !usageAvailable ? "–" : fmtUsd(totals ? totals.cost : 0));
  setText(row.error, key.lastError || "–");
  setAttr(row.error, "title", key.lastError || "");
  setText(row.toggle, key.enabled ? "Disable" : "Enable");
  const secs = key.state === "ejected" ? key.ejectedSecs : key.state === "cooling_down" ? key.cooldownSecs : 0;
  row.until = secs > 0 ? performance.now() + secs * 1000 : 0;
  writeCountdown(row, performance.now());
  fillHeadroom(row, key.limits);
}

function writeCountdown(row, now) {
  const left = row.until ? (row.until - now) / 1000 : 0;
  setText(row.countdown, left > 0 ? fmtCountdown(left) : "–");
  setAttr(row.countdown, "class", left > 0 ? "countdown running" : "countdown");
}

// One bar per rate-limit window the upstream reported: the share left.
function fillHeadroom(row, limits) {
  const cell = row.cells.headroom;
  if (row.bars.length !== limits.length || row.bars.some((b, i) => b.name !== limits[i].name)) {
    row.bars = limits.map((l) => {
      const fill = h("span", { class: "bar-fill" });
      const text = h("span", { class: "bar-text" });
      const el = h("span", { class: "bar", title: l.name }, h("span", { class: "bar-name" }, l.short),
        h("span", { class: "bar-track" }, fill), text);
      return { name: l.name, el, fill, text };
    });
    cell.replaceChildren(...(row.bars.length ? row.bars.map((b) => b.el) : [h("span", { class: "muted" }, "–")]));
  }
  limits.forEach((l, i) => {
    const bar = row.bars[i];
    const share = l.limit ? Math.max(0, Math.min(1, l.remaining / l.limit)) : 0;
    bar.fill.style.width = `${(share * 100).toFixed(1)}%`;
    setAttr(bar.fill, "class", `bar-fill ${share < 0.1 ? "low" : share < 0.3 ? "mid" : "high"}`);
    setText(bar.text, `${fmtCompact(l.remaining)}/${fmtCompact(l.limit)}`);
  });
}
