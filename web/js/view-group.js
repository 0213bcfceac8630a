// One consumer group: state and status, members and their assignment, per partition the
// committed and end offsets, lag and time behind; total lag over time as a live chart
// (a sample every 2 s); and an offset reset for an empty group, previewed by its dry run
// before it is applied.

import { get, post, seg } from "./api.js";
import { lineChart } from "./chart.js";
import { confirmAction } from "./dialog.js";
import { field, fill, h, table } from "./dom.js";
import { count, duration, time } from "./format.js";
import { clearProblem, showProblem } from "./problems.js";
import { failed, loading, empty } from "./states.js";
import { statusBadge } from "./view-groups.js";

const SAMPLE_EVERY_MS = 2000;

function facts(group) {
  const items = [
    ["State", group.state], ["Status", statusBadge(group.status)], ["Total lag", count(group.lag)],
    ["Members", count(group.members.length)], ["Generation", count(group.generation)],
    ["Assignor", group.assignor], ["Offset reset", group.auto_offset_reset],
  ];
  return h("dl", { class: "facts" }, items.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

function membersTable(group) {
  if (group.members.length === 0) return empty("No members: the group is empty; its commits are kept.");
  const now = Date.now();
  return table("Members", ["Member", "Topics", "Assignment", "Last seen", "Session timeout", "Joined generation"],
    group.members.map((m) => [h("code", {}, m.member_id), m.topics.join(", "),
      m.assignment.length ? m.assignment.map((a) => `${a.topic}/${a.partition}`).join(", ") : "none",
      `${duration(Math.max(0, now - m.last_seen_ms))} ago`, duration(m.session_timeout_ms), String(m.generation)]));
}

function partitionsTable(group) {
  if (group.partitions.length === 0) return empty("No partitions: the group has neither read nor committed.");
  return table("Partition lag", ["Topic", "Partition", "Owner", "Committed", "End offset", "Lag", "Time behind", "Committed at", "Status"],
    group.partitions.map((p) => [p.topic, String(p.partition),
      p.member_id ? h("code", {}, p.member_id) : h("span", { class: "muted" }, "none"),
      p.committed === null ? "—" : count(p.committed), count(p.end_offset), count(p.lag),
      duration(p.time_behind_ms), time(p.committed_ms), statusBadge(p.status)]),
    { numeric: [1, 3, 4, 5, 6] });
}

function resetForm(name, onApplied) {
  const to = field("Reset to", h("select", {},
    [["earliest", "the earliest offset"], ["latest", "the latest offset"], ["timestamp", "a time"], ["offset", "an offset"]]
      .map(([v, t]) => h("option", { value: v }, t))));
  const when = field("Time", h("input", { type: "datetime-local", step: "1" }));
  const offset = field("Offset", h("input", { type: "number", min: "0" }), "Clamped into each partition's range");
  const topics = field("Topics", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), "Comma-separated; empty: every topic of the group");
  when.hidden = true;
  offset.hidden = true;
  to.input.addEventListener("change", () => {
    when.hidden = to.input.value !== "timestamp";
    offset.hidden = to.input.value !== "offset";
    apply.disabled = true;
  });
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const preview = h("div", { "aria-live": "polite" });
  const dry = h("button", { type: "submit" }, "Preview (dry run)");
  const apply = h("button", { type: "button", class: "danger", disabled: true }, "Apply reset");
  const fields = { "/to": to, "/timestamp": when, "/offset": offset, "/topics": topics };
  const form = h("form", { class: "card grid-form", "aria-label": "Reset offsets" },
    h("h2", {}, "Reset offsets"),
    h("p", { class: "hint" }, "Only for an empty group (no active member). The dry run shows what would change; nothing moves until you apply it."),
    to, when, offset, topics, problem, preview, h("div", { class: "actions" }, dry, apply));
  for (const wrap of [when, offset, topics]) wrap.input.addEventListener("input", () => { apply.disabled = true; });

  function body(dryRun) {
    const out = { to: to.input.value, dry_run: dryRun };
    if (out.to === "timestamp") out.timestamp = Date.parse(when.input.value);
    if (out.to === "offset") out.offset = Number(offset.input.value);
    const names = topics.input.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (names.length) out.topics = names;
    return out;
  }

  async function send(dryRun) {
    clearProblem(problem, fields);
    const reply = await post(`/v1/groups/${seg(name)}/offsets/reset`, body(dryRun));
    const rows = reply.offsets.map((o) => [o.topic, String(o.partition),
      o.previous === null ? "—" : count(o.previous), count(o.offset),
      o.previous === null ? "new" : String(o.offset - o.previous)]);
    fill(preview, h("p", {}, reply.dry_run ? "The reset would commit:" : "Committed:"),
      rows.length ? table(reply.dry_run ? "Dry run" : "Reset applied", ["Topic", "Partition", "Previous", "New", "Change"], rows, { numeric: [1, 2, 3, 4] })
        : empty("No partitions to reset."));
    return reply;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const reply = await send(true);
      apply.disabled = reply.offsets.length === 0;
    } catch (error) {
      apply.disabled = true;
      preview.replaceChildren();
      showProblem(problem, error, fields);
    }
  });
  apply.addEventListener("click", async () => {
    const sure = await confirmAction({
      title: `Reset the offsets of ${name}?`,
      text: "The group's committed offsets move as the dry run showed; its next member reads from there.",
      action: "Apply reset",
    });
    if (!sure) {
      apply.focus();
      return;
    }
    try {
      await send(false);
      apply.disabled = true;
      onApplied();
    } catch (error) {
      showProblem(problem, error, fields);
    }
  });
  return form;
}

export async function render(main, [name], view) {
  main.append(h("h1", { tabindex: "-1" }, h("a", { href: "#/groups", class: "crumb" }, "Groups"), " / ", name));
  const body = h("div", {}, loading("the group"));
  main.append(body);
  const chart = lineChart({ label: "Total lag of the group", format: (v) => count(Math.round(v)) });
  const summary = h("section", { "aria-label": "Summary" });
  const members = h("div", {});
  const lag = h("div", {});
  let shown = false;

  async function sample() {
    let group;
    try {
      group = await get(`/v1/groups/${seg(name)}`, { signal: view.signal });
    } catch (error) {
      if (!view.left && !shown) fill(body, failed(`group ${name}`, error));
      return;
    }
    if (view.left) return;
    chart.push(Date.now(), group.lag);
    fill(summary, facts(group));
    fill(members, membersTable(group));
    fill(lag, partitionsTable(group));
    if (!shown) {
      shown = true;
      fill(body, summary,
        h("section", { class: "card", "aria-label": "Lag over time" }, h("h2", {}, "Lag over time"), chart.el,
          h("p", { class: "hint" }, `Total lag (records), a sample every ${SAMPLE_EVERY_MS / 1000} s while this page is open.`)),
        h("section", { class: "card", "aria-label": "Partitions" }, h("h2", {}, "Partitions"), lag),
        h("section", { class: "card", "aria-label": "Members" }, h("h2", {}, "Members"), members),
        resetForm(name, sample));
    }
  }
  await sample();
  view.every(SAMPLE_EVERY_MS, sample);
}
