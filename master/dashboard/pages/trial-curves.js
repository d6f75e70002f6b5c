// A trial's curves: one training and one validation metric over steps, with each allocation
// marked (a band from its first step, a line labelled with its agent and how it ended).

import { get } from "../api.js";
import { createChart } from "../chart.js";
import { h, setAttr, setText, syncKeyed } from "../dom.js";

const MAX_POINTS = 2000;
const NONE = "";
const COLORS = { training: "#2f6fb3", validation: "#d9731a" };

/** Metric names of a series `[{step, metrics}]`, sorted. */
function namesOf(points) {
  const names = new Set();
  for (const p of points) for (const [k, v] of Object.entries(p.metrics || {})) if (typeof v === "number") names.add(k);
  return [...names].sort();
}

/** How an allocation reads on its mark: "a2 · moved" ("running" while it runs). */
export function markLabel(allocation) {
  return `${allocation.agent_id} · ${allocation.exit_reason || "running"}`;
}

function metricSelect(testid) {
  return h("select", { "data-testid": testid });
}

/** Fills a metric select with `names` (plus "none") and keeps or picks its value. */
function fillSelect(select, names, preferred) {
  const key = names.join("\n");
  if (select.dataset.names !== key) {
    select.dataset.names = key;
    const current = select.value;
    select.replaceChildren(h("option", { value: NONE, text: "(none)" }), ...names.map((n) => h("option", { value: n, text: n })));
    select.value = names.includes(current) ? current : preferred.find((n) => names.includes(n)) ?? names[0] ?? NONE;
  }
}

/** The curves section of trial `trialId`; `refresh(trial, searcherMetric)` reads and draws. */
export function trialCurves(trialId) {
  const training = metricSelect("training-metric-select");
  const validation = metricSelect("validation-metric-select");
  const logBox = h("input", { type: "checkbox", "data-testid": "log-scale" });
  const chart = createChart("trial-curves", { height: 320 });
  const marks = h("ul", { class: "marks", "data-testid": "allocation-marks" });
  const el = h(
    "section",
    { class: "panel", "data-testid": "trial-curves" },
    h(
      "div",
      { class: "panel-head" },
      h("h2", { text: "Metrics" }),
      h("label", {}, "Training ", training),
      h("label", {}, "Validation ", validation),
      h("label", {}, logBox, " log scale"),
    ),
    chart.el,
    h("details", { class: "marks-list" }, h("summary", { text: "Allocations on the chart" }), marks),
  );
  const state = { training: [], validation: [], allocations: [], fetchedSteps: -1 };

  function series(kind, points, name) {
    const kept = name ? points.filter((p) => typeof (p.metrics || {})[name] === "number") : [];
    return {
      key: kind,
      label: `${kind} ${name}`,
      color: COLORS[kind],
      xs: kept.map((p) => p.step),
      ys: kept.map((p) => p.metrics[name]),
    };
  }

  function draw() {
    const lines = [];
    if (training.value) lines.push(series("training", state.training, training.value));
    if (validation.value) lines.push(series("validation", state.validation, validation.value));
    const allocationMarks = state.allocations.map((a) => ({
      start: a.start_step,
      end: a.ended_ms ? a.end_step : null,
      label: markLabel(a),
    }));
    chart.update({ series: lines, marks: allocationMarks, logScale: logBox.checked });
  }

  function updateMarks() {
    const build = () => h("li", {}, h("span", { class: "mark-step" }), " ", h("span", { class: "mark-label" }));
    syncKeyed(marks, state.allocations, (a) => a.id, build, (li, a) => {
      setAttr(li, "data-step", a.start_step);
      setAttr(li, "data-allocation-id", a.id);
      setAttr(li, "data-agent-id", a.agent_id);
      setAttr(li, "data-exit-reason", a.exit_reason || "");
      setText(li.firstChild, `step ${a.start_step}:`);
      setText(li.lastChild, markLabel(a));
    });
  }

  /** Reads the series when the trial moved on (or always while it runs), then draws. */
  async function refresh(trial, searcherMetric) {
    state.allocations = trial.allocations || [];
    updateMarks();
    const progressKey = `${trial.state}|${trial.steps_completed}|${(trial.validations || []).length}`;
    if (progressKey !== state.fetchedSteps) {
      const [t, v] = await Promise.all([
        get(`trials/${trialId}/metrics`, { kind: "training", max_points: MAX_POINTS }),
        get(`trials/${trialId}/metrics`, { kind: "validation", max_points: MAX_POINTS }),
      ]);
      state.training = t.points;
      state.validation = v.points;
      state.fetchedSteps = progressKey;
      fillSelect(training, namesOf(t.points), ["loss", "train_loss", "training_loss"]);
      fillSelect(validation, namesOf(v.points), [searcherMetric, "validation_loss", "val_loss"].filter(Boolean));
    }
    draw();
  }

  for (const control of [training, validation, logBox]) control.addEventListener("change", draw);
  return { el, refresh, destroy: chart.destroy };
}
