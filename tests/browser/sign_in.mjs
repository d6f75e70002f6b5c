// Signing in to the dashboard of a master with tokens, in a browser that holds none: the page
// asks for a token and says why, refuses a wrong one, loads with a viewer's, keeps it across a
// reload, and asks again once it is forgotten. Expects {"token": a viewer token, "agents": [ids]}.
import { run, assert, waitFor, TOKEN_KEY } from './lib.mjs';

await run(async ({ page, baseUrl, expected, log, screenshot }) => {
  const form = '[data-testid=sign-in]';
  const reason = () => page.textContent('[data-testid=sign-in-reason]');
  await page.goto(`${baseUrl}/ui/#/agents`);
  await page.waitForSelector(form, { state: 'visible' });
  const asked = await reason();
  assert(/token/i.test(asked), `the form says why it asks: ${JSON.stringify(asked)}`);
  log(`asked: ${asked}`);
  await screenshot('sign-in');

  await page.fill('[data-testid=token-input]', 'a-guess');
  await page.click('[data-testid=token-submit]');
  await waitFor('the wrong token refused', async () => /not known/.test(await reason()));
  assert(await page.isVisible(form), 'the form stays after a wrong token');
  log(`refused: ${await reason()}`);

  await page.fill('[data-testid=token-input]', expected.token);
  await page.click('[data-testid=token-submit]');
  await page.waitForSelector('body[data-loaded="true"]');
  const agents = async () => (await page.$$eval('[data-testid=agents-table] tr[data-agent-id]',
    (trs) => trs.map((tr) => tr.dataset.agentId))).sort();
  assert(JSON.stringify(await agents()) === JSON.stringify(expected.agents), `agents ${await agents()}`);
  assert(!(await page.isVisible(form)), 'the form is gone once signed in');
  await screenshot('signed-in');

  await page.reload();
  await page.waitForSelector('body[data-loaded="true"]');
  assert(JSON.stringify(await agents()) === JSON.stringify(expected.agents), 'still signed in after a reload');
  const stored = await page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
  assert(stored === expected.token, 'the token is kept in this browser');

  await page.click('[data-testid=sign-out]');
  await page.waitForSelector(form, { state: 'visible' });
  const forgotten = await page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
  assert(forgotten === null, `the token is forgotten (${JSON.stringify(forgotten)})`);
  console.log(JSON.stringify({ signed_in: true, agents: await agents() }));
});
