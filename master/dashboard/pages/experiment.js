// One experiment: its header, trials (sortable), learning curves, checkpoints and brackets.

import { get } from "../api.js";
import { facts, h, setAttr, setLink, setText } from "../dom.js";
import { bytes, hparams, metric, time } from "../format.js";
import { links } from "../router.js";
import { createTable } from "../table.js";
import { bracketsSection } from "./brackets.js";
import { checkpointTable } from "./checkpoints.js";
import { metricWithSource, renderProgress, renderState } from "./common.js";
import { experimentCurves } from "./experiment-curves.js";

/** A metric `{value, step}` as "0.0123 @ 60". */
function metricAtStep(m) {
  return m ? `${metric(m.value)} @ ${m.step}` : "—";
}

const TRIAL_COLUMNS = [
  {
    field: "id",
    label: "Trial",
    value: (t) => t.id,
    render: (td, t) => setLink(td, links.trial(t.id), String(t.id)),
    className: "num",
  },
  {
    field: "state",
    label: "State",
    value: (t) => t.state,
    render: (td, t) => {
      renderState(td, t.state);
      td.title = t.error || t.state_reason || "";
    },
  },
  { field: "hparams", label: "Hyperparameters", value: (t) => hparams(t.hparams), className: "mono small" },
  {
    field: "steps",
    label: "Steps",
    value: (t) => t.steps_completed,
    render: (td, t) => {
      setText(td, t.target_length ? `${t.steps_completed} / ${t.target_length}` : String(t.steps_completed));
      setAttr(td, "data-steps-completed", t.steps_completed);
      setAttr(td, "data-target-length", t.target_length ?? null);
    },
    className: "num",
  },
  {
    field: "best-metric",
    label: "Best metric",
    value: (t) => (t.best_metric ? t.best_metric.value : null),
    render: (td, t) => setText(td, metricAtStep(t.best_metric)),
    className: "num",
  },
  {
    field: "latest-metric",
    label: "Latest metric",
    value: (t) => (t.latest_metric ? t.latest_metric.value : null),
    render: (td, t) => setText(td, metricAtStep(t.latest_metric)),
    className: "num",
  },
  { field: "agent", label: "Agent", value: (t) => t.agent_id, render: (td, t) => setText(td, t.agent_id || "—") },
  { field: "restarts", label: "Restarts", value: (t) => t.restarts, className: "num" },
];

const HEADER_FIELDS = [
  ["state", "State"],
  ["searcher", "Searcher"],
  ["progress", "Progress"],
  ["trials", "Trials"],
  ["metric", "Metric"],
  ["best-metric", "Best"],
  ["storage", "Storage held"],
  ["storage-peak", "Peak"],
  ["pinned", "Pinned"],
  ["created", "Created"],
];

function updateHeader(header, exp) {
  const v = header.values;
  renderState(v.state, exp.state);
  setText(v.searcher, exp.searcher);
  renderProgress(v.progress, exp);
  const states = Object.entries(exp.trial_states || {}).map(([s, n]) => `${n} ${s.toLowerCase()}`);
  setText(v.trials, `${exp.trial_count}${states.length ? ` (${states.join(", ")})` : ""}`);
  setText(v.metric, exp.metric ? `${exp.metric.name} (${exp.metric.smaller_is_better ? "smaller" : "larger"} is better)` : "—");
  setText(v["best-metric"], metricWithSource(exp.best_metric));
  setText(v.storage, bytes(exp.storage_bytes));
  setText(v["storage-peak"], bytes(exp.storage_peak_bytes));
  setText(v.pinned, `${exp.pinned_checkpoints ?? 0} checkpoints`);
  setText(v.created, time(exp.created));
}

/** Shows experiment `route.id` in `root`. */
export function mount(root, route) {
  const id = route.id;
  document.title = `Experiment ${id} · Baton`;
  const title = h("h1", { "data-testid": "experiment-title", text: `Experiment ${id}` });
  const header = facts("experiment-header", HEADER_FIELDS);
  const trials = createTable({
    testid: "trials-table",
    columns: TRIAL_COLUMNS,
    key: (t) => t.id,
    rowAttrs: (t) => ({ "data-trial-id": t.id, "data-state": t.state }),
    sort: { field: "id", descending: false },
    empty: "No trials yet.",
  });
  const curves = experimentCurves(id);
  const checkpoints = checkpointTable("checkpoints-table", { withTrial: true });
  const brackets = bracketsSection();
  root.append(
    h("section", { class: "panel", "data-testid": "experiment" }, title, header.el),
    curves.el,
    h("section", { class: "panel", "data-testid": "trials" }, h("h2", { text: "Trials" }), trials.el),
    brackets.el,
    h("section", { class: "panel", "data-testid": "checkpoints" }, h("h2", { text: "Checkpoints" }), checkpoints.el),
  );

  return {
    async refresh() {
      const [exp, listed] = await Promise.all([get(`experiments/${id}`), get(`experiments/${id}/checkpoints`)]);
      setText(title, `Experiment ${exp.id}: ${exp.name}`);
      document.title = `${exp.name} (${exp.id}) · Baton`;
      updateHeader(header, exp);
      trials.update(exp.trials);
      checkpoints.update(listed.checkpoints);
      brackets.update(exp);
      await curves.refresh(exp);
      return { active: exp.state === "ACTIVE" };
    },
    unmount() {
      curves.destroy();
    },
  };
}
