// The console's shell: the router (views are chosen by the URL fragment, #/topics/orders),
// the top bar, and what a 401, 429 or 503 does on any page.

import { get, onProblem } from "./api.js";
import { fill, h } from "./dom.js";
import { isOperator, signedIn, signOut } from "./session.js";
import * as group from "./view-group.js";
import * as groups from "./view-groups.js";
import * as schema from "./view-schema.js";
import * as schemas from "./view-schemas.js";
import * as signin from "./view-signin.js";
import * as tenant from "./view-tenant.js";
import * as tenants from "./view-tenants.js";
import * as topic from "./view-topic.js";
import * as topics from "./view-topics.js";
import * as usage from "./view-usage.js";

const ROUTES = [
  { pattern: /^signin$/, view: signin, section: null, open: true },
  { pattern: /^topics$/, view: topics, section: "topics" },
  { pattern: /^topics\/([^/]+)$/, view: topic, section: "topics" },
  { pattern: /^groups$/, view: groups, section: "groups" },
  { pattern: /^groups\/([^/]+)$/, view: group, section: "groups" },
  { pattern: /^schemas$/, view: schemas, section: "schemas" },
  { pattern: /^schemas\/([^/]+)$/, view: schema, section: "schemas" },
  { pattern: /^usage$/, view: usage, section: "usage" },
  { pattern: /^tenants$/, view: tenants, section: "tenants" },
  { pattern: /^tenants\/([^/]+)$/, view: tenant, section: "tenants" },
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const signoutButton = document.getElementById("signout");
const notice = document.getElementById("notice");

let current = null; // the running view's context

/** What a view gets: an abort signal for its requests, timers cleared when it is left. */
function viewContext() {
  const controller = new AbortController();
  const timers = [];
  return {
    signal: controller.signal,
    every(ms, fn) {
      timers.push(setInterval(() => {
        if (!controller.signal.aborted) fn();
      }, ms));
    },
    onLeave: [],
    leave() {
      controller.abort();
      timers.forEach(clearInterval);
      this.onLeave.forEach((fn) => fn());
    },
    get left() {
      return controller.signal.aborted;
    },
  };
}

function updateBar(section) {
  const inside = signedIn();
  nav.hidden = !inside;
  signoutButton.hidden = !inside;
  for (const link of nav.querySelectorAll("a")) {
    if (link.hasAttribute("data-operator")) link.hidden = !isOperator();
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!inside) who.textContent = "";
}

/** The tenant and plan the key acts in, shown in the top bar. */
async function showWho() {
  if (who.textContent || !signedIn()) return;
  try {
    const use = await get("/v1/usage");
    who.textContent = `${use.tenant} · ${use.plan}`;
  } catch {
    // the page itself shows what went wrong
  }
}

async function route() {
  const hash = window.location.hash;
  if (hash && !hash.startsWith("#/")) return; // an in-page anchor, not a view
  const path = hash.slice(2) || (signedIn() ? "topics" : "signin");
  let match = null;
  let entry = null;
  for (const candidate of ROUTES) {
    match = candidate.pattern.exec(path);
    if (match) {
      entry = candidate;
      break;
    }
  }
  if (current) current.leave();
  current = viewContext();
  if (!entry) {
    updateBar(null);
    fill(main, h("h1", { tabindex: "-1" }, "Not found"),
      h("p", { class: "state empty" }, "No such page. ", h("a", { href: "#/topics" }, "Go to topics")));
    return;
  }
  if (!entry.open && !signedIn()) {
    window.location.hash = "#/signin";
    return;
  }
  updateBar(entry.section);
  if (entry.section) showWho();
  const params = match.slice(1).map(decodeURIComponent);
  const context = current;
  main.replaceChildren();
  try {
    await entry.view.render(main, params, context);
  } catch (error) {
    if (!context.left && error.name !== "AbortError") {
      fill(main, h("div", { class: "state error", role: "alert" }, String(error.message || error)));
    }
  }
  if (!context.left) {
    const heading = main.querySelector("h1");
    if (heading && document.activeElement === document.body) heading.focus({ preventScroll: true });
  }
}

let countdown = null;

function showNotice(kind, text, retryAfter) {
  clearInterval(countdown);
  notice.className = `notice ${kind}`;
  const words = h("span", {});
  const close = h("button", { type: "button", class: "quiet", "aria-label": "Dismiss" }, "×");
  close.addEventListener("click", () => {
    clearInterval(countdown);
    notice.hidden = true;
  });
  fill(notice, words, close);
  let left = retryAfter;
  const tick = () => {
    words.textContent = left === null || left === undefined ? text : `${text} Retry in ${left} s.`;
    if (left !== null && left !== undefined) {
      if (left <= 0) {
        clearInterval(countdown);
        words.textContent = `${text} You can retry now.`;
      }
      left -= 1;
    }
  };
  tick();
  if (retryAfter) countdown = setInterval(tick, 1000);
  notice.hidden = false;
}

onProblem({
  unauthorized() {
    signOut();
    signin.setReason("The gateway refused the key (it may have been revoked or expired). Sign in again.");
    if (window.location.hash === "#/signin") route();
    else window.location.hash = "#/signin";
  },
  throttled(error) {
    const limit = error.problem.limit ? ` (${error.problem.limit})` : "";
    showNotice("warn", `Rate limited by the tenant's quota${limit}: nothing was done.`, error.retryAfter);
  },
  unavailable(error) {
    showNotice("bad", `The backend is unavailable (${error.problem.title || "503"}).`, error.retryAfter);
  },
});

signoutButton.addEventListener("click", () => {
  signOut();
  signin.setReason("Signed out.");
  window.location.hash = "#/signin";
});

window.addEventListener("hashchange", route);
route();
