// verify.js end to end on real proofs of the shared vector days (fixtures made by
// fixtures/make.sh with `notary proof`, committed), and on tampered inputs, each of which must
// fail exactly the checks it breaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CHECKS, FILES, expectedOutcome, verifyTicket } from '../../static/js/verify.js';
import { bytesOf, fromHex, textOf, toHex } from '../../static/js/bytes.js';
import { parsePools, parseSpill, parseStock } from '../../static/js/formats.js';
import { POOL_ROLL, SPILL_ROLL, roll } from '../../static/js/chacha20.js';
import { lines, proofFixtures, vectorFile, vectorText } from './vectors.mjs';

const DAYS = ['v1-small', 'v1-contested'];
const DATE = { 'v1-small': '2026-11-24', 'v1-contested': /^draw_date:(.*)$/m.exec(vectorText('v1-contested', 'seal.txt'))[1] };

const dayFiles = (day) => Object.fromEntries(FILES.map((f) => [f, vectorFile(day, f)]));

/** Runs verifyTicket on a fixture after `tamper(proof, files)` and returns the checks by outcome. */
async function check(day, ticket, tamper = () => {}) {
  const fixture = proofFixtures(day).find((f) => f.ticket === ticket);
  assert.ok(fixture, `fixture ${day} ${ticket}`);
  const proof = structuredClone(fixture.proof);
  const files = dayFiles(day);
  const args = { ticketId: ticket, date: DATE[day], proof, files };
  await tamper(proof, files, args);
  const out = await verifyTicket(args);
  assert.deepEqual(out.results.map((r) => r.check), CHECKS);
  for (const r of out.results) assert.ok(r.why && r.why.zh && r.why.en, `${r.check} says why in both languages`);
  const by = (ok) => out.results.filter((r) => r.ok === ok).map((r) => r.check);
  return { ...out, failed: by(false), unchecked: by(null), why: Object.fromEntries(out.results.map((r) => [r.check, r.why.en])) };
}

// RFC 8032 §7.1 TEST 1's secret key signs the vector days, so a test can sign tampered files the
// way a dishonest authority would: the signature checks then pass and the others must catch it.
const TEST_KEY_D = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const b64url = (b) => Buffer.from(b).toString('base64url');
async function sign(bytes) {
  const key = await crypto.subtle.importKey('jwk', {
    kty: 'OKP', crv: 'Ed25519', d: b64url(TEST_KEY_D), x: b64url(fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')),
  }, { name: 'Ed25519' }, false, ['sign']);
  return bytesOf(`${toHex(new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key, bytes)))}\n`);
}
const edit = (bytes, from, to) => {
  const text = textOf(bytes);
  assert.ok(text.match(from), `${from} is in the file`);
  return bytesOf(text.replace(from, to));
};

test('every entrant of both vector days has the outcome its rolls and the published cutoffs give', () => {
  for (const day of DAYS) {
    const seed = fromHex(/^seed:(.*)$/m.exec(vectorText(day, 'draw.txt'))[1]);
    const stock = parseStock(vectorFile(day, 'stock.csv'));
    const pools = parsePools(vectorFile(day, 'pools.csv'));
    const spills = parseSpill(vectorFile(day, 'spill.csv'));
    const won = new Map(lines(vectorText(day, 'result.csv')).map((l) => l.split(',')).map(([t, , , r]) => [t, +r]));
    let winners = 0;
    lines(vectorText(day, 'entrants.csv')).forEach((line, i) => {
      const [ticket, ph, pr, flex] = line.split(',');
      const district = stock.find((s) => s.pharmacy_id === ph).district_id;
      const got = expectedOutcome({
        flexible: flex === '1', roll1: roll(seed, POOL_ROLL, i), roll2: roll(seed, SPILL_ROLL, i),
        pool: pools.find((p) => p.pharmacy_id === ph && p.product_id === pr),
        spill: spills.find((s) => s.district_id === district && s.product_id === pr) || null,
      });
      assert.equal(got.won, won.has(ticket), `${day} entrant ${i}: ${got.why.en}`);
      if (got.won) { assert.equal(got.roll, won.get(ticket), `${day} entrant ${i}`); winners += 1; }
    });
    assert.equal(winners, won.size, day);
  }
});

test('real proofs of winners and losers of both days pass every check with the notary values', async () => {
  let n = 0;
  for (const day of DAYS) {
    for (const { ticket, proof } of proofFixtures(day)) {
      const out = await check(day, ticket);
      assert.deepEqual(out.failed, [], `${day} ${ticket}: ${JSON.stringify(out.why)}`);
      assert.deepEqual(out.unchecked, [], `${day} ${ticket}`);
      assert.equal(out.passed, true);
      const f = out.facts;
      assert.equal(f.expected.won, proof.won);
      assert.equal(f.expected.roll, proof.won_roll ?? null);
      assert.equal(f.roll1, proof.roll_1);
      assert.equal(f.roll2, proof.flexible ? proof.roll_2 : null);
      assert.equal(f.seed, proof.seed);
      assert.equal(f.sealId, proof.seal_id);
      assert.equal(f.leafHash, proof.leaf_hash);
      assert.equal(f.districtId, proof.district_id);
      assert.equal(f.poolCutoff, proof.pool_cutoff);
      n += 1;
    }
  }
  assert.equal(n, 10);
});

const WINNER = '01KATHGYP512DYGGMSFPMZAC3W'; // v1-small entrant 34: roll one, under PH0000 SURG's cutoff
const LOSER = '01KARDDP43F7E85A672838S3WG'; // v1-small entrant 4: same pool, lost, not flexible
const SPILLED = '01KASPYX59EJZWF7H3V98A4AGV'; // v1-small entrant 22: roll two from a pool with 0 packs

test('the outcome explains the roll against the cutoff in plain words', async () => {
  assert.match((await check('v1-small', WINNER)).why.outcome, /roll one 7e6909115a8d3139 ≤ the pharmacy's cutoff 7e6909115a8d3139: it had to win; the server's result \(won \(roll 1, at PH0000\)\) agrees/);
  assert.match((await check('v1-small', LOSER)).why.outcome, /roll one 87a687ab[0-9a-f]{8} > the pharmacy's cutoff 7e6909115a8d3139; not flexible, so no roll two: it had to lose; the server's result \(lost\) agrees/);
  assert.match((await check('v1-small', SPILLED)).why.outcome, /the pharmacy had no packs that day; roll two [0-9a-f]{16} ≤ the district's cutoff cdd853bf39cbba71: it had to win/);
});

test('a changed audit path hash fails the inclusion check alone', async () => {
  const out = await check('v1-small', WINNER, (p) => { p.audit_path[2] = p.audit_path[2].replace(/^./, (c) => (c === '0' ? '1' : '0')); });
  assert.deepEqual(out.failed, ['inclusion']);
  assert.match(out.why.inclusion, /does not prove you were in the sealed list/);
});

test('a leaf line with another pharmacy or flexibility fails the inclusion check', async () => {
  const out = await check('v1-small', LOSER, (p) => { p.leaf = p.leaf.replace(',SURG,0,', ',SURG,1,'); });
  assert.ok(out.failed.includes('inclusion'), JSON.stringify(out.why));
  const moved = await check('v1-small', LOSER, (p) => { p.leaf = p.leaf.replace('PH0000', 'PH0001'); });
  assert.ok(moved.failed.includes('inclusion'));
});

test('another leaf index fails the inclusion check and a wrong tree size the leaf check', async () => {
  const out = await check('v1-small', WINNER, (p) => { p.leaf_index += 1; });
  assert.ok(out.failed.includes('inclusion'), JSON.stringify(out.why));
  const size = await check('v1-small', WINNER, (p) => { p.tree_size += 1; });
  assert.ok(size.failed.includes('leaf'));
  assert.match(size.why.leaf, /the proof says 41 entrants; the seal says 40/);
});

test('a proof of another ticket fails the leaf check', async () => {
  const out = await check('v1-small', WINNER, (_p, _f, args) => { args.ticketId = LOSER; });
  assert.ok(out.failed.includes('leaf'));
  assert.match(out.why.leaf, new RegExp(`the leaf line is ticket ${WINNER}, not ${LOSER}`));
});

test('a roll the server states wrongly fails the rolls check and the outcome still uses the computed roll', async () => {
  const out = await check('v1-small', LOSER, (p) => { p.roll_1 = '0000000000000001'; });
  assert.deepEqual(out.failed, ['rolls']);
  assert.match(out.why.rolls, /roll_1 0000000000000001 ≠ 87a687ab/);
  assert.equal(out.facts.expected.won, false);
});

test('a flipped result fails the outcome check', async () => {
  const lost = await check('v1-small', WINNER, (p) => { p.won = false; p.won_roll = null; p.won_at = null; });
  assert.deepEqual(lost.failed, ['outcome']);
  assert.match(lost.why.outcome, /it had to win, but the server says lost/);
  const won = await check('v1-small', LOSER, (p) => { p.won = true; p.won_roll = 1; p.won_at = 'PH0000'; });
  assert.deepEqual(won.failed, ['outcome']);
  const roll2 = await check('v1-small', WINNER, (p) => { p.won_roll = 2; });
  assert.deepEqual(roll2.failed, ['outcome']);
  const elsewhere = await check('v1-small', WINNER, (p) => { p.won_at = 'PH0004'; });
  assert.deepEqual(elsewhere.failed, ['outcome']);
  assert.match(elsewhere.why.outcome, /pickup pharmacy PH0004 is impossible/);
});

test('a cutoff the server states wrongly, or a changed pools.csv or spill.csv, fails the cutoffs check', async () => {
  const stated = await check('v1-small', LOSER, (p) => { p.pool_cutoff = 'ffffffffffffffff'; });
  assert.deepEqual(stated.failed, ['cutoffs']);
  assert.deepEqual(stated.unchecked, ['outcome']);
  const pools = await check('v1-small', LOSER, (_p, f) => { f['pools.csv'] = edit(f['pools.csv'], 'PH0000,SURG,4,1,1,7e6909115a8d3139', 'PH0000,SURG,4,1,1,ffffffffffffffff'); });
  assert.deepEqual(pools.failed, ['cutoffs']);
  assert.deepEqual(pools.unchecked, ['outcome']);
  assert.match(pools.why.cutoffs, /pools\.csv hashes to .*, draw\.txt says .*: the cutoffs were changed/);
  const spill = await check('v1-small', SPILLED, (_p, f) => { f['spill.csv'] = edit(f['spill.csv'], 'cdd853bf39cbba71', '0000000000000000'); });
  assert.deepEqual(spill.failed, ['cutoffs']);
});

test('a cutoff changed and re-signed by the authority still fails: the server result disagrees', async () => {
  // A dishonest authority that moves the cutoff must sign a new draw.txt; then the loser's roll
  // is under the cutoff and the recorded result (lost) is caught by the outcome check.
  const out = await check('v1-small', LOSER, async (p, f) => {
    p.pool_cutoff = 'ffffffffffffffff';
    f['pools.csv'] = edit(f['pools.csv'], 'PH0000,SURG,4,1,1,7e6909115a8d3139', 'PH0000,SURG,4,1,1,ffffffffffffffff');
    const { sha256Hex } = await import('../../static/js/bytes.js');
    f['draw.txt'] = edit(f['draw.txt'], /pools_sha256:.*/, `pools_sha256:${await sha256Hex(f['pools.csv'])}`);
    f['draw.sig'] = await sign(f['draw.txt']);
  });
  assert.deepEqual(out.failed, ['outcome']);
  assert.match(out.why.outcome, /it had to win, but the server says lost/);
});

test('a bad signature fails its signature check alone, and another key fails both', async () => {
  const seal = await check('v1-small', WINNER, (_p, f) => { f['seal.sig'] = edit(f['seal.sig'], /^./, (c) => (c === '0' ? '1' : '0')); });
  assert.deepEqual(seal.failed, ['seal_signature']);
  assert.match(seal.why.seal_signature, /seal\.sig is not the authority's signature of seal\.txt/);
  const draw = await check('v1-small', WINNER, (_p, f) => { f['draw.sig'] = edit(f['draw.sig'], /^./, (c) => (c === '0' ? '1' : '0')); });
  assert.deepEqual(draw.failed, ['draw_signature']);
  const key = await check('v1-small', WINNER, (_p, f) => { f['authority.pub'] = bytesOf(`${'3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'}\n`); });
  assert.deepEqual(key.failed, ['seal_signature', 'draw_signature']);
  const junk = await check('v1-small', WINNER, (_p, f) => { f['authority.pub'] = bytesOf('not a key\n'); });
  assert.deepEqual(junk.failed, ['key']);
  assert.deepEqual(junk.unchecked, ['seal_signature', 'draw_signature']);
});

test('a changed seal.txt fails its signature, and the draw and seed no longer point to it', async () => {
  const out = await check('v1-small', WINNER, (_p, f) => { f['seal.txt'] = edit(f['seal.txt'], 'cutoff:2026-11-23T14:00:00Z', 'cutoff:2026-11-23T16:00:00Z'); });
  assert.deepEqual(out.failed, ['seal_signature', 'draw_text', 'seed']);
  assert.deepEqual(out.unchecked, ['rolls', 'outcome']);
  assert.match(out.why.draw_text, /the draw was not made on this list/);
  // Re-signed, it still is not the seal the draw names.
  const resigned = await check('v1-small', WINNER, async (_p, f) => {
    f['seal.txt'] = edit(f['seal.txt'], 'cutoff:2026-11-23T14:00:00Z', 'cutoff:2026-11-23T16:00:00Z');
    f['seal.sig'] = await sign(f['seal.txt']);
  });
  assert.deepEqual(resigned.failed, ['draw_text', 'seed']);
});

test('a reveal that does not match its commitment fails the reveals check even when signed', async () => {
  const out = await check('v1-small', WINNER, async (_p, f) => {
    f['draw.txt'] = edit(f['draw.txt'], /reveal:officials:[0-9a-f]+/, `reveal:officials:${'00'.repeat(32)}`);
    f['draw.sig'] = await sign(f['draw.txt']);
  });
  assert.deepEqual(out.failed, ['reveals', 'seed']);
  assert.deepEqual(out.unchecked, ['rolls', 'outcome']);
  assert.match(out.why.reveals, /the secret officials revealed does not hash to what they committed/);
});

test('a seed line that is not the hash of the seed text fails the seed check even when signed', async () => {
  const out = await check('v1-small', WINNER, async (_p, f) => {
    f['draw.txt'] = edit(f['draw.txt'], /seed:[0-9a-f]+/, `seed:${'ab'.repeat(32)}`);
    f['draw.sig'] = await sign(f['draw.txt']);
  });
  assert.deepEqual(out.failed, ['seed']);
  // Rolls from an unproven seed prove nothing: they are not checked, and the seed shown is the
  // one computed here.
  assert.deepEqual(out.unchecked, ['rolls', 'outcome']);
  assert.equal(out.facts.seed, 'd090430694ccc2488a1b6f9b3b99639a2f2b3d07d82e0e54b8165055d937e155');
});

test('a changed stock.csv fails the stock check', async () => {
  const out = await check('v1-small', WINNER, (_p, f) => { f['stock.csv'] = edit(f['stock.csv'], 'PH0000,D00,SURG,1', 'PH0000,D00,SURG,3'); });
  assert.ok(out.failed.includes('stock'), JSON.stringify(out.why));
  assert.match(out.why.stock, /the stock list was changed/);
});

test('the wrong date, a missing file and a missing proof are reported, not thrown', async () => {
  const date = await check('v1-small', WINNER, (_p, _f, args) => { args.date = '2026-11-25'; });
  assert.ok(date.failed.includes('seal_text'));
  assert.match(date.why.seal_text, /seals the draw of 2026-11-24, not 2026-11-25/);
  const missing = await check('v1-small', WINNER, (_p, f) => { f['pools.csv'] = { error: 'HTTP 404' }; });
  assert.deepEqual(missing.failed, ['cutoffs']);
  assert.match(missing.why.cutoffs, /pools\.csv could not be downloaded \(HTTP 404\)/);
  const none = await check('v1-small', WINNER, (_p, _f, args) => { args.proof = null; });
  assert.deepEqual(none.failed, []);
  assert.deepEqual(none.unchecked, ['leaf', 'inclusion', 'stock', 'cutoffs', 'rolls', 'outcome']);
  assert.equal(none.passed, false);
});

test('expectedOutcome covers every way a pools and spill row can decide, and refuses a contradiction', () => {
  const pool = (entrants, packs, cutoff) => ({ entrants, packs, winners: 0n, cutoff });
  const spill = (cutoff) => ({ leftover: 5n, candidates: 3n, winners: 3n, cutoff });
  const r = { roll1: 0x8000000000000000n, roll2: 0x1000000000000000n };
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: false, pool: pool(3n, 3n, '-'), spill: null })), [true, 1]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: false, pool: pool(3n, 0n, '-'), spill: null })), [false, null]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: true, pool: pool(3n, 0n, '-'), spill: null })), [false, null]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: true, pool: pool(3n, 0n, '-'), spill: spill('-') })), [false, null]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: true, pool: pool(3n, 0n, '-'), spill: spill('1000000000000000') })), [true, 2]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: true, pool: pool(3n, 0n, '-'), spill: spill('0fffffffffffffff') })), [false, null]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: false, pool: pool(9n, 2n, '8000000000000000'), spill: null })), [true, 1]);
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: false, pool: pool(9n, 2n, '7fffffffffffffff'), spill: null })), [false, null]);
  // A flexible ticket that won roll one never needs roll two.
  assert.deepEqual(pick(expectedOutcome({ ...r, flexible: true, pool: pool(9n, 2n, '8000000000000000'), spill: spill('-') })), [true, 1]);
  assert.throws(() => expectedOutcome({ ...r, flexible: false, pool: pool(9n, 2n, '-'), spill: null }), /contradicts itself/);
});

function pick(o) { return [o.won, o.roll]; }
