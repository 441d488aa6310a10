// A person reserves through the page on a 360 px phone and sees the ticket and its status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, phone, screenshot, scrollWidth, text } from './browser.mjs';

const { ID_NUMBER, STATE_FILE } = process.env;
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a person reserves through the page and sees the ticket id and its status, all within 360 px', async () => {
  assert.ok(ID_NUMBER, 'ID_NUMBER is set');
  const page = await phone(browser);
  await page.goto(`${BASE}/`);
  await page.getByText('提交预约').waitFor();
  assert.ok(await scrollWidth(page) <= 360, `the empty form is ${await scrollWidth(page)} px wide`);
  await screenshot(page, 'reserve-1-form');

  const form = page.locator('#reserve-form');
  await form.getByLabel('姓名').fill('陈小明');
  await form.getByLabel('身份证号').fill(ID_NUMBER);
  await form.getByLabel('手机号').fill('13800138000');
  // The phone code: a field and a button that asks for one. In development (these tests) the
  // server does not require it, so the form goes without.
  assert.ok(await form.getByLabel('短信验证码').isVisible(), 'the phone code field is shown');
  assert.ok(await form.getByRole('button', { name: /获取验证码/ }).isVisible(), 'the get-code button is shown');
  await form.getByRole('button', { name: /获取验证码/ }).click();
  await page.locator('#reserve-out .ok', { hasText: '验证码已发送' }).waitFor();
  assert.match(await text(page.locator('#reserve-out')), /138\*\*\*\*8000/);
  const districts = form.locator('select[name=district] option:not([value=""])');
  await form.locator('select[name=district]').selectOption(await districts.first().getAttribute('value'));
  const pharmacies = form.locator('select[name=pharmacy_id] option:not([value=""])');
  const pharmacy = await pharmacies.first().getAttribute('value');
  await form.locator('select[name=pharmacy_id]').selectOption(pharmacy);
  await form.locator('select[name=product_id]').selectOption('KN95');
  await form.getByLabel('服从分配').check();
  assert.ok(await scrollWidth(page) <= 360, 'the filled form fits');
  await screenshot(page, 'reserve-2-filled');
  await form.getByRole('button', { name: '提交预约' }).click();

  const out = page.locator('#reserve-out > .ok');
  await out.waitFor();
  const shown = await text(out);
  assert.match(shown, /预约已受理/);
  assert.match(shown, /Reservation accepted; keep the ticket id/);
  const ticket = /[0-9A-HJKMNP-TV-Z]{26}/.exec(shown)?.[0];
  assert.ok(ticket, `a ticket id is shown: ${shown}`);
  assert.ok(await scrollWidth(page) <= 360, `the answer fits: ${await scrollWidth(page)} px`);
  // The signed receipt, checked in the page: signature, batch path, and what was asked for.
  const receipt = page.locator('#reserve-out .receipt.verdict');
  await receipt.waitFor({ timeout: 30_000 });
  const rt = await text(receipt);
  assert.match(rt, /签名收据已核验 Signed receipt checked/, rt);
  assert.ok(rt.includes(ticket), rt);
  for (const check of ['收据格式', '批次路径', '受理签名', '与您的预约一致']) {
    assert.match(rt, new RegExp(`${check} .*? · 通过 passed`), `${check}: ${rt}`);
  }
  assert.match(rt, /保证参加 First draw \d{4}-\d{2}-\d{2}/);
  assert.doesNotMatch(rt, /未通过/);
  await screenshot(page, 'reserve-3-accepted');
  console.log(`TICKET=${ticket}`);
  console.log(`PHARMACY=${pharmacy}`);

  // The status section has the id filled in and shows the ticket's state.
  await page.getByRole('link', { name: /查询/ }).click();
  assert.equal(await page.locator('#status-form [name=ticket_id]').inputValue(), ticket);
  await page.locator('#status-form').getByRole('button', { name: /查询/ }).click();
  const status = page.locator('#status-out .ticket');
  await status.waitFor();
  const st = await text(status);
  assert.ok(st.includes(ticket), st);
  assert.match(st, /已受理|已登记，等待摇号/);
  assert.match(st, /尚未参加摇号/);
  assert.ok(await scrollWidth(page) <= 360, `the status fits: ${await scrollWidth(page)} px`);
  // The receipt kept on this device is checked again here.
  const kept = page.locator('#receipt-out .receipt.verdict');
  await kept.waitFor();
  assert.match(await text(kept), /签名收据已核验/);
  assert.ok(await scrollWidth(page) <= 360, `the kept receipt fits: ${await scrollWidth(page)} px`);
  await screenshot(page, 'reserve-4-status');
  assert.deepEqual(page.errors(), []);
  // The device's storage (the ticket id and its holder secret) for a later visit after the draw.
  if (STATE_FILE) await page.context().storageState({ path: STATE_FILE });

  // A receipt changed on the device (flexible turned off) no longer checks out, and says so.
  await page.evaluate(() => {
    const k = JSON.parse(localStorage.getItem('maskdraw.receipt'));
    k.receipt = k.receipt.replace('flexible:1', 'flexible:0');
    localStorage.setItem('maskdraw.receipt', JSON.stringify(k));
  });
  await page.reload();
  const bad = page.locator('#receipt-out .receipt.verdict.err');
  await bad.waitFor();
  const bt = await text(bad);
  assert.match(bt, /收据核验未通过 The receipt did NOT check out/);
  assert.match(bt, /受理签名 .*? · 未通过 FAILED/);
  assert.match(bt, /与您的预约一致 .*? · 未通过 FAILED.*flexible 0 ≠ 1/);
  await screenshot(page, 'reserve-5-receipt-tampered');
  assert.deepEqual(page.errors(), []);
});
