// The cluster: every agent with its status, slots (GPU UUIDs) and the trial on each slot.

import { get } from "../api.js";
import { facts, h, setAttr, setLink, setText, syncKeyed } from "../dom.js";
import { duration } from "../format.js";
import { links } from "../router.js";
import { createTable } from "../table.js";

function renderStatus(td, agent) {
  let badge = td.firstElementChild;
  if (!badge) {
    badge = h("span", { class: "status" });
    td.replaceChildren(badge);
  }
  const status = agent.status;
  setAttr(badge, "data-status", status);
  setText(badge, status);
}

function renderSlotsUsed(td, agent) {
  setText(td, `${agent.used_slots} / ${agent.slots}`);
  setAttr(td, "data-used", agent.used_slots);
  setAttr(td, "data-total", agent.slots);
}

/** One `li[data-slot-id]` per slot: id, kind, name (GPU UUID), and its trial as a link. */
function renderSlotList(td, agent) {
  let list = td.firstElementChild;
  if (!list) {
    list = h("ul", { class: "slots" });
    td.replaceChildren(list);
  }
  const build = () =>
    h("li", {}, h("span", { class: "slot-id" }), h("span", { class: "slot-kind" }), h("code", { class: "slot-name" }), h("span", { class: "slot-trial" }));
  const update = (li, slot) => {
    const [idEl, kindEl, nameEl, trialEl] = li.children;
    setAttr(li, "data-slot-id", slot.id);
    setAttr(li, "data-trial-id", slot.trial_id ?? null);
    setText(idEl, slot.id);
    setText(kindEl, slot.kind);
    setText(nameEl, slot.name);
    if (slot.trial_id != null) setLink(trialEl, links.trial(slot.trial_id), `trial ${slot.trial_id}`);
    else setLink(trialEl, null, slot.trial_id === null ? "idle" : "");
  };
  syncKeyed(list, agent.slot_details || [], (s) => s.id, build, update);
}

function renderTrials(td, agent) {
  const ids = agent.trial_ids || [];
  const key = ids.join(",");
  if (td.dataset.ids === key && td.childNodes.length) return;
  td.dataset.ids = key;
  const parts = ids.flatMap((id, i) => [i ? ", " : "", h("a", { href: links.trial(id), "data-trial-id": id, text: String(id) })]);
  td.replaceChildren(...(parts.length ? parts : ["—"]));
}

const COLUMNS = [
  { field: "id", label: "Agent", value: (a) => a.id },
  { field: "status", label: "Status", value: (a) => a.status, render: renderStatus },
  { field: "slots", label: "Slots used", value: (a) => a.used_slots, render: renderSlotsUsed, className: "num" },
  { field: "slot-details", label: "Slots (id · kind · name → trial)", render: renderSlotList },
  { field: "trials", label: "Trials", value: (a) => (a.trial_ids || []).length, render: renderTrials },
  {
    field: "heartbeat",
    label: "Heartbeat",
    value: (a) => a.heartbeat_age_ms,
    render: (td, a) => setText(td, a.heartbeat_age_ms == null ? "never" : `${duration(a.heartbeat_age_ms)} ago`),
    className: "num",
  },
  { field: "version", label: "Version", value: (a) => a.version },
];

/** Shows the cluster page in `root`. */
export function mount(root) {
  document.title = "Cluster · Baton";
  const summary = facts("cluster-summary", [
    ["agents", "Agents"],
    ["connected", "Connected"],
    ["slots", "Slots"],
    ["used", "Slots in use"],
  ]);
  const table = createTable({
    testid: "agents-table",
    columns: COLUMNS,
    key: (a) => a.id,
    rowAttrs: (a) => ({ "data-agent-id": a.id, "data-status": a.status }),
    sort: { field: "id", descending: false },
    empty: "No agent has joined. Start one with `baton-agent --master URL --id NAME`.",
  });
  root.append(
    h("section", { class: "panel", "data-testid": "agents" }, h("h1", { text: "Cluster" }), summary.el, table.el),
  );

  return {
    async refresh() {
      const { agents } = await get("agents");
      table.update(agents);
      const connected = agents.filter((a) => a.status !== "lost").length;
      setText(summary.values.agents, agents.length);
      setText(summary.values.connected, connected);
      setText(summary.values.slots, agents.reduce((n, a) => n + a.slots, 0));
      setText(summary.values.used, agents.reduce((n, a) => n + a.used_slots, 0));
      return { active: connected > 0 };
    },
    unmount() {},
  };
}
