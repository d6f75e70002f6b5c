// The experiments list: one row per experiment, filtered by state (`#/experiments?state=ACTIVE`).

import { get } from "../api.js";
import { h, setLink, setText } from "../dom.js";
import { bytes, time } from "../format.js";
import { links, replaceQuery } from "../router.js";
import { createTable } from "../table.js";
import { metricWithSource, progress, renderProgress, renderState } from "./common.js";

const STATES = ["ACTIVE", "PAUSED", "COMPLETED", "CANCELED", "ERRORED"];

const COLUMNS = [
  {
    field: "id",
    label: "ID",
    value: (e) => e.id,
    render: (td, e) => setLink(td, links.experiment(e.id), String(e.id)),
  },
  {
    field: "name",
    label: "Name",
    value: (e) => e.name,
    render: (td, e) => setLink(td, links.experiment(e.id), e.name),
  },
  { field: "state", label: "State", value: (e) => e.state, render: (td, e) => renderState(td, e.state) },
  { field: "searcher", label: "Searcher", value: (e) => e.searcher },
  {
    field: "progress",
    label: "Progress",
    value: (e) => progress(e).fraction,
    render: (td, e) => renderProgress(td, e),
    className: "progress-cell",
  },
  { field: "trials", label: "Trials", value: (e) => e.trial_count, className: "num" },
  {
    field: "best-metric",
    label: "Best metric",
    value: (e) => (e.best_metric ? e.best_metric.value : null),
    render: (td, e) => {
      setText(td, metricWithSource(e.best_metric, { step: false }));
      td.title = e.metric ? `${e.metric.name} (${e.metric.smaller_is_better ? "smaller" : "larger"} is better)` : "";
    },
  },
  {
    field: "storage",
    label: "Storage held",
    value: (e) => e.storage_bytes,
    render: (td, e) => setText(td, bytes(e.storage_bytes)),
    className: "num",
  },
  {
    field: "created",
    label: "Created",
    value: (e) => e.created_ms,
    render: (td, e) => setText(td, time(e.created)),
  },
];

/** The checked states from the hash's `?state=` (all unchecked: every state). */
function statesOf(query) {
  const text = query.get("state") || "";
  return new Set(text.split(",").map((s) => s.trim().toUpperCase()).filter((s) => STATES.includes(s)));
}

/** Shows the experiments page in `root`. */
export function mount(root, route) {
  document.title = "Experiments · Baton";
  let wanted = statesOf(route.query);
  const boxes = STATES.map((state) =>
    h("input", { type: "checkbox", value: state, checked: wanted.has(state), "data-state": state }),
  );
  const filter = h(
    "fieldset",
    { class: "filter", "data-testid": "state-filter" },
    h("legend", { text: "State" }),
    boxes.map((box) => h("label", {}, box, ` ${box.value.toLowerCase()}`)),
  );
  const table = createTable({
    testid: "experiments-table",
    columns: COLUMNS,
    key: (e) => e.id,
    rowAttrs: (e) => ({ "data-experiment-id": e.id, "data-state": e.state }),
    sort: { field: "id", descending: true },
    empty: "No experiments match. Create one with `baton experiment create CONFIG DIR`.",
  });
  const count = h("span", { class: "count", "data-testid": "experiment-count" });
  root.append(
    h(
      "section",
      { class: "panel", "data-testid": "experiments" },
      h("div", { class: "panel-head" }, h("h1", { text: "Experiments" }), count, filter),
      table.el,
    ),
  );

  filter.addEventListener("change", () => {
    wanted = new Set(boxes.filter((b) => b.checked).map((b) => b.value));
    const query = new URLSearchParams();
    if (wanted.size) query.set("state", [...wanted].join(","));
    replaceQuery("/experiments", query);
    window.baton.refresh();
  });

  return {
    async refresh() {
      const { experiments } = await get("experiments", { state: [...wanted].join(",") || null });
      table.update(experiments);
      setText(count, `${experiments.length} shown`);
      return { active: experiments.some((e) => e.state === "ACTIVE") };
    },
    onQuery(query) {
      wanted = statesOf(query);
      for (const box of boxes) box.checked = wanted.has(box.value);
      window.baton.refresh();
    },
    unmount() {},
  };
}
