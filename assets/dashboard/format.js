// How numbers, money, times and durations read on the page.

const int = new Intl.NumberFormat("en-US");
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export const fmtInt = (n) => int.format(Math.round(n || 0));
export const fmtCompact = (n) => compact.format(n || 0);

export function fmtUsd(n) {
  if (!n) return "$0";
  if (n < 0.01) return `$${n.toFixed(4)}`;
  if (n < 100) return `$${n.toFixed(2)}`;
  return `$${int.format(Math.round(n))}`;
}

export function fmtPct(part, whole) {
  if (!whole) return "–";
  const p = (100 * part) / whole;
  return p > 0 && p < 0.1 ? "<0.1%" : `${p.toFixed(1)}%`;
}

export const fmtMs = (ms) =>
  ms === null || ms === undefined ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;

// 75 → "1:15", 3725 → "1:02:05"
export function fmtCountdown(secs) {
  const s = Math.max(0, Math.ceil(secs));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  const rest = `${pad(s % 60)}`;
  return hours ? `${hours}:${pad(minutes)}:${rest}` : `${minutes}:${rest}`;
}

export function fmtAgo(ms) {
  const secs = Math.max(0, (Date.now() - ms) / 1000);
  if (secs < 60) return `${Math.floor(secs)}s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ago`;
  return `${Math.floor(secs / 86400)}d ago`;
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

export const fmtTime = (ms) => timeOfDay.format(ms);
export const fmtDayTime = (ms) => dayAndTime.format(ms);
export const fmtDay = (ms) => day.format(ms);

// The states a key can be in, as words: colour is never the only sign.
export const STATE_TEXT = {
  active: "active",
  cooling_down: "cooling",
  ejected: "ejected",
  invalid: "invalid",
  disabled: "disabled",
};

const PROVIDER_NAMES = {
  anthropic: "Anthropic",
  openai: "OpenAI",
  serpapi: "SerpApi",
  google_cse: "Google Custom Search",
  brave: "Brave Search",
};
export const providerName = (p) => PROVIDER_NAMES[p] || p;
