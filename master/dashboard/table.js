// A table that updates its rows in place (keyed) and sorts by clicking a column header.

import { h, setAttr, setText, syncKeyed } from "./dom.js";

/**
 * columns: [{field, label, value(item) -> sort key, render(td, item), className, sortable}]
 * key(item): the row's identity; rowAttrs(item): attributes of the row (e.g. data-trial-id).
 * sort: the initial {field, descending}; empty: the text shown when there are no rows.
 */
export function createTable({ testid, columns, key, rowAttrs = () => ({}), sort = null, empty = "none" }) {
  let order = sort ? { ...sort } : null;
  let last = [];
  const headers = columns.map((column) => {
    const sortable = column.sortable !== false && column.value;
    const th = h("th", {
      "data-field": column.field,
      class: [column.className, sortable ? "sortable" : ""].join(" ").trim(),
      title: sortable ? "sort by this column" : null,
      text: column.label,
    });
    if (sortable) th.addEventListener("click", () => toggle(column.field));
    return th;
  });
  const body = h("tbody");
  const table = h("table", { class: "grid", "data-testid": testid }, h("thead", {}, h("tr", {}, headers)), body);
  const note = h("p", { class: "empty", hidden: true, text: empty });
  const el = h("div", { class: "table-wrap" }, table, note);

  function toggle(field) {
    order = order && order.field === field ? { field, descending: !order.descending } : { field, descending: false };
    update(last);
  }

  function sorted(items) {
    if (!order) return items;
    const column = columns.find((c) => c.field === order.field);
    if (!column || !column.value) return items;
    const keyed = items.map((item, index) => ({ item, index, value: column.value(item) }));
    keyed.sort((a, b) => {
      const missingA = a.value == null || Number.isNaN(a.value);
      const missingB = b.value == null || Number.isNaN(b.value);
      if (missingA || missingB) return missingA === missingB ? a.index - b.index : missingA ? 1 : -1;
      const cmp = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
      return (order.descending ? -cmp : cmp) || a.index - b.index;
    });
    return keyed.map((k) => k.item);
  }

  function buildRow() {
    return h("tr", {}, columns.map((c) => h("td", { "data-field": c.field, class: c.className || null })));
  }

  function updateRow(tr, item) {
    for (const [name, value] of Object.entries(rowAttrs(item))) setAttr(tr, name, value);
    columns.forEach((column, i) => {
      const td = tr.children[i];
      if (column.render) column.render(td, item);
      else setText(td, column.value ? column.value(item) : "");
    });
  }

  /** Shows `items` (sorted by the chosen column), reusing the rows already shown. */
  function update(items) {
    last = items;
    for (const th of headers) {
      const active = order && order.field === th.dataset.field;
      setAttr(th, "aria-sort", active ? (order.descending ? "descending" : "ascending") : null);
    }
    syncKeyed(body, sorted(items), key, buildRow, updateRow);
    note.hidden = items.length > 0;
  }

  return { el, update };
}
