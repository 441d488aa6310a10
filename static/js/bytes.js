// Bytes, hex and the two primitives the page takes from WebCrypto (SHA-256 and Ed25519).
// Works the same in a browser and in Node 20 (globalThis.crypto.subtle).

const utf8 = new TextEncoder();

/** The UTF-8 bytes of a string. */
export const bytesOf = (text) => utf8.encode(text);

/** Strict UTF-8 decoding: a file that is not UTF-8 is refused, not patched with U+FFFD. */
export function textOf(bytes) {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

/** Lowercase hex of some bytes. */
export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Bytes of a lowercase hex string (as every file of the format writes it); throws on anything else. */
export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) {
    throw new Error(`not lowercase hex: ${String(hex).slice(0, 80)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** a ‖ b ‖ … */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** SHA-256 (FIPS 180-4) by WebCrypto: 32 bytes. */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/** SHA-256 as lowercase hex. */
export async function sha256Hex(bytes) {
  return toHex(await sha256(bytes));
}

/**
 * Pure Ed25519 (RFC 8032) by WebCrypto: does `signature` (64 bytes) verify over `message`
 * under the 32-byte public key? False, never an exception, for a key or signature that is not
 * even well-formed. WebCrypto refuses a non-canonical S like ed25519-dalek's verify_strict; it
 * does not refuse small-order keys, which only matters for a key nobody should pin (the page
 * shows the key so that a person can compare it with the one the authority publishes).
 */
export async function verifyEd25519(publicKey, signature, message) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch (_) {
    return false;
  }
}
