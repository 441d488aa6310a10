// The "check fairness" section: downloads a ticket's proof and the day's signed files, runs
// verify.js on them and tells the person, in Chinese and English, what was checked, what it
// means, and which check failed and why.

import { FILES, verifyTicket } from './verify.js';
import { auditView, parseAudit } from './audit.js';
import { bi, el, row, show } from './dom.js';

const PROOF_API = (ticket, date) => `/api/v1/reservations/${ticket}/proof?date=${date}`;
const FILE_URL = (date, name) => (name === 'authority.pub' ? '/snapshots/authority.pub' : `/snapshots/${date}/${name}`);

/** What each check is, in a few words. */
const TITLES = {
  key: ['机构公钥', 'The authority\'s key'],
  seal_signature: ['封存签名', 'Seal signature'],
  seal_text: ['封存内容', 'What was sealed'],
  leaf: ['您的名单行', 'Your line in the list'],
  inclusion: ['在封存名单中', 'In the sealed list'],
  stock: ['库存表', 'Stock list'],
  draw_signature: ['摇号签名', 'Draw signature'],
  draw_text: ['摇号记录', 'Draw record'],
  reveals: ['秘密与承诺', 'Secrets and commitments'],
  seed: ['种子', 'Seed'],
  cutoffs: ['中签线', 'Cutoffs'],
  rolls: ['您的随机数', 'Your rolls'],
  outcome: ['结果', 'Result'],
};
const STATE = {
  true: ['✓', 'pass', '通过', 'passed'],
  false: ['✗', 'fail', '未通过', 'FAILED'],
  null: ['–', 'skip', '未核验', 'not checked'],
};

// The server allows each client a few proof and file downloads a second and answers 429 with
// Retry-After beyond that; a check needs nine, so the page asks a few at a time and waits as told.
const PARALLEL = 3;
const MAX_WAITS = 6;

/** fetch, waiting as told on 429/503 (at most MAX_WAITS times, at most 10 s each); null offline. */
async function politeFetch(url, init) {
  for (let waited = 0; ; waited += 1) {
    let res;
    try {
      res = await fetch(url, init);
    } catch (_) {
      return null;
    }
    if ((res.status !== 429 && res.status !== 503) || waited === MAX_WAITS) return res;
    const seconds = Math.min(10, Math.max(1, parseInt(res.headers.get('Retry-After'), 10) || 1));
    await new Promise((resolve) => { setTimeout(resolve, seconds * 1000); });
  }
}

/** The bytes at a URL, or { error } saying why not (the server's error code when it sent one). */
async function download(url) {
  const res = await politeFetch(url);
  if (!res) return { error: 'network error' };
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    return { error: `HTTP ${res.status}${body && body.code ? ` ${body.code}` : ''}` };
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** Runs `jobs` (functions returning promises) at most `n` at a time; results in order. */
async function limited(jobs, n, onDone) {
  const results = new Array(jobs.length);
  let next = 0, done = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
      onDone(++done, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return results;
}

/** A UTC time of seal.txt as Beijing time, the time people here read. */
function beijing(utc) {
  const d = new Date(utc);
  if (Number.isNaN(d.getTime())) return utc;
  return d.toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}

function verdict({ results, facts, passed }) {
  const failed = results.filter((r) => r.ok === false);
  const unchecked = results.filter((r) => r.ok === null);
  if (passed) {
    const won = facts.expected.won;
    return el('div', { class: 'ok verdict' },
      el('h3', null, bi(`✓ 全部 ${results.length} 项核验通过`, `All ${results.length} checks passed`)),
      el('p', null, `您的预约在 ${beijing(facts.cutoff)}（北京时间）封存的 ${facts.entrants} 人名单中；种子由封存前各方承诺的秘密和现场材料决定，`
        + `封存时无人能预知；按本页算出的随机数和签名公布的中签线，您${won ? `必定中签（第 ${facts.expected.roll} 轮）` : '不可能中签'}，与公布的结果一致。`),
      el('p', null, el('small', null, `Your ticket was in the list of ${facts.entrants} sealed at ${beijing(facts.cutoff)} Beijing time; the seed was fixed by `
        + 'secrets committed before the seal and by the live material, so nobody could know it when the list was sealed; by the rolls '
        + `computed in this page and the signed cutoffs you ${won ? `had to win (roll ${facts.expected.roll})` : 'could not win'}, which is the published result.`)));
  }
  const first = failed[0] || unchecked[0];
  const [zh, en] = TITLES[first.check];
  return el('div', { class: 'err verdict' },
    el('h3', null, failed.length
      ? bi(`✗ ${failed.length} 项核验未通过`, `${failed.length} of ${results.length} checks FAILED`)
      : bi(`– ${unchecked.length} 项无法核验`, `${unchecked.length} of ${results.length} checks could not be run`)),
    el('p', null, `这些文件不能证明公布的结果。${failed.length ? '第一项未通过' : '第一项无法核验'}的是“${zh}”：${first.why.zh}`),
    el('p', null, el('small', null, `These files do not prove the published result. The first check that ${failed.length ? 'failed' : 'could not be run'} is "${en}": ${first.why.en}`)),
    el('p', null, bi('请保存本页截图，并联系公证处。', 'Keep a screenshot of this page and contact the notary.')));
}

function checkList(results) {
  return el('ol', { class: 'checks' }, results.map((r) => {
    const [mark, cls, zhState, enState] = STATE[r.ok];
    const [zh, en] = TITLES[r.check];
    return el('li', { class: cls, 'data-check': r.check },
      el('span', { class: 'mark', 'aria-hidden': 'true' }, mark),
      el('div', null,
        el('b', null, zh), ' ', el('small', null, en), ' · ', el('span', { class: 'state' }, zhState, ' ', el('small', null, enState)),
        el('p', null, r.why.zh),
        el('p', null, el('small', null, r.why.en))));
  }));
}

const code = (v) => el('code', null, v == null ? '—' : String(v));

function numbers(facts, proof, date, pharmacyName) {
  const exp = facts.expected;
  return el('details', null,
    el('summary', null, bi('本页算出的数值', 'The values this page computed')),
    el('dl', null,
      row('机构公钥', 'Authority key', code(facts.key)),
      row('封存编号', 'Seal id = SHA-256(seal.txt)', code(facts.sealId)),
      row('封存时间', 'Sealed at', code(facts.cutoff)),
      row('名单行号', 'Line (from 0)', code(facts.leafIndex)),
      row('您的名单行', 'Your line', code(facts.leaf)),
      row('行哈希', 'Leaf hash', code(facts.leafHash)),
      row('审计路径', 'Audit path', proof && Array.isArray(proof.audit_path)
        ? el('ol', { start: 0 }, proof.audit_path.map((h) => el('li', null, code(h)))) : '—'),
      row('药店', 'Pharmacy', facts.pharmacyId ? pharmacyName(facts.pharmacyId) : '—'),
      row('区', 'District', code(facts.districtId)),
      row('种子原文', 'Seed text', facts.seedText ? el('pre', null, facts.seedText) : '—'),
      row('种子', 'Seed', code(facts.seed)),
      row('第一轮随机数', 'Roll one', code(facts.roll1)),
      row('第二轮随机数', 'Roll two', code(facts.roll2)),
      row('本药店中签线', 'Pharmacy cutoff', code(facts.poolCutoff)),
      row('本区调剂中签线', 'District cutoff', code(facts.spillCutoff)),
      row('应有结果', 'Outcome the rolls give', exp ? bi(exp.won ? `中签（第 ${exp.roll} 轮）` : '未中签', exp.won ? `won (roll ${exp.roll})` : 'lost') : '—')),
    el('p', null, bi('下载文件自行核验：', 'Download the files to check them yourself:'), ' ',
      FILES.map((f) => [el('a', { href: FILE_URL(date, f), download: f }, f), ' ']),
      proof ? el('a', { href: `data:application/json;charset=utf-8,${encodeURIComponent(`${JSON.stringify(proof, null, 2)}\n`)}`, download: `proof-${facts.ticketId}-${date}.json` }, 'proof.json') : null));
}

/**
 * Fetches everything for (ticketId, date), checks it and shows the result in `out`.
 * `pharmacyName(id)` gives a pharmacy's display name.
 */
export async function checkProof(out, ticketId, date, pharmacyName) {
  const busy = (done, all) => show(out, 'busy', bi(`正在下载证明和签名文件（${done}/${all}），并在本机核验…`,
    `Downloading the proof and the signed files (${done}/${all}), to check them on this device…`));
  busy(0, FILES.length + 1);
  // The proof first: before publication (or for a ticket not in that draw) the files are not
  // worth asking for.
  const proofRes = await politeFetch(PROOF_API(ticketId, date), { headers: { Accept: 'application/json' } });
  if (!proofRes) return show(out, 'err', bi('网络错误，请重试', 'Network error; please try again'));
  const body = await proofRes.json().catch(() => null);
  if (!proofRes.ok) {
    // Not published yet, not in that draw, a bad id: the server's own words.
    return show(out, 'err', body && body.message ? body.message : `HTTP ${proofRes.status}`,
      body && body.code ? el('small', null, ` (${body.code})`) : null);
  }
  const files = await limited(FILES.map((f) => () => download(FILE_URL(date, f))), PARALLEL,
    (done) => busy(done + 1, FILES.length + 1));
  const result = await verifyTicket({ ticketId, date, proof: body, files: Object.fromEntries(FILES.map((f, i) => [f, files[i]])) });
  const audit = el('div', { class: 'audit-out' }, el('p', { class: 'note' }, bi('正在下载公平性审计…', 'Downloading the fairness audit…')));
  out.replaceChildren(
    verdict(result),
    el('h3', null, bi('逐项核验', 'Each check')),
    checkList(result.results),
    numbers(result.facts, body, date, pharmacyName),
    audit);
  await showAudit(audit, date);
  return result;
}

/**
 * The day's fairness audit (`audit.txt`) drawn as charts: the winners of each hour of
 * acceptance, flexible choice, district and product against what a fair draw gives.
 */
export async function showAudit(out, date) {
  const bytes = await download(FILE_URL(date, 'audit.txt'));
  if (bytes.error) {
    return out.replaceChildren(el('p', { class: 'note' }, bi(`这一天没有公平性审计（${bytes.error}）`, `No fairness audit for this day (${bytes.error})`)));
  }
  let audit;
  try {
    audit = parseAudit(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    return out.replaceChildren(el('p', { class: 'err' }, bi('公平性审计文件格式错误', 'The fairness audit file is malformed'), ' ', el('small', null, e.message)));
  }
  out.replaceChildren(
    el('h3', null, bi('公平性审计', 'Fairness audit')),
    auditView(audit, el),
    el('p', { class: 'note' }, bi('审计只由 entrants.csv、stock.csv 和 result.csv 算出；notary verify 会重算并逐字节比对。',
      'The audit is computed from entrants.csv, stock.csv and result.csv alone; notary verify recomputes it byte for byte.'), ' ',
    el('a', { href: FILE_URL(date, 'audit.txt'), download: 'audit.txt' }, 'audit.txt')));
  return audit;
}

/** The published draws as buttons that fill the date (GET /api/v1/draws). */
export async function loadDraws(container, onPick) {
  let list = [];
  try {
    const res = await fetch('/api/v1/draws', { headers: { Accept: 'application/json' } });
    if (res.ok) list = ((await res.json()) || {}).draws || [];
  } catch (_) { /* offline: the date can still be typed */ }
  if (!Array.isArray(list) || list.length === 0) return container.replaceChildren();
  container.replaceChildren(
    el('p', { class: 'note' }, bi('已公布的摇号（点选日期）', 'Published draws (tap a date)')),
    el('div', { class: 'chips' }, list.map((d) => el('button', { type: 'button', class: 'chip', onclick: () => onPick(d.date) },
      d.date, el('small', null, ` ${d.entrants} 人 · ${d.winners} 中签 / ${d.entrants} entrants · ${d.winners} won`)))));
  return list;
}
