// Operators: one tenant's limits and API keys. A new key's secret is shown once, right
// after it is made (the gateway keeps only a hash); revoking asks first.

import { del, get, post, seg } from "./api.js";
import { confirmAction } from "./dialog.js";
import { field, fill, h, table, uid } from "./dom.js";
import { time } from "./format.js";
import { clearProblem, showProblem } from "./problems.js";
import { empty, failed, loading } from "./states.js";
import { quotaBar } from "./view-usage.js";

const SCOPES = ["topics:read", "topics:write", "topics:admin", "groups:read", "groups:write", "schemas:write"];

function secretBox(reply, onDone) {
  const code = h("code", { class: "secret" }, reply.key);
  const copy = h("button", { type: "button", class: "quiet" }, "Copy");
  const status = h("span", { role: "status" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(reply.key);
      status.textContent = "Copied.";
    } catch {
      status.textContent = "Select the key and copy it.";
    }
  });
  const done = h("button", { type: "button" }, "I have stored the key");
  done.addEventListener("click", onDone);
  const box = h("div", { class: "card secret-box", role: "alert" },
    h("h2", {}, `Key ${reply.key_id} created`),
    h("p", {}, "This is the only time the key is shown. Store it now: the gateway keeps only a hash of it."),
    h("div", { class: "secret-row" }, code, copy, status), h("div", { class: "actions" }, done));
  return box;
}

export async function render(main, [name], view) {
  main.append(h("h1", { tabindex: "-1" }, h("a", { href: "#/tenants", class: "crumb" }, "Tenants"), " / ", name));
  const info = h("div", {}, loading("the tenant"));
  const keysBox = h("div", {}, loading("the keys"));
  const secretSlot = h("div", {});
  main.append(info, secretSlot, h("section", { class: "card", "aria-label": "API keys" }, h("h2", {}, "API keys"), keysBox));

  const scopeBoxes = SCOPES.map((s) => {
    const id = uid("scope");
    return h("label", { class: "check", for: id }, h("input", { type: "checkbox", id, value: s, checked: s.startsWith("topics") }), ` ${s}`);
  });
  const topics = field("Topic patterns", h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "orders*, audit" }), "Comma-separated; empty: every topic");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const fields = { "/topics": topics };
  const form = h("form", { class: "card grid-form", "aria-label": "Create an API key" },
    h("h2", {}, "New API key"),
    h("fieldset", {}, h("legend", {}, "Scopes"), h("div", { class: "checks" }, scopeBoxes)),
    topics, problem, h("div", { class: "actions" }, h("button", { type: "submit" }, "Create key")));
  main.append(form);

  async function loadKeys() {
    try {
      const { keys } = await get(`/v1/admin/tenants/${seg(name)}/keys`, { signal: view.signal });
      if (view.left) return;
      if (keys.length === 0) {
        fill(keysBox, empty("No keys."));
        return;
      }
      fill(keysBox, table("API keys", ["Key id", "Scopes", "Topics", "Created", "Last used", "Status", ""],
        keys.map((k) => {
          const revoke = k.revoked ? "" : h("button", { type: "button", class: "danger small" }, "Revoke");
          if (revoke) {
            revoke.addEventListener("click", async () => {
              const sure = await confirmAction({
                title: `Revoke key ${k.key_id}?`,
                text: "Every request with this key, and every token made from it, is refused from now on.",
                action: "Revoke key",
              });
              if (!sure) {
                revoke.focus();
                return;
              }
              try {
                await del(`/v1/admin/tenants/${seg(name)}/keys/${seg(k.key_id)}`);
              } catch (error) {
                keysBox.prepend(failed(`to revoke ${k.key_id}`, error));
                return;
              }
              loadKeys();
            });
          }
          return [h("code", {}, k.key_id), k.scopes.join(" "), k.topics.length ? k.topics.join(", ") : "all",
            time(k.created_ms), time(k.last_used_ms), k.revoked ? "revoked" : "active", revoke];
        })));
    } catch (error) {
      if (!view.left) fill(keysBox, failed("the keys", error));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem, fields);
    const scopes = scopeBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const patterns = topics.input.value.split(",").map((t) => t.trim()).filter(Boolean);
    try {
      const reply = await post(`/v1/admin/tenants/${seg(name)}/keys`, { scopes, topics: patterns });
      fill(secretSlot, secretBox(reply, () => secretSlot.replaceChildren()));
      secretSlot.querySelector("button").focus();
      loadKeys();
    } catch (error) {
      showProblem(problem, error, fields);
    }
  });

  try {
    const tenant = await get(`/v1/admin/tenants/${seg(name)}`, { signal: view.signal });
    if (view.left) return;
    const limits = Object.entries(tenant.limits).map(([n, limit]) => quotaBar(n, { used: null, limit }));
    fill(info, h("dl", { class: "facts" },
      [["Plan", tenant.plan], ["Status", tenant.status], ["Id", tenant.id], ["Created", time(tenant.created_ms)]]
        .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h("section", { class: "card" }, h("h2", {}, "Limits"), h("ul", { class: "quotas" }, limits)));
  } catch (error) {
    if (!view.left) fill(info, failed(`tenant ${name}`, error));
    return;
  }
  await loadKeys();
}
