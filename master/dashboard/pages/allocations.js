// A trial's allocations (one run on one agent each): a timeline of bars over wall-clock time and
// a table with steps, times, how each ended and why.

import { h, setAttr, setText, syncKeyed } from "../dom.js";
import { duration, time } from "../format.js";
import { markLabel } from "./trial-curves.js";
import { createTable } from "../table.js";

/** An allocation's end for drawing: its end, or now while it runs. */
function endMs(a, now) {
  return a.ended_ms || now;
}

const COLUMNS = [
  { field: "id", label: "Allocation", value: (a) => a.id, className: "mono small" },
  { field: "agent", label: "Agent", value: (a) => a.agent_id },
  {
    field: "steps",
    label: "Steps",
    value: (a) => a.start_step,
    render: (td, a) => setText(td, `${a.start_step} → ${a.ended_ms ? a.end_step : `${a.end_step ?? "…"} (running)`}`),
    className: "num",
  },
  { field: "started", label: "Started", value: (a) => a.started_ms, render: (td, a) => setText(td, time(a.started)) },
  { field: "ended", label: "Ended", value: (a) => a.ended_ms, render: (td, a) => setText(td, time(a.ended)) },
  {
    field: "duration",
    label: "Ran for",
    value: (a) => (a.started_ms ? endMs(a, Date.now()) - a.started_ms : null),
    render: (td, a) => setText(td, a.started_ms ? duration(endMs(a, Date.now()) - a.started_ms) : "—"),
    className: "num",
  },
  {
    field: "exit-reason",
    label: "Ended by",
    value: (a) => a.exit_reason,
    render: (td, a) => setText(td, a.exit_reason || "running"),
  },
  { field: "message", label: "Message", value: (a) => a.message, render: (td, a) => setText(td, a.message || "") },
];

/** Bars placed by start and end time across the trial's life so far. */
function updateTimeline(timeline, allocations) {
  const now = Date.now();
  const started = allocations.filter((a) => a.started_ms);
  const t0 = Math.min(...started.map((a) => a.started_ms));
  const t1 = Math.max(...started.map((a) => endMs(a, now)));
  const span = Math.max(t1 - t0, 1);
  const build = () => h("div", { class: "bar" }, h("span", { class: "bar-label" }));
  syncKeyed(timeline, started, (a) => a.id, build, (bar, a) => {
    const left = ((a.started_ms - t0) / span) * 100;
    const width = Math.max(((endMs(a, now) - a.started_ms) / span) * 100, 0.5);
    bar.style.left = `${left.toFixed(2)}%`;
    bar.style.width = `${width.toFixed(2)}%`;
    setAttr(bar, "data-allocation-id", a.id);
    setAttr(bar, "data-exit-reason", a.exit_reason || "");
    setAttr(bar, "title", `${markLabel(a)}: steps ${a.start_step} → ${a.end_step ?? "…"}, ${time(a.started)} → ${time(a.ended)}`);
    setText(bar.firstChild, markLabel(a));
  });
}

/** The allocations section; `update(allocations)` redraws it in place. */
export function allocationsSection() {
  const timeline = h("div", { class: "timeline", "data-testid": "allocation-timeline" });
  const table = createTable({
    testid: "allocations-table",
    columns: COLUMNS,
    key: (a) => a.id,
    rowAttrs: (a) => ({
      "data-allocation-id": a.id,
      "data-start-step": a.start_step,
      "data-end-step": a.end_step ?? "",
      "data-agent-id": a.agent_id,
      "data-exit-reason": a.exit_reason || "",
    }),
    sort: { field: "started", descending: false },
    empty: "Not run yet.",
  });
  const el = h("section", { class: "panel", "data-testid": "allocations" }, h("h2", { text: "Allocations" }), timeline, table.el);
  return {
    el,
    update(allocations) {
      updateTimeline(timeline, allocations);
      table.update(allocations);
    },
  };
}
