// The page's receipt check (static/js/receipt.js) against the known-answer batch of
// lottery/tests/vectors/receipt-v1 (made by make.py there with Python's hashlib and
// `cryptography`, RFC 8032 TEST 3's key), and every tampering it must catch.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { batchHead, parseReceipt, verifyReceipt } from '../../static/js/receipt.js';
import { textOf } from '../../static/js/bytes.js';
import { vectorText } from './vectors.mjs';

// RFC 8032 §7.1 TEST 3's public key, as intake.pub.
const INTAKE_PUB = 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025\n';
const OTHER_PUB = '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\n'; // TEST 2
const receipts = [0, 1, 2].map((i) => vectorText('receipt-v1', `receipt-${i}.txt`));

test('each receipt of the known-answer batch verifies: format, inclusion and signature', async () => {
  for (const [i, text] of receipts.entries()) {
    const r = await verifyReceipt(text, INTAKE_PUB);
    assert.ok(r.ok, JSON.stringify(r.checks));
    assert.deepEqual(r.checks.map((c) => c.name), ['format', 'inclusion', 'signature']);
    assert.equal(parseReceipt(text).index, i);
  }
  const r = await verifyReceipt(receipts[1], INTAKE_PUB);
  assert.equal(r.fields.ticket, '01KARDKCX7ZZZZZZZZZZZZZZZZ');
  assert.equal(r.fields.pharmacy, 'PH0002');
  assert.equal(r.fields.first_draw, '2026-11-21');
});

test('the batch head the page builds is the vector\'s byte for byte', () => {
  const head = vectorText('receipt-v1', 'batch-head.txt');
  const root = /root:([0-9a-f]{64})/.exec(head)[1];
  const bytes = batchHead(3, Uint8Array.from(root.match(/../g).map((h) => parseInt(h, 16))));
  assert.equal(textOf(bytes), head);
});

test('what the person asked for is compared with what the receipt states', async () => {
  const asked = { ticket: '01KARDKCX7ZZZZZZZZZZZZZZZZ', pharmacy: 'PH0002', product: 'KN95', flexible: false };
  assert.ok((await verifyReceipt(receipts[1], INTAKE_PUB, asked)).ok);
  const r = await verifyReceipt(receipts[1], INTAKE_PUB, { ...asked, pharmacy: 'PH0009' });
  assert.equal(r.ok, false);
  const request = r.checks.find((c) => c.name === 'request');
  assert.equal(request.ok, false);
  assert.match(request.why, /pharmacy PH0002 ≠ PH0009/);
});

test('every tampering fails the check that catches it', async () => {
  const failed = async (text, key = INTAKE_PUB) => {
    const r = await verifyReceipt(text, key);
    assert.equal(r.ok, false);
    return r.checks.filter((c) => !c.ok).map((c) => c.name);
  };
  const r1 = receipts[1];
  // A field changed: the leaf is another, so the root is another, so the signature fails.
  assert.deepEqual(await failed(r1.replace('flexible:0', 'flexible:1')), ['signature']);
  assert.deepEqual(await failed(r1.replace('first_draw:2026-11-21', 'first_draw:2026-11-22')), ['signature']);
  // A path hash changed.
  assert.deepEqual(await failed(r1.replace(/path:([0-9a-f])/, (_, c) => `path:${c === '0' ? '1' : '0'}`)), ['signature']);
  // Another leaf index of the same batch.
  assert.deepEqual(await failed(r1.replace('batch:1/3', 'batch:0/3')), ['signature']);
  // A path of the wrong length for its place.
  assert.deepEqual(await failed(r1.replace(/path:[0-9a-f]{64}\n/, '')), ['inclusion']);
  // Another key.
  assert.deepEqual(await failed(r1, OTHER_PUB), ['signature']);
  assert.deepEqual(await failed(r1, 'not a key\n'), ['signature']);
  // Not the format: strict, like the Rust parser.
  for (const bad of [r1.replace('maskdraw-receipt-v1', 'maskdraw-receipt-v2'), r1.slice(0, -1), `${r1}extra\n`,
    r1.replace('pharmacy:PH0002', 'pharmacy:ph0002'), r1.replace('accepted:2026-11-20T08:15:30.002Z', 'accepted:2026-11-20T08:15:30Z'),
    r1.replace('batch:1/3', 'batch:3/3'), r1.replace(/signature:[0-9a-f]+/, 'signature:00')]) {
    assert.deepEqual(await failed(bad), ['format']);
  }
});
