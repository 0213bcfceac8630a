// Operators: every tenant with its plan and status, and a form to create one.

import { get, post, seg } from "./api.js";
import { field, fill, h, table } from "./dom.js";
import { time } from "./format.js";
import { clearProblem, showProblem } from "./problems.js";
import { empty, failed, loading } from "./states.js";

export async function render(main, _params, view) {
  const name = field("Name", h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false" }), "a-z 0-9 _ -");
  const plan = field("Plan", h("input", { type: "text", autocomplete: "off", placeholder: "the default plan" }));
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const fields = { "/name": name, "/plan": plan };
  const form = h("form", { class: "card grid-form", "aria-label": "Create a tenant" },
    h("h2", {}, "New tenant"), name, plan, problem, h("div", { class: "actions" }, h("button", { type: "submit" }, "Create tenant")));
  const box = h("div", {}, loading("tenants"));
  main.append(h("h1", { tabindex: "-1" }, "Tenants"), box, form);

  async function refresh() {
    try {
      const { tenants } = await get("/v1/admin/tenants", { signal: view.signal });
      if (view.left) return;
      fill(box, tenants.length === 0 ? empty("No tenants.") : table("Tenants",
        ["Name", "Plan", "Status", "Created"],
        tenants.map((t) => [h("a", { href: `#/tenants/${seg(t.name)}` }, t.name), t.plan,
          h("span", { class: `status ${t.status}` }, t.status), time(t.created_ms)])));
    } catch (error) {
      if (!view.left) fill(box, failed("the tenants", error));
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem, fields);
    const body = { name: name.input.value.trim() };
    if (plan.input.value.trim()) body.plan = plan.input.value.trim();
    try {
      const created = await post("/v1/admin/tenants", body);
      window.location.hash = `#/tenants/${seg(created.name)}`;
    } catch (error) {
      showProblem(problem, error, fields);
    }
  });
  await refresh();
}
