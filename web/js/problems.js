// A problem+json reply shown in a form: the detail at the top, and each entry of its
// `errors` list (record index, JSON pointer, message) next to the field it points at,
// or in the list when no field matches.

import { fieldError, fill, h } from "./dom.js";
import { describe } from "./states.js";

/** "record 1 · /records/1/value · message" */
export function errorLine(entry) {
  const parts = [];
  if (entry.record !== undefined && entry.record !== null) parts.push(`record ${entry.record}`);
  if (entry.pointer) parts.push(entry.pointer);
  return h("li", {}, parts.length ? h("code", {}, parts.join(" · ")) : null,
    parts.length ? " " : null, entry.message || "");
}

/** The field whose pointer is `pointer` or its nearest parent (/records/0/headers/1 → headers). */
function fieldFor(fields, pointer) {
  let path = pointer || "";
  while (path) {
    if (fields[path]) return fields[path];
    path = path.slice(0, path.lastIndexOf("/"));
  }
  return null;
}

/**
 * Show `error` in `box` (an element with role=alert) and under the fields of `fields`
 * (pointer → field wrapper from dom.field). Returns the entries no field took.
 */
export function showProblem(box, error, fields = {}) {
  for (const wrap of Object.values(fields)) fieldError(wrap, null);
  const unplaced = [];
  const entries = error && error.errors ? error.errors : [];
  const said = new Map();
  for (const entry of entries) {
    const wrap = fieldFor(fields, entry.pointer);
    if (wrap) said.set(wrap, [...(said.get(wrap) || []), entry.message]);
    else unplaced.push(entry);
  }
  for (const [wrap, messages] of said) fieldError(wrap, messages.join(" "));
  fill(box, h("p", {}, describe(error)),
    entries.length ? h("ul", { class: "problem-errors" }, entries.map(errorLine)) : null);
  box.hidden = false;
  return unplaced;
}

export function clearProblem(box, fields = {}) {
  for (const wrap of Object.values(fields)) fieldError(wrap, null);
  box.replaceChildren();
  box.hidden = true;
}
