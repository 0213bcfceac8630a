// One topic: its partitions (start and end offsets, sizes), its config (changed in place),
// a live tail over the WebSocket stream, a record browser by partition and offset or time, a produce form that shows the API's
// validation errors where they point, and delete with confirmation.

import { del, get, patch, request, seg } from "./api.js";
import { confirmAction } from "./dialog.js";
import { field, fieldError, fill, h, table } from "./dom.js";
import { bytes, count, duration, time } from "./format.js";
import { clearProblem, showProblem } from "./problems.js";
import { recordsTable } from "./records.js";
import { empty, failed, loading } from "./states.js";
import { liveTail } from "./tail.js";

const PAGE = 20;

function summary(topic) {
  const c = topic.config;
  const items = [
    ["Partitions", count(topic.partitions.length)],
    ["Value format", c.value_format],
    ["Schema", c.value_schema ? h("a", { href: `#/schemas/${seg(c.value_schema)}` }, c.value_schema) : "none"],
    ["Retention", c.retention_ms === null ? "forever" : duration(c.retention_ms)],
    ["Retention bytes", c.retention_bytes === null ? "unlimited" : bytes(c.retention_bytes)],
    ["Max record", bytes(c.max_record_bytes)],
    ["Durability", c.durability],
    ["Created", time(topic.created_ms)],
  ];
  return h("dl", { class: "facts" }, items.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

function partitionsTable(topic) {
  return table("Partitions", ["Partition", "Start offset", "End offset", "Records", "Bytes"],
    topic.partitions.map((p) => [String(p.partition), count(p.start_offset), count(p.end_offset),
      count(p.end_offset - p.start_offset), bytes(p.bytes)]),
    { numeric: [0, 1, 2, 3, 4] });
}

function configForm(topic, onSaved) {
  const c = topic.config;
  const hours = (ms) => (ms === null ? "" : String(ms / 3_600_000));
  const retention = field("Retention (hours)", h("input", { type: "number", min: "0", step: "any", value: hours(c.retention_ms) }), "Empty: keep forever");
  const retentionBytes = field("Retention bytes", h("input", { type: "number", min: "0", value: c.retention_bytes === null ? "" : String(c.retention_bytes) }), "Empty: unlimited");
  const maxRecord = field("Max record bytes", h("input", { type: "number", min: "1", value: String(c.max_record_bytes) }));
  const durability = field("Durability", h("select", {}, ["fsync", "interval", "none"].map((d) =>
    h("option", { value: d, selected: d === c.durability }, d))));
  const partitions = field("Partitions", h("input", { type: "number", min: String(topic.partitions.length), value: String(topic.partitions.length) }), "Can grow, never shrink");
  const subject = field("Schema subject", h("input", { type: "text", autocomplete: "off", spellcheck: "false", value: c.value_schema || "" }), "Values must validate against its latest version; empty: none");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const saved = h("p", { class: "hint", role: "status" });
  const fields = {
    "/config/retention_ms": retention, "/config/retention_bytes": retentionBytes,
    "/config/max_record_bytes": maxRecord, "/config/durability": durability, "/partitions": partitions,
    "/config/value_schema": subject,
  };
  const form = h("form", { class: "card grid-form", "aria-label": "Topic config" },
    h("h2", {}, "Config"), retention, retentionBytes, maxRecord, durability, partitions, subject, problem,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save config"), saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem, fields);
    saved.textContent = "";
    const number = (input) => (input.value === "" ? null : Number(input.value));
    const config = {
      retention_ms: retention.input.value === "" ? null : Math.round(Number(retention.input.value) * 3_600_000),
      retention_bytes: number(retentionBytes.input),
      max_record_bytes: number(maxRecord.input),
      durability: durability.input.value,
      value_schema: subject.input.value.trim() || null,
    };
    const body = { config };
    const wanted = Number(partitions.input.value);
    if (wanted !== topic.partitions.length) body.partitions = wanted;
    try {
      await patch(`/v1/topics/${seg(topic.name)}`, body);
      saved.textContent = "Saved.";
      onSaved();
    } catch (error) {
      showProblem(problem, error, fields);
    }
  });
  return form;
}

/** The record browser: partition, from (offset, time, earliest, latest), count. */
function browser(topic, view) {
  const partition = field("Partition", h("select", {}, topic.partitions.map((p) =>
    h("option", { value: String(p.partition) }, String(p.partition)))));
  const from = field("From", h("select", {},
    [["offset", "offset"], ["timestamp", "time"], ["earliest", "earliest"], ["latest", "latest"]].map(([v, t]) =>
      h("option", { value: v }, t))));
  const offset = field("Offset", h("input", { type: "number", min: "0", value: "0" }));
  const when = field("Time", h("input", { type: "datetime-local", step: "1" }));
  when.hidden = true;
  const max = field("Records", h("input", { type: "number", min: "1", max: "1000", value: String(PAGE) }));
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const results = h("div", { class: "records", "aria-live": "polite" });
  const older = h("button", { type: "button", class: "quiet", disabled: true }, "← Older");
  const newer = h("button", { type: "button", class: "quiet", disabled: true }, "Newer →");
  const form = h("form", { class: "card", "aria-label": "Browse records" },
    h("h2", {}, "Records"),
    h("div", { class: "row-form" }, partition, from, offset, when, max,
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Fetch"))),
    problem, results, h("div", { class: "actions pager" }, older, newer));
  from.input.addEventListener("change", () => {
    offset.hidden = from.input.value !== "offset";
    when.hidden = from.input.value !== "timestamp";
  });

  let shown = null; // {partition, first, next}

  async function fetchFrom(query) {
    clearProblem(problem, { "/offset": offset, "/timestamp": when });
    fill(results, loading("records"));
    const p = partition.input.value;
    try {
      const reply = await get(`/v1/topics/${seg(topic.name)}/partitions/${p}/records`, {
        query: { ...query, max_records: max.input.value || PAGE }, signal: view.signal,
      });
      const first = reply.records.length ? reply.records[0].offset : reply.next_offset;
      shown = { partition: p, first, next: reply.next_offset, end: reply.end_offset };
      if (reply.records.length === 0) {
        fill(results, empty(`No records in partition ${p} from offset ${first} (end offset ${reply.end_offset}).`));
      } else {
        fill(results, recordsTable(`Records of partition ${p}`, reply.records, topic.config.value_format));
      }
      older.disabled = first <= 0;
      newer.disabled = reply.next_offset >= reply.end_offset;
    } catch (error) {
      if (view.left) return;
      results.replaceChildren();
      showProblem(problem, error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const mode = from.input.value;
    if (mode === "offset") {
      fetchFrom({ offset: offset.input.value || "0" });
    } else if (mode === "timestamp") {
      const ms = Date.parse(when.input.value);
      if (Number.isNaN(ms)) {
        fieldError(when, "Choose a date and time.");
        return;
      }
      fetchFrom({ timestamp: ms });
    } else {
      fetchFrom({ offset: mode });
    }
  });
  older.addEventListener("click", () => {
    if (!shown) return;
    const start = Math.max(0, shown.first - Number(max.input.value || PAGE));
    offset.input.value = String(start);
    fetchFrom({ offset: start });
  });
  newer.addEventListener("click", () => {
    if (!shown) return;
    offset.input.value = String(shown.next);
    fetchFrom({ offset: shown.next });
  });
  return {
    form,
    /** Show partition p from offset o (after a produce). */
    show(p, o) {
      partition.input.value = String(p);
      from.input.value = "offset";
      from.input.dispatchEvent(new Event("change"));
      offset.input.value = String(o);
      fetchFrom({ offset: o });
    },
  };
}

/** JSON text from a form field, or an error message for that field. */
function parseJsonField(text, what) {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `${what} is not JSON: ${error.message}` };
  }
}

/**
 * The produce form: one record from its fields, or a whole body ({"records": [...]})
 * as JSON. The API validates; its problem's `errors` are shown under the field a
 * pointer names (one record) or listed with record index and pointer (a body).
 */
function produceForm(topic, onProduced) {
  const format = topic.config.value_format;
  const mode = field("Send", h("select", {}, h("option", { value: "one" }, "one record"),
    h("option", { value: "body" }, "a body of records (JSON)")));
  const key = field("Key", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), "Empty: no key");
  const valueHint = { json: "JSON, e.g. {\"id\": 1}", string: "Text, sent as a string", binary: "Base64" }[format];
  const value = field("Value", h("textarea", { rows: "4", spellcheck: "false" }), valueHint);
  const partition = field("Partition", h("input", { type: "number", min: "0", placeholder: "by key, or spread" }));
  const headers = field("Headers", h("textarea", { rows: "2", spellcheck: "false", placeholder: "[[\"name\", \"value\"]]" }),
    "JSON: a list of [name, value] pairs or an object; empty: none");
  const body = field("Body", h("textarea", { rows: "8", spellcheck: "false" }),
    "{\"records\": [{\"key\": …, \"value\": …, \"headers\": …, \"partition\": …}]}");
  body.hidden = true;
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const done = h("p", { class: "hint", role: "status" });
  const submit = h("button", { type: "submit" }, "Produce");
  const single = [key, value, partition, headers];
  const fields = {
    "/records/0/key": key, "/records/0/value": value, "/records/0/partition": partition,
    "/records/0/headers": headers,
  };
  const form = h("form", { class: "card grid-form", "aria-label": "Produce" },
    h("h2", {}, "Produce"), mode, key, value, partition, headers, body, problem,
    h("div", { class: "actions" }, submit, done));
  mode.input.addEventListener("change", () => {
    const whole = mode.input.value === "body";
    single.forEach((f) => { f.hidden = whole; });
    body.hidden = !whole;
  });

  function build() {
    if (mode.input.value === "body") {
      const parsed = parseJsonField(body.input.value, "The body");
      return parsed.error ? { errors: [[body, parsed.error]] } : { raw: body.input.value };
    }
    const record = {};
    const errors = [];
    if (key.input.value !== "") record.key = key.input.value;
    if (format === "json") {
      const parsed = parseJsonField(value.input.value, "The value");
      if (parsed.error) errors.push([value, parsed.error]);
      else record.value = parsed.value;
    } else {
      record.value = value.input.value;
    }
    if (partition.input.value !== "") record.partition = Number(partition.input.value);
    if (headers.input.value.trim() !== "") {
      const parsed = parseJsonField(headers.input.value, "Headers");
      if (parsed.error) errors.push([headers, parsed.error]);
      else record.headers = parsed.value;
    }
    return errors.length ? { errors } : { raw: JSON.stringify({ records: [record] }) };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(problem, { ...fields, "/records": body });
    done.textContent = "";
    const built = build();
    if (built.errors) {
      built.errors.forEach(([wrap, message]) => fieldError(wrap, message));
      built.errors[0][0].input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const reply = await request("POST", `/v1/topics/${seg(topic.name)}/records`, { rawBody: built.raw });
      const first = reply.offsets[0];
      done.textContent = reply.offsets.length === 1
        ? `Written to partition ${first.partition} at offset ${first.offset}.`
        : `${reply.offsets.length} records written.`;
      onProduced(first);
    } catch (error) {
      showProblem(problem, error, mode.input.value === "one" ? fields : { "/records": body });
      const invalid = form.querySelector("[aria-invalid=true]");
      if (invalid) invalid.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function render(main, [name], view) {
  const head = h("div", { class: "page-head" },
    h("h1", { tabindex: "-1" }, h("a", { href: "#/topics", class: "crumb" }, "Topics"), " / ", name));
  main.append(head);
  const body = h("div", {}, loading("the topic"));
  main.append(body);
  let topic;
  try {
    topic = await get(`/v1/topics/${seg(name)}`, { signal: view.signal });
  } catch (error) {
    if (!view.left) fill(body, failed(`topic ${name}`, error));
    return;
  }
  const remove = h("button", { type: "button", class: "danger" }, "Delete topic");
  remove.addEventListener("click", async () => {
    const sure = await confirmAction({
      title: `Delete topic ${name}?`,
      text: "Every record of every partition is deleted, and cannot be brought back.",
      action: "Delete topic",
      typeToConfirm: name,
    });
    if (!sure) {
      remove.focus();
      return;
    }
    try {
      await del(`/v1/topics/${seg(name)}`);
      window.location.hash = "#/topics";
    } catch (error) {
      body.prepend(failed(`to delete topic ${name}`, error));
    }
  });
  head.append(remove);

  const facts = h("section", { "aria-label": "Summary" }, summary(topic));
  const parts = h("section", { class: "card", "aria-label": "Partitions" }, h("h2", {}, "Partitions"), partitionsTable(topic));
  async function refresh() {
    try {
      topic = await get(`/v1/topics/${seg(name)}`, { signal: view.signal });
    } catch {
      return; // the next refresh tries again; errors that matter reach the notice
    }
    if (view.left) return;
    fill(facts, summary(topic));
    fill(parts, h("h2", {}, "Partitions"), partitionsTable(topic));
  }
  const records = browser(topic, view);
  fill(body, facts,
    h("div", { class: "columns" }, parts, configForm(topic, refresh)),
    produceForm(topic, (first) => {
      refresh();
      records.show(first.partition, first.offset);
    }),
    liveTail(topic, view),
    records.form);
  view.every(5000, refresh);
}

