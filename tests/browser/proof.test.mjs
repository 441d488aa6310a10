// The proof page on a real sealed, drawn and published day: every check passes for a winner and
// for a loser, and each tampering the server (or a network in between) could do shows the check
// that catches it. Tampering is done in the browser by intercepting the responses (page.route),
// so the server and its files stay as published.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, phone, screenshot, screenshotOf, scrollWidth, text } from './browser.mjs';

const { DATE, WINNER, LOSER, HOLDER_TICKET, STATE_FILE } = process.env;
let browser;
before(async () => {
  assert.ok(DATE && WINNER && LOSER, 'DATE, WINNER and LOSER are set');
  browser = await launch();
});
after(async () => { await browser?.close(); });

/** Opens the proof section, optionally tampering first, checks `ticket` and returns the page. */
async function checkOnPage(ticket, tamper) {
  const page = await phone(browser);
  if (tamper) await tamper(page);
  await page.goto(`${BASE}/static/index.html#proof`);
  const form = page.locator('#proof-form');
  await form.getByLabel('预约编号').fill(ticket);
  await form.getByLabel('摇号日期').fill(DATE);
  await form.getByRole('button', { name: /下载并核验/ }).click();
  await verdictShown(page);
  return page;
}

/** Waits for the verdict; when it never comes, says what the page shows instead (and keeps it). */
async function verdictShown(page) {
  try {
    await page.locator('#proof-out .verdict').waitFor({ timeout: 60_000 });
  } catch (e) {
    await screenshot(page, `no-verdict-${Date.now()}`);
    throw new Error(`no verdict; the page shows "${await text(page.locator('#proof-out'))}"; page errors: ${JSON.stringify(page.errors())}`);
  }
}

/** Each check as the person reads it: { title → { state, text } }. */
async function checks(page) {
  const items = page.locator('#proof-out ol.checks > li');
  const out = {};
  for (let i = 0; i < await items.count(); i += 1) {
    const t = await text(items.nth(i));
    const [, title, state] = /^\S+ (\S+) .*? · (通过|未通过|未核验) /.exec(t) || [];
    assert.ok(title, `a check reads "<title> … · <state>": ${t}`);
    out[title] = { state, text: t };
  }
  return out;
}

async function passesEverything(ticket, name, wonWords) {
  const page = await checkOnPage(ticket);
  const verdict = await text(page.locator('#proof-out .verdict'));
  assert.match(verdict, /全部 13 项核验通过/);
  assert.match(verdict, /All 13 checks passed/);
  assert.match(verdict, wonWords);
  const seen = await checks(page);
  assert.equal(Object.keys(seen).length, 13);
  for (const [title, c] of Object.entries(seen)) assert.equal(c.state, '通过', `${title}: ${c.text}`);
  assert.match(seen['在封存名单中'].text, /you were in the sealed list/);
  assert.match(seen['结果'].text, /the server's result \(.*\) agrees/);
  // The day's fairness audit, drawn by the page: four charts, nothing flagged.
  const audit = page.locator('#proof-out .audit');
  await audit.waitFor({ timeout: 30_000 });
  assert.match(await text(audit), /公平性审计：未发现偏离 Fairness audit: no deviation/);
  assert.equal(await audit.locator('figure svg.chart').count(), 4);
  assert.equal(await audit.locator('figure.flagged').count(), 0);
  assert.ok(await audit.locator('figure[data-attribute=hour] rect.bar').count() >= 1);
  assert.ok(await scrollWidth(page) <= 360, `the proof fits 360 px: ${await scrollWidth(page)}`);
  await screenshot(page, name);
  await screenshotOf(audit, `${name}-audit`);
  assert.deepEqual(page.errors(), []);
  await page.context().close();
}

test('the proof page shows every check passed for a winner', async () => {
  await passesEverything(WINNER, 'proof-1-winner', /必定中签.*had to win/s);
});

test('the proof page shows every check passed for a loser', async () => {
  await passesEverything(LOSER, 'proof-2-loser', /不可能中签.*could not win/s);
});

/** Rewrites a response: `edit(text) → text` for files, `(json) → json` for the proof. */
const rewrite = (glob, edit) => (page) => page.route(glob, async (route) => {
  const res = await route.fetch();
  if (glob.includes('proof')) return route.fulfill({ response: res, json: edit(await res.json()) });
  return route.fulfill({ response: res, body: edit(await res.text()) });
});
const flipFirst = (s) => (s[0] === '0' ? '1' : '0') + s.slice(1);

async function failsWith(ticket, tamper, name, want) {
  const page = await checkOnPage(ticket, tamper);
  const verdict = await text(page.locator('#proof-out .verdict'));
  assert.match(verdict, /项核验未通过/);
  assert.match(verdict, /FAILED/);
  assert.match(verdict, /These files do not prove the published result/);
  const seen = await checks(page);
  const failed = Object.keys(seen).filter((t) => seen[t].state === '未通过');
  assert.deepEqual(failed, Object.keys(want), JSON.stringify(seen, null, 1));
  for (const [title, why] of Object.entries(want)) {
    assert.match(seen[title].text, /未通过 FAILED/);
    assert.match(seen[title].text, why);
  }
  assert.ok(await scrollWidth(page) <= 360);
  await screenshot(page, name);
  assert.deepEqual(page.errors(), []);
  await page.context().close();
  return seen;
}

test('a skewed audit (the DV-2012 failure) is drawn flagged, with the deviating test named', async () => {
  const page = await checkOnPage(WINNER, rewrite(`**/snapshots/${DATE}/audit.txt`, (s) => s
    .replace(/^test:hour-trend:[^\n]*$/m, 'test:hour-trend:61.000,1,5.62e-15')
    .replace('verdict:pass', 'verdict:flagged:hour-trend')));
  const audit = page.locator('#proof-out .audit');
  await audit.waitFor({ timeout: 30_000 });
  const seen = await text(audit);
  assert.match(seen, /公平性审计：发现偏离 Fairness audit: FLAGGED \(hour-trend\)/);
  assert.match(seen, /hour-trend: Q = 61\.000, df = 1, p = 5\.62e-15 < 1e-6 偏离 FLAGGED/);
  assert.equal(await audit.locator('figure.flagged').count(), 1);
  assert.equal(await audit.locator('figure.flagged').getAttribute('data-attribute'), 'hour');
  assert.equal(await audit.locator('svg.chart.flagged').count(), 1);
  assert.ok(await scrollWidth(page) <= 360);
  await screenshot(page, 'proof-8-audit-flagged');
  await screenshotOf(audit, 'proof-8-audit-flagged-chart');
  assert.deepEqual(page.errors(), []);
  await page.context().close();
});

test('a changed audit path hash in the proof fails "in the sealed list"', async () => {
  await failsWith(WINNER, rewrite('**/proof?*', (p) => ({ ...p, audit_path: p.audit_path.map((h, i) => (i === 0 ? flipFirst(h) : h)) })),
    'proof-3-tampered-path', { 在封存名单中: /does not prove you were in the sealed list/ });
});

test('a roll the server states wrongly fails "your rolls"', async () => {
  await failsWith(LOSER, rewrite('**/proof?*', (p) => ({ ...p, roll_1: '0000000000000000' })),
    'proof-4-tampered-roll', { 您的随机数: /roll_1 0000000000000000 ≠ [0-9a-f]{16}/ });
});

test('a changed cutoff in pools.csv fails "cutoffs" and leaves the result unchecked', async () => {
  const seen = await failsWith(LOSER, rewrite(`**/snapshots/${DATE}/pools.csv`, (s) => s.replace(/,([0-9a-f]{16}|-)\n/, ',ffffffffffffffff\n')),
    'proof-5-tampered-cutoff', { 中签线: /the cutoffs were changed/ });
  assert.equal(seen['结果'].state, '未核验');
});

test('a bad draw signature fails "draw signature"', async () => {
  await failsWith(WINNER, rewrite(`**/snapshots/${DATE}/draw.sig`, flipFirst),
    'proof-6-bad-signature', { 摇号签名: /draw\.sig is not the authority's signature of draw\.txt/ });
});

test('a changed seal.txt fails its signature and no longer is the seal the draw names', async () => {
  await failsWith(WINNER, rewrite(`**/snapshots/${DATE}/seal.txt`, (s) => s.replace(/^cutoff:(\d{4})/m, (_, y) => `cutoff:${+y - 1}`)),
    'proof-7-changed-seal', {
      封存签名: /seal\.sig is not the authority's signature of seal\.txt/,
      摇号记录: /the draw was not made on this list/,
      种子: /the seal id, the revealed secrets and the material give the seed/,
    });
});

test('the device that reserved sees its win and its pickup code', async () => {
  assert.ok(HOLDER_TICKET && STATE_FILE, 'HOLDER_TICKET and STATE_FILE are set');
  const page = await phone(browser, STATE_FILE);
  await page.goto(`${BASE}/static/index.html#status`);
  // The page remembers the last ticket made on this device (it fills the field once it has
  // booted, which takes a moment on a busy machine).
  await page
    .waitForFunction(
      (t) => document.querySelector('#status-form [name=ticket_id]')?.value === t,
      HOLDER_TICKET,
      { timeout: 15000 },
    )
    .catch(() => {});
  assert.equal(await page.locator('#status-form [name=ticket_id]').inputValue(), HOLDER_TICKET);
  await page.locator('#status-form').getByRole('button', { name: /查询/ }).click();
  const ticket = page.locator('#status-out .ticket');
  await ticket.waitFor();
  const seen = await text(ticket);
  assert.match(seen, /已中签/);
  assert.match(seen, new RegExp(`${DATE} · 中签 won`));
  assert.match(seen, /取货码 Pickup code/);
  assert.match(await text(ticket.locator('b.code')), /^[0-9A-Z]{10}$/);
  assert.ok(await scrollWidth(page) <= 360);
  await screenshot(page, 'status-1-holder-sees-code');
  assert.deepEqual(page.errors(), []);
  await page.context().close();
});

test('another device sees the outcome without the pickup code and checks it from the status', async () => {
  const page = await phone(browser);
  await page.goto(`${BASE}/static/index.html#status`);
  await page.locator('#status-form [name=ticket_id]').fill(WINNER);
  await page.locator('#status-form').getByRole('button', { name: /查询/ }).click();
  const ticket = page.locator('#status-out .ticket');
  await ticket.waitFor();
  const seen = await text(ticket);
  assert.match(seen, new RegExp(`${DATE} · 中签 won`));
  assert.doesNotMatch(seen, /取货码 Pickup code/);
  assert.match(seen, /The pickup code shows only on the device that made the reservation/);
  await screenshot(page, 'status-2-other-device');
  // "Check" beside the draw opens the proof of that ticket and date, and it checks out.
  await ticket.getByRole('link', { name: /核验/ }).click();
  await verdictShown(page);
  assert.match(await text(page.locator('#proof-out .verdict')), /All 13 checks passed/);
  assert.equal(await page.locator('#proof-form [name=date]').inputValue(), DATE);
  await screenshot(page, 'status-3-checked-from-status');
  assert.deepEqual(page.errors(), []);
  await page.context().close();
});
