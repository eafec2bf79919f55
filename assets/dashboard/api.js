// The one place that knows keygate's admin API: paths, the admin header,
// error bodies, and the shapes of the answers. Everything else in the page
// works with the plain objects the read* functions return, so a change of
// shape on the server is a change here only.

const STORAGE = "keygate.adminKey";

// sessionStorage: the key lives as long as this tab, never in a cookie
// (sent with every request, readable by other tabs) nor in a URL (history,
// logs, referrers).
export const session = {
  get: () => sessionStorage.getItem(STORAGE),
  set: (key) => sessionStorage.setItem(STORAGE, key),
  clear: () => sessionStorage.removeItem(STORAGE),
};

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
  get unauthorized() { return this.status === 401; }
  // 403 from the admin guard: keygate runs without ADMIN_API_KEY.
  get adminDisabled() { return this.status === 403 && this.type === "permission_error"; }
  get missing() { return this.status === 404; }
}

async function call(method, path, { body, key = session.get() } = {}) {
  const headers = { accept: "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network_error", "keygate did not answer (is it running?)");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.type || "error",
      error.message || `${method} ${path}: HTTP ${response.status}`);
  }
  return data;
}

const pool = (provider) => `/api/keypool/${encodeURIComponent(provider)}`;
const keyPath = (provider, id) => `${pool(provider)}/keys/${encodeURIComponent(id)}`;

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const api = {
  // Checks a key without storing it.
  check: (key) => call("GET", "/api/keypool/stats", { key }),
  stats: async () => (await call("GET", "/api/keypool/stats")).providers || {},
  status: async (provider) => readStatus(await call("GET", `${pool(provider)}/status`)),
  alerts: async () => readAlerts(await call("GET", "/api/alerts")),
  usage: async (params) => readUsage(await call("GET", `/api/usage${query(params)}`)),
  requests: async (params) => readRequests(await call("GET", `/api/usage/requests${query(params)}`)),
  addKey: (provider, key) => call("POST", `${pool(provider)}/keys`, { body: key }),
  updateKey: (provider, id, change) => call("PATCH", keyPath(provider, id), { body: change }),
  deleteKey: (provider, id) => call("DELETE", keyPath(provider, id)),
  // {results: [{result: ok|invalid|unreachable, reason?, id, label}]}
  test: async (provider, id) =>
    ((await call("POST", `${pool(provider)}/test${query({ key: id })}`)).results || [])
      .map((r) => ({ label: String(r.label || r.id), result: String(r.result), reason: r.reason || "" })),
  reset: (provider) => call("POST", `${pool(provider)}/reset`),
};

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

// GET /api/keypool/{provider}/status
function readStatus(s) {
  return {
    provider: s.provider,
    strategy: s.strategy,
    stats: s.stats || {},
    keys: (s.keys || []).map((k) => ({
      id: String(k.id),
      label: k.label || "",
      masked: k.masked || "",
      state: k.state || "unknown",
      enabled: !!k.enabled,
      weight: num(k.weight),
      cooldownSecs: num(k.cooldown_remaining_secs),
      ejectedSecs: k.ejection ? num(k.ejection.returns_in_secs) : 0,
      reason: k.invalid_reason || k.disabled_reason || (k.ejection && k.ejection.reason) || "",
      requests: num(k.requests),
      successes: num(k.successes),
      failures: num(k.failures),
      inFlight: num(k.in_flight),
      lastError: k.last_error || "",
      p50: k.latency ? k.latency.p50_ms : null,
      p95: k.latency ? k.latency.p95_ms : null,
      limits: readLimits(k.rate_limits),
    })),
    // Models that answered without a price: their cost is unknown.
    unpriced: (s.unpriced_models || []).map((m) => ({ model: String(m.model), requests: num(m.requests) })),
  };
}

// rate_limits: {requests|tokens|input_tokens|output_tokens|month: {limit, remaining, reset}}
// (a search key's short window is "requests"; its plan's month is "month")
function readLimits(limits) {
  if (!limits) return [];
  const names = [["requests", "req"], ["tokens", "tok"], ["input_tokens", "in"], ["output_tokens", "out"], ["month", "month"]];
  return names
    .filter(([name]) => limits[name] && limits[name].limit > 0)
    .map(([name, short]) => ({
      name, short,
      limit: num(limits[name].limit),
      remaining: num(limits[name].remaining),
      reset: limits[name].reset || null,
    }));
}

// GET /api/alerts: {open: [{event, provider, key_id, key, reason, since, until}], ...}
function readAlerts(a) {
  return ((a && a.open) || []).map((o) => ({
    event: String(o.event || "alert"),
    provider: o.provider || "",
    keyId: o.key_id || null,
    key: o.key || "",
    reason: o.reason || "",
    since: o.since || null,
    until: o.until || null,
  }));
}

// GET /api/usage: {from, to, group_by, groups: [{group: {key|model|provider|hour|day: v},
// requests, successes, errors: {class: n}, tokens: {input, output, cache_read,
// cache_write}, cost_usd, latency_ms: {p50, p95} | null}]}
function readUsage(u) {
  return {
    from: Date.parse(u.from),
    to: Date.parse(u.to),
    groups: (u.groups || []).map((g) => {
      const group = g.group || {};
      const time = group.hour || group.day;
      const tokens = g.tokens || {};
      return {
        key: group.key === undefined ? undefined : group.key,
        model: group.model === undefined ? undefined : group.model,
        provider: group.provider === undefined ? undefined : group.provider,
        time: time ? Date.parse(time) : null,
        requests: num(g.requests),
        successes: num(g.successes),
        errors: num(g.requests) - num(g.successes),
        input: num(tokens.input) + num(tokens.cache_read) + num(tokens.cache_write),
        output: num(tokens.output),
        cost: num(g.cost_usd),
        p50: g.latency_ms ? g.latency_ms.p50 : null,
        p95: g.latency_ms ? g.latency_ms.p95 : null,
      };
    }),
  };
}

// GET /api/usage/requests: {requests: [...newest first], next_cursor}
function readRequests(p) {
  return {
    next: p.next_cursor || null,
    rows: (p.requests || []).map((r) => ({
      at: Date.parse(r.at),
      id: r.request_id || "",
      route: r.route || "",
      provider: r.provider || "",
      modelRequested: r.model_requested || "",
      modelAnswered: r.model_answered || "",
      keyId: r.key_id || "",
      attempts: num(r.attempts),
      keysTried: Array.isArray(r.keys_tried) ? r.keys_tried.map(String) : [],
      status: num(r.status),
      errorClass: r.error_class || "",
      input: r.tokens ? num(r.tokens.input) : 0,
      output: r.tokens ? num(r.tokens.output) : 0,
      cost: num(r.cost_usd),
      // No price for its model: the 0 above means unknown.
      unpriced: r.unpriced === true,
      latency: num(r.latency_ms),
      ttft: r.ttft_ms === null || r.ttft_ms === undefined ? null : r.ttft_ms,
    })),
  };
}
