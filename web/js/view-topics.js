// Topics: the tenant's topics with partitions, retained records, bytes and produce rate
// (records appended per second between two samples of the end offsets, every 5 s),
// and a form to create one.

import { ApiError, get, post, seg } from "./api.js";
import { field, fill, h, table } from "./dom.js";
import { bytes, count, duration, rate } from "./format.js";
import { clearProblem, showProblem } from "./problems.js";
import { empty, failed, loading } from "./states.js";

const SAMPLE_EVERY_MS = 5000;
const DESCRIBE_AT_ONCE = 8;

/** Describe every topic, a few at a time; a topic deleted meanwhile is left out. */
async function describeAll(topics, signal) {
  const out = [];
  for (let i = 0; i < topics.length; i += DESCRIBE_AT_ONCE) {
    const chunk = topics.slice(i, i + DESCRIBE_AT_ONCE).map((t) =>
      get(`/v1/topics/${seg(t.name)}`, { signal }).catch((error) => {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      }));
    out.push(...(await Promise.all(chunk)).filter(Boolean));
  }
  return out;
}

function totals(topic) {
  let records = 0;
  let size = 0;
  let end = 0;
  for (const p of topic.partitions) {
    records += p.end_offset - p.start_offset;
    size += p.bytes;
    end += p.end_offset;
  }
  return { records, size, end };
}

function createForm(onCreated) {
  const name = field("Name", h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false", maxlength: "249" }),
    "Letters, digits, . _ -");
  const partitions = field("Partitions", h("input", { type: "number", min: "1", value: "1", required: true }));
  const format = field("Value format", h("select", {},
    ["json", "string", "binary"].map((f) => h("option", { value: f }, f))));
  const retention = field("Retention (hours)", h("input", { type: "number", min: "0", step: "any", placeholder: "plan default" }));
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const submit = h("button", { type: "submit" }, "Create topic");
  const fields = { "/name": name, "/partitions": partitions, "/config/value_format": format, "/config/retention_ms": retention };
  const form = h("form", { class: "card grid-form", "aria-label": "Create a topic" },
    h("h2", {}, "New topic"), name, partitions, format, retention, problem,
    h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem, fields);
    const body = { name: name.input.value.trim(), partitions: Number(partitions.input.value), config: { value_format: format.input.value } };
    if (retention.input.value !== "") body.config.retention_ms = Math.round(Number(retention.input.value) * 3_600_000);
    submit.disabled = true;
    try {
      const created = await post("/v1/topics", body);
      form.reset();
      onCreated(created);
    } catch (error) {
      showProblem(problem, error, fields);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function render(main, _params, view) {
  const listBox = h("div", {}, loading("topics"));
  const updated = h("p", { class: "hint", "aria-live": "off" });
  let formShown = false;
  const formSlot = h("div", {});
  const toggle = h("button", { type: "button", "aria-expanded": "false" }, "Create topic");
  toggle.addEventListener("click", () => {
    formShown = !formShown;
    toggle.setAttribute("aria-expanded", String(formShown));
    if (formShown) {
      fill(formSlot, createForm((created) => {
        window.location.hash = `#/topics/${seg(created.name)}`;
      }));
      formSlot.querySelector("input").focus();
    } else {
      formSlot.replaceChildren();
    }
  });
  main.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Topics"), toggle),
    formSlot, listBox, updated);

  let previous = null; // {at, ends: Map name → summed end offset}

  async function sample() {
    let described;
    try {
      const { topics } = await get("/v1/topics", { signal: view.signal });
      described = await describeAll(topics, view.signal);
    } catch (error) {
      if (view.left) return;
      fill(listBox, failed("the topics", error));
      return;
    }
    if (view.left) return;
    const at = performance.now();
    const ends = new Map(described.map((t) => [t.name, totals(t).end]));
    if (described.length === 0) {
      fill(listBox, empty("No topics yet.", h("p", {}, "Create one with the button above, or with POST /v1/topics.")));
    } else {
      const rows = described.map((t) => {
        const sum = totals(t);
        let perSecond = null;
        if (previous && previous.ends.has(t.name)) {
          perSecond = Math.max(0, (sum.end - previous.ends.get(t.name)) / ((at - previous.at) / 1000));
        }
        const retention = t.config.retention_ms === null ? "forever" : duration(t.config.retention_ms);
        return [
          h("a", { href: `#/topics/${seg(t.name)}` }, t.name),
          count(t.partitions.length), count(sum.records), bytes(sum.size),
          h("span", { title: "records per second between the last two samples" }, rate(perSecond)),
          t.config.value_format, retention,
        ];
      });
      fill(listBox, table("Topics", ["Name", "Partitions", "Records", "Bytes", "Produce rate", "Format", "Retention"],
        rows, { numeric: [1, 2, 3, 4] }));
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}; refreshed every ${SAMPLE_EVERY_MS / 1000} s.`;
    previous = { at, ends };
  }

  await sample();
  view.every(SAMPLE_EVERY_MS, sample);
}
