// Consumer groups: each of the tenant's groups with its state, members, total lag and
// Burrow-style status (GET /v1/groups), refreshed every 5 s.

import { get, seg } from "./api.js";
import { fill, h, table } from "./dom.js";
import { count } from "./format.js";
import { empty, failed, loading } from "./states.js";

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

export async function render(main, _params, view) {
  const box = h("div", {}, loading("consumer groups"));
  main.append(h("h1", { tabindex: "-1" }, "Consumer groups"), box,
    h("p", { class: "hint" }, "Status as Burrow reads it: OK; WARN falling behind; ERR stalled (records wait, nothing committed); STOP records wait and no member is there."));
  async function refresh() {
    let groups;
    try {
      ({ groups } = await get("/v1/groups", { signal: view.signal }));
    } catch (error) {
      if (!view.left) fill(box, failed("the groups", error));
      return;
    }
    if (view.left) return;
    if (groups.length === 0) {
      fill(box, empty("No consumer groups yet.", h("p", {}, "A group appears when its first member joins (POST /v1/groups/{group}/members).")));
      return;
    }
    fill(box, table("Consumer groups", ["Group", "State", "Members", "Generation", "Lag", "Status"],
      groups.map((g) => [h("a", { href: `#/groups/${seg(g.group)}` }, g.group), g.state, count(g.members),
        count(g.generation), count(g.lag), statusBadge(g.status)]),
      { numeric: [2, 3, 4] }));
  }
  await refresh();
  view.every(5000, refresh);
}
