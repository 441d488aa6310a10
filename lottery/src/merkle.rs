//! RFC 6962 §2.1 Merkle tree heads and audit paths over the lines of a file
//! (DESIGN.md, "Sealed snapshot format": leaf hash = SHA-256(0x00 ‖ line),
//! node = SHA-256(0x01 ‖ left ‖ right), split at the largest power of two
//! smaller than n, empty tree = SHA-256 of nothing).
//!
//! Large files are hashed in groups of [`GROUP_LINES`] lines: every complete
//! group is a complete subtree of the RFC 6962 tree (it starts at a multiple of
//! its own size), so groups are hashed in parallel and their roots folded by a
//! [`MerkleStream`] at height [`GROUP_BITS`].

use rayon::prelude::*;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 value.
pub type Hash = [u8; 32];

/// log2 of the number of lines hashed together as one complete subtree.
pub const GROUP_BITS: u32 = 12;
/// Lines per group (4096).
pub const GROUP_LINES: usize = 1 << GROUP_BITS;

/// The RFC 6962 root of the empty tree: SHA-256 of no bytes.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Errors of proof making and checking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The audit path has the wrong number of hashes for its index and size.
    #[error("audit path has {got} hashes, a proof for leaf {index} of {size} needs {want}")]
    PathLength {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
        /// Hashes given.
        got: usize,
        /// Hashes needed.
        want: usize,
    },
    /// The path leads to another root.
    #[error("audit path leads to root {computed}, not {expected}")]
    RootMismatch {
        /// Root computed from the path (hex).
        computed: String,
        /// Root expected (hex).
        expected: String,
    },
}

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn state_to_bytes(state: &[u32; 8]) -> Hash {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// SHA-256(0x01 ‖ left ‖ right): an interior node (RFC 6962 §2.1).
///
/// Written against the compression function because the message is always
/// exactly 65 bytes (two blocks); this avoids the streaming hasher's buffering
/// on the hottest path of the verifier. Tested against `Sha256` below.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut blocks = [GenericArray::from([0u8; 64]), GenericArray::from([0u8; 64])];
    blocks[0][0] = 0x01;
    blocks[0][1..33].copy_from_slice(left);
    blocks[0][33..64].copy_from_slice(&right[..31]);
    blocks[1][0] = right[31];
    blocks[1][1] = 0x80;
    blocks[1][56..64].copy_from_slice(&(65u64 * 8).to_be_bytes());
    let mut state = H0;
    sha2::compress256(&mut state, &blocks);
    state_to_bytes(&state)
}

/// SHA-256(0x00 ‖ line): a leaf (RFC 6962 §2.1); `line` excludes its LF.
#[must_use]
pub fn leaf_hash(line: &[u8]) -> Hash {
    // Lines of a snapshot are short; build the padded message on the stack
    // when it fits in three blocks, else fall back to the streaming hasher.
    let total = 1 + line.len();
    let blocks_needed = (total + 1 + 8).div_ceil(64);
    if blocks_needed > 3 {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(line);
        return h.finalize().into();
    }
    let mut buf = [0u8; 192];
    buf[1..total].copy_from_slice(line);
    buf[total] = 0x80;
    let end = blocks_needed * 64;
    buf[end - 8..end].copy_from_slice(&((total as u64) * 8).to_be_bytes());
    let mut blocks = [
        GenericArray::from([0u8; 64]),
        GenericArray::from([0u8; 64]),
        GenericArray::from([0u8; 64]),
    ];
    for (i, block) in blocks.iter_mut().enumerate().take(blocks_needed) {
        block.copy_from_slice(&buf[i * 64..(i + 1) * 64]);
    }
    let mut state = H0;
    sha2::compress256(&mut state, &blocks[..blocks_needed]);
    state_to_bytes(&state)
}

/// An incremental RFC 6962 tree head: push leaves (or aligned complete
/// subtrees) left to right, read the root at any time. Memory is O(log n).
#[derive(Debug, Clone, Default)]
pub struct MerkleStream {
    /// Complete subtrees, heights strictly decreasing from bottom to top.
    stack: Vec<(u32, Hash)>,
    len: u64,
}

impl MerkleStream {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one leaf: a line without its LF.
    pub fn push(&mut self, line: &[u8]) {
        self.push_leaf_hash(leaf_hash(line));
    }

    /// Appends one leaf given its leaf hash.
    pub fn push_leaf_hash(&mut self, hash: Hash) {
        self.push_subtree_unchecked(0, hash);
    }

    /// Appends a complete subtree of `2^height` leaves given its root.
    ///
    /// # Errors
    /// Refused (returns `false`, nothing changed) when the current size is not
    /// a multiple of `2^height`: such a subtree would not be a subtree of the
    /// RFC 6962 tree.
    pub fn push_subtree(&mut self, height: u32, hash: Hash) -> bool {
        if height >= 64 || self.len % (1u64 << height) != 0 {
            return false;
        }
        self.push_subtree_unchecked(height, hash);
        true
    }

    fn push_subtree_unchecked(&mut self, height: u32, hash: Hash) {
        let original = height;
        let mut height = height;
        let mut hash = hash;
        while let Some(&(top_height, top)) = self.stack.last() {
            if top_height != height {
                break;
            }
            self.stack.pop();
            hash = node_hash(&top, &hash);
            height += 1;
        }
        self.stack.push((height, hash));
        self.len += 1u64 << original;
    }

    /// Number of leaves pushed.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no leaf was pushed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the tree, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.stack.clear();
        self.len = 0;
    }

    /// The RFC 6962 root of the leaves pushed so far.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return EMPTY_ROOT;
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// Root of a complete or partial list of leaf hashes (RFC 6962 MTH), computed
/// in parallel for large inputs.
#[must_use]
pub fn root_of_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            let (l, r) = if n > 1 << 14 {
                rayon::join(
                    || root_of_leaf_hashes(&leaves[..k]),
                    || root_of_leaf_hashes(&leaves[k..]),
                )
            } else {
                (
                    root_of_leaf_hashes(&leaves[..k]),
                    root_of_leaf_hashes(&leaves[k..]),
                )
            };
            node_hash(&l, &r)
        }
    }
}

/// Largest power of two smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root of a group of lines whose count is a power of two, given as the bytes
/// of complete LF-terminated lines.
pub(crate) fn complete_group_root(bytes: &[u8]) -> Hash {
    let mut hashes: Vec<Hash> = memchr_lines(bytes).map(leaf_hash).collect();
    let mut n = hashes.len();
    while n > 1 {
        for i in 0..n / 2 {
            hashes[i] = node_hash(&hashes[2 * i], &hashes[2 * i + 1]);
        }
        n /= 2;
    }
    hashes.first().copied().unwrap_or(EMPTY_ROOT)
}

/// Iterates the lines (without LF) of LF-terminated bytes; a final piece
/// without LF is yielded too when non-empty.
pub(crate) fn memchr_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0usize;
    let mut ends = memchr::memchr_iter(b'\n', bytes);
    std::iter::from_fn(move || {
        if let Some(end) = ends.next() {
            let line = &bytes[start..end];
            start = end + 1;
            Some(line)
        } else if start < bytes.len() {
            let line = &bytes[start..];
            start = bytes.len();
            Some(line)
        } else {
            None
        }
    })
}

/// Byte offsets splitting `bytes` into pieces of [`GROUP_LINES`] complete
/// lines each; the returned `cut` is where the last complete group ends.
pub(crate) fn group_boundaries(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut bounds = vec![0usize];
    let mut count = 0usize;
    for pos in memchr::memchr_iter(b'\n', bytes) {
        count += 1;
        if count == GROUP_LINES {
            bounds.push(pos + 1);
            count = 0;
        }
    }
    let cut = *bounds.last().unwrap_or(&0);
    (bounds, cut)
}

/// The tree head and leaf count over the lines of `bytes` (LF separated; a
/// final line without LF counts as a line), using every core.
#[must_use]
pub fn root_of_lines(bytes: &[u8]) -> (Hash, u64) {
    let (bounds, cut) = group_boundaries(bytes);
    let roots: Vec<Hash> = bounds
        .par_windows(2)
        .map(|w| complete_group_root(&bytes[w[0]..w[1]]))
        .collect();
    let mut stream = MerkleStream::new();
    for r in roots {
        stream.push_subtree_unchecked(GROUP_BITS, r);
    }
    for line in memchr_lines(&bytes[cut..]) {
        stream.push(line);
    }
    let n = stream.len();
    (stream.root(), n)
}

/// The RFC 6962 audit path (PATH(m, D[n]), leaf side first) for leaf `index`
/// of the given leaf hashes.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] when `index >= leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, MerkleError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    path_of(
        index as usize,
        0,
        leaves.len(),
        &mut |a, b| root_of_leaf_hashes(&leaves[a..b]),
        &mut path,
    );
    path.reverse();
    Ok(path)
}

/// The audit path for line `index` of the lines of `bytes`, with the leaf
/// hash and tree size; subtree roots are computed in parallel from the bytes
/// without holding every leaf hash.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] when there are not that many lines.
pub fn inclusion_proof_for_lines(
    bytes: &[u8],
    index: u64,
) -> Result<(Hash, Vec<Hash>, u64), MerkleError> {
    let mut starts: Vec<usize> = vec![0];
    starts.extend(memchr::memchr_iter(b'\n', bytes).map(|p| p + 1));
    if starts.last() == Some(&bytes.len()) {
        starts.pop();
    }
    if bytes.is_empty() {
        starts.clear();
    }
    let size = starts.len() as u64;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    starts.push(bytes.len() + 1);
    let line_bytes = |a: usize, b: usize| -> &[u8] {
        let end = (starts[b]).min(bytes.len());
        &bytes[starts[a]..end]
    };
    // The line without its LF. (The last line's end used to be taken as the file's end, LF
    // included, so the last entrant's leaf hash was wrong and its path never verified.)
    let line = line_bytes(index as usize, index as usize + 1);
    let leaf = leaf_hash(line.strip_suffix(b"\n").unwrap_or(line));
    let mut path = Vec::new();
    path_of(
        index as usize,
        0,
        size as usize,
        &mut |a, b| root_of_lines(line_bytes(a, b)).0,
        &mut path,
    );
    path.reverse();
    Ok((leaf, path, size))
}

/// Pushes PATH(m, D[lo:hi]) root side first (the caller reverses).
fn path_of(
    m: usize,
    lo: usize,
    hi: usize,
    mth: &mut dyn FnMut(usize, usize) -> Hash,
    out: &mut Vec<Hash>,
) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split_point(n as u64) as usize;
    if m - lo < k {
        out.push(mth(lo + k, hi));
        path_of(m, lo, lo + k, mth, out);
    } else {
        out.push(mth(lo, lo + k));
        path_of(m, lo + k, hi, mth, out);
    }
}

/// The root of the given leaf hashes and every leaf's audit path (leaf side first), in
/// `O(n log n)`: each node is hashed once and handed to the paths below its sibling (a batch
/// of receipts needs all of them at once).
#[must_use]
pub fn all_inclusion_proofs(leaves: &[Hash]) -> (Hash, Vec<Vec<Hash>>) {
    fn build(leaves: &[Hash], lo: usize, hi: usize, paths: &mut [Vec<Hash>]) -> Hash {
        if hi - lo == 1 {
            return leaves[lo];
        }
        let k = split_point((hi - lo) as u64) as usize;
        let left = build(leaves, lo, lo + k, paths);
        let right = build(leaves, lo + k, hi, paths);
        for p in &mut paths[lo..lo + k] {
            p.push(right);
        }
        for p in &mut paths[lo + k..hi] {
            p.push(left);
        }
        node_hash(&left, &right)
    }
    let mut paths = vec![Vec::new(); leaves.len()];
    if leaves.is_empty() {
        return (root_of_leaf_hashes(leaves), paths);
    }
    let root = build(leaves, 0, leaves.len(), &mut paths);
    (root, paths)
}

/// Recomputes the root from a leaf hash and its audit path (RFC 9162
/// §2.1.3.2, the RFC 6962 algorithm made explicit). Never panics.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] or [`MerkleError::PathLength`].
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    path: &[Hash],
) -> Result<Hash, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let want = path_len(index, size);
    if path.len() != want {
        return Err(MerkleError::PathLength {
            index,
            size,
            got: path.len(),
            want,
        });
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf;
    for p in path {
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    Ok(r)
}

/// Number of hashes in the audit path of leaf `index` in a tree of `size`.
fn path_len(index: u64, size: u64) -> usize {
    let (mut lo, mut hi, mut len) = (0u64, size, 0usize);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            hi = lo + k;
        } else {
            lo += k;
        }
        len += 1;
    }
    len
}

/// Checks an audit path against a root. Never panics.
///
/// # Errors
/// Why the proof does not hold.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    let computed = root_from_inclusion(index, size, leaf, path)?;
    if &computed == root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch {
            computed: hex::encode(computed),
            expected: hex::encode(root),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sha(data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }

    proptest! {
        #[test]
        fn the_hand_padded_hashes_equal_plain_sha256(line in proptest::collection::vec(any::<u8>(), 0..300), l in any::<[u8; 32]>(), r in any::<[u8; 32]>()) {
            prop_assert_eq!(leaf_hash(&line), sha(&[&[0u8][..], &line].concat()));
            prop_assert_eq!(node_hash(&l, &r), sha(&[&[1u8][..], &l, &r].concat()));
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn the_grouped_parallel_root_equals_the_recursive_definition(n in 0usize..10_000) {
            let mut bytes = Vec::new();
            let mut leaves = Vec::new();
            for i in 0..n {
                let line = format!("line {i}");
                leaves.push(leaf_hash(line.as_bytes()));
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
            }
            let (root, count) = root_of_lines(&bytes);
            prop_assert_eq!(count, n as u64);
            prop_assert_eq!(root, root_of_leaf_hashes(&leaves));
            let mut stream = MerkleStream::new();
            for i in 0..n {
                stream.push(format!("line {i}").as_bytes());
            }
            prop_assert_eq!(stream.root(), root);
        }

        #[test]
        fn every_audit_path_verifies_and_a_flipped_bit_does_not(n in 1usize..300, seed in any::<u64>()) {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(format!("{seed}-{i}").as_bytes())).collect();
            let root = root_of_leaf_hashes(&leaves);
            let m = (seed % n as u64) as usize;
            let path = inclusion_proof(&leaves, m as u64).unwrap();
            prop_assert!(verify_inclusion(m as u64, n as u64, &leaves[m], &path, &root).is_ok());
            if !path.is_empty() {
                let mut bad = path.clone();
                bad[0][0] ^= 8;
                prop_assert!(verify_inclusion(m as u64, n as u64, &leaves[m], &bad, &root).is_err());
            }
            prop_assert!(verify_inclusion(m as u64 + n as u64, n as u64, &leaves[m], &path, &root).is_err());
        }
    }

    #[test]
    fn the_path_of_every_line_verifies_the_last_one_included() {
        for text in [&b"a\nb\nc\n"[..], b"a\nb\nc", b"only\n"] {
            let (root, n) = root_of_lines(text);
            for i in 0..n {
                let (leaf, path, size) = inclusion_proof_for_lines(text, i).unwrap();
                let line = memchr_lines(text).nth(i as usize).unwrap();
                assert_eq!(leaf, leaf_hash(line), "line {i} of {text:?}");
                assert!(verify_inclusion(i, size, &leaf, &path, &root).is_ok());
            }
        }
    }

    #[test]
    fn a_misaligned_subtree_is_refused() {
        let mut s = MerkleStream::new();
        s.push(b"a");
        assert!(!s.push_subtree(1, [0; 32]));
        assert!(s.push_subtree(0, [0; 32]));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn all_inclusion_proofs_are_the_single_proofs_for_every_size_up_to_40() {
        for n in 1..=40u64 {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let (root, paths) = all_inclusion_proofs(&leaves);
            assert_eq!(root, root_of_leaf_hashes(&leaves));
            for i in 0..n {
                assert_eq!(paths[i as usize], inclusion_proof(&leaves, i).unwrap());
            }
        }
    }
}
