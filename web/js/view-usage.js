// Usage: the tenant's use against each limit of its plan, as bars (GET /v1/usage),
// refreshed every 5 s. Rates are what the gateway saw over the last second.

import { get } from "./api.js";
import { fill, h, table } from "./dom.js";
import { bytes, count, duration } from "./format.js";
import { failed, loading } from "./states.js";

const LABELS = {
  requests_per_second: ["Requests", "per second", count],
  produce_bytes_per_second: ["Produce", "per second", bytes],
  consume_bytes_per_second: ["Consume", "per second", bytes],
  max_topics: ["Topics", "", count],
  max_partitions: ["Partitions", "", count],
  max_storage_bytes: ["Storage", "", bytes],
  max_connections: ["Connections", "", count],
  max_record_bytes: ["Record size", "largest allowed", bytes],
  max_retention_ms: ["Retention", "longest allowed", duration],
};

function label(name) {
  return LABELS[name] || [name.replaceAll("_", " "), "", count];
}

/** One bar: used of limit, in the limit's unit; a limit without a use is listed, not drawn. */
export function quotaBar(name, { used, limit }) {
  const [title, unit, fmt] = label(name);
  const heading = h("div", { class: "quota-head" }, h("span", { class: "quota-name" }, title),
    unit ? h("span", { class: "muted" }, ` ${unit}`) : null);
  if (used === null || used === undefined) {
    return h("li", { class: "quota" }, heading, h("p", { class: "quota-figure" }, `limit ${limit === null ? "none" : fmt(limit)}`));
  }
  const share = limit ? Math.min(1, used / limit) : 0;
  const level = share >= 0.9 ? "high" : share >= 0.7 ? "mid" : "low";
  const bar = h("div", {
    class: `bar ${level}`, role: "meter", "aria-label": title,
    "aria-valuemin": "0", "aria-valuemax": String(limit ?? used), "aria-valuenow": String(used),
    "aria-valuetext": limit === null ? `${fmt(used)}, no limit` : `${fmt(used)} of ${fmt(limit)}`,
  }, h("div", { class: "bar-fill" }));
  bar.firstChild.style.inlineSize = `${(share * 100).toFixed(1)}%`;
  const figure = limit === null
    ? `${fmt(used)} · no limit`
    : `${fmt(used)} of ${fmt(limit)} (${Math.round(share * 100)}%)`;
  return h("li", { class: "quota" }, heading, bar, h("p", { class: "quota-figure" }, figure));
}

export async function render(main, _params, view) {
  const box = h("div", {}, loading("usage"));
  main.append(h("h1", { tabindex: "-1" }, "Usage"), box);
  async function refresh() {
    let use;
    try {
      use = await get("/v1/usage", { signal: view.signal });
    } catch (error) {
      if (!view.left) fill(box, failed("usage", error));
      return;
    }
    if (view.left) return;
    const entries = Object.entries(use.quotas);
    const metered = entries.filter(([, q]) => q.used !== null && q.used !== undefined);
    const limitsOnly = entries.filter(([, q]) => q.used === null || q.used === undefined);
    const t = use.totals;
    fill(box,
      h("p", {}, "Tenant ", h("strong", {}, use.tenant), " on plan ", h("strong", {}, use.plan), "."),
      h("ul", { class: "quotas", "aria-label": "Use against each quota" }, metered.map(([n, q]) => quotaBar(n, q))),
      limitsOnly.length ? h("section", { class: "card" }, h("h2", {}, "Other limits"),
        h("ul", { class: "quotas" }, limitsOnly.map(([n, q]) => quotaBar(n, q)))) : null,
      h("section", { class: "card" }, h("h2", {}, "Since this gateway started"),
        table("Totals", ["Requests", "Produced", "Records produced", "Consumed", "Records consumed"],
          [[count(t.requests), bytes(t.produced_bytes), count(t.produced_records), bytes(t.consumed_bytes), count(t.consumed_records)]],
          { numeric: [0, 1, 2, 3, 4] })));
  }
  await refresh();
  view.every(5000, refresh);
}
