// The intake's signed receipt (lottery/SPEC.md §16, `maskdraw-receipt-v1`), checked in the page
// as lottery/src/receipt.rs checks it: the statement's leaf hash goes up its RFC 6962 audit path
// to the batch's root, and the intake key's Ed25519 signature must verify over the batch head
// built from that root. Nothing the server computed is taken on trust: the page rebuilds the
// statement, the root and the head from the receipt's own lines.

import { bytesOf, fromHex, toHex, verifyEd25519 } from './bytes.js';
import { leafHash, rootFromInclusion } from './merkle.js';

export const RECEIPT_VERSION = 'maskdraw-receipt-v1';
export const BATCH_VERSION = 'maskdraw-receipt-batch-v1';

const TICKET_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
const IDENT_RE = /^[A-Z0-9-]{1,16}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const DECIMAL_RE = /^(0|[1-9]\d{0,9})$/;
const FIELDS = [
  ['ticket', TICKET_RE], ['person', /^[0-9a-f]{32}$/], ['pharmacy', IDENT_RE], ['product', IDENT_RE],
  ['flexible', /^[01]$/], ['accepted', TIME_RE], ['valid_until', TIME_RE], ['first_draw', DATE_RE],
  ['cooldown_days', DECIMAL_RE],
];

/**
 * Parses a receipt file strictly: `{ fields, statement, index, size, path, signature }`, the
 * statement being the exact bytes of its first ten lines. Throws with the line at fault.
 */
export function parseReceipt(text) {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw new Error('a receipt ends with LF');
  const lines = text.slice(0, -1).split('\n');
  const bad = (n, why) => new Error(`receipt line ${n}: ${why}`);
  if (lines[0] !== RECEIPT_VERSION) throw bad(1, `want ${RECEIPT_VERSION}`);
  const fields = {};
  FIELDS.forEach(([key, re], i) => {
    const line = lines[i + 1] ?? '';
    const value = line.startsWith(`${key}:`) ? line.slice(key.length + 1) : null;
    if (value === null || !re.test(value)) throw bad(i + 2, `want ${key}:…`);
    fields[key] = value;
  });
  if (!(fields.accepted < fields.valid_until)) throw bad(8, 'valid_until is not after accepted');
  const batch = /^batch:(0|[1-9]\d{0,15})\/([1-9]\d{0,15})$/.exec(lines[10] ?? '');
  if (!batch) throw bad(11, 'want batch:<index>/<size>');
  const index = Number(batch[1]), size = Number(batch[2]);
  if (!(index < size) || !Number.isSafeInteger(size)) throw bad(11, 'index must be below size');
  const path = [];
  let k = 11;
  while (k < lines.length && lines[k].startsWith('path:')) {
    const h = lines[k].slice(5);
    if (!/^[0-9a-f]{64}$/.test(h)) throw bad(k + 1, 'not 64 lowercase hex');
    path.push(fromHex(h));
    k += 1;
  }
  const sig = /^signature:([0-9a-f]{128})$/.exec(lines[k] ?? '');
  if (!sig) throw bad(k + 1, 'want signature:<128 hex>');
  if (lines.length !== k + 1) throw bad(k + 2, 'unexpected extra line');
  return {
    fields,
    statement: bytesOf(`${lines.slice(0, 10).join('\n')}\n`),
    index,
    size,
    path,
    signature: fromHex(sig[1]),
  };
}

/** The bytes the intake signs for a batch of `size` receipts with this root. */
export const batchHead = (size, root) => bytesOf(`${BATCH_VERSION}\nsize:${size}\nroot:${toHex(root)}\n`);

/** The 32 key bytes of an `intake.pub` file (64 lowercase hex and LF), or throws. */
export function parsePublicKey(text) {
  if (typeof text !== 'string' || !/^[0-9a-f]{64}\n$/.test(text)) throw new Error('intake.pub is not 64 lowercase hex and LF');
  return fromHex(text.slice(0, 64));
}

/**
 * Checks a receipt against the intake's public key file and, when given, what the person asked
 * for (`expect`: { ticket, pharmacy, product, flexible }). Resolves to
 * `{ ok, fields, checks: [{ name, ok, why }] }`: `format`, `inclusion` (the audit path leads to
 * a root), `signature` (the head of that root is signed by the key) and `request` (the receipt
 * states what was asked for). Never throws.
 */
export async function verifyReceipt(text, publicKeyText, expect) {
  const checks = [];
  const done = (fields) => ({ ok: checks.every((c) => c.ok), fields, checks });
  let r;
  try {
    r = parseReceipt(text);
    checks.push({ name: 'format', ok: true, why: `${RECEIPT_VERSION}, leaf ${r.index} of a batch of ${r.size}` });
  } catch (e) {
    checks.push({ name: 'format', ok: false, why: e.message });
    return done(null);
  }
  let root;
  try {
    root = await rootFromInclusion(r.index, r.size, await leafHash(r.statement), r.path);
    checks.push({ name: 'inclusion', ok: true, why: `the statement hashes up its ${r.path.length}-hash path to the batch root ${toHex(root).slice(0, 16)}…` });
  } catch (e) {
    checks.push({ name: 'inclusion', ok: false, why: e.message });
    return done(r.fields);
  }
  let key = null;
  try {
    key = parsePublicKey(publicKeyText);
  } catch (e) {
    checks.push({ name: 'signature', ok: false, why: e.message });
  }
  if (key) {
    const ok = await verifyEd25519(key, r.signature, batchHead(r.size, root));
    checks.push({
      name: 'signature',
      ok,
      why: ok ? `signed by the intake key ${toHex(key).slice(0, 16)}…` : 'the signature is not the intake key\'s over this batch head: the receipt was altered or is not from this intake',
    });
  }
  if (expect) {
    const want = {
      ticket: expect.ticket, pharmacy: expect.pharmacy, product: expect.product,
      flexible: expect.flexible == null ? undefined : (expect.flexible ? '1' : '0'),
    };
    const wrong = Object.entries(want).filter(([k, v]) => v !== undefined && r.fields[k] !== v).map(([k, v]) => `${k} ${r.fields[k]} ≠ ${v}`);
    checks.push({ name: 'request', ok: wrong.length === 0, why: wrong.length ? wrong.join('; ') : 'it states the ticket, pharmacy, product and choice you made' });
  }
  return done(r.fields);
}
