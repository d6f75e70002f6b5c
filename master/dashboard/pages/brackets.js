// Adaptive search: each bracket's rungs (length, trials training and waiting, results, promoted).

import { h, setAttr, setText, syncKeyed } from "../dom.js";
import { metric } from "../format.js";
import { links } from "../router.js";

/** Promoted trials listed by id in a rung's row; more are counted. */
const PROMOTED_SHOWN = 20;

const HEADINGS = { results: "reported", best: "best metric" };

/** The best result of a rung, by the searcher's ordering. */
function bestResult(results, smallerIsBetter) {
  let best = null;
  for (const r of results) {
    if (typeof r.metric !== "number") continue;
    if (!best || (smallerIsBetter ? r.metric < best.metric : r.metric > best.metric)) best = r;
  }
  return best;
}

function buildBracket(bracket) {
  const caption = h("caption");
  const body = h("tbody");
  const head = h(
    "tr",
    {},
    ["rung", "length", "training", "waiting", "results", "promoted", "best"].map((f) =>
      h("th", { "data-field": f, text: HEADINGS[f] || f }),
    ),
  );
  return h("table", { class: "grid bracket", "data-testid": "bracket-table" }, caption, h("thead", {}, head), body);
}

function buildRung() {
  return h("tr", {}, ["rung", "length", "training", "waiting", "results", "promoted", "best"].map((f) => h("td", { "data-field": f })));
}

function updateRung(tr, { rung, index, smallerIsBetter }) {
  const cells = Object.fromEntries([...tr.children].map((td) => [td.dataset.field, td]));
  const results = rung.results || [];
  const promoted = results.filter((r) => r.promoted);
  setAttr(tr, "data-rung", index);
  setAttr(tr, "data-length", rung.length);
  setText(cells.rung, index + 1);
  setText(cells.length, rung.length);
  setText(cells.training, rung.training ?? "—");
  setText(cells.waiting, rung.waiting ?? "—");
  setText(cells.results, rung.reported ?? results.length);
  const ids = promoted.map((r) => r.trial_id);
  const promotedCount = typeof rung.promoted === "number" ? rung.promoted : ids.length;
  if (cells.promoted.dataset.ids !== `${promotedCount}:${ids.join(",")}`) {
    cells.promoted.dataset.ids = `${promotedCount}:${ids.join(",")}`;
    const shown = ids.slice(0, PROMOTED_SHOWN).flatMap((id, i) => [i ? " " : "", h("a", { href: links.trial(id), text: String(id) })]);
    const more = ids.length > PROMOTED_SHOWN ? [` … ${ids.length - PROMOTED_SHOWN} more`] : [];
    cells.promoted.replaceChildren(`${promotedCount}${ids.length ? ": " : ""}`, ...shown, ...more);
  }
  const best = bestResult(results, smallerIsBetter);
  setText(cells.best, best ? `${metric(best.metric)} (trial ${best.trial_id})` : "—");
}

/** The brackets section; hidden while the experiment has none. */
export function bracketsSection() {
  const list = h("div", { class: "brackets" });
  const el = h("section", { class: "panel", "data-testid": "brackets", hidden: true }, h("h2", { text: "Adaptive brackets" }), list);

  function update(exp) {
    const brackets = exp.brackets || [];
    el.hidden = brackets.length === 0;
    const smallerIsBetter = !exp.metric || exp.metric.smaller_is_better !== false;
    const items = brackets.map((bracket, index) => ({ bracket, index }));
    syncKeyed(list, items, (b) => b.index, buildBracket, (table, { bracket, index }) => {
      setAttr(table, "data-bracket", index);
      const created = bracket.created != null ? `, ${bracket.created} created` : "";
      setText(table.querySelector("caption"), `Bracket ${index + 1}: ${bracket.trials ?? "?"} trials${created}`);
      const rungs = (bracket.rungs || []).map((rung, i) => ({ rung, index: i, smallerIsBetter }));
      syncKeyed(table.querySelector("tbody"), rungs, (r) => r.index, buildRung, updateRung);
    });
  }

  return { el, update };
}
