// The live tail of a topic over the WebSocket stream (/v1/topics/{t}/stream, subprotocol
// tidegate.v1 with the short-lived token beside it, never the API key). Flow control is
// the server's credit: the page grants records as it shows them, so pausing simply stops
// granting and the server holds nothing for us beyond the credit already given. It
// reconnects where it left off (the next offset of every partition) after a server
// shutdown or an expired token, and shows every gap the server reports.

import { seg } from "./api.js";
import { field, fieldError, fill, h } from "./dom.js";
import { recordsTable } from "./records.js";
import { describe, empty } from "./states.js";
import { accessToken } from "./session.js";

const CREDIT = 100;
const SHOWN = 200; // rows kept on the page, newest first
const RETRIES = 5;

function parsePositions(text) {
  const out = new Map();
  for (const part of (text || "").split(",")) {
    const [p, o] = part.split(":");
    if (p !== undefined && o !== undefined) out.set(Number(p), Number(o));
  }
  return out;
}

export function liveTail(topic, view) {
  const from = field("From", h("select", {},
    [["latest", "now on (latest)"], ["earliest", "the earliest"], ["offset", "an offset"], ["timestamp", "a time"]]
      .map(([v, t]) => h("option", { value: v }, t))));
  const partition = field("Partition", h("select", {}, topic.partitions.map((p) =>
    h("option", { value: String(p.partition) }, String(p.partition)))));
  const offset = field("Offset", h("input", { type: "number", min: "0", value: "0" }));
  const when = field("Time", h("input", { type: "datetime-local", step: "1" }));
  const keyFilter = field("Key contains", h("input", { type: "search", autocomplete: "off", spellcheck: "false" }), "Shows only records whose key contains this");
  const follow = h("button", { type: "submit" }, "Follow");
  const pause = h("button", { type: "button", class: "quiet", disabled: true, "aria-pressed": "false" }, "Pause");
  const stop = h("button", { type: "button", class: "quiet", disabled: true }, "Stop");
  const status = h("p", { class: "tail-status", role: "status" }, "Not following.");
  const rowsBox = h("div", { class: "records" });
  const toggle = () => {
    partition.hidden = from.input.value !== "offset";
    offset.hidden = from.input.value !== "offset";
    when.hidden = from.input.value !== "timestamp";
  };
  from.input.addEventListener("change", toggle);
  toggle();
  const form = h("form", { class: "card", "aria-label": "Live tail" },
    h("h2", {}, "Live tail"),
    h("div", { class: "row-form" }, from, partition, offset, when, keyFilter,
      h("div", { class: "actions" }, follow, pause, stop)),
    status, rowsBox);

  let socket = null;
  let shown = []; // newest first
  let notes = []; // gaps and other events, newest first
  let positions = new Map();
  let granted = 0;
  let received = 0;
  let paused = false;
  let held = [];
  let retries = 0;
  let generation = 0; // which connection the handlers belong to

  function render() {
    const needle = keyFilter.input.value;
    const visible = needle ? shown.filter((r) => r.key !== null && r.key !== undefined && String(r.key).includes(needle)) : shown;
    fill(rowsBox,
      notes.length ? h("ul", { class: "tail-notes" }, notes.map((n) => h("li", {}, n))) : null,
      visible.length ? recordsTable("Live records", visible, topic.config.value_format)
        : empty(shown.length ? "No record shown matches the key filter." : "No records yet: produce some, or follow from the earliest."));
  }

  function say(text) {
    status.textContent = text;
  }

  function followed() {
    return [...positions.keys()].sort((a, b) => a - b);
  }

  function grant(n) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "credit", records: n }));
      granted += n;
    }
  }

  function take(records) {
    for (const r of records) positions.set(r.partition, r.offset + 1);
    shown = [...records.slice().reverse(), ...shown].slice(0, SHOWN);
  }

  function onFrame(frame) {
    if (frame.type === "subscribed") {
      positions = parsePositions(frame.from);
      retries = 0;
      say(`Following partitions ${frame.partitions.join(", ")} from ${frame.from}.`);
    } else if (frame.type === "records") {
      received += frame.records.length;
      if (paused) {
        held.push(...frame.records);
        say(`Paused: ${held.length} record(s) arrived and are held; the server sends no more until you resume.`);
      } else {
        take(frame.records);
        render();
      }
      if (!paused && granted - received <= CREDIT / 2) grant(CREDIT);
    } else if (frame.type === "gap") {
      for (const g of frame.partitions) {
        notes.unshift(`Gap in partition ${g.partition}: offsets ${g.requested}…${g.earliest - 1} are no longer retained; continuing at ${g.earliest}.`);
        positions.set(g.partition, g.earliest);
      }
      render();
    } else if (frame.type === "error") {
      say(`The stream ended: ${describe({ status: frame.problem.status, problem: frame.problem, retryAfter: null })}`);
    } else if (frame.type === "closing") {
      positions = parsePositions(frame.from);
    }
  }

  function resumeQuery() {
    const list = followed().map((p) => `${p}:${positions.get(p)}`).join(",");
    return list ? { from: list } : { from: "latest" };
  }

  async function connect(query) {
    close();
    const mine = ++generation;
    granted = CREDIT;
    received = 0;
    let token;
    try {
      token = await accessToken();
    } catch (error) {
      say(`Could not get a token for the stream: ${error.message}`);
      return;
    }
    if (view.left || mine !== generation) return;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const url = new URL(`${scheme}://${window.location.host}/v1/topics/${seg(topic.name)}/stream`);
    for (const [k, v] of Object.entries({ ...query, credit: CREDIT })) url.searchParams.set(k, v);
    say("Connecting…");
    const ws = new WebSocket(url, ["tidegate.v1", `bearer.${token}`]);
    socket = ws;
    follow.textContent = "Restart";
    stop.disabled = false;
    pause.disabled = false;
    ws.addEventListener("message", (event) => {
      if (mine !== generation) return;
      try {
        onFrame(JSON.parse(event.data));
      } catch (error) {
        say(`A frame could not be read: ${error.message}`);
      }
    });
    ws.addEventListener("close", (event) => {
      if (mine !== generation || view.left) return;
      socket = null;
      const again = event.code === 1001 || event.code === 1013 || (event.code === 4401 && event.reason === "token expired");
      if (again && retries < RETRIES) {
        retries += 1;
        say(`Reconnecting (${event.reason || event.code})…`);
        setTimeout(() => {
          if (!view.left && mine === generation) connect(resumeQuery());
        }, event.code === 1013 ? 2000 : 100);
        return;
      }
      pause.disabled = true;
      stop.disabled = true;
      follow.textContent = "Follow";
      if (event.code !== 1000) {
        const previous = status.textContent.startsWith("The stream ended") ? `${status.textContent} ` : "";
        say(`${previous}Closed (${event.code}${event.reason ? `: ${event.reason}` : ""}).`);
      }
    });
  }

  function close() {
    generation += 1;
    if (socket) {
      socket.close(1000);
      socket = null;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    fieldError(when, null);
    let query = { from: from.input.value };
    if (from.input.value === "offset") {
      query = { from: `${partition.input.value}:${offset.input.value || 0}` };
    } else if (from.input.value === "timestamp") {
      const ms = Date.parse(when.input.value);
      if (Number.isNaN(ms)) {
        fieldError(when, "Choose a date and time.");
        return;
      }
      query = { timestamp: ms };
    }
    shown = [];
    notes = [];
    held = [];
    paused = false;
    pause.textContent = "Pause";
    pause.setAttribute("aria-pressed", "false");
    render();
    retries = 0;
    connect(query);
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (paused) {
      say("Paused: no more credit is given, so the server stops sending.");
      return;
    }
    take(held);
    held = [];
    render();
    say(`Following partitions ${followed().join(", ")}.`);
    grant(CREDIT - Math.max(0, granted - received));
  });
  stop.addEventListener("click", () => {
    close();
    pause.disabled = true;
    stop.disabled = true;
    follow.textContent = "Follow";
    say("Stopped.");
  });
  keyFilter.input.addEventListener("input", render);
  view.onLeave.push(close);
  render();
  return form;
}
