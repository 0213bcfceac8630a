// A small line chart in SVG, drawn in-house: one series of (time, value) samples, the
// newest on the right, redrawn as samples arrive. Bounded: it keeps `capacity` points.

import { svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 180;
const PAD = { left: 56, right: 12, top: 12, bottom: 26 };

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten, at least `max`. */
export function niceCeiling(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= max) return step * power;
  }
  return 10 * power;
}

function clock(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((v) => String(v).padStart(2, "0")).join(":");
}

/**
 * lineChart({label, format, capacity}) → {el, push(atMs, value), points}
 * `label` names the series for assistive technology; the latest value is in the label.
 */
export function lineChart({ label, format = String, capacity = 150 }) {
  const el = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label,
  });
  const points = [];

  function draw() {
    el.replaceChildren();
    const innerW = WIDTH - PAD.left - PAD.right;
    const innerH = HEIGHT - PAD.top - PAD.bottom;
    const top = niceCeiling(Math.max(0, ...points.map((p) => p.value)));
    const y = (v) => PAD.top + innerH - (v / top) * innerH;
    for (const tick of [0, top / 2, top]) {
      el.append(
        svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(tick), y2: y(tick), class: "grid" }),
        svg("text", { x: PAD.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, format(tick)));
    }
    if (points.length === 0) {
      el.append(svg("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "axis" }, "waiting for samples…"));
      return;
    }
    const first = points[0].at;
    const span = Math.max(1, points[points.length - 1].at - first);
    const x = (at) => PAD.left + ((at - first) / span) * innerW;
    const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    const last = points[points.length - 1];
    el.append(
      svg("path", { d: `${path} L${x(last.at).toFixed(1)},${y(0)} L${x(first).toFixed(1)},${y(0)} Z`, class: "area" }),
      svg("path", { d: path, class: "line" }),
      svg("circle", { cx: x(last.at), cy: y(last.value), r: 3.5, class: "dot" }),
      svg("text", { x: PAD.left, y: HEIGHT - 6, class: "axis" }, clock(first)),
      svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, "text-anchor": "end", class: "axis" }, clock(last.at)));
    el.setAttribute("aria-label", `${label}: ${format(last.value)} now, ${points.length} samples since ${clock(first)}`);
  }

  draw();
  return {
    el,
    points,
    push(at, value) {
      points.push({ at, value });
      if (points.length > capacity) points.shift();
      draw();
    },
  };
}
