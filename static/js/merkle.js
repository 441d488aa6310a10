// RFC 6962 §2.1 Merkle tree hashes and inclusion proofs (lottery/SPEC.md §4), the same
// functions as lottery/src/merkle.rs. WebCrypto gives SHA-256; the tree is the few lines below.

import { concat, sha256 } from './bytes.js';

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

/** leaf_hash(line) = SHA-256(0x00 ‖ line); `line` is the entrants.csv line without its LF. */
export const leafHash = (line) => sha256(concat(LEAF, line));

/** node(l, r) = SHA-256(0x01 ‖ l ‖ r). */
export const nodeHash = (left, right) => sha256(concat(NODE, left, right));

/** The largest power of two smaller than n (n ≥ 2). */
function splitPoint(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH of a list of leaf hashes (RFC 6962 §2.1); the empty tree is SHA-256 of nothing. */
export async function rootOfLeafHashes(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0];
  const k = splitPoint(leaves.length);
  return nodeHash(await rootOfLeafHashes(leaves.slice(0, k)), await rootOfLeafHashes(leaves.slice(k)));
}

/** PATH(m, D[n]) of RFC 6962 §2.1.1 over leaf hashes, leaf side first. */
export async function auditPath(leaves, m) {
  if (!(Number.isSafeInteger(m) && m >= 0 && m < leaves.length)) throw new Error(`leaf ${m} is not in a tree of ${leaves.length}`);
  if (leaves.length === 1) return [];
  const k = splitPoint(leaves.length);
  return m < k
    ? [...await auditPath(leaves.slice(0, k), m), await rootOfLeafHashes(leaves.slice(k))]
    : [...await auditPath(leaves.slice(k), m - k), await rootOfLeafHashes(leaves.slice(0, k))];
}

/** Number of hashes in the audit path of leaf `index` of a tree of `size`. */
export function pathLength(index, size) {
  let lo = 0, hi = size, n = 0;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index - lo < k) hi = lo + k; else lo += k;
    n += 1;
  }
  return n;
}

/**
 * The root an audit path leads to (RFC 9162 §2.1.3.2), or throws with the reason when the index
 * or the path length cannot be right. Index and size are plain numbers: a day has far fewer than
 * 2^53 entrants, and halving with Math.floor keeps them exact past 2^32.
 */
export async function rootFromInclusion(index, size, leaf, path) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new Error(`leaf index ${index} is not inside a tree of ${size} leaves`);
  }
  const want = pathLength(index, size);
  if (path.length !== want) throw new Error(`the audit path has ${path.length} hashes; a leaf ${index} of ${size} needs ${want}`);
  let f = index, s = size - 1, r = leaf;
  for (const p of path) {
    if (f % 2 === 1 || f === s) {
      r = await nodeHash(p, r);
      while (f % 2 === 0 && f !== 0) { f = Math.floor(f / 2); s = Math.floor(s / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    f = Math.floor(f / 2);
    s = Math.floor(s / 2);
  }
  return r;
}
