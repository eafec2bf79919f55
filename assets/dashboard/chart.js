// Stacked bar charts as SVG built in the DOM (no library, no canvas): one
// bar per time bucket, one colour per series, a legend in words with each
// series' total, and a tooltip (<title>) per bar. Series colours come from
// CSS classes (s0…s7), so dark mode restyles them.

import { h, s } from "./dom.js";

const HEIGHT = 200;
const PAD = { top: 10, right: 8, bottom: 22, left: 48 };

// figure: a <figure> with a <figcaption>. buckets: bucket start times (ms).
// series: [{name, values: [n per bucket]}]. format: value → text.
// integer: counts, whose axis steps are whole numbers. tip: bucket → the
// tooltip's time (the axis uses the shorter label).
export function drawBars(figure, { buckets, series, format, label, tip = label, integer = false, empty = "No data in this range." }) {
  let svg = figure.querySelector("svg");
  let legend = figure.querySelector(".legend");
  if (!svg) {
    svg = s("svg", { class: "chart-svg", role: "img", height: HEIGHT });
    legend = h("ul", { class: "legend" });
    figure.append(svg, legend);
  }
  const width = Math.max(280, Math.floor(figure.clientWidth - 24));
  svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  svg.setAttribute("width", width);
  const totals = buckets.map((_, i) => series.reduce((sum, se) => sum + (se.values[i] || 0), 0));
  const max = niceStep(Math.max(0, ...totals) / 4, integer) * 4;
  const parts = [];
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (v / max) * plotH;

  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(s("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
    parts.push(s("text", { class: "axis", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v, true)));
  }
  const step = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, step * 0.78);
  let drawn = 0;
  buckets.forEach((t, i) => {
    if (!totals[i]) return;
    let base = 0;
    const x = PAD.left + i * step + (step - barW) / 2;
    const rects = [];
    series.forEach((se, k) => {
      const v = se.values[i] || 0;
      if (!v) return;
      rects.push(s("rect", { class: `cbar s${k % 8}`, x: x.toFixed(1), width: barW.toFixed(1),
        y: y(base + v).toFixed(1), height: Math.max(0.5, y(base) - y(base + v)).toFixed(1) }));
      base += v;
    });
    const text = [tip(t), ...series.filter((se) => se.values[i]).map((se) => `${se.name}: ${format(se.values[i])}`)].join("\n");
    parts.push(s("g", { class: "bucket" }, s("title", {}, text), rects));
    drawn++;
  });
  const ticks = Math.min(buckets.length, Math.max(2, Math.floor(plotW / 110)));
  for (let j = 0; j < ticks; j++) {
    const i = Math.round((j * (buckets.length - 1)) / Math.max(1, ticks - 1));
    if (buckets[i] === undefined) continue;
    const x = PAD.left + i * step + step / 2;
    const anchor = j === 0 ? "start" : j === ticks - 1 ? "end" : "middle";
    parts.push(s("text", { class: "axis", x, y: HEIGHT - 6, "text-anchor": anchor }, label(buckets[i])));
  }
  if (!drawn) parts.push(s("text", { class: "empty-text", x: width / 2, y: HEIGHT / 2, "text-anchor": "middle" }, empty));
  svg.replaceChildren(...parts);
  svg.setAttribute("aria-label", `${figure.querySelector("figcaption").textContent}: ${drawn} of ${buckets.length} buckets with data`);
  figure.dataset.bars = String(drawn);

  legend.replaceChildren(...series.map((se, k) =>
    h("li", {}, h("span", { class: `swatch s${k % 8}` }), se.name, " ",
      h("span", { class: "muted" }, format(se.values.reduce((a, b) => a + (b || 0), 0))))));
}

// The axis step: 1, 2, 2.5 or 5 times a power of ten, at least v.
function niceStep(v, integer) {
  if (v <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  const steps = integer && exp < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = steps.map((m) => m * exp).find((m) => m >= v);
  return integer ? Math.max(1, Math.ceil(step)) : step;
}
