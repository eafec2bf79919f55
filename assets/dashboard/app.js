// The dashboard's entry: signs in, then keeps the page live. Pool state and
// alerts are polled every few seconds (small answers, cheap for keygate);
// usage and the latest requests every 30 s or when the range changes;
// countdowns tick every second in between. Polling pauses while the tab is
// hidden.

import { api, session } from "./api.js";
import { $, notify, setText } from "./dom.js";
import { login } from "./login.js";
import { OverviewView } from "./overview.js";
import { KeysView } from "./keys.js";
import { bindKeyActions } from "./key_actions.js";
import { UsageView, loadUsage, totalsBy } from "./usage.js";
import { RequestsView } from "./requests.js";
import { fmtTime } from "./format.js";

const LIVE_MS = 3000;
const USAGE_MS = 30000;

const state = {
  providers: [],
  pools: {},
  keyNames: new Map(),
  alerts: [],
  alertsAvailable: true,
  usage: null,
  usageAvailable: true,
  keyTotals: new Map(),
  providerTotals: new Map(),
  models: [],
  range: "24h",
  split: "key",
};

const overview = new OverviewView($("#provider-cards"), $("#alerts"));
const keys = new KeysView($("#pools"));
const usage = new UsageView();
const requests = new RequestsView({ onError: failed });
let liveTimer = 0;
let usageTimer = 0;
let liveBusy = false;
// While the admin key is asked for again, nothing polls.
let asking = false;

async function refreshLive() {
  if (liveBusy) return;
  liveBusy = true;
  clearTimeout(liveTimer);
  try {
    const alerts = state.alertsAvailable ? api.alerts().catch((e) => e) : Promise.resolve([]);
    const stats = await api.stats();
    state.providers = Object.keys(stats);
    const statuses = await Promise.all(state.providers.map((p) => api.status(p).catch((e) => {
      // A provider without a pool (or removed since) is skipped.
      if (e.missing) return null;
      throw e;
    })));
    state.pools = Object.fromEntries(state.providers.map((p, i) => [p, statuses[i]]));
    const names = new Map(statuses.filter(Boolean).flatMap((s) => s.keys.map((k) => [k.id, k.label || k.masked])));
    const renamed = [...names].join() !== [...state.keyNames].join();
    state.keyNames = names;
    const open = await alerts;
    if (open instanceof Error) {
      if (!open.missing) throw open;
      // A keygate without alerting: stop asking.
      state.alertsAvailable = false;
      state.alerts = [];
    } else {
      state.alerts = open;
    }
    render();
    // Charts, totals and filters name keys by label: follow a new or
    // renamed key (or the first names, when usage arrived before them).
    if (renamed) {
      usage.redraw(state);
      requests.renamed(state);
    }
    setLive(true, `live · ${fmtTime(Date.now())}`);
    // For the load-time measurement: pools and overview are on screen.
    if (!document.body.dataset.liveReady) document.body.dataset.liveReady = String(Math.round(performance.now()));
  } catch (e) {
    failed(e);
  } finally {
    liveBusy = false;
    if (!document.hidden && !asking) liveTimer = setTimeout(refreshLive, LIVE_MS);
  }
}

async function refreshUsage() {
  clearTimeout(usageTimer);
  const began = performance.now();
  try {
    const loaded = await loadUsage(state.range);
    state.usageAvailable = loaded !== null;
    state.usage = loaded;
    if (loaded) {
      state.keyTotals = totalsBy(loaded.byKey.groups, "key");
      state.providerTotals = totalsBy(loaded.byProvider.groups, "provider");
      state.models = [...totalsBy(loaded.byModel.groups, "model").keys()].filter((m) => m !== null).sort();
    }
    render();
    usage.update(state);
    requests.options(state);
    requests.refresh(state);
    // For the load-time measurement: how long the last range took to fetch
    // and draw.
    document.body.dataset.usageMs = String(Math.round(performance.now() - began));
    document.body.dataset.usageLoads = String(Number(document.body.dataset.usageLoads || 0) + 1);
  } catch (e) {
    failed(e);
  } finally {
    if (!document.hidden && !asking) usageTimer = setTimeout(refreshUsage, USAGE_MS);
  }
}

function render() {
  overview.update(state);
  keys.update(state);
  fillProviders();
}

function fillProviders() {
  const select = $("#add-provider");
  const have = [...select.options].map((o) => o.value).join();
  if (have === state.providers.join()) return;
  const value = select.value;
  select.replaceChildren(...state.providers.map((p) => Object.assign(document.createElement("option"), { value: p, textContent: p })));
  if (state.providers.includes(value)) select.value = value;
}

function setLive(ok, text) {
  $("#live").classList.toggle("down", !ok);
  setText($("#live-text"), text);
}

function failed(e) {
  if (e.unauthorized || e.adminDisabled) return authLost();
  setLive(false, "not updating");
  notify(e.message, "error");
}

// The key stopped working (keygate restarted with another one): ask again.
async function authLost() {
  if (asking) return;
  asking = true;
  clearTimeout(liveTimer);
  clearTimeout(usageTimer);
  session.clear();
  showApp(false);
  await login("keygate no longer accepts the admin key this tab had; enter the current one.");
  asking = false;
  start();
}

function showApp(visible) {
  $("#app").hidden = !visible;
  $("#nav").hidden = !visible;
  $("#controls").hidden = !visible;
}

async function start() {
  showApp(true);
  const first = performance.now();
  await Promise.all([refreshLive(), refreshUsage()]);
  // For the browser tests and the load-time measurement: the first full
  // picture is on screen.
  document.body.dataset.ready = String(Math.round(performance.now()));
  document.body.dataset.loadMs = String(Math.round(performance.now() - first));
}

function wire() {
  bindKeyActions({ keys, refresh: refreshLive, onAuthLost: authLost });
  $("#range").addEventListener("change", (event) => {
    state.range = event.target.value;
    setText($("#overview-range"), $("#range").selectedOptions[0].text.toLowerCase());
    refreshUsage();
  });
  setText($("#overview-range"), $("#range").selectedOptions[0].text.toLowerCase());
  for (const button of document.querySelectorAll("[data-split]")) {
    button.addEventListener("click", () => {
      state.split = button.dataset.split;
      for (const b of document.querySelectorAll("[data-split]")) b.setAttribute("aria-pressed", String(b === button));
      usage.redraw(state);
    });
  }
  $("#logout").addEventListener("click", () => {
    session.clear();
    location.reload();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !asking && $("#app").hidden === false) {
      refreshLive();
      refreshUsage();
    }
  });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => usage.redraw(state), 150);
  });
  setInterval(() => {
    const now = performance.now();
    keys.tick(now);
    overview.tick(now);
  }, 1000);
}

wire();
login().then(start);
