// The checkpoints table shared by the experiment and trial pages.

import { setLink, setText } from "../dom.js";
import { bytes, metric, shortUuid, time, yesNo } from "../format.js";
import { links } from "../router.js";
import { createTable } from "../table.js";
import { renderState } from "./common.js";

/** A checkpoints table; `withTrial` adds the trial column (the experiment page). */
export function checkpointTable(testid, { withTrial }) {
  const columns = [
    {
      field: "uuid",
      label: "UUID",
      value: (c) => c.uuid,
      render: (td, c) => {
        setText(td, shortUuid(c.uuid));
        td.title = c.uuid;
      },
      className: "mono",
    },
    withTrial && {
      field: "trial",
      label: "Trial",
      value: (c) => c.trial_id,
      render: (td, c) => setLink(td, links.trial(c.trial_id), String(c.trial_id)),
      className: "num",
    },
    { field: "step", label: "Step", value: (c) => c.step, className: "num" },
    { field: "state", label: "State", value: (c) => c.state, render: (td, c) => renderState(td, c.state) },
    {
      field: "size",
      label: "Size",
      value: (c) => c.size_bytes,
      render: (td, c) => {
        setText(td, bytes(c.size_bytes));
        td.dataset.bytes = c.size_bytes;
      },
      className: "num",
    },
    {
      field: "metric",
      label: "Metric",
      value: (c) => c.metric,
      render: (td, c) => setText(td, metric(c.metric)),
      className: "num",
    },
    {
      field: "pinned",
      label: "Pinned",
      value: (c) => (c.pinned ? 1 : 0),
      render: (td, c) => {
        setText(td, c.pinned ? (c.pin_note ? `yes: ${c.pin_note}` : "yes") : "no");
      },
    },
    {
      field: "gc-keeps",
      label: "Kept by GC policy",
      value: (c) => (c.gc_keeps == null ? null : c.gc_keeps ? 1 : 0),
      render: (td, c) => {
        setText(td, yesNo(c.gc_keeps));
        td.dataset.value = c.gc_keeps == null ? "" : String(c.gc_keeps);
      },
    },
    {
      field: "created",
      label: "Created",
      value: (c) => c.created_ms,
      render: (td, c) => setText(td, time(c.created)),
    },
  ].filter(Boolean);
  return createTable({
    testid,
    columns,
    key: (c) => c.uuid,
    rowAttrs: (c) => ({
      "data-checkpoint-uuid": c.uuid,
      "data-trial-id": c.trial_id,
      "data-step": c.step,
      "data-state": c.state,
    }),
    sort: { field: withTrial ? "trial" : "step", descending: false },
    empty: "No checkpoints yet.",
  });
}
