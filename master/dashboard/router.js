// Hash routes: `#/experiments[?state=ACTIVE]`, `#/experiments/3`, `#/trials/12`, `#/agents`.

const ROUTES = [
  { page: "experiments", pattern: /^\/experiments\/?$/ },
  { page: "experiment", pattern: /^\/experiments\/(\d+)\/?$/ },
  { page: "trial", pattern: /^\/trials\/(\d+)\/?$/ },
  { page: "agents", pattern: /^\/(?:agents|cluster)\/?$/ },
];

/** The route of a location hash: {page, id, query} (page "not-found" when none matches). */
export function parseRoute(hash) {
  const text = (hash || "").replace(/^#/, "") || "/experiments";
  const [path, search = ""] = text.split("?", 2);
  const query = new URLSearchParams(search);
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (match) return { page: route.page, id: match[1] ? Number(match[1]) : null, query, path };
  }
  return { page: "not-found", id: null, query, path };
}

/** Replaces the hash's query without adding a history entry or re-routing. */
export function replaceQuery(path, query) {
  const text = query.toString();
  history.replaceState(null, "", `#${path}${text ? `?${text}` : ""}`);
}

/** Hash links to the pages. */
export const links = {
  experiments: () => "#/experiments",
  experiment: (id) => `#/experiments/${id}`,
  trial: (id) => `#/trials/${id}`,
  agents: () => "#/agents",
};
