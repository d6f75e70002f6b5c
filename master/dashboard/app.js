// The dashboard's shell: routes the location hash to a page, refreshes the page every 2 s while
// the tab is visible (slower when nothing on it is active), asks for a token when the API says
// 401, and shows other failures on one error line.

import { ApiError, setToken, token } from "./api.js";
import { setText } from "./dom.js";
import { parseRoute } from "./router.js";
import * as experiments from "./pages/experiments.js";
import * as experiment from "./pages/experiment.js";
import * as trial from "./pages/trial.js";
import * as agents from "./pages/agents.js";
import * as notFound from "./pages/not-found.js";

/** Refresh period while something on the page is active, when nothing is, and after an error. */
const FAST_MS = 2000;
const SLOW_MS = 15000;
const RETRY_MS = 5000;

const PAGES = { experiments, experiment, trial, agents, "not-found": notFound };

const root = document.getElementById("page");
const errorLine = document.getElementById("error");
const signIn = document.getElementById("sign-in");
const signInReason = document.getElementById("sign-in-reason");
const signOut = document.getElementById("sign-out");
const liveStatus = document.getElementById("live");

window.baton = window.baton || {};
window.baton.charts = window.baton.charts || {};

let current = null;
let timer = null;
let generation = 0;
let waitingForToken = false;

/** Shows the page of the current hash, dropping the one shown before. */
function route() {
  const next = parseRoute(location.hash);
  if (current && current.key === `${next.page}:${next.id}`) {
    if (current.page.onQuery) current.page.onQuery(next.query);
    return;
  }
  if (current) current.page.unmount();
  clearTimeout(timer);
  generation += 1;
  delete document.body.dataset.loaded;
  document.body.dataset.page = next.page;
  root.replaceChildren();
  window.scrollTo(0, 0);
  for (const link of document.querySelectorAll("[data-nav]")) {
    const here = link.dataset.nav === next.page || (link.dataset.nav === "experiments" && next.page !== "agents");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current = { key: `${next.page}:${next.id}`, page: PAGES[next.page].mount(root, next), running: false };
  refresh();
}

/** Refreshes the current page once, then schedules the next refresh. */
async function refresh() {
  clearTimeout(timer);
  if (!current || waitingForToken) return;
  if (current.running) {
    current.again = true;
    return;
  }
  if (document.hidden) {
    setText(liveStatus, "paused while the tab is hidden");
    return;
  }
  const mine = generation;
  const page = current;
  page.running = true;
  try {
    const { active } = await page.page.refresh();
    if (mine !== generation) return;
    showError(null);
    document.body.dataset.loaded = "true";
    const period = active ? FAST_MS : SLOW_MS;
    setText(liveStatus, `updated ${new Date().toLocaleTimeString()} · every ${period / 1000} s`);
    schedule(period);
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.status === 401) {
      askForToken(error.message);
    } else {
      showError(error instanceof ApiError ? error.message : `the page failed: ${error.message}`);
      if (!(error instanceof ApiError)) console.error(error);
      schedule(RETRY_MS);
    }
  } finally {
    page.running = false;
    if (page.again && page === current) {
      page.again = false;
      refresh();
    }
  }
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(refresh, ms);
}

/** Shows the error line, or hides it for null. */
function showError(message) {
  errorLine.hidden = message == null;
  setText(errorLine, message == null ? "" : `Error: ${message}`);
}

/** Shows the token form; refreshing waits until a token is given. */
function askForToken(reason) {
  waitingForToken = true;
  showError(null);
  setText(signInReason, token() ? `The master refused the token: ${reason}.` : "This master needs a token.");
  signIn.hidden = false;
  root.hidden = true;
  setText(liveStatus, "waiting for a token");
  signIn.elements.token.focus();
}

signIn.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = signIn.elements.token.value.trim();
  if (!value) return;
  setToken(value);
  signIn.elements.token.value = "";
  signIn.hidden = true;
  root.hidden = false;
  signOut.hidden = false;
  waitingForToken = false;
  refresh();
});

signOut.addEventListener("click", () => {
  setToken(null);
  signOut.hidden = true;
  refresh();
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
window.addEventListener("hashchange", route);

signOut.hidden = !token();
window.baton.refresh = refresh;
route();
