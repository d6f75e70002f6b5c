// Learning curves of an experiment: one line per trial for the chosen metric and kind, from the
// experiment-wide metrics endpoint (each trial downsampled by the master).

import { get } from "../api.js";
import { createChart } from "../chart.js";
import { h, setText } from "../dom.js";
import { color } from "../format.js";
import { TERMINAL_STATES } from "./common.js";

/** Points fetched for all trials together; each trial gets its share, within these bounds. */
const POINT_BUDGET = 100000;
const MIN_POINTS_PER_TRIAL = 50;
const MAX_POINTS_PER_TRIAL = 1000;
/** Points per trial for an experiment of `trials` trials. */
export function pointsPerTrial(trials) {
  const share = Math.floor(POINT_BUDGET / Math.max(trials, 1));
  return Math.min(MAX_POINTS_PER_TRIAL, Math.max(MIN_POINTS_PER_TRIAL, share));
}

/** Seconds between curve refreshes: every page refresh for small experiments, less for big ones. */
function periodMs(trials) {
  return trials > 200 ? 10000 : trials > 50 ? 5000 : 0;
}

/** The curves section; `refresh(exp, force)` reads and draws when due. */
export function experimentCurves(experimentId) {
  const kindSelect = h(
    "select",
    { "data-testid": "kind-select" },
    h("option", { value: "validation", text: "validation" }),
    h("option", { value: "training", text: "training" }),
  );
  const metricSelect = h("select", { "data-testid": "metric-select" });
  const logBox = h("input", { type: "checkbox", "data-testid": "log-scale" });
  const info = h("span", { class: "muted", "data-testid": "curves-info" });
  const chart = createChart("experiment-curves", { height: 340 });
  const el = h(
    "section",
    { class: "panel", "data-testid": "experiment-curves" },
    h(
      "div",
      { class: "panel-head" },
      h("h2", { text: "Learning curves" }),
      h("label", {}, "Kind ", kindSelect),
      h("label", {}, "Metric ", metricSelect),
      h("label", {}, logBox, " log scale"),
      info,
    ),
    chart.el,
  );
  const state = { metric: null, names: "", fetchedAt: 0, fetchedKey: "", last: null, exp: null };

  function setNames(names, chosen) {
    const key = names.join("\n");
    if (key !== state.names) {
      state.names = key;
      metricSelect.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
    }
    if (chosen != null) metricSelect.value = chosen;
  }

  function draw() {
    const answer = state.last;
    if (!answer) return;
    const series = answer.series.map((s) => ({
      key: s.trial_id,
      label: `trial ${s.trial_id}`,
      color: color(s.trial_id),
      xs: s.points.map((p) => p[0]),
      ys: s.points.map((p) => p[1]),
    }));
    chart.update({ series, logScale: logBox.checked });
    const shown = answer.series.reduce((n, s) => n + s.points.length, 0);
    const total = answer.series.reduce((n, s) => n + (s.total_points || 0), 0);
    setText(info, `${series.length} trials · ${shown} of ${total} points`);
  }

  async function refresh(exp, force = false) {
    state.exp = exp;
    const kind = kindSelect.value;
    const maxPoints = pointsPerTrial(exp.trials.length);
    const key = `${kind}|${state.metric}|${maxPoints}|${exp.trials.length}`;
    const settled = TERMINAL_STATES.has(exp.state) && key === state.fetchedKey;
    const due = Date.now() - state.fetchedAt >= periodMs(exp.trials.length);
    if (!force && (settled || !due)) return;
    const params = { kind, metric: state.metric, max_points: maxPoints };
    const answer = await get(`experiments/${experimentId}/metrics`, params);
    if (kind !== kindSelect.value) return;
    state.fetchedAt = Date.now();
    state.fetchedKey = key;
    state.last = answer;
    setNames(answer.metric_names || [], answer.metric);
    draw();
  }

  kindSelect.addEventListener("change", () => {
    state.metric = null;
    if (state.exp) refresh(state.exp, true).catch(reportError);
  });
  metricSelect.addEventListener("change", () => {
    state.metric = metricSelect.value;
    if (state.exp) refresh(state.exp, true).catch(reportError);
  });
  logBox.addEventListener("change", draw);

  return { el, refresh, destroy: chart.destroy };
}

function reportError(error) {
  console.error(error);
}
