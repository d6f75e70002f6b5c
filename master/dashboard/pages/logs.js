// A trial's output, following new lines while the trial runs (`/trials/{id}/logs?after=ID`).

import { get } from "../api.js";
import { h, setAttr, setText } from "../dom.js";
import { time } from "../format.js";

/** Lines read on opening the page, per later read, and kept on the page at most. */
const TAIL_LINES = 1000;
const READ_LIMIT = 1000;
const KEPT_LINES = 5000;

/** The logs section of trial `trialId`; `refresh(trialActive)` reads what is new. */
export function trialLogs(trialId) {
  const follow = h("input", { type: "checkbox", checked: true, "data-testid": "log-follow" });
  const status = h("span", { class: "muted", "data-testid": "log-status" });
  const pre = h("pre", { class: "logs", "data-testid": "log-lines", "data-line-count": 0 });
  const el = h(
    "section",
    { class: "panel", "data-testid": "trial-logs" },
    h("div", { class: "panel-head" }, h("h2", { text: "Logs" }), h("label", {}, follow, " follow"), status),
    pre,
  );
  const state = { after: null, started: false, done: false, count: 0 };

  pre.addEventListener("scroll", () => {
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
    if (follow.checked !== atBottom) follow.checked = atBottom;
  });
  follow.addEventListener("change", () => {
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  });

  function append(lines) {
    if (!lines.length) return;
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      const span = h("span", { class: `log-line ${line.stream === "stderr" ? "stderr" : ""}`.trim() });
      span.textContent = `${line.text}\n`;
      span.title = `${time(line.timestamp || line.timestamp_ms)} · ${line.stream || ""} · allocation ${line.allocation_id ?? "?"}`;
      if (line.id != null) span.dataset.lineId = line.id;
      fragment.append(span);
    }
    pre.append(fragment);
    state.count += lines.length;
    while (pre.childElementCount > KEPT_LINES) pre.firstElementChild.remove();
    setAttr(pre, "data-line-count", state.count);
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  }

  async function read() {
    const params = state.started ? { after: state.after, limit: READ_LIMIT } : { tail: TAIL_LINES };
    const answer = await get(`trials/${trialId}/logs`, params);
    state.started = true;
    if (answer.next_after != null) state.after = answer.next_after;
    append(answer.lines || []);
    return (answer.lines || []).length;
  }

  /** Reads new lines; once the trial is over, reads until nothing new comes, then stops. */
  async function refresh(trialActive) {
    if (state.done && !trialActive) return;
    let got = await read();
    while (got >= READ_LIMIT) got = await read();
    state.done = !trialActive && got === 0;
    setText(status, `${state.count} lines${trialActive ? " · following" : ""}`);
  }

  return { el, refresh };
}
