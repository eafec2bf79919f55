// The latest requests from the ledger (GET /api/usage/requests), newest
// first, with filters and older pages on demand. The ledger filters by
// provider, model and key; the status filter is applied here, to the rows
// fetched (a page of up to 200).

import { api } from "./api.js";
import { h, $ } from "./dom.js";
import { fmtInt, fmtMs, fmtUsd, fmtDayTime } from "./format.js";

const HEADS = ["Time", "Request", "Provider", "Model", "Key", "Attempts", "Keys tried", "Status", "Tokens in / out", "Cost", "Latency", "First token"];

export class RequestsView {
  constructor({ onError }) {
    this.onError = onError;
    this.table = $("#request-table");
    this.more = $("#requests-more");
    this.cursor = null;
    this.rows = [];
    this.extraPages = 0;
    for (const id of ["#filter-provider", "#filter-model", "#filter-key", "#filter-status"]) {
      $(id).addEventListener("change", () => this.load());
    }
    this.more.addEventListener("click", () => this.load(true));
  }

  // The filters' choices follow the pools and the usage totals.
  options(state) {
    fillSelect($("#filter-provider"), state.providers.map((p) => [p, p]));
    fillSelect($("#filter-key"), [...state.keyNames.entries()].map(([id, name]) => [id, name]));
    fillSelect($("#filter-model"), state.models.map((m) => [m, m]));
  }

  async load(older = false, state = this.state) {
    if (state) this.state = state;
    if (!this.state || !this.state.usageAvailable) {
      this.table.replaceChildren();
      return;
    }
    const status = $("#filter-status").value;
    const params = {
      from: "30d",
      provider: $("#filter-provider").value,
      model: $("#filter-model").value,
      key: $("#filter-key").value,
      limit: status ? 200 : 50,
      cursor: older ? this.cursor : undefined,
    };
    try {
      const page = await api.requests(params);
      const rows = page.rows.filter((r) => !status || (status === "ok") === (r.status < 400));
      this.rows = older ? this.rows.concat(rows) : rows;
      this.extraPages = older ? this.extraPages + 1 : 0;
      this.cursor = page.next;
      this.more.hidden = !page.next;
      this.render();
    } catch (e) {
      if (e.missing) return;
      this.onError(e);
    }
  }

  // The periodic refresh re-reads the first page, unless the operator is
  // reading older ones.
  refresh(state) {
    if (this.extraPages === 0) this.load(false, state);
    else this.state = state;
  }

  // Keys got new names: show them.
  renamed(state) {
    this.state = state;
    this.options(state);
    if (this.rows.length) this.render();
  }

  render() {
    const names = this.state.keyNames;
    const keyName = (id) => (id ? names.get(id) || id : "–");
    this.table.replaceChildren(
      h("thead", {}, h("tr", {}, HEADS.map((t) => h("th", {}, t)))),
      h("tbody", {}, this.rows.length ? this.rows.map((r) => {
        const failed = r.status >= 400;
        const model = r.modelAnswered && r.modelAnswered !== r.modelRequested
          ? `${r.modelRequested || "–"} → ${r.modelAnswered}` : r.modelRequested || r.modelAnswered || "–";
        const cell = (label, ...content) => h("td", { dataset: { label } }, ...content);
        return h("tr", { class: failed ? "failed" : "" },
          cell("Time", fmtDayTime(r.at)),
          cell("Request", h("code", { title: r.id }, r.id.slice(0, 13))),
          cell("Provider", r.provider || "–"),
          cell("Model", model),
          cell("Key", keyName(r.keyId)),
          cell("Attempts", fmtInt(r.attempts)),
          cell("Keys tried", r.keysTried.length ? r.keysTried.map(keyName).join(", ") : "–"),
          cell("Status", h("span", { class: `badge ${failed ? "state-invalid" : "state-active"}` },
            String(r.status), failed && r.errorClass ? ` ${r.errorClass}` : failed ? " failed" : " ok")),
          cell("Tokens in / out", `${fmtInt(r.input)} / ${fmtInt(r.output)}`),
          cell("Cost", r.unpriced ? "unknown (no price)" : fmtUsd(r.cost)),
          cell("Latency", fmtMs(r.latency)),
          cell("First token", fmtMs(r.ttft)));
      }) : h("tr", {}, h("td", { colspan: HEADS.length, class: "muted" }, "No requests match."))));
  }
}

// Keeps the current choice; rewrites the options only when they change.
function fillSelect(select, entries) {
  const wanted = [["", "all"], ...entries];
  const current = [...select.options].map((o) => `${o.value}\u0000${o.text}`).join("\u0001");
  if (current === wanted.map(([v, t]) => `${v}\u0000${t}`).join("\u0001")) return;
  const value = select.value;
  select.replaceChildren(...wanted.map(([v, t]) => h("option", { value: v }, t)));
  select.value = wanted.some(([v]) => v === value) ? value : "";
}
