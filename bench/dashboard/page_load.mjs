// Times how long a dashboard page takes to show an experiment, in headless Chromium (the browser
// tests' settings, tests/browser/lib.mjs), each load in a fresh context (empty cache and storage).
// Times come from the page's own clock (performance.now(), 0 = navigation start), so the
// automation's round trips are not counted.
//
//   node page_load.mjs --kind tensorboard|baton --url URL --runs N [--repeat 5] [--token T]
//
// tensorboard: `listed` = the run table holds N runs and the scalar card's chart is there (with
//   more than 500 runs TensorBoard selects none, so the chart is empty); `drawn` = the table's
//   select-all box is clicked at `listed` and the chart (SVG, ?forceSVG=true) holds N series.
// baton: `loaded` = body[data-loaded=true], the trials table holds N rows and the curves chart N
//   series, one frame later (painted).
// Prints one JSON object: each sample and the median of each measure, in milliseconds.
import { parseArgs } from 'node:util';
import { launch, newContext } from '../../tests/browser/lib.mjs';

const { values } = parseArgs({
  options: {
    kind: { type: 'string' },
    url: { type: 'string' },
    runs: { type: 'string', default: '1000' },
    repeat: { type: 'string', default: '5' },
    token: { type: 'string', default: '' },
    timeout: { type: 'string', default: '120000' },
  },
});
const runs = Number(values.runs);

/** In the page: waits for the kind's milestones, returning each one's performance.now(). */
const MILESTONES = {
  tensorboard: async (runs) => {
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    const chart = () => document.querySelector('scalar-card line-chart');
    while (document.querySelectorAll('runs-data-table tb-data-table-content-row').length < runs || !chart()) {
      await frame();
    }
    const listed = performance.now();
    const selectAll = document.querySelector('runs-data-table .header mat-checkbox input');
    if (!selectAll.checked) {
      selectAll.click();
    }
    // Each series is a path in the chart's SVG (two with smoothing: raw and smoothed).
    while (chart().querySelectorAll('svg path[d]').length < runs) {
      await frame();
    }
    return { listed, drawn: performance.now() };
  },
  baton: async (runs) => {
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    const rows = () => document.querySelectorAll('[data-testid=trials-table] tr[data-trial-id]').length;
    const curves = () => Number(document.querySelector('[data-testid=experiment-curves-chart]')?.dataset.seriesCount);
    while (!document.querySelector('body[data-loaded="true"]') || rows() < runs || curves() < runs) {
      await frame();
    }
    // One more frame: the curves are on the canvas once it has been painted.
    await frame();
    return { loaded: performance.now() };
  },
};

const milestones = MILESTONES[values.kind];
if (!milestones || !values.url) {
  console.error('usage: node page_load.mjs --kind tensorboard|baton --url URL [--runs N] [--repeat N] [--token T]');
  process.exit(2);
}
const url = values.kind === 'tensorboard' ? withForceSvg(values.url) : values.url;

function withForceSvg(text) {
  const parsed = new URL(text);
  parsed.searchParams.set('forceSVG', 'true');
  return parsed.toString();
}

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

const browser = await launch();
const samples = [];
try {
  for (let i = 0; i < Number(values.repeat); i += 1) {
    const context = await newContext(browser, values.token);
    const page = await context.newPage();
    page.setDefaultTimeout(Number(values.timeout));
    await page.goto(url, { waitUntil: 'commit' });
    const times = await page.evaluate(milestones, runs);
    samples.push(Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(v)])));
    await context.close();
  }
} finally {
  await browser.close();
}
const measures = Object.keys(samples[0]);
console.log(
  JSON.stringify({
    kind: values.kind,
    url,
    runs,
    samples_ms: samples,
    median_ms: Object.fromEntries(measures.map((m) => [m, median(samples.map((s) => s[m]))])),
  }),
);
