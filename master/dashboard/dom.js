// Small DOM helpers: build elements, and update them in place without touching what did not
// change (so polling never resets scroll position, selection or focus).

/** Builds an element: `h("a", {href: "#/x", "data-id": 3, class: "c"}, "text", child)`. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && !key.includes("-")) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Sets an element's text only when it differs. */
export function setText(el, text) {
  const value = text == null ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** Sets (or removes, for null/undefined) an attribute only when it differs. */
export function setAttr(el, name, value) {
  if (value == null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
    return;
  }
  const text = String(value);
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

/** Makes `el` hold one link to `href` reading `text` (or plain text when href is null). */
export function setLink(el, href, text) {
  if (href == null) {
    if (el.firstElementChild) el.replaceChildren();
    setText(el, text);
    return;
  }
  let a = el.firstElementChild;
  if (!a || a.tagName !== "A" || el.childNodes.length !== 1) {
    a = h("a");
    el.replaceChildren(a);
  }
  setAttr(a, "href", href);
  setText(a, text);
}

/** Makes `el` hold exactly `nodes` (by identity), moving only what is out of place. */
export function setChildren(el, nodes) {
  nodes.forEach((node, i) => {
    if (el.childNodes[i] !== node) el.insertBefore(node, el.childNodes[i] || null);
  });
  while (el.childNodes.length > nodes.length) el.lastChild.remove();
}

/**
 * Keyed list reconciliation: `items` in order become children of `parent`, one per key; a child
 * made by `build(item)` is kept across calls and refreshed by `update(child, item)`.
 */
export function syncKeyed(parent, items, key, build, update) {
  const existing = new Map();
  for (const child of parent.children) existing.set(child.dataset.key, child);
  const nodes = items.map((item) => {
    const k = String(key(item));
    let node = existing.get(k);
    if (!node) {
      node = build(item);
      node.dataset.key = k;
    }
    update(node, item);
    return node;
  });
  setChildren(parent, nodes);
}

/** A section with a heading and a stable test hook. */
export function section(testid, title, ...children) {
  return h("section", { class: "panel", "data-testid": testid }, h("h2", { text: title }), ...children);
}

/** A `<dl>`-like row of labelled values whose values are addressable by `data-field`. */
export function facts(testid, fields) {
  const el = h("dl", { class: "facts", "data-testid": testid });
  const values = {};
  for (const [field, label] of fields) {
    const dd = h("dd", { "data-field": field });
    values[field] = dd;
    el.append(h("div", { class: "fact" }, h("dt", { text: label }), dd));
  }
  return { el, values };
}
