// Signing in to the dashboard of a master with tokens, in a browser that holds none: the page
// asks for a token and says why, refuses a wrong one, loads with a viewer's, keeps it across a
// reload, and asks again once it is forgotten. Then markup an experiment's name, hyperparameters
// and output carry is shown as text, never run. Expects {"token": a viewer token, "agents": [ids],
// "hostile": {experiment_id, trial_id, text}}.
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
  const listed = await agents();
  assert(JSON.stringify(listed) === JSON.stringify(expected.agents), 'still signed in after a reload');
  const stored = await page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
  assert(stored === expected.token, 'the token is kept in this browser');

  const { hostile } = expected;
  const shownAsText = async (hash, selector) => {
    await page.goto(`${baseUrl}/ui/#${hash}`);
    await page.waitForSelector('body[data-loaded="true"]');
    const text = await waitFor(`${selector} on ${hash}`, async () => {
      const found = await page.textContent(selector);
      return found && found.includes(hostile.text) ? found : null;
    });
    assert(await page.evaluate(() => window.pwned === undefined), `markup ran on ${hash}`);
    assert((await page.$$('img[src="x"]')).length === 0, `markup became elements on ${hash}`);
    return text;
  };
  await shownAsText('/experiments', '[data-testid=experiments-table]');
  await shownAsText(`/experiments/${hostile.experiment_id}`, '[data-testid=trials-table]');
  await shownAsText(`/trials/${hostile.trial_id}`, '[data-testid=log-lines]');
  await screenshot('markup-as-text');

  await page.click('[data-testid=sign-out]');
  await page.waitForSelector(form, { state: 'visible' });
  const forgotten = await page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
  assert(forgotten === null, `the token is forgotten (${JSON.stringify(forgotten)})`);
  console.log(JSON.stringify({ signed_in: true, agents: listed }));
});
