// The words a page shows while it waits, when there is nothing, and when it failed.

import { h } from "./dom.js";

export function loading(what) {
  return h("p", { class: "state loading", role: "status" }, `Loading ${what}…`);
}

export function empty(text, ...extra) {
  return h("div", { class: "state empty" }, h("p", {}, text), extra);
}

/** What went wrong, in words: the problem's detail, and when to retry if the API said. */
export function describe(error) {
  if (error && error.status !== undefined) {
    const parts = [`${error.problem.title || "Error"} (${error.status})`];
    if (error.problem.detail) parts.push(error.problem.detail);
    if (error.status === 503) parts.push("The backend is unavailable.");
    const said = /retry/i.test(error.problem.detail || "");
    if (!said && error.retryAfter !== null && error.retryAfter !== undefined) {
      parts.push(`Retry in ${error.retryAfter} s.`);
    }
    return parts.join(" — ");
  }
  if (error && error.name === "TypeError") return "The gateway could not be reached.";
  return String(error && error.message ? error.message : error);
}

export function failed(what, error) {
  return h("div", { class: "state error", role: "alert" },
    h("p", {}, h("strong", {}, `Could not load ${what}. `), describe(error)));
}
