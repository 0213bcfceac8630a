// Building the page without markup strings: every text goes in as a text node, so a
// record value or a topic name can never become HTML (nothing here parses markup).

/**
 * h("a", {href: "#/x", class: "y", on: {click: f}}, "text", child, [more])
 * Attributes set with setAttribute (or as properties for value/checked/disabled);
 * children: strings and numbers become text nodes, null/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === "value" || name === "checked" || name === "disabled" || name === "selected") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace every child of `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element, attributes as for h(). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  return append(el, children);
}

/** A table from column titles and rows of cells (each cell a node or a text). */
export function table(caption, columns, rows, { numeric = [] } = {}) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c, i) =>
        h("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, c)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) =>
        h("td", { class: numeric.includes(i) ? "num" : null }, cell)))))));
}

let counter = 0;
/** A unique element id for label/aria wiring. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: {label, input, hint?}; returns the wrapper with .input and .error. */
export function field(label, input, hint) {
  const id = input.id || uid("f");
  input.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const described = [hintEl && `${id}-hint`, `${id}-error`].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, error);
  wrap.input = input;
  wrap.error = error;
  return wrap;
}

/** Show (or clear, with null) an error under a field made by field(). */
export function fieldError(wrap, message) {
  if (message) {
    wrap.error.textContent = message;
    wrap.error.hidden = false;
    wrap.input.setAttribute("aria-invalid", "true");
  } else {
    wrap.error.textContent = "";
    wrap.error.hidden = true;
    wrap.input.removeAttribute("aria-invalid");
  }
}
