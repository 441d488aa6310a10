//! `entrants.tiles`: derived data beside `entrants.csv` that lets one ticket's proof be made
//! with O(log n) small reads instead of reading and hashing the whole file (SPEC.md §12,
//! version `maskdraw-tiles-v1`).
//!
//! In the spirit of C2SP tlog-tiles, the file is a cache of the RFC 6962 tree, never a second
//! source of truth (STYLE.md "Derived data"): it is a function of the bytes of `entrants.csv`
//! alone, `notary verify` rebuilds it and compares byte for byte, and a proof made from it is
//! only answered once its block of lines, with the file's hashes, leads to `seal.txt`'s
//! `entrants_root` (see [`crate::proof::DayProofs`]).
//!
//! What it holds, for `n` lines and blocks of 2^[`TILE_HEIGHT`] lines: the byte offset where
//! every block starts (so a ticket's line and its index are found by binary search, and its
//! block read in one go), and every node of the tree at heights ≥ [`TILE_HEIGHT`]
//! (`node(L, j) = MTH(D[j·2^L : min((j+1)·2^L, n)])`), about 0.28 bytes per entrant.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::merkle::{leaf_hash, memchr_lines, node_hash, Hash, MerkleStream, EMPTY_ROOT};
use crate::snapshot::SnapshotError;
use crate::Progress;

/// The file's name in a snapshot directory.
pub const TILES_FILE: &str = "entrants.tiles";
/// The format's version string, the start of the file.
pub const TILES_VERSION: &str = "maskdraw-tiles-v1";
/// log2 of the lines per block: the lowest tree level stored (C2SP tlog-tiles' tile height).
pub const TILE_HEIGHT: u32 = 8;
/// Lines per block (256).
pub const BLOCK_LINES: u64 = 1 << TILE_HEIGHT;
/// Bytes before the line offsets: version, height, entrants, root.
pub const HEADER_BYTES: u64 = 72;

/// The version string, an LF and six zero bytes: 24 bytes.
const MAGIC: [u8; 24] = *b"maskdraw-tiles-v1\n\0\0\0\0\0\0";

/// ⌈n / 2^height⌉: the number of nodes of an `n`-leaf RFC 6962 tree at `height`.
#[must_use]
pub fn nodes_at(n: u64, height: u32) -> u64 {
    let span = 1u128 << height.min(64);
    ((u128::from(n) + span - 1) >> height.min(64)) as u64
}

/// One stored level: its height, its number of nodes and where its first node lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Tree height `L` (`TILE_HEIGHT` for block roots).
    pub height: u32,
    /// ⌈n / 2^L⌉ nodes.
    pub count: u64,
    /// Byte position of node 0 in the file.
    pub at: u64,
}

/// Where each part of the file for `n` lines lies (SPEC.md §12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    n: u64,
    levels: Vec<Level>,
    len: u64,
}

impl Layout {
    /// The layout for `n` lines; `None` when the file would not fit in 2^64 bytes (no real
    /// `n` comes near).
    #[must_use]
    pub fn new(n: u64) -> Option<Self> {
        let blocks = nodes_at(n, TILE_HEIGHT);
        let mut at = blocks
            .checked_add(1)?
            .checked_mul(8)?
            .checked_add(HEADER_BYTES)?;
        let mut levels = Vec::new();
        let mut height = TILE_HEIGHT;
        loop {
            let count = nodes_at(n, height);
            levels.push(Level { height, count, at });
            at = at.checked_add(count.checked_mul(32)?)?;
            // The level with (at most) one node is the root's: the top.
            if count <= 1 {
                break;
            }
            height += 1;
        }
        Some(Self { n, levels, len: at })
    }

    /// Number of lines.
    #[must_use]
    pub fn entrants(&self) -> u64 {
        self.n
    }

    /// Number of blocks (nodes at [`TILE_HEIGHT`]).
    #[must_use]
    pub fn blocks(&self) -> u64 {
        self.levels[0].count
    }

    /// The stored levels, lowest first.
    #[must_use]
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// The file's length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file has no hashes at all (`n = 0`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Byte position of block `b`'s offset (`b = blocks()` is the file length's).
    #[must_use]
    pub fn offset_at(&self, b: u64) -> u64 {
        HEADER_BYTES + 8 * b
    }

    /// What lies at byte `pos`, for messages.
    #[must_use]
    pub fn describe(&self, pos: u64) -> String {
        match pos {
            0..24 => "the version string".into(),
            24..32 => "the height".into(),
            32..40 => "the number of entrants".into(),
            40..72 => "entrants_root".into(),
            _ => {
                let offsets_end = self.levels[0].at;
                if pos < offsets_end {
                    let b = (pos - HEADER_BYTES) / 8;
                    if b == self.blocks() {
                        "the length of entrants.csv".into()
                    } else {
                        format!("the offset of block {b} (line {})", b * BLOCK_LINES + 1)
                    }
                } else {
                    self.levels
                        .iter()
                        .rev()
                        .find(|l| pos >= l.at)
                        .map_or_else(String::new, |l| {
                            format!("node {} at height {}", (pos - l.at) / 32, l.height)
                        })
                }
            }
        }
    }
}

/// Collects the tiles while the lines of `entrants.csv` go by, in order: one leaf at a time
/// (a writer or a scan that hashes lines itself) or one complete, aligned block at a time (the
/// parallel writers hash 4,096-line groups on every core). Holds one block's partial tree,
/// each block's root and offset: 40 bytes per 256 lines.
#[derive(Debug, Default)]
pub struct TilesBuilder {
    block: MerkleStream,
    blocks: Vec<Hash>,
    offsets: Vec<u64>,
    bytes: u64,
}

impl TilesBuilder {
    /// No lines yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a line (without its LF; the file has `line.len() + 1` bytes for it) and returns
    /// its leaf hash.
    pub fn push_line(&mut self, line: &[u8]) -> Hash {
        let leaf = leaf_hash(line);
        self.push_leaf(leaf, line.len() as u64 + 1);
        leaf
    }

    /// Appends a line given its leaf hash and the bytes it takes in the file (with its LF).
    pub fn push_leaf(&mut self, leaf: Hash, bytes: u64) {
        if self.block.is_empty() {
            self.offsets.push(self.bytes);
        }
        self.block.push_leaf_hash(leaf);
        self.bytes += bytes;
        if self.block.len() == BLOCK_LINES {
            self.blocks.push(self.block.root());
            self.block.clear();
        }
    }

    /// Appends a complete block of [`BLOCK_LINES`] lines given its root and its bytes.
    ///
    /// # Errors
    /// Refused (returns `false`, nothing changed) when a block is partly filled: the block
    /// would not be aligned.
    pub fn push_block(&mut self, root: Hash, bytes: u64) -> bool {
        if !self.block.is_empty() {
            return false;
        }
        self.offsets.push(self.bytes);
        self.blocks.push(root);
        self.bytes += bytes;
        true
    }

    /// Lines pushed.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.blocks.len() as u64 * BLOCK_LINES + self.block.len()
    }

    /// Whether no line was pushed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The finished tiles (the upper levels are computed here: one node per two below).
    #[must_use]
    pub fn finish(mut self) -> Tiles {
        let n = self.len();
        if !self.block.is_empty() {
            self.blocks.push(self.block.root());
        }
        self.offsets.push(self.bytes);
        let mut levels = vec![self.blocks];
        while let Some(below) = levels.last().filter(|l| l.len() > 1) {
            // A last node without a partner is the same range one level up (RFC 6962 splits
            // at the largest power of two below the size).
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    [only] => *only,
                    _ => EMPTY_ROOT,
                })
                .collect();
            levels.push(above);
        }
        let root = levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(EMPTY_ROOT);
        Tiles {
            n,
            bytes: self.bytes,
            offsets: self.offsets,
            levels,
            root,
        }
    }
}

/// The tiles of one `entrants.csv`, ready to be written or compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiles {
    n: u64,
    bytes: u64,
    offsets: Vec<u64>,
    levels: Vec<Vec<Hash>>,
    root: Hash,
}

impl Tiles {
    /// Number of lines.
    #[must_use]
    pub fn entrants(&self) -> u64 {
        self.n
    }

    /// The RFC 6962 tree head of the lines: `entrants_root`.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.root
    }

    /// Length of `entrants.csv` in bytes.
    #[must_use]
    pub fn entrants_bytes(&self) -> u64 {
        self.bytes
    }

    /// The file's length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        HEADER_BYTES
            + 8 * self.offsets.len() as u64
            + 32 * self.levels.iter().map(|l| l.len() as u64).sum::<u64>()
    }

    /// Whether there are no lines (the file is then a header, one offset and no hashes).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Writes the file's bytes (SPEC.md §12) to `out`.
    ///
    /// # Errors
    /// The writer's.
    pub fn write_to<W: Write>(&self, mut out: W) -> io::Result<()> {
        out.write_all(&MAGIC)?;
        out.write_all(&u64::from(TILE_HEIGHT).to_be_bytes())?;
        out.write_all(&self.n.to_be_bytes())?;
        out.write_all(&self.root)?;
        for o in &self.offsets {
            out.write_all(&o.to_be_bytes())?;
        }
        for level in &self.levels {
            for h in level {
                out.write_all(h)?;
            }
        }
        Ok(())
    }

    /// The file's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes the file at `path`; with `durable`, fsyncs it before returning (the service's
    /// seal does, as for `entrants.csv`).
    ///
    /// # Errors
    /// Creating, writing or syncing the file.
    pub fn write_file(&self, path: &Path, durable: bool) -> io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        self.write_to(&mut out)?;
        out.flush()?;
        if durable {
            out.get_ref().sync_all()?;
        }
        Ok(())
    }

    /// Compares the file at `path` with these tiles without reading it whole: its length
    /// first, then its bytes in a stream.
    ///
    /// # Errors
    /// Why it differs, naming the file and the first differing byte.
    pub fn compare_file(&self, path: &Path) -> Result<(), String> {
        let io = |e: io::Error| format!("cannot read {TILES_FILE}: {e}");
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let want = self.len();
        if len != want {
            return Err(format!(
                "{TILES_FILE} is {len} bytes, the rebuild from entrants.csv is {want} bytes"
            ));
        }
        let mut compare = Compare {
            file: BufReader::with_capacity(1 << 16, file),
            pos: 0,
            differs_at: None,
        };
        self.write_to(&mut compare).map_err(io)?;
        match compare.differs_at {
            None => Ok(()),
            Some(at) => {
                let what = Layout::new(self.n)
                    .map(|l| l.describe(at))
                    .unwrap_or_default();
                Err(format!(
                    "{TILES_FILE} differs from the rebuild from entrants.csv at byte {at} ({what})"
                ))
            }
        }
    }
}

/// A writer that compares what is written with a file's bytes, remembering the first
/// difference.
struct Compare<R> {
    file: R,
    pos: u64,
    differs_at: Option<u64>,
}

impl<R: Read> Write for Compare<R> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.differs_at.is_none() {
            let mut got = [0u8; 256];
            for chunk in data.chunks(got.len()) {
                let got = &mut got[..chunk.len()];
                self.file.read_exact(got)?;
                if let Some(i) = got.iter().zip(chunk).position(|(a, b)| a != b) {
                    self.differs_at = Some(self.pos + i as u64);
                    break;
                }
                self.pos += chunk.len() as u64;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Block roots and byte lengths of a complete group of lines (a multiple of [`BLOCK_LINES`]
/// LF-terminated lines), hashed in place level by level: the parallel writers' unit of work.
pub(crate) fn group_blocks(bytes: &[u8]) -> Vec<(Hash, u64)> {
    let mut hashes: Vec<Hash> = memchr_lines(bytes).map(leaf_hash).collect();
    let roots = reduce_to_blocks(&mut hashes);
    let mut lengths = Vec::with_capacity(roots.len());
    let mut start = 0usize;
    let mut count = 0u64;
    for end in memchr::memchr_iter(b'\n', bytes) {
        count += 1;
        if count == BLOCK_LINES {
            lengths.push((end + 1 - start) as u64);
            start = end + 1;
            count = 0;
        }
    }
    roots.into_iter().zip(lengths).collect()
}

/// Reduces leaf hashes (a multiple of [`BLOCK_LINES`] of them) [`TILE_HEIGHT`] levels in
/// place and returns the block roots; `hashes` then starts with them.
pub(crate) fn reduce_to_blocks(hashes: &mut [Hash]) -> Vec<Hash> {
    let mut n = hashes.len();
    for _ in 0..TILE_HEIGHT {
        for i in 0..n / 2 {
            hashes[i] = node_hash(&hashes[2 * i], &hashes[2 * i + 1]);
        }
        n /= 2;
    }
    hashes[..n].to_vec()
}

/// An `entrants.tiles` opened for proofs: its header matched the seal and its length matched
/// the layout; everything else is read with positioned reads (`&self`, any number of threads).
#[derive(Debug)]
pub(crate) struct TilesFile {
    file: File,
    layout: Layout,
}

impl TilesFile {
    /// Opens `path` for a sealed tree of `n` leaves with head `root`. `Ok(None)` when there is
    /// no file; `Err(why)` when the file cannot serve this seal.
    pub(crate) fn open(path: &Path, n: u64, root: &Hash) -> Result<Option<Self>, String> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open {TILES_FILE}: {e}")),
        };
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read {TILES_FILE}: {e}"))?
            .len();
        let mut header = [0u8; HEADER_BYTES as usize];
        if len < HEADER_BYTES {
            return Err(format!(
                "{TILES_FILE} is {len} bytes, shorter than its header"
            ));
        }
        file.read_exact_at(&mut header, 0)
            .map_err(|e| format!("cannot read {TILES_FILE}: {e}"))?;
        if header[..24] != MAGIC {
            return Err(format!("{TILES_FILE} does not start with {TILES_VERSION}"));
        }
        let field = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[at..at + 8]);
            u64::from_be_bytes(b)
        };
        if field(24) != u64::from(TILE_HEIGHT) {
            return Err(format!(
                "{TILES_FILE} has height {}, version 1 uses {TILE_HEIGHT}",
                field(24)
            ));
        }
        if field(32) != n {
            return Err(format!(
                "{TILES_FILE} is for {} entrants, seal.txt says {n}",
                field(32)
            ));
        }
        if &header[40..72] != root {
            return Err(format!(
                "{TILES_FILE} is for entrants_root {}, seal.txt says {}",
                hex::encode(&header[40..72]),
                hex::encode(root)
            ));
        }
        let layout = Layout::new(n).ok_or_else(|| format!("{n} entrants cannot have tiles"))?;
        if len != layout.len() {
            return Err(format!(
                "{TILES_FILE} is {len} bytes, {n} entrants take {}",
                layout.len()
            ));
        }
        Ok(Some(Self { file, layout }))
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where block `b` starts in `entrants.csv` (`b = blocks()`: the file's length).
    pub(crate) fn offset(&self, b: u64) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        self.file
            .read_exact_at(&mut buf, self.layout.offset_at(b))?;
        Ok(u64::from_be_bytes(buf))
    }

    /// The siblings of block `b` at every stored height, lowest first: the audit path of the
    /// block's root in the tree of block roots, which is the top of every audit path of a line
    /// in the block (SPEC.md §12).
    pub(crate) fn upper_path(&self, b: u64) -> io::Result<Vec<Hash>> {
        let mut path = Vec::new();
        for level in self.layout.levels() {
            let sibling = (b >> (level.height - TILE_HEIGHT)) ^ 1;
            if sibling < level.count {
                let mut h = [0u8; 32];
                self.file.read_exact_at(&mut h, level.at + 32 * sibling)?;
                path.push(h);
            }
        }
        Ok(path)
    }
}

/// Why `notary tiles` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum TilesError {
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The tiles could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `entrants.csv` breaks a rule: a proof's binary search needs its order.
    #[error("entrants.csv {0}: tiles are written only for a valid file")]
    Entrants(SnapshotError),
    /// `seal.txt` is invalid or is not the seal of this `entrants.csv`.
    #[error("{0}")]
    Seal(String),
}

/// Rebuilds `entrants.tiles` from `dir/entrants.csv` alone and writes it into `out` (through a
/// temporary name, fsynced, then renamed), for a day received without it. When `dir` has a
/// `seal.txt`, the rebuilt tree must be the sealed one, or nothing is written: tiles of
/// another tree would prove nothing.
///
/// # Errors
/// [`TilesError`]; nothing is written then.
pub fn rebuild(dir: &Path, out: &Path, progress: &dyn Progress) -> Result<Tiles, TilesError> {
    let seal_path = dir.join("seal.txt");
    let seal = if seal_path.exists() {
        let bytes =
            crate::limits::read_at_most(&seal_path, crate::limits::TEXT_MAX).map_err(|source| {
                TilesError::Read {
                    file: "seal.txt",
                    source,
                }
            })?;
        Some(
            crate::text::SealText::parse(&bytes)
                .map_err(|e| TilesError::Seal(format!("seal.txt is invalid: {e}")))?,
        )
    } else {
        None
    };
    let path = dir.join("entrants.csv");
    progress.start(
        "entrants.csv",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    );
    let scan =
        crate::scan::scan_entrants_file(&path, None, &|d| progress.set(d)).map_err(|source| {
            TilesError::Read {
                file: "entrants.csv",
                source,
            }
        })?;
    progress.finish();
    if let Some(e) = scan.error {
        return Err(TilesError::Entrants(e));
    }
    let tiles = scan.tiles.ok_or_else(|| {
        TilesError::Seal("the scan of entrants.csv built no tree (an internal error)".into())
    })?;
    if let Some(seal) = seal {
        if seal.entrants != tiles.entrants() || seal.entrants_root != tiles.root() {
            return Err(TilesError::Seal(format!(
                "entrants.csv has {} lines and root {}, seal.txt says {} and {}: tiles of this \
                 file would prove nothing against the seal, so none were written",
                tiles.entrants(),
                hex::encode(tiles.root()),
                seal.entrants,
                hex::encode(seal.entrants_root)
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| TilesError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let partial = out.join(format!(".{TILES_FILE}.partial"));
    let target = out.join(TILES_FILE);
    let written = tiles
        .write_file(&partial, true)
        .and_then(|()| std::fs::rename(&partial, &target));
    if let Err(source) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(TilesError::Write {
            path: target,
            source,
        });
    }
    Ok(tiles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{root_of_leaf_hashes, root_of_lines};
    use proptest::prelude::*;

    /// SPEC.md §12 read literally: every node from the recursive MTH over slices.
    fn reference(lines: &[Vec<u8>]) -> Vec<u8> {
        let n = lines.len() as u64;
        let leaves: Vec<Hash> = lines.iter().map(|l| leaf_hash(l)).collect();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&8u64.to_be_bytes());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&root_of_leaf_hashes(&leaves));
        let mut offset = 0u64;
        for (i, l) in lines.iter().enumerate() {
            if i as u64 % 256 == 0 {
                out.extend_from_slice(&offset.to_be_bytes());
            }
            offset += l.len() as u64 + 1;
        }
        out.extend_from_slice(&offset.to_be_bytes());
        let mut height = 8;
        loop {
            let count = nodes_at(n, height);
            for j in 0..count {
                let lo = (j << height) as usize;
                let hi = (((j + 1) << height) as usize).min(lines.len());
                out.extend_from_slice(&root_of_leaf_hashes(&leaves[lo..hi]));
            }
            if count <= 1 {
                break;
            }
            height += 1;
        }
        out
    }

    fn lines(n: usize, seed: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{seed}-{i}-{}", "x".repeat(i % 7)).into_bytes())
            .collect()
    }

    #[test]
    fn sizes_around_every_block_and_level_edge_match_the_spec_read_literally() {
        for n in [
            0usize, 1, 2, 3, 255, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 4095,
            4096, 4097, 8191, 8192, 8193,
        ] {
            let lines = lines(n, 3);
            let mut b = TilesBuilder::new();
            for l in &lines {
                b.push_line(l);
            }
            let tiles = b.finish();
            let want = reference(&lines);
            assert_eq!(tiles.to_bytes(), want, "n = {n}");
            assert_eq!(tiles.len(), want.len() as u64, "n = {n}");
            assert_eq!(Layout::new(n as u64).unwrap().len(), want.len() as u64);
            let bytes: Vec<u8> = lines
                .iter()
                .flat_map(|l| [&l[..], b"\n"].concat())
                .collect();
            assert_eq!(tiles.root(), root_of_lines(&bytes).0, "n = {n}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn blocks_pushed_whole_give_the_same_tiles_as_lines(n in 0usize..3_000, seed in any::<u64>()) {
            let lines = lines(n, seed);
            let mut by_line = TilesBuilder::new();
            let mut by_block = TilesBuilder::new();
            let whole = n / 256 * 256;
            let bytes: Vec<u8> = lines[..whole].iter().flat_map(|l| [&l[..], b"\n"].concat()).collect();
            for (root, len) in group_blocks(&bytes) {
                prop_assert!(by_block.push_block(root, len));
            }
            for l in &lines[whole..] {
                by_block.push_line(l);
            }
            for l in &lines {
                by_line.push_line(l);
            }
            prop_assert_eq!(by_block.finish(), by_line.finish());
        }
    }

    #[test]
    fn a_block_is_refused_while_a_block_is_partly_filled() {
        let mut b = TilesBuilder::new();
        b.push_line(b"a");
        assert!(!b.push_block([0; 32], 10));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn the_layout_names_what_lies_at_each_byte() {
        let layout = Layout::new(600).unwrap();
        assert_eq!(layout.blocks(), 3);
        assert_eq!(
            layout
                .levels()
                .iter()
                .map(|l| (l.height, l.count))
                .collect::<Vec<_>>(),
            vec![(8, 3), (9, 2), (10, 1)]
        );
        assert_eq!(layout.len(), 72 + 4 * 8 + 6 * 32);
        assert_eq!(layout.describe(5), "the version string");
        assert_eq!(layout.describe(72 + 8), "the offset of block 1 (line 257)");
        assert_eq!(layout.describe(72 + 24), "the length of entrants.csv");
        assert_eq!(layout.describe(72 + 32 + 3 * 32), "node 0 at height 9");
        assert_eq!(
            layout.describe(72 + 32 + 5 * 32 + 31),
            "node 0 at height 10"
        );
        // The largest count still has a layout (of about 2^62 bytes), computed without overflow.
        assert!(Layout::new(u64::MAX).is_some_and(|l| l.len() > 1 << 62));
    }
}
