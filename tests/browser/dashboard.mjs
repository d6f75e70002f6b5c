// The dashboard end to end on a real cluster. `expected.phase` says which part runs:
//   live   the grid runs: a running trial's step count rises on the experiment and trial pages
//          without a reload ({experiment_id, trial_id})
//   final  the grid completed with one trial moved: every trial listed with its final state, the
//          curves drawn at the trials' steps, the move on the moved trial's chart and timeline at
//          its step, the checkpoints table as `list-checkpoints --json`, the agents and slots
// Screenshots of each page go to the output directory.
import { run, assert, waitFor } from './lib.mjs';

/** Opens `hash` of the dashboard and waits for its first data. */
async function open(page, baseUrl, hash) {
  await page.goto(`${baseUrl}/ui/#${hash}`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 20000 });
}

/** The attribute `name` of the element `selector` matches, as a number. */
async function numberAt(page, selector, name) {
  const value = await page.getAttribute(selector, name);
  assert(value !== null, `${selector} has no ${name}`);
  return Number(value);
}

/** Each series of the chart `name` as {label, xs}. */
function chartSeries(page, name) {
  return page.evaluate((chartName) => {
    const chart = window.baton.charts[chartName];
    return chart.series.slice(1).map((s, i) => ({ label: s.label, xs: Array.from(chart.data[i + 1][0]) }));
  }, name);
}

/** Waits until the page's step count at `selector` passes `before`, the page not reloaded. */
async function stepsRise(page, selector, what) {
  await page.evaluate(() => (window.notReloaded = true));
  const before = await numberAt(page, selector, 'data-steps-completed');
  const after = await waitFor(`${what} to rise past ${before}`, async () => {
    const now = await numberAt(page, selector, 'data-steps-completed');
    return now > before ? now : null;
  }, 20000);
  assert(await page.evaluate(() => window.notReloaded === true), `${what}: the page reloaded`);
  return [before, after];
}

async function live({ page, baseUrl, expected, log, screenshot }) {
  const row = `[data-testid=trials-table] tr[data-trial-id="${expected.trial_id}"]`;
  await open(page, baseUrl, `/experiments/${expected.experiment_id}`);
  const [before, after] = await stepsRise(page, `${row} td[data-field=steps]`, 'the trial row');
  log(`experiment page: trial ${expected.trial_id} steps ${before} -> ${after}`);
  await screenshot('experiment-running');
  await open(page, baseUrl, `/trials/${expected.trial_id}`);
  const header = '[data-testid=trial-header] dd[data-field=steps]';
  const [from, to] = await stepsRise(page, header, 'the trial header');
  log(`trial page: steps ${from} -> ${to}`);
  await waitFor('output lines', async () => (await numberAt(page, '[data-testid=log-lines]', 'data-line-count')) > 0);
  await screenshot('trial-running');
  console.log(JSON.stringify({ experiment_page: [before, after], trial_page: [from, to] }));
}

async function experimentsPage(t) {
  const { page, baseUrl, expected } = t;
  await open(page, baseUrl, '/experiments');
  const row = `[data-testid=experiments-table] tr[data-experiment-id="${expected.experiment_id}"]`;
  assert((await page.getAttribute(row, 'data-state')) === 'COMPLETED', 'the experiment is listed COMPLETED');
  assert((await numberAt(page, `${row} td[data-field=progress]`, 'data-fraction')) === 1, 'progress is whole');
  await t.screenshot('experiments');
}

async function experimentPage(t) {
  const { page, baseUrl, expected, log } = t;
  await open(page, baseUrl, `/experiments/${expected.experiment_id}`);
  const rows = await page.$$eval('[data-testid=trials-table] tr[data-trial-id]', (trs) =>
    trs.map((tr) => ({ id: Number(tr.dataset.trialId), state: tr.dataset.state })));
  const listed = JSON.stringify(rows.sort((a, b) => a.id - b.id));
  assert(listed === JSON.stringify(expected.trials), `trials ${listed}, expected ${JSON.stringify(expected.trials)}`);

  await page.selectOption('[data-testid=kind-select]', 'validation');
  await waitFor('validation curves of every trial', async () => {
    const series = await chartSeries(page, 'experiment-curves');
    return series.length === expected.trials.length;
  });
  for (const s of await chartSeries(page, 'experiment-curves')) {
    const trialId = s.label.replace('trial ', '');
    const steps = expected.validation_steps[trialId];
    assert(JSON.stringify(s.xs) === JSON.stringify(steps), `${s.label} validation steps ${s.xs}, expected ${steps}`);
  }
  await page.selectOption('[data-testid=kind-select]', 'training');
  await waitFor('training curves', async () => {
    const series = await chartSeries(page, 'experiment-curves');
    return series.length === expected.trials.length && series.every((s) => s.xs.length === expected.max_length);
  });
  for (const s of await chartSeries(page, 'experiment-curves')) {
    assert(s.xs[0] === 1 && s.xs[s.xs.length - 1] === expected.max_length, `${s.label} steps ${s.xs[0]}..${s.xs.at(-1)}`);
  }

  const shown = await page.$$eval('[data-testid=checkpoints-table] tr[data-checkpoint-uuid]', (trs) =>
    trs.map((tr) => ({
      uuid: tr.dataset.checkpointUuid,
      trial_id: Number(tr.dataset.trialId),
      step: Number(tr.dataset.step),
      state: tr.dataset.state,
      size_bytes: Number(tr.querySelector('td[data-field=size]').dataset.bytes),
    })));
  const fields = (c) => [c.uuid, c.trial_id, c.step, c.state, c.size_bytes];
  const byUuid = (list) => JSON.stringify(list.map(fields).sort());
  assert(byUuid(shown) === byUuid(expected.checkpoints), `checkpoints ${byUuid(shown)}\nexpected ${byUuid(expected.checkpoints)}`);
  log(`${rows.length} trials, ${shown.length} checkpoints as the CLI lists them`);
  await t.screenshot('experiment');
}

async function trialPage(t) {
  const { page, baseUrl, expected, log } = t;
  const moved = expected.moved;
  await open(page, baseUrl, `/trials/${moved.trial_id}`);
  const first = `[data-testid=allocations-table] tr[data-allocation-id="${moved.from_allocation}"]`;
  assert((await page.getAttribute(first, 'data-exit-reason')) === 'moved', 'the first allocation ended moved');
  assert((await numberAt(page, first, 'data-end-step')) === moved.step, 'it ended at the move step');
  assert((await page.getAttribute(first, 'data-agent-id')) === moved.from_agent, 'on the first agent');
  const second = `[data-testid=allocations-table] tr[data-allocation-id="${moved.to_allocation}"]`;
  assert((await numberAt(page, second, 'data-start-step')) === moved.step, 'the next one started at the move step');
  assert((await page.getAttribute(second, 'data-agent-id')) === moved.to_agent, 'on the other agent');
  const bars = await page.$$eval('[data-testid=allocation-timeline] .bar[data-allocation-id]', (els) =>
    els.map((el) => [el.dataset.allocationId, el.dataset.exitReason]));
  assert(JSON.stringify(bars[0]) === JSON.stringify([moved.from_allocation, 'moved']), `timeline bars ${JSON.stringify(bars)}`);
  const mark = `[data-testid=allocation-marks] li[data-allocation-id="${moved.to_allocation}"]`;
  await page.waitForSelector(mark, { state: 'attached' });
  assert((await numberAt(page, mark, 'data-step')) === moved.step, 'the chart marks the move at its step');
  assert((await page.getAttribute(mark, 'data-agent-id')) === moved.to_agent, 'the mark names the new agent');
  const series = await waitFor('the trial curves', async () => {
    const s = await chartSeries(page, 'trial-curves');
    return s.length === 2 ? s : null;
  });
  const training = series.find((s) => s.label.startsWith('training'));
  const validation = series.find((s) => s.label.startsWith('validation'));
  assert(training.xs.length === expected.max_length && training.xs.at(-1) === expected.max_length, `training steps ${training.xs}`);
  const steps = expected.validation_steps[String(moved.trial_id)];
  assert(JSON.stringify(validation.xs) === JSON.stringify(steps), `validation steps ${validation.xs}, expected ${steps}`);
  log(`trial ${moved.trial_id}: moved at step ${moved.step} from ${moved.from_agent} to ${moved.to_agent}`);
  await t.screenshot('trial');
  await zoomOutlivesNewSeries(page);
}

/** Drags a zoom on the trial's chart, hides the validation line and finds the zoom kept. */
async function zoomOutlivesNewSeries(page) {
  const steps = () => page.evaluate(() => {
    const { min, max } = window.baton.charts['trial-curves'].scales.x;
    return [min, max];
  });
  const whole = await steps();
  const box = await page.locator('[data-testid=trial-curves-chart] .u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.2, box.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + 40, { steps: 5 });
  await page.mouse.up();
  const zoomed = await steps();
  assert(zoomed[1] - zoomed[0] < (whole[1] - whole[0]) / 2, `dragging zooms: ${whole} -> ${zoomed}`);
  await page.selectOption('[data-testid=validation-metric-select]', '');
  await page.waitForFunction(() => window.baton.charts['trial-curves'].series.length === 2);
  const kept = await steps();
  assert(JSON.stringify(kept) === JSON.stringify(zoomed), `the zoom ${zoomed} became ${kept} with the new series`);
}

async function agentsPage(t) {
  const { page, baseUrl, expected } = t;
  await open(page, baseUrl, '/agents');
  const agents = await page.$$eval('[data-testid=agents-table] tr[data-agent-id]', (trs) =>
    trs.map((tr) => [tr.dataset.agentId, tr.dataset.status]).sort());
  assert(JSON.stringify(agents) === JSON.stringify(expected.agents), `agents ${JSON.stringify(agents)}`);
  await t.screenshot('agents');
}

await run(async (t) => {
  if (t.expected.phase === 'live') {
    await live(t);
    return;
  }
  await experimentsPage(t);
  await experimentPage(t);
  await trialPage(t);
  await agentsPage(t);
  console.log(JSON.stringify({ checked: 'final' }));
});
