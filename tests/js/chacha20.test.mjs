// The page's ChaCha20 against RFC 8439's vectors, OpenSSL's ChaCha20 (Node's crypto) and the
// rolls of the shared vector day v1-small (rolls.csv).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';

import { block, chachaBlock, rfc8439Block, roll, rollHex, POOL_ROLL, SPILL_ROLL } from '../../static/js/chacha20.js';
import { fromHex, toHex } from '../../static/js/bytes.js';
import { lines, vectorText } from './vectors.mjs';

const KEY_0_31 = Uint8Array.from({ length: 32 }, (_, i) => i);

test('the block function matches RFC 8439 section 2.3.2', () => {
  // Key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, block count 1.
  const got = rfc8439Block(KEY_0_31, 1, fromHex('000000090000004a00000000'));
  assert.equal(toHex(got),
    '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e'
    + 'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e');
  // SPEC §7: the same state is block 0x0900000000000001 of stream 0x4a000000.
  assert.deepEqual(block(KEY_0_31, 0x0900000000000001n, 0x4a000000n), got);
});

test('the block function matches the five test vectors of RFC 8439 appendix A.1', () => {
  const zero = new Uint8Array(32), n0 = new Uint8Array(12);
  const keyLast1 = new Uint8Array(32); keyLast1[31] = 1;
  const keyFF = new Uint8Array(32); keyFF[1] = 0xff;
  const nonceLast2 = new Uint8Array(12); nonceLast2[11] = 2;
  const vectors = [
    [zero, 0, n0, '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586'],
    [zero, 1, n0, '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f'],
    [keyLast1, 1, n0, '3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0'],
    [keyFF, 2, n0, '72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096'],
    [zero, 0, nonceLast2, 'c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c78a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d'],
  ];
  vectors.forEach(([key, counter, nonce, want], i) => assert.equal(toHex(rfc8439Block(key, counter, nonce)), want, `test vector #${i + 1}`));
});

test('the keystream read through roll matches RFC 8439 section 2.4.2', () => {
  // Key 00..1f, nonce 00:00:00:00:00:00:00:4a:00:00:00:00, initial counter 1: in SPEC §7 terms
  // stream 0x4a000000 from block 1, i.e. u64 words 8, 9, … of that stream.
  const plaintext = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const ciphertext = '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b'
    + 'f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8'
    + '07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736'
    + '5af90bbf74a35be6b40b8eedf2785e42874d';
  const keystream = new Uint8Array(120);
  const view = new DataView(keystream.buffer);
  for (let w = 0; w < 15; w += 1) view.setBigUint64(8 * w, roll(KEY_0_31, 0x4a000000n, 8 + w), true);
  assert.equal(toHex(plaintext.map((p, i) => p ^ keystream[i])), ciphertext);
});

test('rolls agree with OpenSSL ChaCha20 for counters past 2^32 and 64-bit stream ids', () => {
  // OpenSSL's 16-byte IV is words 12–15 little-endian: counter low, counter high, stream low, high.
  const key = fromHex('d090430694ccc2488a1b6f9b3b99639a2f2b3d07d82e0e54b8165055d937e155');
  for (const [counter, stream] of [[0n, 1n], [7n, 2n], [(1n << 32n) + 3n, 1n], [123456789n, 0xfedcba9876543210n]]) {
    const iv = new Uint8Array(16);
    const v = new DataView(iv.buffer);
    v.setBigUint64(0, counter, true);
    v.setBigUint64(8, stream, true);
    const want = createCipheriv('chacha20', key, iv).update(new Uint8Array(64));
    assert.equal(toHex(block(key, counter, stream)), toHex(want), `block ${counter} of stream ${stream}`);
    for (let w = 0; w < 8; w += 1) {
      assert.equal(roll(key, stream, counter * 8n + BigInt(w)), new DataView(want.buffer, want.byteOffset).getBigUint64(8 * w, true));
    }
  }
});

test('every roll of v1-small matches rolls.csv', () => {
  const seed = fromHex(/^seed:([0-9a-f]{64})$/m.exec(vectorText('v1-small', 'draw.txt'))[1]);
  const rows = lines(vectorText('v1-small', 'rolls.csv'));
  assert.equal(rows.length, 40);
  for (const row of rows) {
    const [index, , r1, r2] = row.split(',');
    assert.equal(rollHex(roll(seed, POOL_ROLL, +index)), r1, `roll_1(${index})`);
    assert.equal(rollHex(roll(seed, SPILL_ROLL, +index)), r2, `roll_2(${index})`);
  }
  // SPEC §7's worked values, written out.
  assert.equal(rollHex(roll(seed, 1n, 5)), '9b4c18918a224341');
  assert.equal(rollHex(roll(seed, 2n, 0)), '0df21160076b7b41');
});

test('a key that is not 32 bytes and a negative index are refused', () => {
  assert.throws(() => chachaBlock(new Uint8Array(16), [0, 0, 0, 0]));
  assert.throws(() => roll(new Uint8Array(32), 1n, -1));
  assert.equal(rollHex(5n), '0000000000000005');
});
