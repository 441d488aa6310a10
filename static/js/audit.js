// The day's fairness audit (lottery/SPEC.md §13, `maskdraw-audit-v1`): parsed strictly and drawn
// as an SVG chart by the page itself (no library, no CDN): winners against what a fair draw
// expects, by hour of acceptance, flexible, district and product, with the three tests' p-values
// and the verdict. A flagged test or allocation is drawn in the alarm colour, and so is every
// bar far from its expectation. `audit.txt` is unsigned, derived data: `notary verify`
// recomputes it from the signed files byte for byte.

export const AUDIT_VERSION = 'maskdraw-audit-v1';
/** The fixed bound of §13.4: a test deviates when p < 1e-6. */
export const BOUND = 1e-6;

const DEC = '(0|[1-9]\\d*)';
const FIX = '(\\d+\\.\\d{3})';
const P = '(\\d\\.\\d\\de-?\\d+)';
const ID = '([A-Z0-9-]{1,16})';
const HOUR = '(\\d{4}-\\d{2}-\\d{2}T\\d{2}Z)';

const TESTS = ['hour', 'hour-trend', 'flexible'];

/** Parses audit.txt; throws naming the line at fault. */
export function parseAudit(text) {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw new Error('audit.txt ends with LF');
  const lines = text.slice(0, -1).split('\n');
  let k = 0;
  const bad = (why) => new Error(`audit.txt line ${k + 1}: ${why}`);
  const one = (re, what) => {
    const m = new RegExp(`^${re}$`).exec(lines[k] ?? '');
    if (!m) throw bad(`want ${what}`);
    k += 1;
    return m;
  };
  const many = (re) => {
    const out = [];
    for (let m; (m = new RegExp(`^${re}$`).exec(lines[k] ?? '')); k += 1) out.push(m);
    return out;
  };
  one(AUDIT_VERSION, AUDIT_VERSION);
  const entrants = +one(`entrants:${DEC}`, 'entrants:<n>')[1];
  const winners = +one(`winners:${DEC}`, 'winners:<n>')[1];
  one('bound:1e-6', 'bound:1e-6');
  const a = one(`allocation:${DEC},${DEC},${DEC},${DEC}`, 'allocation:<pools>,<deviating>,<groups>,<deviating>');
  const allocation = { pools: +a[1], deviatingPools: +a[2], groups: +a[3], deviatingGroups: +a[4] };
  const hour = many(`hour:${HOUR}/${HOUR},${DEC},${DEC},${FIX}`)
    .map((m) => ({ label: m[1], first: m[1], end: m[2], entrants: +m[3], winners: +m[4], expected: +m[5] }));
  const flexible = many(`flexible:(0|1|0-1),${DEC},${DEC},${FIX}`)
    .map((m) => ({ label: m[1], entrants: +m[2], winners: +m[3], expected: +m[4] }));
  const district = many(`district:${ID},${DEC},${DEC},${DEC}`)
    .map((m) => ({ label: m[1], entrants: +m[2], winners: +m[3], expected: +m[4] }));
  const product = many(`product:${ID},${DEC},${DEC},${DEC}`)
    .map((m) => ({ label: m[1], entrants: +m[2], winners: +m[3], expected: +m[4] }));
  const tests = {};
  for (const name of TESTS) {
    const m = one(`test:${name}:${FIX},${DEC},${P}`, `test:${name}:<Q>,<df>,<p>`);
    tests[name] = { q: +m[1], df: +m[2], p: Number(m[3]), text: m[3] };
  }
  const v = one('verdict:(pass|flagged:([a-z-]+(,[a-z-]+)*))', 'verdict:pass or verdict:flagged:<names>');
  if (k !== lines.length) throw bad('unexpected extra line');
  const flagged = v[1] === 'pass' ? [] : v[2].split(',');
  return { entrants, winners, allocation, hour, flexible, district, product, tests, flagged };
}

/** A bin is far from its expectation when |winners − expected| > 3·√max(expected, 1). */
export const far = (b) => Math.abs(b.winners - b.expected) > 3 * Math.sqrt(Math.max(b.expected, 1));

/** `2025-11-23T12Z` as Beijing time `11-23 20时`. */
export function beijingHour(h) {
  const d = new Date(`${h.slice(0, 13)}:00:00Z`);
  if (Number.isNaN(d.getTime())) return h;
  const b = new Date(d.getTime() + 8 * 3600 * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(b.getUTCMonth() + 1)}-${p(b.getUTCDate())} ${p(b.getUTCHours())}时`;
}

/**
 * What the chart shows, without a DOM: one panel per attribute with its bins, its test (or
 * the allocation for district and product) and whether it is flagged.
 */
export function chartModel(audit) {
  const flagged = new Set(audit.flagged);
  const test = (name) => ({ name, ...audit.tests[name], flagged: flagged.has(name) });
  const allocationFlagged = flagged.has('allocation');
  return [
    {
      key: 'hour', zh: '按受理时间（北京时间）', en: 'By hour of acceptance (Beijing time)', expectedWord: 'expected',
      bins: audit.hour.map((b) => ({ ...b, label: beijingHour(b.first), far: far(b) })),
      tests: [test('hour'), test('hour-trend')],
    },
    {
      key: 'flexible', zh: '按是否服从分配', en: 'By flexible', expectedWord: 'expected',
      bins: audit.flexible.map((b) => ({ ...b, label: { 0: '否 no', 1: '是 yes', '0-1': '全部 all' }[b.label], far: far(b) })),
      tests: [test('flexible')],
    },
    ...['district', 'product'].map((key) => ({
      key, zh: key === 'district' ? '按区' : '按口罩类型', en: key === 'district' ? 'By district' : 'By product',
      expectedWord: 'permitted',
      // District and product are fixed by the stock: a fair draw gives exactly what it permits.
      bins: audit[key].map((b) => ({ ...b, far: b.winners !== b.expected })),
      tests: [],
      allocation: { ...audit.allocation, flagged: allocationFlagged },
    })),
  ].map((p) => ({ ...p, flagged: p.tests.some((t) => t.flagged) || (p.allocation?.flagged ?? false) }));
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const W = 340;
const PLOT_H = 110;

/** One panel as an <svg>: bars of winners, a tick at each expected value, labels below. */
function panelSvg(p) {
  const n = Math.max(p.bins.length, 1);
  // Room on the left for a five-digit count, and below for labels and a two-row legend, at a
  // type size that stays readable when the chart is scaled to a 360 px screen.
  const left = 42, right = 6, top = 10, bottom = 56;
  const plotW = W - left - right;
  const max = Math.max(1, ...p.bins.map((b) => Math.max(b.winners, b.expected)));
  const y = (v) => top + PLOT_H - (v / max) * PLOT_H;
  const slot = plotW / n;
  const barW = Math.max(2, Math.min(36, slot * 0.7));
  const every = Math.ceil(n / 6); // at most about six labels fit under the axis
  const parts = [
    svg('line', { x1: left, y1: top + PLOT_H, x2: W - right, y2: top + PLOT_H, class: 'axis' }),
    svg('text', { x: left - 4, y: top + 5, class: 'tick', 'text-anchor': 'end' }, Math.round(max)),
    svg('text', { x: left - 4, y: top + PLOT_H, class: 'tick', 'text-anchor': 'end' }, 0),
  ];
  p.bins.forEach((b, i) => {
    const cx = left + slot * i + slot / 2;
    parts.push(svg('rect', {
      x: cx - barW / 2, y: y(b.winners), width: barW, height: Math.max(0, top + PLOT_H - y(b.winners)),
      class: b.far ? 'bar far' : 'bar',
    }, svg('title', null, `${b.label}: ${b.winners} winners of ${b.entrants}, ${p.expectedWord} ${b.expected}`)));
    parts.push(svg('line', { x1: cx - barW / 2 - 2, x2: cx + barW / 2 + 2, y1: y(b.expected), y2: y(b.expected), class: 'expected' }));
    if (i % every === 0) {
      parts.push(svg('text', { x: cx, y: top + PLOT_H + 15, class: 'tick', 'text-anchor': 'middle' }, b.label));
    }
  });
  const row1 = top + PLOT_H + 34, row2 = top + PLOT_H + 51;
  parts.push(svg('rect', { x: left, y: row1 - 10, width: 10, height: 10, class: 'bar' }),
    svg('text', { x: left + 14, y: row1, class: 'tick' }, '中签 winners'),
    svg('line', { x1: left + 104, x2: left + 122, y1: row1 - 5, y2: row1 - 5, class: 'expected' }),
    svg('text', { x: left + 126, y: row1, class: 'tick' }, p.expectedWord === 'expected' ? '公平时应有 expected' : '库存允许 permitted'),
    svg('rect', { x: left, y: row2 - 10, width: 10, height: 10, class: 'bar far' }),
    svg('text', { x: left + 14, y: row2, class: 'tick' }, '偏离 far'));
  return svg('svg', {
    viewBox: `0 0 ${W} ${top + PLOT_H + bottom}`, width: '100%', role: 'img', class: p.flagged ? 'chart flagged' : 'chart',
    'aria-label': `${p.en}: winners against ${p.expectedWord}`,
  }, parts);
}

/**
 * The audit as DOM: a verdict line and one figure per attribute. `el` is dom.js's element
 * helper (passed in so this module loads in Node for its unit tests).
 */
export function auditView(audit, el) {
  const model = chartModel(audit);
  const pass = audit.flagged.length === 0;
  return el('div', { class: `audit ${pass ? 'ok' : 'err'}` },
    el('h3', null, pass ? '✓ 公平性审计：未发现偏离 ' : '✗ 公平性审计：发现偏离 ',
      el('small', null, pass ? 'Fairness audit: no deviation' : `Fairness audit: FLAGGED (${audit.flagged.join(', ')})`)),
    el('p', null, el('small', null, `${audit.entrants} 人 · ${audit.winners} 中签 · 界限 p < 1e-6 · ${audit.entrants} entrants, ${audit.winners} winners; a test deviates when p < 1e-6`)),
    model.map((p) => el('figure', { class: p.flagged ? 'flagged' : '', 'data-attribute': p.key },
      el('figcaption', null, el('b', null, p.zh), ' ', el('small', null, p.en),
        p.flagged ? el('b', { class: 'flag' }, ' 偏离 FLAGGED') : null),
      panelSvg(p),
      el('p', { class: 'tests' }, p.tests.map((t) => el('small', { class: t.flagged ? 'flag' : '' },
        `${t.name}: Q = ${t.q.toFixed(3)}, df = ${t.df}, p = ${t.text}${t.flagged ? ' < 1e-6 偏离 FLAGGED' : ''} `)),
      p.allocation ? el('small', { class: p.allocation.flagged ? 'flag' : '' },
        `allocation: ${p.allocation.deviatingPools} of ${p.allocation.pools} pools, ${p.allocation.deviatingGroups} of ${p.allocation.groups} groups deviate`) : null))));
}
