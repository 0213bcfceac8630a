// One subject: its versions side by side with a line diff, its compatibility mode, and
// a new version checked against the mode (the dry run, POST …/compatibility) before it
// can be registered.

import { ApiError, get, post, request, seg } from "./api.js";
import { diffLines } from "./diff.js";
import { field, fieldError, fill, h } from "./dom.js";
import { clearProblem, showProblem } from "./problems.js";
import { empty, failed, loading } from "./states.js";

const MODES = ["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"];

function pretty(schema) {
  let value = schema;
  if (typeof schema === "string") {
    try {
      value = JSON.parse(schema);
    } catch {
      return schema;
    }
  }
  return JSON.stringify(value, null, 2);
}

function sideBySide(left, right, leftTitle, rightTitle) {
  const rows = diffLines(left, right);
  const changed = rows.filter((r) => r.kind !== "same").length;
  const cell = (text, kind) => h("td", { class: `diff-${kind}` }, h("pre", {}, text === null ? "" : text));
  return h("div", {},
    h("p", { class: "hint" }, changed ? `${changed} line(s) differ.` : "The two versions are the same."),
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Versions side by side" },
      h("table", { class: "diff" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, leftTitle), h("th", { scope: "col" }, rightTitle))),
        h("tbody", {}, rows.map((r) => h("tr", {},
          cell(r.left, r.kind === "same" ? "same" : r.left === null ? "blank" : "removed"),
          cell(r.right, r.kind === "same" ? "same" : r.right === null ? "blank" : "added")))))));
}

function compareSection(name, versions, view) {
  const pick = (label, selected) => field(label, h("select", {}, versions.map((v) =>
    h("option", { value: String(v), selected: v === selected }, `version ${v}`))));
  const left = pick("Left", versions.length > 1 ? versions[versions.length - 2] : versions[0]);
  const right = pick("Right", versions[versions.length - 1]);
  const out = h("div", {}, loading("the versions"));
  const cache = new Map();
  async function version(v) {
    if (!cache.has(v)) cache.set(v, get(`/v1/schemas/${seg(name)}/versions/${v}`, { signal: view.signal }));
    return cache.get(v);
  }
  async function show() {
    try {
      const [a, b] = await Promise.all([version(left.input.value), version(right.input.value)]);
      if (view.left) return;
      fill(out,
        h("p", {}, `Version ${a.version} (id ${a.id}, ${a.schema_type}) and version ${b.version} (id ${b.id}, ${b.schema_type}).`),
        sideBySide(pretty(a.schema), pretty(b.schema), `Version ${a.version}`, `Version ${b.version}`));
    } catch (error) {
      if (!view.left) fill(out, failed("the versions", error));
    }
  }
  left.input.addEventListener("change", show);
  right.input.addEventListener("change", show);
  show();
  return h("section", { class: "card", "aria-label": "Versions" }, h("h2", {}, "Versions"),
    h("div", { class: "row-form" }, left, right), out);
}

function modeForm(name, config) {
  const mode = field("Compatibility", h("select", {}, MODES.map((m) =>
    h("option", { value: m, selected: m === config.compatibility }, m))),
  config.inherited ? "Inherited from the tenant's default" : "Set on this subject");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const saved = h("span", { role: "status" });
  const form = h("form", { class: "card row-form", "aria-label": "Compatibility mode" }, mode,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save mode"), saved), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem);
    saved.textContent = "";
    try {
      const reply = await request("PUT", `/v1/schemas/${seg(name)}/config`, { body: { compatibility: mode.input.value } });
      saved.textContent = `Saved: ${reply.compatibility}.`;
    } catch (error) {
      showProblem(problem, error);
    }
  });
  return form;
}

/** The register form: Check first (the dry run); Register only once this text passed. */
function registerForm(name, latest, onRegistered) {
  const type = field("Type", h("select", {}, ["JSON", "AVRO"].map((t) =>
    h("option", { value: t, selected: latest ? latest.schema_type === t : t === "JSON" }, t))));
  const text = field("Schema", h("textarea", { rows: "12", spellcheck: "false", value: latest ? pretty(latest.schema) : "" }),
    "JSON Schema or Avro, as JSON");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const verdict = h("div", { role: "status" });
  const check = h("button", { type: "submit" }, "Check compatibility");
  const register = h("button", { type: "button", disabled: true }, "Register version");
  let checked = null; // the text that passed the check
  const form = h("form", { class: "card grid-form", "aria-label": "Register a version" },
    h("h2", {}, "New version"), type, text, problem, verdict, h("div", { class: "actions" }, check, register));
  const invalidate = () => {
    checked = null;
    register.disabled = true;
  };
  text.input.addEventListener("input", invalidate);
  type.input.addEventListener("change", invalidate);

  function body() {
    let schema;
    try {
      schema = JSON.parse(text.input.value);
    } catch (error) {
      return { error: `The schema is not JSON: ${error.message}` };
    }
    return { body: { schema_type: type.input.value, schema } };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem, { "/schema": text });
    verdict.replaceChildren();
    invalidate();
    const built = body();
    if (built.error) {
      fieldError(text, built.error);
      text.input.focus();
      return;
    }
    try {
      const reply = await post(`/v1/schemas/${seg(name)}/compatibility`, built.body);
      if (reply.compatible) {
        fill(verdict, h("p", { class: "verdict ok" }, `Compatible under ${reply.compatibility}: it can be registered.`));
        checked = text.input.value;
        register.disabled = false;
      } else {
        fill(verdict, h("div", { class: "verdict bad" },
          h("p", {}, `Not compatible under ${reply.compatibility}: registering it would be refused.`),
          h("ul", {}, reply.incompatibilities.map((f) => h("li", {},
            h("code", {}, `version ${f.version} · ${f.direction} · ${f.pointer || "/"}`), " ", f.message)))));
      }
    } catch (error) {
      showProblem(problem, error, { "/schema": text });
    }
  });
  register.addEventListener("click", async () => {
    if (checked !== text.input.value) return;
    const built = body();
    try {
      const reply = await post(`/v1/schemas/${seg(name)}/versions`, built.body);
      fill(verdict, h("p", { class: "verdict ok" }, `Registered as version ${reply.version} (id ${reply.id}).`));
      invalidate();
      onRegistered(reply);
    } catch (error) {
      showProblem(problem, error, { "/schema": text });
    }
  });
  return form;
}

export async function render(main, [name], view) {
  main.append(h("h1", { tabindex: "-1" }, h("a", { href: "#/schemas", class: "crumb" }, "Schemas"), " / ", name));
  const body = h("div", {}, loading("the subject"));
  main.append(body);
  let versions = [];
  let config;
  try {
    config = await get(`/v1/schemas/${seg(name)}/config`, { signal: view.signal });
    versions = (await get(`/v1/schemas/${seg(name)}/versions`, { signal: view.signal })).versions;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      if (!view.left) fill(body, failed(`subject ${name}`, error));
      return;
    }
  }
  if (view.left) return;
  const latest = versions.length ? await get(`/v1/schemas/${seg(name)}/versions/latest`, { signal: view.signal }) : null;
  const reload = () => {
    // A new version changes every part: draw the page again.
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  fill(body,
    versions.length ? compareSection(name, versions, view) : empty(`Subject ${name} has no versions yet: register the first below.`),
    config ? modeForm(name, config) : null,
    registerForm(name, latest, reload));
}
