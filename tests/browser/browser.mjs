// Shared by the browser tests: Debian's Chromium through playwright-core (no browser download),
// a phone-sized page, screenshots kept as test artefacts, and page errors as test failures.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** The server under test (set by tests/api/browser.rs). */
export const BASE = process.env.MASKDRAW_URL;
if (!BASE) throw new Error('MASKDRAW_URL is not set: these tests are started by tests/api/browser.rs');
const SHOTS = process.env.SCREENSHOT_DIR || path.resolve('screenshots');
mkdirSync(SHOTS, { recursive: true });

/** A fresh headless Chromium with a fresh empty profile (playwright's launch makes a temporary one). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in a container needs --no-sandbox; the rest keep Chromium off the network it cannot
    // reach here (it would otherwise try Google's hosts at every start).
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-quic', '--disable-sync'],
  });
}

/**
 * A 360 × 740 phone page, optionally with a saved storage state (the same device coming back);
 * `page.errors()` lists the uncaught errors the page had.
 */
export async function phone(browser, storageState) {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 1, locale: 'zh-CN', storageState });
  const page = await context.newPage();
  const seen = [];
  page.on('pageerror', (e) => seen.push(e.message));
  page.errors = () => seen;
  return page;
}

/** Saves a full-page screenshot as <SCREENSHOT_DIR>/<name>.png. */
export function screenshot(page, name) {
  return page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** The page's width as laid out: more than the viewport means a horizontal scroll. */
export const scrollWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth);

/** Visible text of a locator, whitespace collapsed. */
export async function text(locator) {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

/** Saves a screenshot of one element as <SCREENSHOT_DIR>/<name>.png. */
export function screenshotOf(locator, name) {
  return locator.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}
