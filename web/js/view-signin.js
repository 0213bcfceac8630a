// Sign in with an API key. The key is checked by exchanging it for a token; a refusal
// is explained in the form (401: not a key the gateway knows; 429: when to retry).

import { retryAfterSeconds } from "./api.js";
import { append, field, fieldError, h } from "./dom.js";
import { signIn } from "./session.js";

let reason = null;

/** A sentence shown once on the next sign-in page (why the user is here). */
export function setReason(text) {
  reason = text;
}

async function refusal(response) {
  let detail = "";
  try {
    detail = (await response.json()).detail || "";
  } catch {
    // not JSON
  }
  if (response.status === 401) return `The gateway does not accept this key. ${detail}`;
  if (response.status === 403) return `This credential cannot sign in here: ${detail}`;
  if (response.status === 429) {
    const wait = retryAfterSeconds(response);
    return `Too many requests. ${wait === null ? "Retry shortly." : `Retry in ${wait} s.`}`;
  }
  if (response.status === 503) return "The backend is unavailable. Retry shortly.";
  return `Sign-in failed (${response.status}). ${detail}`;
}

export async function render(main) {
  const key = field("API key", h("input", {
    type: "password", name: "key", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "tg_…",
  }), "Kept in this tab only (session storage); signing out or closing the tab forgets it.");
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card signin", novalidate: true }, key, h("div", { class: "actions" }, submit));
  const said = reason ? h("p", { class: "state info", role: "status" }, reason) : null;
  reason = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = key.input.value.trim();
    if (!value) {
      fieldError(key, "Enter an API key.");
      key.input.focus();
      return;
    }
    submit.disabled = true;
    fieldError(key, null);
    try {
      const refused = await signIn(value);
      if (refused) {
        fieldError(key, await refusal(refused));
        key.input.focus();
        return;
      }
      window.location.hash = "#/topics";
    } catch {
      fieldError(key, "The gateway could not be reached.");
    } finally {
      submit.disabled = false;
    }
  });
  append(main, [h("h1", { tabindex: "-1" }, "Sign in"), said, form]);
  key.input.focus();
}
