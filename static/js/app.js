// maskdraw H5 page: reserve, look up status, check a fairness proof (proof-page.js).
// No dependencies. The server is the authority on every rule of a reservation; the checks here
// only spare the citizen a round trip. (The proof is the other way round: the page trusts
// nothing the server computed; see verify.js.)

import { bi, el, row, show } from './dom.js';
import { checkProof, loadDraws } from './proof-page.js';
import { keepReceipt, keptReceipt, showReceipt } from './receipt-page.js';

const API = '/api/v1/reservations';
const CODES = '/api/v1/phone-codes';
const CONFIG = '/static/config/';
// How long after a 429/503 the page keeps smoothing taps through gate.json.
const RECENT_OVERLOAD_MS = 60 * 1000;
const OVERLOAD_KEY = 'maskdraw.overload';
const LAST_TICKET_KEY = 'maskdraw.last_ticket';
// { ticket_id, holder_secret } of the last reservation made on this device: the secret is what
// shows that ticket's pickup codes (sent as X-Holder-Secret), so only this device sees them.
const HOLDER_KEY = 'maskdraw.holder';
const TICKET_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/; // ULID: Crockford base32, no I L O U

const cat = { districts: [], pharmacies: [], products: [], gate: { admit_fraction: 1, retry_after_seconds: 5 } };
const byId = (list, id) => list.find((x) => x.id === id);

// ---------------------------------------------------------------- small DOM helpers

function markField(form, field) {
  for (const e of form.querySelectorAll('.bad')) e.classList.remove('bad');
  const input = field && form.elements[field];
  if (input) { input.classList.add('bad'); input.focus(); }
}

// ---------------------------------------------------------------- validation (mirrors src/domain)

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

// GB 11643-1999: region, birth date, sequence, ISO 7064 MOD 11-2 check character.
function parseIdNumber(raw) {
  const s = raw.trim().toUpperCase();
  if (s.length !== 18) return [null, bi('身份证号应为 18 位', 'An ID number has 18 characters')];
  if (!/^\d{17}[\dX]$/.test(s)) return [null, bi('身份证号为 17 位数字加一位数字或 X', 'An ID number is 17 digits and a digit or X')];
  if (s[0] === '0' || s[0] === '9') return [null, bi('身份证号的地区码无效', 'The region code is not valid')];
  const y = +s.slice(6, 10), m = +s.slice(10, 12), d = +s.slice(12, 14);
  const dt = new Date(Date.UTC(y, m - 1, d));
  if (y < 1900 || y > 2100 || dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) {
    return [null, bi('身份证号中的出生日期无效', 'The birth date in the ID number is not a date')];
  }
  const sum = ID_WEIGHTS.reduce((a, w, i) => a + w * +s[i], 0);
  if ('10X98765432'[sum % 11] !== s[17]) return [null, bi('身份证号校验位不正确，请核对', 'The check character is wrong; please re-check the number')];
  return [s, null];
}

// 11-digit mainland mobile; +86/86, blanks and dashes are dropped as the server does.
function parsePhone(raw) {
  let s = raw.trim().replace(/^\+/, '').replace(/[ -]/g, '');
  if (s.startsWith('86') && s.length === 13) s = s.slice(2);
  if (!/^\d{11}$/.test(s)) return [null, bi('手机号应为 11 位数字', 'A mobile number has 11 digits')];
  if (!/^1[3-9]/.test(s)) return [null, bi('手机号应以 13–19 开头', 'A mainland mobile number starts with 13 to 19')];
  return [s, null];
}

function parseName(raw) {
  const s = raw.trim(), n = [...s].length;
  if (n === 0 || n > 30) return [null, bi('请填写姓名（不超过 30 字）', 'Enter your name (at most 30 characters)')];
  return [s, null];
}

// Empty (the server decides whether a code is needed) or 6 digits.
function parsePhoneCode(raw) {
  const s = raw.trim();
  return s === '' || /^\d{6}$/.test(s) ? [s, null] : [null, bi('验证码为 6 位数字', 'The code has 6 digits')];
}

function parseTicketId(raw) {
  const s = raw.trim().toUpperCase();
  return TICKET_RE.test(s) ? [s, null] : [null, bi('预约编号为 26 位字母数字', 'A ticket id has 26 letters and digits')];
}

// ---------------------------------------------------------------- HTTP

function retryAfterSeconds(header) {
  if (!header) return cat.gate.retry_after_seconds;
  let s = /^\d+$/.test(header.trim()) ? +header : (Date.parse(header) - Date.now()) / 1000;
  if (!Number.isFinite(s)) s = cat.gate.retry_after_seconds;
  return Math.min(300, Math.max(1, Math.ceil(s)));
}

// Resolves to { status, json, retryAfter }; status 0 means the network failed. A 429 or 503
// also smooths later reservation taps (the gate), unless `gate` is false: a phone code's
// per-phone limit says nothing about the load.
async function call(method, path, body, headers, { gate = true } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: Object.assign({ Accept: 'application/json' }, body ? { 'Content-Type': 'application/json' } : {}, headers),
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (_) {
    return { status: 0, json: null, retryAfter: cat.gate.retry_after_seconds };
  }
  let json = null;
  if ((res.headers.get('Content-Type') || '').includes('json')) json = await res.json().catch(() => null);
  // 429/503 always mean "wait"; other answers (409 request_in_progress) only when they say so.
  const overloaded = res.status === 429 || res.status === 503;
  const header = res.headers.get('Retry-After');
  const retryAfter = overloaded || header ? retryAfterSeconds(header) : 0;
  if (overloaded && gate) noteOverload(retryAfter);
  return { status: res.status, json, retryAfter };
}

// The message for any answer that is not a success: the server's {code, message, field} when
// it sent one, otherwise a generic line.
function failure(out, form, r) {
  if (r.status === 0) return show(out, 'err', bi('网络错误，请重试（重试不会重复预约）', 'Network error; retrying is safe and will not reserve twice'));
  if (r.json && r.json.message) {
    if (form) markField(form, r.json.field);
    return show(out, 'err', r.json.message, r.json.code ? el('small', null, ` (${r.json.code})`) : null);
  }
  show(out, 'err', bi(`服务暂时不可用（HTTP ${r.status}）`, 'Service unavailable, please try again later'));
}

// ---------------------------------------------------------------- gate (client-side smoothing)

function loadOverload() {
  try { return JSON.parse(localStorage.getItem(OVERLOAD_KEY)) || { at: 0, until: 0 }; } catch (_) { return { at: 0, until: 0 }; }
}
function noteOverload(seconds) {
  const now = Date.now();
  try { localStorage.setItem(OVERLOAD_KEY, JSON.stringify({ at: now, until: now + seconds * 1000 })); } catch (_) { /* private mode */ }
}

// Seconds this tap must wait, or 0. A server's Retry-After is always honoured; after it, while
// the overload is recent, only admit_fraction of taps go through (gate.json).
function gateWait() {
  const o = loadOverload(), now = Date.now();
  if (o.until > now) return Math.ceil((o.until - now) / 1000);
  if (now - o.at < RECENT_OVERLOAD_MS && Math.random() >= cat.gate.admit_fraction) return cat.gate.retry_after_seconds;
  return 0;
}

function countdown(out, button, seconds) {
  button.disabled = true;
  const tick = () => {
    if (seconds <= 0) { button.disabled = false; out.replaceChildren(); return; }
    show(out, 'busy', bi(`人多，请稍后再试（${seconds} 秒）`, `Busy, please try again in ${seconds} s`));
    seconds -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

// ---------------------------------------------------------------- rendering

const STATUS = {
  accepted: ['已受理', 'Accepted, being registered'], registered: ['已登记，等待摇号', 'Registered, in the coming draws'],
  won: ['已中签', 'Won'], expired: ['已过期', 'Expired'], rejected: ['未通过（重复预约）', 'Rejected (duplicate person)'],
};
const OUTCOME = { won: ['中签', 'won'], lost: ['未中签', 'lost'] };

function when(v) {
  if (!v || !/T/.test(v)) return v || '—';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
}
const pharmacyName = (id) => { const p = id && byId(cat.pharmacies, id); return p ? `${p.name} (${id})` : id || '—'; };
const productName = (id) => { const p = id && byId(cat.products, id); return p ? `${p.name} / ${p.name_en}` : id || '—'; };
const labelled = (map, v) => (map[v] ? bi(map[v][0], map[v][1]) : v || '—');

function renderTicket(t, ticketId) {
  const id = t.ticket_id || ticketId;
  const draws = Array.isArray(t.draws) ? t.draws : [];
  // A pickup code is sent only to the device holding the ticket's secret, or to a lookup by
  // identity number and phone.
  const wonWithoutCode = draws.some((d) => d.outcome === 'won' && !d.pickup_code);
  return el('div', { class: 'ticket' },
    el('dl', null,
      row('预约编号', 'Ticket id', el('code', null, id)),
      row('状态', 'Status', el('b', { class: `st-${t.status}` }, labelled(STATUS, t.status))),
      t.pharmacy_id ? row('药店', 'Pharmacy', pharmacyName(t.pharmacy_id)) : null,
      t.product_id ? row('口罩', 'Mask type', productName(t.product_id)) : null,
      t.flexible != null ? row('服从分配', 'Flexible', bi(t.flexible ? '是' : '否', t.flexible ? 'yes' : 'no')) : null,
      t.accepted_at ? row('受理时间', 'Accepted at', when(t.accepted_at)) : null,
      t.valid_until ? row('有效期至', 'Valid until', when(t.valid_until)) : null),
    draws.length === 0 ? el('p', { class: 'note' }, bi('尚未参加摇号', 'Not in a draw yet')) :
      // One block per draw rather than a table: at 360 px a table's last column (the pickup
      // code, the one thing a winner needs) would sit off screen.
      el('ul', { class: 'draws' }, draws.map((d) => el('li', { class: d.outcome === 'won' ? 'won' : '' },
        el('p', null, el('b', null, d.date), ' · ', labelled(OUTCOME, d.outcome),
          d.roll != null ? el('small', null, ` · 第 ${d.roll} 轮 roll ${d.roll}`) : null, ' ',
          el('a', { href: '#proof', onclick: () => fillProof(id, d.date) }, '核验 Check')),
        d.pharmacy_id ? el('p', null, bi('取货药店', 'Pickup pharmacy'), ' ', pharmacyName(d.pharmacy_id)) : null,
        d.pickup_code ? el('p', null, bi('取货码', 'Pickup code'), ' ', el('b', { class: 'code' }, d.pickup_code)) : null))),
    wonWithoutCode ? el('p', { class: 'note' }, bi('取货码只显示在预约时使用的手机上，或用身份证号和手机号查询时显示。',
      'The pickup code shows only on the device that made the reservation, or when you look up by ID number and phone.')) : null);
}

function holderSecret(ticketId) {
  try {
    const h = JSON.parse(localStorage.getItem(HOLDER_KEY));
    return h && h.ticket_id === ticketId && typeof h.holder_secret === 'string' ? h.holder_secret : null;
  } catch (_) {
    return null; // private mode, or nothing stored
  }
}

// ---------------------------------------------------------------- reserve

let pending = null; // { body, key }: the Idempotency-Key is reused while the form is unchanged

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function reserve(ev) {
  ev.preventDefault();
  const form = ev.target, out = document.getElementById('reserve-out'), button = form.querySelector('button');
  const f = form.elements;
  const parsed = {
    name: parseName(f.name.value), id_number: parseIdNumber(f.id_number.value), phone: parsePhone(f.phone.value),
    phone_code: parsePhoneCode(f.phone_code.value),
  };
  for (const [field, [, err]] of Object.entries(parsed)) if (err) { markField(form, field); return show(out, 'err', err); }
  if (!f.pharmacy_id.value) { markField(form, 'pharmacy_id'); return show(out, 'err', bi('请选择药店', 'Choose a pharmacy')); }
  if (!f.product_id.value) { markField(form, 'product_id'); return show(out, 'err', bi('请选择口罩类型', 'Choose a mask type')); }
  markField(form, null);

  const wait = gateWait();
  if (wait) return countdown(out, button, wait);

  const body = {
    id_number: parsed.id_number[0], name: parsed.name[0], phone: parsed.phone[0],
    pharmacy_id: f.pharmacy_id.value, product_id: f.product_id.value, flexible: f.flexible.checked,
  };
  if (parsed.phone_code[0]) body.phone_code = parsed.phone_code[0];
  const text = JSON.stringify(body);
  if (!pending || pending.body !== text) pending = { body: text, key: uuid() };

  button.disabled = true;
  show(out, 'busy', bi('提交中…', 'Submitting…'));
  const r = await call('POST', API, body, { 'Idempotency-Key': pending.key });
  button.disabled = false;
  if (r.status >= 200 && r.status < 300 && r.json && r.json.ticket_id) {
    pending = null;
    try {
      localStorage.setItem(LAST_TICKET_KEY, r.json.ticket_id);
      if (typeof r.json.holder_secret === 'string') {
        localStorage.setItem(HOLDER_KEY, JSON.stringify({ ticket_id: r.json.ticket_id, holder_secret: r.json.holder_secret }));
      }
    } catch (_) { /* private mode: the ticket id is still shown */ }
    for (const f of ['status-form', 'proof-form']) document.querySelector(`#${f} [name=ticket_id]`).value = r.json.ticket_id;
    show(out, 'ok', el('p', null, bi('预约已受理，请保存预约编号', 'Reservation accepted; keep the ticket id')), renderTicket(r.json));
    if (typeof r.json.receipt === 'string') {
      // What the person asked for, from their own form: the receipt must state it.
      const kept = {
        ticket_id: r.json.ticket_id, receipt: r.json.receipt,
        asked: { pharmacy: body.pharmacy_id, product: body.product_id, flexible: body.flexible },
      };
      keepReceipt(kept.ticket_id, kept.receipt, kept.asked);
      const box = el('aside', { id: 'reserve-receipt' });
      out.append(box);
      await showReceipt(box, kept);
      showKeptReceipt();
    }
    return undefined;
  }
  // Told to wait (429, 503, or 409 request_in_progress for this very key): keep the key.
  if (r.retryAfter) return countdown(out, button, Math.max(r.retryAfter, r.status === 409 ? 1 : cat.gate.retry_after_seconds));
  // Any other 4xx is a final answer for this content; a 5xx or a network error may have been
  // accepted anyway, so the key is kept for the retry.
  if (r.status >= 400 && r.status < 500) pending = null;
  failure(out, form, r);
}

// The receipt kept on this device, checked again each time the status section is shown.
function showKeptReceipt() {
  const kept = keptReceipt();
  const out = document.getElementById('receipt-out');
  if (kept && out) showReceipt(out, kept);
}

// ---------------------------------------------------------------- phone code

// The "get code" button waits until the server allows another code to this phone.
function resendCountdown(button, seconds) {
  button.disabled = true;
  const tick = () => {
    if (seconds <= 0) { button.disabled = false; return button.replaceChildren(...bi('获取验证码', 'Get code')); }
    button.replaceChildren(...bi(`重新获取 ${seconds}s`, `Resend in ${seconds} s`));
    seconds -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

async function getCode(form) {
  const out = document.getElementById('reserve-out'), button = document.getElementById('get-code');
  const [phone, err] = parsePhone(form.elements.phone.value);
  if (err) { markField(form, 'phone'); return show(out, 'err', err); }
  markField(form, null);
  button.disabled = true;
  show(out, 'busy', bi('正在发送验证码…', 'Sending the code…'));
  const r = await call('POST', CODES, { phone }, {}, { gate: false });
  if (r.status === 202 && r.json) {
    const minutes = Math.max(1, Math.round((r.json.expires_in_secs || 300) / 60));
    const masked = `${phone.slice(0, 3)}****${phone.slice(7)}`;
    show(out, 'ok', bi(`验证码已发送至 ${masked}，${minutes} 分钟内有效`, `Code sent to ${masked}; valid for ${minutes} min`));
    form.elements.phone_code.focus();
    return resendCountdown(button, r.json.resend_in_secs || 60);
  }
  failure(out, form, r);
  if (r.retryAfter) return resendCountdown(button, r.retryAfter);
  button.disabled = false;
}

// ---------------------------------------------------------------- status and lookup

async function status(ev) {
  ev.preventDefault();
  const form = ev.target, out = document.getElementById('status-out');
  const [id, err] = parseTicketId(form.elements.ticket_id.value);
  if (err) { markField(form, 'ticket_id'); return show(out, 'err', err); }
  markField(form, null);
  show(out, 'busy', bi('查询中…', 'Looking up…'));
  const secret = holderSecret(id);
  const r = await call('GET', `${API}/${id}`, null, secret ? { 'X-Holder-Secret': secret } : {});
  if (r.status === 200 && r.json) return out.replaceChildren(renderTicket(r.json, id));
  failure(out, form, r);
}

async function lookup(ev) {
  ev.preventDefault();
  const form = ev.target, out = document.getElementById('status-out');
  const [idNumber, e1] = parseIdNumber(form.elements.id_number.value);
  if (e1) { markField(form, 'id_number'); return show(out, 'err', e1); }
  const [phone, e2] = parsePhone(form.elements.phone.value);
  if (e2) { markField(form, 'phone'); return show(out, 'err', e2); }
  markField(form, null);
  show(out, 'busy', bi('查询中…', 'Looking up…'));
  const r = await call('POST', `${API}/lookup`, { id_number: idNumber, phone });
  if (r.status !== 200 || !r.json) return failure(out, form, r);
  const tickets = r.json.tickets || [];
  if (tickets.length === 0) return show(out, 'note', bi('没有找到预约', 'No reservation found'));
  out.replaceChildren(...tickets.map((t) => renderTicket(t)));
}

// ---------------------------------------------------------------- proof

function fillProof(ticketId, date) {
  const form = document.getElementById('proof-form');
  form.elements.ticket_id.value = ticketId;
  form.elements.date.value = date;
  form.elements.date.dataset.touched = '1';
  // After the hash change has shown the section; requestSubmit runs the form's handler.
  setTimeout(() => (form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit', { cancelable: true }))), 0);
}

async function proof(ev) {
  ev.preventDefault();
  const form = ev.target, out = document.getElementById('proof-out'), button = form.querySelector('button');
  const [id, err] = parseTicketId(form.elements.ticket_id.value);
  if (err) { markField(form, 'ticket_id'); return show(out, 'err', err); }
  const date = form.elements.date.value;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) { markField(form, 'date'); return show(out, 'err', bi('请选择日期', 'Choose a date')); }
  markField(form, null);
  button.disabled = true;
  try {
    await checkProof(out, id, date, pharmacyName);
  } catch (e) {
    // A bug here must not leave the person looking at "checking…" for ever.
    show(out, 'err', bi(`本页出错，未能完成核验：${e.message}`, `This page failed and could not finish the check: ${e.message}`));
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- boot

function fillSelect(select, items, label, placeholder) {
  select.replaceChildren(el('option', { value: '' }, placeholder), ...items.map((x) => el('option', { value: x.id }, label(x))));
}

function onDistrict(form) {
  const district = form.elements.district.value;
  const list = cat.pharmacies.filter((p) => p.district === district);
  fillSelect(form.elements.pharmacy_id, list, (p) => p.name, district ? '请选择药店 Choose a pharmacy' : '请先选择区 Choose a district first');
  document.getElementById('pharmacy-address').textContent = '';
}

function route() {
  const name = (location.hash || '#reserve').slice(1);
  for (const s of document.querySelectorAll('main section')) s.hidden = s.id !== name;
  if (!document.getElementById(name)) document.getElementById('reserve').hidden = false;
}

async function boot() {
  const loading = document.getElementById('boot');
  try {
    const names = ['districts', 'pharmacies', 'products', 'gate'];
    const files = await Promise.all(names.map((n) => fetch(`${CONFIG}${n}.json`).then((r) => {
      if (!r.ok) throw new Error(`${n}.json: HTTP ${r.status}`);
      return r.json();
    })));
    names.forEach((n, i) => { cat[n] = files[i]; });
  } catch (e) {
    loading.className = 'err';
    loading.replaceChildren(...bi('加载失败，请刷新重试', `Could not load the catalog (${e.message}); please reload`));
    return;
  }
  loading.remove();
  const form = document.getElementById('reserve-form');
  fillSelect(form.elements.district, cat.districts, (d) => `${d.name} ${d.name_en}`, '请选择区 Choose a district');
  fillSelect(form.elements.product_id, cat.products, (p) => `${p.name} ${p.name_en}（${p.masks_per_pack} 个/包）`, '请选择 Choose a mask type');
  onDistrict(form);
  form.elements.district.addEventListener('change', () => onDistrict(form));
  form.elements.pharmacy_id.addEventListener('change', () => {
    const p = byId(cat.pharmacies, form.elements.pharmacy_id.value);
    document.getElementById('pharmacy-address').textContent = p ? `${p.address} · ${p.name_en}` : '';
  });
  form.addEventListener('submit', reserve);
  document.getElementById('get-code').addEventListener('click', () => getCode(form));
  document.getElementById('status-form').addEventListener('submit', status);
  document.getElementById('lookup-form').addEventListener('submit', lookup);
  document.getElementById('proof-form').addEventListener('submit', proof);
  let last = null;
  try { last = localStorage.getItem(LAST_TICKET_KEY); } catch (_) { /* private mode */ }
  if (last) for (const f of ['status-form', 'proof-form']) document.querySelector(`#${f} [name=ticket_id]`).value = last;
  const dateInput = document.querySelector('#proof-form [name=date]');
  dateInput.value = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date());
  // The newest published draw is the likeliest to be checked.
  loadDraws(document.getElementById('draws'), (date) => { dateInput.value = date; }).then((list) => {
    if (list && list.length && !dateInput.dataset.touched) dateInput.value = list[0].date;
  });
  dateInput.addEventListener('input', () => { dateInput.dataset.touched = '1'; });
  window.addEventListener('hashchange', route);
  route();
  showKeptReceipt();
}

// A module runs after the document is parsed.
boot();
