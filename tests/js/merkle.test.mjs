// The page's RFC 6962 code against certificate-transparency's test tree (the values quoted in
// lottery/SPEC.md §4 and lottery/tests/known_answer.rs) and the shared vector days.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { auditPath, leafHash, rootFromInclusion, rootOfLeafHashes } from '../../static/js/merkle.js';
import { bytesOf, fromHex, toHex } from '../../static/js/bytes.js';
import { lines, vectorText } from './vectors.mjs';

// certificate-transparency's merkle_tree_test.cc leaves, as in transparency-dev/merkle
// proof/verify_test.go and lottery/tests/known_answer.rs (CT_LEAVES, CT_ROOTS, CT_PATHS).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// transparency-dev/merkle proof/verify_test.go inclusionProofs: (1-based leaf, size, path).
const CT_PATHS = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [2, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

const ctLeaves = () => Promise.all(CT_LEAVES.map((l) => leafHash(fromHex(l))));

test('the empty tree head is SHA-256 of nothing', async () => {
  assert.equal(toHex(await rootOfLeafHashes([])), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('tree heads match the certificate transparency roots for sizes 1 to 8', async () => {
  const leaves = await ctLeaves();
  for (let n = 1; n <= 8; n += 1) assert.equal(toHex(await rootOfLeafHashes(leaves.slice(0, n))), CT_ROOTS[n - 1], `size ${n}`);
});

test('audit paths match the published inclusion proofs and lead to the roots', async () => {
  const leaves = await ctLeaves();
  for (const [leaf, size, want] of CT_PATHS) {
    const path = await auditPath(leaves.slice(0, size), leaf - 1);
    assert.deepEqual(path.map(toHex), want, `leaf ${leaf} of ${size}`);
    const root = await rootFromInclusion(leaf - 1, size, leaves[leaf - 1], want.map(fromHex));
    assert.equal(toHex(root), CT_ROOTS[size - 1]);
  }
  // A one-leaf tree: an empty path, the root is the leaf hash.
  assert.equal(toHex(await rootFromInclusion(0, 1, leaves[0], [])), CT_ROOTS[0]);
});

test('every leaf of trees of 1 to 20 leaves verifies and a changed path hash does not', async () => {
  const leaves = await Promise.all(Array.from({ length: 20 }, (_, i) => leafHash(bytesOf(`leaf ${i}`))));
  for (let n = 1; n <= 20; n += 1) {
    const root = toHex(await rootOfLeafHashes(leaves.slice(0, n)));
    for (let m = 0; m < n; m += 1) {
      const path = await auditPath(leaves.slice(0, n), m);
      assert.equal(toHex(await rootFromInclusion(m, n, leaves[m], path)), root, `leaf ${m} of ${n}`);
      if (path.length) {
        const bad = path.map((h) => h.slice());
        bad[path.length - 1][0] ^= 1;
        assert.notEqual(toHex(await rootFromInclusion(m, n, leaves[m], bad)), root);
      }
    }
  }
});

test('a wrong index, size or path length is refused with the reason', async () => {
  const leaves = await ctLeaves();
  const path = await auditPath(leaves, 5);
  await assert.rejects(rootFromInclusion(8, 8, leaves[5], path), /not inside a tree of 8/);
  await assert.rejects(rootFromInclusion(5, 8, leaves[5], path.slice(1)), /has 2 hashes; a leaf 5 of 8 needs 3/);
  await assert.rejects(rootFromInclusion(-1, 8, leaves[5], path), /not inside/);
  // The same hashes at the wrong index lead elsewhere.
  assert.notEqual(toHex(await rootFromInclusion(4, 8, leaves[5], path)), CT_ROOTS[7]);
});

test('the worked audit path of v1-small entrant 5 (proof-5.txt) leads to entrants_root', async () => {
  const text = lines(vectorText('v1-small', 'proof-5.txt'));
  const field = (k) => text.find((l) => l.startsWith(`${k}:`)).slice(k.length + 1);
  const audit = text.filter((l) => l.startsWith('audit:')).map((l) => l.slice('audit:'.length));
  assert.equal(audit.length, 6);
  const line = lines(vectorText('v1-small', 'entrants.csv'))[5];
  const leaf = await leafHash(bytesOf(line));
  assert.equal(toHex(leaf), field('leaf_hash'));
  assert.equal(toHex(leaf), '1124eb3a67335efeeaa245a78680dbcd97259d4041759e1d98baf7f50a0b8ed6');
  const root = await rootFromInclusion(5, 40, leaf, audit.map(fromHex));
  assert.equal(toHex(root), field('root'));
  assert.match(vectorText('v1-small', 'seal.txt'), new RegExp(`^entrants_root:${toHex(root)}$`, 'm'));
  const all = await Promise.all(lines(vectorText('v1-small', 'entrants.csv')).map((l) => leafHash(bytesOf(l))));
  assert.deepEqual((await auditPath(all, 5)).map(toHex), audit);
});

test('the entrants_root of both vector days is the tree head of their entrants.csv', async () => {
  for (const day of ['v1-small', 'v1-contested']) {
    const all = await Promise.all(lines(vectorText(day, 'entrants.csv')).map((l) => leafHash(bytesOf(l))));
    const want = /^entrants_root:([0-9a-f]{64})$/m.exec(vectorText(day, 'seal.txt'))[1];
    assert.equal(toHex(await rootOfLeafHashes(all)), want, day);
  }
});
