// Strict parsers for the published files of format version 1 (lottery/SPEC.md §1–§9), the same
// rules as lottery/src/text.rs and lottery/src/snapshot.rs. Each returns plain values or throws a
// FormatError naming the file, the 1-based line and the rule broken. Only ASCII fields are
// compared, so comparisons "ascending by bytes" are plain string comparisons.

import { textOf } from './bytes.js';

export class FormatError extends Error {
  constructor(file, line, reason) {
    super(line ? `${file} line ${line}: ${reason}` : `${file}: ${reason}`);
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

const HASH = /^[0-9a-f]{64}$/;
const IDENT = /^[A-Z0-9-]{1,16}$/;
const PARTY = /^[a-z0-9-]{1,32}$/;
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/; // ≤ 128 bits: the first character is 0–7
const TAG = /^[0-9a-f]{32}$/;
const ROLL = /^[0-9a-f]{16}$/;
const U64_MAX = (1n << 64n) - 1n;
// Rust's char::is_control: the C0 and C1 controls and DEL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A decimal of SPEC §1 (no sign, no leading zero, fits in u64) as a BigInt, or null. */
export function parseDecimal(v) {
  if (!/^(0|[1-9][0-9]*)$/.test(v)) return null;
  const n = BigInt(v);
  return n <= U64_MAX ? n : null;
}

function daysInMonth(y, m) {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** YYYY-MM-DD, a real Gregorian date. */
export function isDate(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return false;
  const [y, mo, d] = [+m[1], +m[2], +m[3]];
  return mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo);
}

/** YYYY-MM-DDTHH:MM:SSZ, a real UTC time without leap second. */
export function isTimestamp(v) {
  const m = /^(.{10})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(v);
  return !!m && isDate(m[1]) && +m[2] < 24 && +m[3] < 60 && +m[4] < 60;
}

/** SPEC §1: LF-terminated UTF-8 lines without CR; an empty file has no lines. */
export function splitLines(file, bytes) {
  let text;
  try { text = textOf(bytes); } catch (_) { throw new FormatError(file, 0, 'not UTF-8'); }
  if (text.length === 0) return [];
  const lines = text.split('\n');
  if (lines.pop() !== '') throw new FormatError(file, lines.length + 1, 'missing final LF');
  lines.forEach((l, i) => {
    if (l.includes('\r')) throw new FormatError(file, i + 1, 'CR in a line');
    if (l.endsWith(' ')) throw new FormatError(file, i + 1, 'trailing space');
  });
  return lines;
}

/** Reads "key:value" lines in a fixed order, as text.rs's `Lines` does. */
class Fields {
  constructor(file, bytes) {
    this.file = file;
    this.lines = splitLines(file, bytes);
    this.at = 0;
  }
  err(reason) { return new FormatError(this.file, this.at, reason); }
  exact(want) {
    const line = this.lines[this.at++];
    if (line !== want) throw this.err(`want ${want}`);
  }
  field(name, check, rule) {
    const line = this.lines[this.at++];
    if (line === undefined) throw this.err(`missing ${name}:`);
    if (!line.startsWith(`${name}:`)) throw this.err(`want ${name}:…`);
    const v = line.slice(name.length + 1);
    if (!check(v)) throw this.err(`${name} ${rule}`);
    return v;
  }
  /** The rest of the next line when it starts with `prefix`, else null (the line is not taken). */
  next(prefix) {
    const line = this.lines[this.at];
    if (line === undefined || !line.startsWith(prefix)) return null;
    this.at += 1;
    return line.slice(prefix.length);
  }
  end() {
    if (this.at < this.lines.length) { this.at += 1; throw this.err('unexpected line'); }
  }
}

const isHash = (v) => HASH.test(v);
const isCount = (v) => parseDecimal(v) !== null;

/** seal.txt (SPEC §5). */
export function parseSeal(bytes) {
  const f = new Fields('seal.txt', bytes);
  f.exact('maskdraw-seal-v1');
  const seal = {
    drawDate: f.field('draw_date', isDate, 'is not a YYYY-MM-DD date'),
    cutoff: f.field('cutoff', isTimestamp, 'is not a YYYY-MM-DDTHH:MM:SSZ time'),
    entrants: parseDecimal(f.field('entrants', isCount, 'is not a decimal count')),
    entrantsRoot: f.field('entrants_root', isHash, 'is not 64 hex'),
    stockSha256: f.field('stock_sha256', isHash, 'is not 64 hex'),
    previous: f.field('previous', (v) => v === '-' || isHash(v), 'is neither 64 hex nor -'),
    commits: [],
  };
  for (let rest; (rest = f.next('commit:')) !== null;) {
    const [party, digest, extra] = rest.split(':');
    if (extra !== undefined || digest === undefined) throw f.err('want commit:<party>:<64 hex>');
    if (!PARTY.test(party)) throw f.err('party is not [a-z0-9-]{1,32}');
    if (seal.commits.some((c) => c.party === party)) throw f.err('party commits twice');
    if (!isHash(digest)) throw f.err('commitment is not 64 hex');
    seal.commits.push({ party, digest });
  }
  f.end();
  return seal;
}

/** draw.txt (SPEC §9), with its reveal and material lines (SPEC §6). */
export function parseDraw(bytes) {
  const f = new Fields('draw.txt', bytes);
  f.exact('maskdraw-draw-v1');
  const draw = {
    seal: f.field('seal', isHash, 'is not 64 hex'),
    seed: f.field('seed', isHash, 'is not 64 hex'),
    winners: parseDecimal(f.field('winners', isCount, 'is not a decimal count')),
    resultSha256: f.field('result_sha256', isHash, 'is not 64 hex'),
    poolsSha256: f.field('pools_sha256', isHash, 'is not 64 hex'),
    spillSha256: f.field('spill_sha256', isHash, 'is not 64 hex'),
    reveals: [],
    material: null,
  };
  for (let rest; (rest = f.next('reveal:')) !== null;) {
    const i = rest.indexOf(':');
    const party = i < 0 ? rest : rest.slice(0, i);
    const secret = i < 0 ? '' : rest.slice(i + 1);
    if (i < 0) throw f.err('want reveal:<party>:<hex>');
    if (!PARTY.test(party)) throw f.err('party is not [a-z0-9-]{1,32}');
    if (draw.reveals.some((r) => r.party === party)) throw f.err('party reveals twice');
    if (secret.length % 2 !== 0 || secret.length < 32 || !/^[0-9a-f]*$/.test(secret)) {
      throw f.err('secret is not lowercase hex of at least 16 bytes');
    }
    draw.reveals.push({ party, secret });
  }
  draw.material = f.field('material',
    (v) => v.length > 0 && !CONTROL.test(v) && !v.startsWith(' ') && !v.endsWith(' '),
    'must be one non-empty line without control characters or spaces at either end');
  f.end();
  return draw;
}

/** One entrants.csv line without its LF (SPEC §2). */
export function parseEntrant(line) {
  const parts = line.split(',');
  if (parts.length !== 5) throw new FormatError('entrants.csv', 0, 'want ticket_id,pharmacy_id,product_id,flexible,person_tag');
  const [ticketId, pharmacyId, productId, flexible, personTag] = parts;
  if (!ULID.test(ticketId)) throw new FormatError('entrants.csv', 0, 'ticket_id is not a ULID');
  if (!IDENT.test(pharmacyId)) throw new FormatError('entrants.csv', 0, 'pharmacy_id is not an identifier');
  if (!IDENT.test(productId)) throw new FormatError('entrants.csv', 0, 'product_id is not an identifier');
  if (flexible !== '0' && flexible !== '1') throw new FormatError('entrants.csv', 0, 'flexible is not 0 or 1');
  if (!TAG.test(personTag)) throw new FormatError('entrants.csv', 0, 'person_tag is not 32 hex');
  return { ticketId, pharmacyId, productId, flexible: flexible === '1', personTag };
}

function csv(file, bytes, names, checks) {
  return splitLines(file, bytes).map((line, i) => {
    const parts = line.split(',');
    if (parts.length !== names.length) throw new FormatError(file, i + 1, `want ${names.join(',')}`);
    const row = {};
    names.forEach((name, j) => {
      if (!checks[j](parts[j])) throw new FormatError(file, i + 1, `${name} ${JSON.stringify(parts[j])} breaks the format`);
      row[name] = parts[j];
    });
    row.line = i + 1;
    return row;
  });
}

const isIdent = (v) => IDENT.test(v);
const isCutoff = (v) => v === '-' || ROLL.test(v);

/** stock.csv (SPEC §3): ascending (pharmacy, product), one district per pharmacy. */
export function parseStock(bytes) {
  const rows = csv('stock.csv', bytes, ['pharmacy_id', 'district_id', 'product_id', 'packs'], [isIdent, isIdent, isIdent, isCount]);
  const district = new Map();
  rows.forEach((r, i) => {
    r.packs = parseDecimal(r.packs);
    const prev = rows[i - 1];
    if (prev && !(prev.pharmacy_id < r.pharmacy_id || (prev.pharmacy_id === r.pharmacy_id && prev.product_id < r.product_id))) {
      throw new FormatError('stock.csv', r.line, 'not strictly ascending by (pharmacy_id, product_id)');
    }
    const d = district.get(r.pharmacy_id);
    if (d !== undefined && d !== r.district_id) throw new FormatError('stock.csv', r.line, `pharmacy ${r.pharmacy_id} is in two districts`);
    district.set(r.pharmacy_id, r.district_id);
  });
  return rows;
}

/** pools.csv (SPEC §9): pharmacy_id,product_id,entrants,packs,winners,cutoff. */
export function parsePools(bytes) {
  const rows = csv('pools.csv', bytes, ['pharmacy_id', 'product_id', 'entrants', 'packs', 'winners', 'cutoff'],
    [isIdent, isIdent, isCount, isCount, isCount, isCutoff]);
  for (const r of rows) for (const k of ['entrants', 'packs', 'winners']) r[k] = parseDecimal(r[k]);
  return rows;
}

/** spill.csv (SPEC §9): district_id,product_id,leftover,candidates,winners,cutoff. */
export function parseSpill(bytes) {
  const rows = csv('spill.csv', bytes, ['district_id', 'product_id', 'leftover', 'candidates', 'winners', 'cutoff'],
    [isIdent, isIdent, isCount, isCount, isCount, isCutoff]);
  for (const r of rows) for (const k of ['leftover', 'candidates', 'winners']) r[k] = parseDecimal(r[k]);
  return rows;
}

/** The seed text of SPEC §6 for a seal id and draw.txt's reveals and material. */
export function seedText(sealId, reveals, material) {
  return ['maskdraw-seed-v1', `seal:${sealId}`, ...reveals.map((r) => `reveal:${r.party}:${r.secret}`), `material:${material}`]
    .map((l) => `${l}\n`).join('');
}
