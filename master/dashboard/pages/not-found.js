// Any hash that names no page.

import { h } from "../dom.js";
import { links } from "../router.js";

/** Shows where to go instead. */
export function mount(root, route) {
  root.append(
    h(
      "section",
      { class: "panel", "data-testid": "not-found" },
      h("h1", { text: "No such page" }),
      h("p", {}, `Nothing lives at #${route.path}. `, h("a", { href: links.experiments(), text: "See the experiments" }), "."),
    ),
  );
  return { refresh: async () => ({ active: false }), unmount() {} };
}
