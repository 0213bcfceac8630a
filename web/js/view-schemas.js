// Schemas: the tenant's subjects with their latest version and compatibility mode.

import { get, seg } from "./api.js";
import { fill, h, table } from "./dom.js";
import { empty, failed, loading } from "./states.js";

export async function render(main, _params, view) {
  const box = h("div", {}, loading("subjects"));
  const subject = h("input", { type: "text", autocomplete: "off", spellcheck: "false", required: true, id: "new-subject" });
  const open = h("form", { class: "card row-form", "aria-label": "Open a subject" },
    h("div", { class: "field" }, h("label", { for: "new-subject" }, "Subject"), subject),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Open or create")));
  open.addEventListener("submit", (event) => {
    event.preventDefault();
    if (subject.value.trim()) window.location.hash = `#/schemas/${seg(subject.value.trim())}`;
  });
  main.append(h("h1", { tabindex: "-1" }, "Schemas"), box, open);
  let subjects;
  try {
    ({ subjects } = await get("/v1/schemas", { signal: view.signal }));
  } catch (error) {
    if (!view.left) fill(box, failed("the subjects", error));
    return;
  }
  if (subjects.length === 0) {
    fill(box, empty("No subjects yet.", h("p", {}, "Open a subject by name below to register its first version.")));
    return;
  }
  const rows = await Promise.all(subjects.map(async (name) => {
    const [versions, config] = await Promise.all([
      get(`/v1/schemas/${seg(name)}/versions`, { signal: view.signal }),
      get(`/v1/schemas/${seg(name)}/config`, { signal: view.signal }),
    ]);
    const latest = versions.versions.length ? versions.versions[versions.versions.length - 1] : null;
    return [h("a", { href: `#/schemas/${seg(name)}` }, name), String(versions.versions.length),
      latest === null ? "—" : String(latest), config.compatibility + (config.inherited ? " (default)" : "")];
  })).catch((error) => {
    if (!view.left) fill(box, failed("the subjects", error));
    return null;
  });
  if (rows && !view.left) fill(box, table("Subjects", ["Subject", "Versions", "Latest", "Compatibility"], rows, { numeric: [1, 2] }));
}
