// The receipt block of the page: keeps the intake's signed receipt of the last reservation made
// on this device (localStorage, beside the ticket id) and checks it here, with receipt.js: the
// signature under the intake's published key and the audit path to the signed batch root, and
// that it states what the person asked for (their own form, not the server's answer).

import { verifyReceipt } from './receipt.js';
import { bi, el, row } from './dom.js';

const RECEIPT_KEY = 'maskdraw.receipt';
const INTAKE_PUB = '/snapshots/intake.pub';

const TITLES = {
  format: ['收据格式', 'Receipt format'],
  inclusion: ['批次路径', 'Batch path'],
  signature: ['受理签名', 'Intake signature'],
  request: ['与您的预约一致', 'Matches your reservation'],
};

/** Keeps `{ ticket_id, receipt, asked }` of the reservation just made on this device. */
export function keepReceipt(ticketId, receipt, asked) {
  if (typeof receipt !== 'string') return;
  try {
    localStorage.setItem(RECEIPT_KEY, JSON.stringify({ ticket_id: ticketId, receipt, asked }));
  } catch (_) { /* private mode: the receipt is still shown and can be saved by hand */ }
}

/** The kept receipt, or null. */
export function keptReceipt() {
  try {
    const k = JSON.parse(localStorage.getItem(RECEIPT_KEY));
    return k && typeof k.receipt === 'string' && typeof k.ticket_id === 'string' ? k : null;
  } catch (_) {
    return null;
  }
}

async function intakeKey() {
  try {
    const res = await fetch(INTAKE_PUB);
    return res.ok ? await res.text() : null;
  } catch (_) {
    return null;
  }
}

function when(v) {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
}

/**
 * Renders the receipt `kept` ({ ticket_id, receipt, asked }) into `out`, checked in the page.
 * Resolves to the check's result.
 */
export async function showReceipt(out, kept) {
  out.replaceChildren(el('div', { class: 'busy receipt' }, bi('正在核验收据…', 'Checking the receipt…')));
  const key = await intakeKey();
  const asked = { ticket: kept.ticket_id, ...(kept.asked || {}) };
  const r = await verifyReceipt(kept.receipt, key || '', asked);
  const f = r.fields;
  const url = URL.createObjectURL(new Blob([kept.receipt], { type: 'text/plain' }));
  out.replaceChildren(el('div', { class: `receipt ${r.ok ? 'ok' : 'err'} verdict` },
    el('h3', null, r.ok ? bi('签名收据已核验', 'Signed receipt checked') : bi('收据核验未通过', 'The receipt did NOT check out')),
    f ? el('dl', null,
      row('预约编号', 'Ticket id', el('code', null, f.ticket)),
      row('保证参加', 'First draw', el('b', null, f.first_draw)),
      row('受理时间', 'Accepted at', when(f.accepted)),
      row('有效期至', 'Valid until', when(f.valid_until))) : null,
    el('ol', { class: 'checks' }, r.checks.map((c) => el('li', { class: c.ok ? 'pass' : 'fail' },
      el('span', { class: 'mark' }, c.ok ? '✓' : '✗'),
      el('div', null,
        el('p', null, el('b', null, TITLES[c.name][0]), ' ', el('small', null, TITLES[c.name][1]), ' · ',
          el('span', { class: 'state' }, c.ok ? '通过 passed' : '未通过 FAILED')),
        el('p', null, el('small', null, c.why)))))),
    key ? el('p', { class: 'note' }, bi('受理公钥', 'Intake key'), ' ', el('code', { class: 'key' }, key.trim())) :
      el('p', { class: 'note' }, bi('无法下载受理公钥', 'Could not download the intake key')),
    el('p', { class: 'note' }, bi('请保存收据：若您在保证日期及以后的封存名单中缺席，它可以证明。',
      'Keep this receipt: if you are left out of a sealed list from that date on, it proves it.'), ' ',
      el('a', { href: url, download: `receipt-${kept.ticket_id}.txt` }, '下载收据 Download receipt'),
      ' · ', el('code', null, 'notary receipt receipt.txt --key intake.pub --snapshots DIR'))));
  return r;
}
