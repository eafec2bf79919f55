// The overview: one card per provider (the pool's health at a glance,
// traffic over the chosen range, when the next resting key returns, the
// models answered without a price) and the alerts open now.

import { h, setText, clear } from "./dom.js";
import { fmtInt, fmtPct, fmtUsd, fmtCountdown, fmtAgo, providerName, STATE_TEXT } from "./format.js";

const STATES = ["active", "cooling_down", "ejected", "invalid", "disabled"];

export class OverviewView {
  constructor(cards, alerts) {
    this.cards = cards;
    this.alerts = alerts;
    this.byProvider = new Map();
  }

  update(state) {
    for (const provider of state.providers) {
      const status = state.pools[provider];
      if (!status) continue;
      const card = this.card(provider);
      fillCard(card, status, state);
    }
    for (const [provider, card] of this.byProvider) {
      if (!state.providers.includes(provider)) {
        card.el.remove();
        this.byProvider.delete(provider);
      }
    }
    this.fillAlerts(state);
  }

  card(provider) {
    let card = this.byProvider.get(provider);
    if (card) return card;
    const counts = Object.fromEntries(STATES.map((st) => [st, h("span", { class: "count-n" })]));
    const segments = Object.fromEntries(STATES.map((st) => [st, h("span", { class: `seg-fill state-${st}` })]));
    const figures = {
      requests: h("span", { class: "figure-n" }),
      errors: h("span", { class: "figure-n" }),
      cost: h("span", { class: "figure-n" }),
      next: h("span", { class: "figure-n" }),
    };
    const el = h("article", { class: "card panel", dataset: { provider } },
      h("h3", {}, providerName(provider)),
      h("div", { class: "health", "aria-hidden": "true" }, STATES.map((st) => segments[st])),
      h("ul", { class: "counts" }, STATES.map((st) =>
        h("li", { class: `count state-${st}` }, h("span", { class: "swatch" }), counts[st], " ", STATE_TEXT[st]))),
      h("dl", { class: "figures" },
        h("div", {}, h("dt", {}, "Requests"), h("dd", {}, figures.requests)),
        h("div", {}, h("dt", {}, "Error rate"), h("dd", {}, figures.errors)),
        h("div", {}, h("dt", {}, "Cost"), h("dd", {}, figures.cost)),
        h("div", {}, h("dt", {}, "Next key back"), h("dd", {}, figures.next))));
    const unpriced = h("p", { class: "muted unpriced", hidden: true });
    el.append(unpriced);
    card = { el, counts, segments, figures, unpriced, nextUntil: 0 };
    this.byProvider.set(provider, card);
    this.cards.append(el);
    return card;
  }

  fillAlerts(state) {
    clear(this.alerts);
    if (!state.alertsAvailable) return;
    if (!state.alerts.length) {
      this.alerts.append(h("p", { class: "muted ok-line" }, "No alerts open."));
      return;
    }
    this.alerts.append(h("h3", {}, `Open alerts (${state.alerts.length})`),
      h("ul", { class: "alert-list" }, state.alerts.map((a) =>
        h("li", { class: "alert-item" },
          h("span", { class: "badge state-invalid" }, a.event.replaceAll("_", " ")),
          h("span", {}, " ", providerName(a.provider), a.key ? ` · ${a.key}` : "", " — ", a.reason),
          a.since ? h("span", { class: "muted" }, ` · since ${fmtAgo(Date.parse(a.since))}`) : null))));
  }

  tick(now) {
    for (const card of this.byProvider.values()) writeNext(card, now);
  }
}

function fillCard(card, status, state) {
  const counts = Object.fromEntries(STATES.map((st) => [st, 0]));
  let soonest = Infinity;
  for (const key of status.keys) {
    counts[key.state] = (counts[key.state] || 0) + 1;
    const secs = key.state === "cooling_down" ? key.cooldownSecs : key.state === "ejected" ? key.ejectedSecs : 0;
    if (secs > 0) soonest = Math.min(soonest, secs);
  }
  const total = status.keys.length || 1;
  for (const st of STATES) {
    setText(card.counts[st], fmtInt(counts[st]));
    card.segments[st].style.flexGrow = String(counts[st] / total);
  }
  const usage = state.providerTotals.get(status.provider);
  if (state.usageAvailable) {
    const u = usage || { requests: 0, errors: 0, cost: 0 };
    setText(card.figures.requests, fmtInt(u.requests));
    setText(card.figures.errors, fmtPct(u.errors, u.requests));
    setText(card.figures.cost, fmtUsd(u.cost));
  } else {
    // Without the ledger: the pool's own counters, since start.
    const s = status.stats;
    setText(card.figures.requests, `${fmtInt(s.total_requests)} since start`);
    setText(card.figures.errors, fmtPct(s.failed_requests, s.total_requests));
    setText(card.figures.cost, "–");
  }
  // The cost above leaves these models out: say so, rather than let it
  // pass for the whole bill.
  const unpriced = status.unpriced || [];
  card.unpriced.hidden = unpriced.length === 0;
  setText(card.unpriced, unpriced.length
    ? `No price (cost unknown): ${unpriced.map((m) => `${m.model} (${fmtInt(m.requests)})`).join(", ")}`
    : "");
  card.nextUntil = Number.isFinite(soonest) ? performance.now() + soonest * 1000 : 0;
  writeNext(card, performance.now());
}

function writeNext(card, now) {
  const left = card.nextUntil ? (card.nextUntil - now) / 1000 : 0;
  setText(card.figures.next, left > 0 ? `in ${fmtCountdown(left)}` : "none resting");
}
