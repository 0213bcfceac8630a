// Records as the console shows them. A value is always text: JSON values as their
// JSON, strings and base64 as sent, put into the page as text nodes (dom.h), so a
// value such as <img src=x onerror=alert(1)> is shown, never run.

import { h, table } from "./dom.js";
import { time } from "./format.js";

export function valueText(value, format) {
  if (format === "json") return JSON.stringify(value);
  return value === null || value === undefined ? "null" : String(value);
}

function headersText(headers) {
  if (!headers || headers.length === 0) return "";
  return headers.map(([name, value]) => `${name}: ${value}`).join("\n");
}

export function recordsTable(caption, records, format, { withTopic = false } = {}) {
  const columns = ["Partition", "Offset", "Timestamp", "Key", "Value", "Headers"];
  const rows = records.map((r) => [
    String(r.partition), String(r.offset), time(r.timestamp),
    r.key === null || r.key === undefined ? h("span", { class: "muted" }, "null") : h("code", { class: "key" }, r.key),
    h("pre", { class: "value" }, valueText(r.value, format)),
    h("pre", { class: "headers" }, headersText(r.headers)),
  ]);
  if (withTopic) {
    columns.unshift("Topic");
    rows.forEach((row, i) => row.unshift(records[i].topic));
  }
  return table(caption, columns, rows, { numeric: withTopic ? [1, 2] : [0, 1] });
}
