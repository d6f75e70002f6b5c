// Shared by the browser tests: launches Debian's chromium through Playwright with the dashboard's
// token in localStorage, and gives assert, waitFor, screenshot and the API to the test body.
// The Rust side (tests/src/browser.rs) passes everything through the environment:
//   BATON_BASE_URL     the master's HTTP API, e.g. http://127.0.0.1:9090
//   BATON_TOKEN        a bearer token, or empty for an open master
//   BATON_OUTPUT_DIR   where screenshots go
//   BATON_EXPECTED     a JSON file of the values the test expects
//   BATON_CHROMIUM     the browser (default /usr/bin/chromium)
// playwright-core comes from NODE_PATH (scripts/browser-env.sh prints it), so this directory
// needs no node_modules of its own.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

/** The dashboard's localStorage key for the bearer token. */
export const TOKEN_KEY = 'baton.token';

/** Throws `message` unless `condition` holds. */
export function assert(condition, message) {
  if (!condition) {
    throw new Error(`assertion failed: ${message}`);
  }
}

/** Polls `check` until it returns a truthy value, which it returns; throws naming `what` after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function required(name) {
  const value = process.env[name];
  if (value === undefined) {
    throw new Error(`${name} is not set: run this script through tests/src/browser.rs`);
  }
  return value;
}

/** Launches headless Chromium (BATON_CHROMIUM, default /usr/bin/chromium) with the settings every test uses. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.BATON_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** A fresh browser context (no cache, no storage) whose pages start with `token` in localStorage. */
export async function newContext(browser, token) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(
    ([key, value]) => {
      try {
        if (value) {
          window.localStorage.setItem(key, value);
        }
      } catch {
        // about:blank and other opaque origins have no localStorage.
      }
    },
    [TOKEN_KEY, token],
  );
  return context;
}

/**
 * Launches the browser, opens a page whose origin has the token in localStorage, runs
 * `body(t)` and always closes the browser. `t` has: page, context, baseUrl, token, expected,
 * outputDir, log(text), screenshot(name), api(path) (a GET with the token by Playwright's request
 * API, sharing the context's cookies; page.goto goes through Chromium itself). A failure prints
 * its stack, saves `failure.png` and sets the exit status to 1.
 */
export async function run(body) {
  const baseUrl = required('BATON_BASE_URL').replace(/\/$/, '');
  const token = process.env.BATON_TOKEN ?? '';
  const outputDir = required('BATON_OUTPUT_DIR');
  const expected = JSON.parse(readFileSync(required('BATON_EXPECTED'), 'utf8'));
  const log = (text) => console.log(`[${new Date().toISOString()}] ${text}`);
  const browser = await launch();
  let page;
  try {
    const context = await newContext(browser, token);
    page = await context.newPage();
    page.on('console', (message) => log(`console.${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => log(`page error: ${error.message}`));
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const t = {
      page,
      context,
      baseUrl,
      token,
      expected,
      outputDir,
      log,
      screenshot: async (name) => {
        const path = join(outputDir, `${name}.png`);
        await page.screenshot({ path, fullPage: true });
        log(`screenshot ${path}`);
        return path;
      },
      api: (path) => context.request.get(baseUrl + path, { headers }),
    };
    await body(t);
  } catch (error) {
    console.error(error.stack || String(error));
    if (page) {
      await page
        .screenshot({ path: join(outputDir, 'failure.png'), fullPage: true })
        .then(() => console.error(`screenshot ${join(outputDir, 'failure.png')}`))
        .catch(() => {});
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
