// The ChaCha20 block function of RFC 8439 §2.3 and the rolls of lottery/SPEC.md §7.
// WebCrypto has no ChaCha20, so it is written here (about forty lines), with the RFC's test
// vectors beside it in tests/js/chacha20.test.mjs.
//
// SPEC §7 uses the state with a 64-bit block counter in words 12 (low) and 13 (high) and a
// 64-bit stream id in words 14 (low) and 15 (high): rand_chacha 0.3's ChaCha20Rng::from_seed
// + set_stream, DJB's original layout. The RFC's 32-bit counter and 96-bit nonce fill the same
// four words, so one core serves both.

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"
const MASK64 = (1n << 64n) - 1n;

const rotl = (x, n) => ((x << n) | (x >>> (32 - n))) >>> 0;

function quarterRound(s, a, b, c, d) {
  s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 16);
  s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 12);
  s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 8);
  s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 7);
}

const le32 = (bytes, at) => (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;

/** The 64-byte block for a 32-byte key and state words 12–15 (RFC 8439 §2.3). */
export function chachaBlock(key, words12to15) {
  if (key.length !== 32) throw new Error('a ChaCha20 key has 32 bytes');
  const init = new Uint32Array(16);
  init.set(SIGMA, 0);
  for (let i = 0; i < 8; i += 1) init[4 + i] = le32(key, 4 * i);
  init.set(words12to15, 12);
  const s = init.slice();
  for (let round = 0; round < 10; round += 1) { // 20 rounds: 10 × (column round + diagonal round)
    quarterRound(s, 0, 4, 8, 12); quarterRound(s, 1, 5, 9, 13);
    quarterRound(s, 2, 6, 10, 14); quarterRound(s, 3, 7, 11, 15);
    quarterRound(s, 0, 5, 10, 15); quarterRound(s, 1, 6, 11, 12);
    quarterRound(s, 2, 7, 8, 13); quarterRound(s, 3, 4, 9, 14);
  }
  const out = new Uint8Array(64);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 16; i += 1) view.setUint32(4 * i, (s[i] + init[i]) >>> 0, true);
  return out;
}

/** RFC 8439 §2.3: the block for a 32-bit counter and a 12-byte nonce. */
export function rfc8439Block(key, counter, nonce) {
  if (nonce.length !== 12) throw new Error('an RFC 8439 nonce has 12 bytes');
  return chachaBlock(key, [counter >>> 0, le32(nonce, 0), le32(nonce, 4), le32(nonce, 8)]);
}

const lo32 = (v) => Number(v & 0xffffffffn);
const hi32 = (v) => Number((v >> 32n) & 0xffffffffn);

/** SPEC §7: block `counter` (u64) of stream `stream` (u64), both BigInt. */
export function block(key, counter, stream) {
  const c = BigInt(counter) & MASK64, s = BigInt(stream) & MASK64;
  return chachaBlock(key, [lo32(c), hi32(c), lo32(s), hi32(s)]);
}

/**
 * roll_s(i) of SPEC §7 as a BigInt: the little-endian u64 at byte 8·i of stream s's keystream,
 * i.e. word i mod 8 of block ⌊i / 8⌋. Roll one is stream 1, roll two stream 2.
 */
export function roll(seed, stream, index) {
  const i = BigInt(index);
  if (i < 0n || i > MASK64) throw new Error(`roll index ${index} is not a u64`);
  const b = block(seed, i / 8n, stream);
  return new DataView(b.buffer).getBigUint64(Number(i % 8n) * 8, true);
}

/** A roll as SPEC writes it: 16 lowercase hex digits, big-endian. */
export const rollHex = (value) => value.toString(16).padStart(16, '0');

/** Stream ids of SPEC §7. */
export const POOL_ROLL = 1n;
export const SPILL_ROLL = 2n;
