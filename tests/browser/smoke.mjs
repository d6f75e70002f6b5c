// Proves the browser pipeline against a real master: Chromium reads /api/v1/agents with the
// token, the page's origin holds the token in localStorage, and screenshots land in the output
// directory. Expects {"agents": [ids, sorted]}.
import { run, assert, TOKEN_KEY } from './lib.mjs';

await run(async ({ page, api, baseUrl, token, expected, log, screenshot }) => {
  const ids = (body) => body.agents.map((agent) => agent.id).sort();
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  const response = await api('/api/v1/agents');
  assert(response.status() === 200, `GET /api/v1/agents through the browser: ${response.status()}`);
  const listed = ids(await response.json());
  assert(same(listed, expected.agents), `agents ${JSON.stringify(listed)}, expected ${JSON.stringify(expected.agents)}`);

  await page.setExtraHTTPHeaders({ Authorization: `Bearer ${token}` });
  const shown = await page.goto(`${baseUrl}/api/v1/agents`);
  assert(shown.status() === 200, `the page got ${shown.status()}`);
  assert(same(ids(await shown.json()), expected.agents), 'the page shows the same agents');
  const stored = await page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
  assert(stored === token, `localStorage ${TOKEN_KEY} holds the token (got ${JSON.stringify(stored)})`);
  await screenshot('agents-json');

  await page.setExtraHTTPHeaders({});
  const refused = await page.goto(`${baseUrl}/api/v1/agents`);
  assert(refused.status() === 401, `without the header the page got ${refused.status()}, not 401`);

  // The dashboard, where this build serves it; not asserted.
  const ui = await api('/ui/');
  log(`/ui/ answered ${ui.status()}`);
  if (ui.ok()) {
    await page.goto(`${baseUrl}/ui/`);
    await screenshot('ui');
  }
  console.log(JSON.stringify({ agents: listed, ui_status: ui.status() }));
});
