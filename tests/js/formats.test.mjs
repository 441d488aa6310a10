// The page's parsers, seed and signature checks against the shared vector days, and the rules
// of lottery/SPEC.md §1–§9 on inputs that break them.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { bytesOf, fromHex, sha256, sha256Hex, toHex, verifyEd25519 } from '../../static/js/bytes.js';
import { isDate, isTimestamp, parseDecimal, parseDraw, parseEntrant, parsePools, parseSeal, parseSpill, parseStock, seedText } from '../../static/js/formats.js';
import { lines, vectorFile, vectorText } from './vectors.mjs';

const DAYS = ['v1-small', 'v1-contested'];

test('both vector days parse and their seal ids are what draw.txt names', async () => {
  for (const day of DAYS) {
    const seal = parseSeal(vectorFile(day, 'seal.txt'));
    const draw = parseDraw(vectorFile(day, 'draw.txt'));
    assert.equal(draw.seal, await sha256Hex(vectorFile(day, 'seal.txt')), day);
    assert.equal(seal.stockSha256, await sha256Hex(vectorFile(day, 'stock.csv')), day);
    assert.equal(draw.poolsSha256, await sha256Hex(vectorFile(day, 'pools.csv')), day);
    assert.equal(draw.spillSha256, await sha256Hex(vectorFile(day, 'spill.csv')), day);
    assert.equal(BigInt(lines(vectorText(day, 'entrants.csv')).length), seal.entrants);
    assert.equal(parsePools(vectorFile(day, 'pools.csv')).length, parseStock(vectorFile(day, 'stock.csv')).length);
    parseSpill(vectorFile(day, 'spill.csv'));
    for (const l of lines(vectorText(day, 'entrants.csv'))) parseEntrant(l);
  }
  const small = parseSeal(vectorFile('v1-small', 'seal.txt'));
  assert.deepEqual(small.commits.map((c) => c.party), ['notary', 'officials']);
  assert.equal(small.drawDate, '2026-11-24');
  assert.equal(await sha256Hex(vectorFile('v1-small', 'seal.txt')), 'ffaa56be51fb07fbda974baf50d0e1b3ddaa153b17972c7dc03d7861b0fa6dae');
});

test('the v1-small seed text and seed are reproduced from seal.txt and draw.txt', async () => {
  const draw = parseDraw(vectorFile('v1-small', 'draw.txt'));
  const text = seedText(await sha256Hex(vectorFile('v1-small', 'seal.txt')), draw.reveals, draw.material);
  assert.equal(text, vectorText('v1-small', 'seed.txt'));
  assert.equal(toHex(await sha256(bytesOf(text))), 'd090430694ccc2488a1b6f9b3b99639a2f2b3d07d82e0e54b8165055d937e155');
  for (const day of DAYS) {
    const d = parseDraw(vectorFile(day, 'draw.txt'));
    const seal = parseSeal(vectorFile(day, 'seal.txt'));
    assert.equal(toHex(await sha256(bytesOf(seedText(d.seal, d.reveals, d.material)))), d.seed, day);
    for (const [i, r] of d.reveals.entries()) assert.equal(toHex(await sha256(fromHex(r.secret))), seal.commits[i].digest);
  }
});

test('both signatures of both days verify under authority.pub and a changed byte does not', async () => {
  for (const day of DAYS) {
    const key = fromHex(vectorText(day, 'authority.pub').trim());
    assert.equal(toHex(key), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'); // RFC 8032 test key 1
    for (const f of ['seal', 'draw']) {
      const msg = vectorFile(day, `${f}.txt`);
      const sig = fromHex(vectorText(day, `${f}.sig`).trim());
      assert.equal(await verifyEd25519(key, sig, msg), true, `${day} ${f}.sig`);
      const changed = msg.slice();
      changed[changed.length - 2] ^= 1;
      assert.equal(await verifyEd25519(key, sig, changed), false);
      const badSig = sig.slice();
      badSig[0] ^= 1;
      assert.equal(await verifyEd25519(key, badSig, msg), false);
    }
  }
  // RFC 8032 §7.1 TEST 1: the empty message.
  assert.equal(await verifyEd25519(fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'),
    fromHex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'),
    new Uint8Array(0)), true);
  assert.equal(await verifyEd25519(new Uint8Array(31), new Uint8Array(64), new Uint8Array(0)), false);
});

const seal = vectorText('v1-small', 'seal.txt');
const draw = vectorText('v1-small', 'draw.txt');
const broken = (text, from, to) => bytesOf(text.replace(from, to));

test('seal.txt breaking the format is refused with its line', () => {
  assert.throws(() => parseSeal(bytesOf(seal.slice(0, -1))), /line 9: missing final LF/);
  assert.throws(() => parseSeal(broken(seal, 'draw_date:2026-11-24', 'draw_date:2026-02-29')), /line 2: draw_date is not a YYYY-MM-DD date/);
  assert.throws(() => parseSeal(broken(seal, 'cutoff:2026-11-23T14', 'cutoff:2026-11-23T24')), /line 3/);
  assert.throws(() => parseSeal(broken(seal, 'entrants:40', 'entrants:040')), /line 4: entrants/);
  assert.throws(() => parseSeal(broken(seal, 'commit:officials', 'commit:notary')), /line 9: party commits twice/);
  assert.throws(() => parseSeal(broken(seal, 'previous:-\n', 'previous:-\r\n')), /CR/);
  assert.throws(() => parseSeal(bytesOf(`${seal}extra\n`)), /line 10: unexpected line/);
  assert.throws(() => parseSeal(broken(seal, 'maskdraw-seal-v1', 'maskdraw-seal-v2')), /line 1: want maskdraw-seal-v1/);
  assert.throws(() => parseSeal(Uint8Array.of(0xff, 0x0a)), /not UTF-8/);
});

test('draw.txt breaking the format is refused with its line', () => {
  assert.throws(() => parseDraw(broken(draw, 'material:3 1 4', 'material: 3 1 4')), /line 10: material/);
  assert.throws(() => parseDraw(broken(draw, /reveal:notary:[0-9a-f]+/, `reveal:notary:${'ab'.repeat(15)}`)), /line 8: secret/);
  assert.throws(() => parseDraw(broken(draw, 'reveal:notary:6bc5', 'reveal:notary:6BC5')), /secret is not lowercase hex/);
  assert.throws(() => parseDraw(broken(draw, 'winners:37', 'winners:-37')), /line 4/);
  assert.throws(() => parseDraw(broken(draw, 'material:3 1 4', 'material:3\u00851 4')), /material/);
  assert.equal(parseDraw(broken(draw, 'material:3 1 4 1 5 9 2 6 case 2026', 'material:骰子 3 1 4')).material, '骰子 3 1 4');
});

test('stock, pools, spill and entrant lines breaking the format are refused', () => {
  assert.throws(() => parseStock(bytesOf('PH0001,D00,KN95,1\nPH0000,D00,KN95,1\n')), /line 2: not strictly ascending/);
  assert.throws(() => parseStock(bytesOf('PH0000,D00,KN95,1\nPH0000,D00,KN95,1\n')), /line 2: not strictly ascending/);
  assert.throws(() => parseStock(bytesOf('PH0000,D00,KN95,1\nPH0000,D01,SURG,1\n')), /line 2: pharmacy PH0000 is in two districts/);
  assert.throws(() => parseStock(bytesOf('PH0000,D00,KN95,01\n')), /line 1: packs/);
  assert.deepEqual(parseStock(new Uint8Array(0)), []);
  assert.throws(() => parsePools(bytesOf('PH0000,KN95,2,2,2,7E6909115A8D3139\n')), /cutoff/);
  assert.throws(() => parseSpill(bytesOf('D00,KN95,224,3,3\n')), /want district_id/);
  assert.throws(() => parseEntrant('81KARDKCX650GXHDPXBDD1JSYG,PH0001,SURG,1,92845daeafe987c18fdf66145a091fd6'), /ULID/);
  assert.throws(() => parseEntrant('01KARDKCX650GXHDPXBDD1JSYG,PH0001,SURG,2,92845daeafe987c18fdf66145a091fd6'), /flexible/);
  assert.throws(() => parseEntrant('01KARDKCX650GXHDPXBDD1JSYG,ph0001,SURG,1,92845daeafe987c18fdf66145a091fd6'), /pharmacy_id/);
});

test('decimals, dates and times follow SPEC section 1 and 5', () => {
  assert.equal(parseDecimal('18446744073709551615'), 18446744073709551615n);
  assert.equal(parseDecimal('18446744073709551616'), null);
  assert.equal(parseDecimal('0'), 0n);
  assert.equal(parseDecimal('00'), null);
  assert.equal(isDate('2024-02-29'), true);
  assert.equal(isDate('2100-02-29'), false);
  assert.equal(isDate('2026-04-31'), false);
  assert.equal(isTimestamp('2026-11-23T23:59:59Z'), true);
  assert.equal(isTimestamp('2026-11-23T23:59:60Z'), false);
});
