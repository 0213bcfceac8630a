// Confirmation for what cannot be undone: a modal <dialog> (focus stays inside, Escape
// cancels), optionally asking to type a name first, as deleting a topic does.

import { field, h } from "./dom.js";

/**
 * confirmAction({title, text, action: "Delete", typeToConfirm?: "orders"})
 * resolves to true only when the user confirmed.
 */
export function confirmAction({ title, text, action, typeToConfirm }) {
  return new Promise((resolve) => {
    const typed = typeToConfirm
      ? field(`Type “${typeToConfirm}” to confirm`, h("input", { type: "text", autocomplete: "off", spellcheck: "false" }))
      : null;
    const ok = h("button", { type: "submit", class: "danger", value: "ok", disabled: Boolean(typeToConfirm) }, action);
    const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
    const form = h("form", { method: "dialog" },
      h("h2", {}, title), h("p", {}, text), typed,
      h("div", { class: "actions" }, cancel, ok));
    const dialog = h("dialog", { class: "confirm", "aria-label": title }, form);
    if (typed) {
      typed.input.addEventListener("input", () => {
        ok.disabled = typed.input.value !== typeToConfirm;
      });
    }
    cancel.addEventListener("click", () => dialog.close("cancel"));
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "ok";
      dialog.remove();
      resolve(confirmed);
    });
    document.body.append(dialog);
    dialog.showModal();
    (typed ? typed.input : cancel).focus();
  });
}
