// Cells and facts that several pages show the same way: states, progress, metrics.

import { h, setAttr, setText } from "../dom.js";
import { metric } from "../format.js";

/** Experiment and trial states after which nothing changes. */
export const TERMINAL_STATES = new Set(["COMPLETED", "CANCELED", "ERRORED", "DELETED"]);

/** Searchers whose total length is trials x max_length, for masters that do not say `steps_total`. */
const FIXED_SEARCHERS = new Set(["single", "grid", "random"]);

/** Makes `el` a coloured state badge reading `state`. */
export function renderState(el, state) {
  let badge = el.firstElementChild;
  if (!badge || !badge.classList.contains("state")) {
    badge = h("span", { class: "state" });
    el.replaceChildren(badge);
  }
  setAttr(badge, "data-state", state || "");
  setText(badge, state || "—");
}

/** Trials of an experiment that will not run again. */
export function trialsDone(exp) {
  const states = exp.trial_states || {};
  return Object.entries(states)
    .filter(([state]) => TERMINAL_STATES.has(state))
    .reduce((n, [, count]) => n + count, 0);
}

/** The steps an experiment will train in all, or null when unknown (adaptive search). */
export function stepsTotal(exp) {
  if (exp.steps_total !== undefined) return exp.steps_total;
  if (FIXED_SEARCHERS.has(exp.searcher) && exp.max_length > 0 && exp.trial_count > 0) {
    return exp.max_length * exp.trial_count;
  }
  return null;
}

/** An experiment's progress: {fraction (null when the total is unknown), text}. */
export function progress(exp) {
  const total = stepsTotal(exp);
  const done = exp.steps_completed || 0;
  if (total) {
    return { fraction: Math.min(done / total, 1), text: `${done} / ${total} steps` };
  }
  return { fraction: null, text: `${trialsDone(exp)} of ${exp.trial_count || 0} trials done` };
}

/** Makes `el` a progress bar (or only text when the total is unknown). */
export function renderProgress(el, exp) {
  const { fraction, text } = progress(exp);
  let bar = el.querySelector(".progress");
  let label = el.querySelector(".progress-text");
  if (!bar) {
    bar = h("span", { class: "progress" }, h("span", { class: "progress-fill" }));
    label = h("span", { class: "progress-text" });
    el.replaceChildren(bar, label);
  }
  bar.hidden = fraction == null;
  if (fraction != null) bar.firstChild.style.width = `${(fraction * 100).toFixed(1)}%`;
  setAttr(el, "data-fraction", fraction == null ? null : fraction.toFixed(4));
  setText(label, text);
}

/** A metric value with where it came from: "0.0123 (trial 4, step 60)". */
export function metricWithSource(best, { trial = true, step = true } = {}) {
  if (!best) return "—";
  const where = [];
  if (trial && best.trial_id != null) where.push(`trial ${best.trial_id}`);
  if (step && best.step != null) where.push(`step ${best.step}`);
  return where.length ? `${metric(best.value)} (${where.join(", ")})` : metric(best.value);
}
