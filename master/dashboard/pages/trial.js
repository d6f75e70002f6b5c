// One trial: its header, curves with allocations marked, allocation timeline, checkpoints, logs.

import { get } from "../api.js";
import { facts, h, setLink, setText } from "../dom.js";
import { hparams, shortUuid } from "../format.js";
import { links } from "../router.js";
import { allocationsSection } from "./allocations.js";
import { checkpointTable } from "./checkpoints.js";
import { TERMINAL_STATES, renderState } from "./common.js";
import { trialLogs } from "./logs.js";
import { trialCurves } from "./trial-curves.js";

const HEADER_FIELDS = [
  ["experiment", "Experiment"],
  ["state", "State"],
  ["steps", "Steps"],
  ["restarts", "Restarts"],
  ["agent", "Agent"],
  ["hparams", "Hyperparameters"],
  ["latest-checkpoint", "Latest checkpoint"],
  ["state-reason", "Reason"],
  ["error", "Error"],
];

function updateHeader(header, trial) {
  const v = header.values;
  setLink(v.experiment, links.experiment(trial.experiment_id), String(trial.experiment_id));
  renderState(v.state, trial.state);
  setText(v.steps, trial.target_length ? `${trial.steps_completed} / ${trial.target_length}` : String(trial.steps_completed));
  v.steps.dataset.stepsCompleted = trial.steps_completed;
  setText(v.restarts, trial.restarts);
  setText(v.agent, trial.agent_id || "—");
  setText(v.hparams, hparams(trial.hparams));
  setText(v["latest-checkpoint"], shortUuid(trial.latest_checkpoint));
  v["latest-checkpoint"].title = trial.latest_checkpoint || "";
  setText(v["state-reason"], trial.state_reason || "—");
  setText(v.error, trial.error || "—");
  v.error.closest(".fact").classList.toggle("is-error", Boolean(trial.error));
}

/** The trial's checkpoints with `gc_keeps` from the experiment's list (the trial's own without). */
async function checkpointsOf(trial) {
  try {
    const { checkpoints } = await get(`experiments/${trial.experiment_id}/checkpoints`);
    return checkpoints.filter((c) => c.trial_id === trial.id);
  } catch {
    return trial.checkpoints || [];
  }
}

/** Shows trial `route.id` in `root`. */
export function mount(root, route) {
  const id = route.id;
  document.title = `Trial ${id} · Baton`;
  const title = h("h1", { "data-testid": "trial-title", text: `Trial ${id}` });
  const header = facts("trial-header", HEADER_FIELDS);
  const curves = trialCurves(id);
  const allocations = allocationsSection();
  const checkpoints = checkpointTable("trial-checkpoints-table", { withTrial: false });
  const logs = trialLogs(id);
  root.append(
    h("section", { class: "panel", "data-testid": "trial" }, title, header.el),
    curves.el,
    allocations.el,
    h("section", { class: "panel", "data-testid": "trial-checkpoints" }, h("h2", { text: "Checkpoints" }), checkpoints.el),
    logs.el,
  );
  let searcherMetric;

  return {
    async refresh() {
      const trial = await get(`trials/${id}`);
      if (searcherMetric === undefined) {
        const exp = await get(`experiments/${trial.experiment_id}`).catch(() => ({}));
        searcherMetric = exp.metric ? exp.metric.name : null;
      }
      setText(title, `Trial ${trial.id} of experiment ${trial.experiment_id}`);
      updateHeader(header, trial);
      allocations.update(trial.allocations || []);
      const active = !TERMINAL_STATES.has(trial.state);
      const [listed] = await Promise.all([checkpointsOf(trial), curves.refresh(trial, searcherMetric), logs.refresh(active)]);
      checkpoints.update(listed);
      return { active };
    },
    unmount() {
      curves.destroy();
    },
  };
}
