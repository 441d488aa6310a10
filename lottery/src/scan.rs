//! Streaming, parallel reading of `entrants.csv`: tree head, line rules and
//! the compact per-entrant data the draw needs, in one pass over a reader.
//!
//! A reader thread fills batches of whole [`GROUP_LINES`]-line groups; rayon
//! hashes and parses the groups of a batch in parallel; the groups' subtree
//! roots are folded in order by a [`MerkleStream`]. Nothing proportional to
//! the file's size is kept except what the draw needs (a ticket value, a pool
//! index and a flag per entrant) and the person tags for the duplicate check.

use std::io::{self, Read};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::draw::pack_entry;
use crate::limits::ENTRANT_LINE_MAX;
use crate::merkle::{
    group_boundaries, leaf_hash, memchr_lines, node_hash, Hash, MerkleStream, GROUP_BITS,
    GROUP_LINES,
};
use crate::snapshot::{Entrant, PoolIndex, SnapshotError};
use crate::tiles::{reduce_to_blocks, Tiles, TilesBuilder, BLOCK_LINES};

/// Bytes read per batch.
const BATCH_BYTES: usize = 16 << 20;

/// What one pass over `entrants.csv` found.
#[derive(Debug)]
pub struct EntrantScan {
    /// RFC 6962 tree head over the lines (with [`ScanDigest::Tree`]).
    pub root: Option<Hash>,
    /// SHA-256 of the bytes read (with [`ScanDigest::FileSha256`]).
    pub file_sha256: Option<Hash>,
    /// Number of lines (a final unterminated piece counts).
    pub lines: u64,
    /// The first rule broken other than a duplicate `person_tag`, if any.
    /// When it is `Some`, `entries` and `tickets` are incomplete.
    pub error: Option<SnapshotError>,
    /// Two of the lines before `error` share a `person_tag`; which line
    /// repeats one is found by [`first_duplicate_tag`] (see
    /// [`scan_entrants_file`], which does it).
    pub duplicate_tag: bool,
    /// Per entrant: `pool << 1 | flexible` (only when a pool index was given).
    pub entries: Vec<u32>,
    /// Per entrant: the ULID's 128-bit value.
    pub tickets: Vec<u128>,
    /// The proof tiles of the lines read (with [`ScanDigest::Tree`]): what `entrants.tiles`
    /// must hold, rebuilt in the same pass (SPEC.md §12).
    pub tiles: Option<Tiles>,
}

/// Which digest of `entrants.csv` a scan computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanDigest {
    /// The RFC 6962 tree head `seal.txt` commits to: one hash per line and per node, about
    /// half of a scan's work.
    Tree,
    /// SHA-256 of the file's bytes, computed on the reader thread while the lines are parsed:
    /// for a caller that recorded this digest when the file was written (the officials' draw,
    /// against the seal's own record) and needs no tree.
    FileSha256,
}

struct Batch {
    bytes: Vec<u8>,
    bounds: Vec<usize>,
    cut: usize,
    first_line: u64,
    last: bool,
}

#[derive(Default)]
struct GroupOut {
    lines: u64,
    hashes: Vec<Hash>,
    /// Where each block of [`BLOCK_LINES`] lines starts in the group's bytes (with a tree).
    block_starts: Vec<usize>,
    entries: Vec<u32>,
    tickets: Vec<u128>,
    tags: Vec<u128>,
    error: Option<SnapshotError>,
}

fn process_group(
    bytes: &[u8],
    first_line: u64,
    pools: Option<&PoolIndex>,
    unterminated_last: bool,
    parse: bool,
    tree: bool,
) -> GroupOut {
    let mut out = GroupOut {
        hashes: Vec::with_capacity(if tree { 1 << GROUP_BITS } else { 0 }),
        ..GroupOut::default()
    };
    let line_count_hint = 1usize << GROUP_BITS;
    if parse {
        out.tickets.reserve(line_count_hint);
        out.tags.reserve(line_count_hint);
        if pools.is_some() {
            out.entries.reserve(line_count_hint);
        }
    }
    let mut prev: Option<u128> = None;
    let mut lines = memchr_lines(bytes).peekable();
    let mut number = first_line;
    while let Some(line) = lines.next() {
        number += 1;
        out.lines += 1;
        if tree {
            if (out.lines - 1) % BLOCK_LINES == 0 {
                // The line is a subslice of `bytes`: its distance from the start is its offset.
                out.block_starts
                    .push(line.as_ptr() as usize - bytes.as_ptr() as usize);
            }
            out.hashes.push(leaf_hash(line));
        }
        if !parse || out.error.is_some() {
            continue;
        }
        if unterminated_last && lines.peek().is_none() {
            out.error = Some(SnapshotError::MissingFinalLf { line: number });
            continue;
        }
        let (e, ticket) = match Entrant::parse_line_with_value(line) {
            Ok(parsed) => parsed,
            Err(reason) => {
                out.error = Some(SnapshotError::Grammar {
                    line: number,
                    reason,
                });
                continue;
            }
        };
        if prev.is_some_and(|p| ticket <= p) {
            out.error = Some(SnapshotError::TicketOrder { line: number });
            continue;
        }
        if let Some(index) = pools {
            match index.get(&e.pharmacy_id, &e.product_id) {
                Some(p) => out.entries.push(pack_entry(p, e.flexible)),
                None => {
                    out.error = Some(SnapshotError::UnknownPool {
                        line: number,
                        pharmacy_id: e.pharmacy_id.to_string(),
                        product_id: e.product_id.to_string(),
                    });
                    continue;
                }
            }
        }
        prev = Some(ticket);
        out.tickets.push(ticket);
        out.tags.push(u128::from_be_bytes(e.person_tag.0));
    }
    out
}

/// The error for bytes after the last complete group that hold a line longer than any entrant
/// line (`first` is the number of lines before them).
fn overlong_line(rest: &[u8], first: u64) -> io::Error {
    let at = rest
        .split_inclusive(|&b| b == b'\n')
        .position(|l| l.len() as u64 > ENTRANT_LINE_MAX)
        .unwrap_or(0);
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "line {} is longer than {ENTRANT_LINE_MAX} bytes (no entrant line is): reading stopped",
            first + at as u64 + 1
        ),
    )
}

/// A complete group's root and its blocks' roots.
type GroupRoots = (Hash, Vec<Hash>);

/// The root of a complete group and the roots of its blocks, hashed in place.
fn reduce_complete(mut hashes: Vec<Hash>) -> GroupRoots {
    let blocks = reduce_to_blocks(&mut hashes);
    let mut n = blocks.len();
    while n > 1 {
        for i in 0..n / 2 {
            hashes[i] = node_hash(&hashes[2 * i], &hashes[2 * i + 1]);
        }
        n /= 2;
    }
    (hashes[0], blocks)
}

/// Reads `entrants.csv` from `reader` once: its tree head, its line count,
/// the first rule it breaks, and (with `pools`) the draw's compact input.
///
/// `progress` is called with the number of bytes consumed so far.
///
/// # Errors
/// Only I/O errors of the reader; rule violations are reported in
/// [`EntrantScan::error`].
pub fn scan_entrants<R: Read + Send>(
    reader: R,
    pools: Option<&PoolIndex>,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<EntrantScan> {
    scan_entrants_with(reader, pools, ScanDigest::Tree, progress)
}

/// [`scan_entrants`] computing the chosen `digest`.
///
/// # Errors
/// As [`scan_entrants`].
pub fn scan_entrants_with<R: Read + Send>(
    reader: R,
    pools: Option<&PoolIndex>,
    digest: ScanDigest,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<EntrantScan> {
    scan_sized(reader, 0, pools, digest, progress)
}

/// The shortest entrant line with its LF: a ticket id, one-character identifiers and the flag.
const MIN_LINE_BYTES: u64 = 26 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 32 + 1;

/// At most this many entrants' room is reserved up front, whatever the file's length says: a
/// sparse file of 64 GiB would otherwise reserve tens of gigabytes and abort on allocation.
/// 2^24 is above the largest day benchmarked (10 million); past it the vectors grow as lines
/// are actually read.
const PRESIZE_MAX_LINES: u64 = 1 << 24;

/// The most bytes that can follow the last complete group of a batch in a valid file: fewer
/// than [`GROUP_LINES`] lines of at most [`ENTRANT_LINE_MAX`] bytes. More means a line far
/// longer than any entrant line, and the reader stops instead of carrying it ever further.
const CARRY_MAX: usize = (GROUP_LINES as u64 * ENTRANT_LINE_MAX) as usize;

/// The scan, with the per-entrant vectors sized up front for `size` bytes (0: unknown, and at
/// most [`PRESIZE_MAX_LINES`]), so they never grow by copying on a day of up to that size;
/// untouched capacity costs no memory.
fn scan_sized<R: Read + Send>(
    reader: R,
    size: u64,
    pools: Option<&PoolIndex>,
    digest: ScanDigest,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<EntrantScan> {
    let tree = digest == ScanDigest::Tree;
    let mut stream = MerkleStream::new();
    let mut tiles = TilesBuilder::new();
    let mut lines = 0u64;
    let mut error: Option<SnapshotError> = None;
    let most = usize::try_from((size / MIN_LINE_BYTES + 1).min(PRESIZE_MAX_LINES)).unwrap_or(0);
    let mut entries: Vec<u32> = Vec::with_capacity(if pools.is_some() { most } else { 0 });
    let mut tickets: Vec<u128> = Vec::with_capacity(most);
    let mut tags = TagBuckets::with_capacity(most);
    let mut consumed = 0u64;

    let file_sha256 = std::thread::scope(|scope| -> io::Result<Option<Hash>> {
        let (tx, rx) = sync_channel::<io::Result<Batch>>(2);
        // Spent buffers come back to the reader: fresh 16 MiB allocations would each be
        // page-faulted in again.
        let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader_thread = scope.spawn(move || -> Option<Hash> {
            let mut reader = reader;
            let mut sha = (!tree).then(Sha256::new);
            let mut carry: Vec<u8> = Vec::new();
            let mut first_line = 0u64;
            loop {
                let mut buf = spent_rx.try_recv().unwrap_or_default();
                buf.clear();
                // Room for the carried partial group and a whole batch, so reading never
                // reallocates (and copies) a buffer.
                buf.reserve(carry.len() + BATCH_BYTES + 1);
                buf.extend_from_slice(&carry);
                let read = match (&mut reader).take(BATCH_BYTES as u64).read_to_end(&mut buf) {
                    Ok(read) => read,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return None;
                    }
                };
                if let Some(sha) = &mut sha {
                    sha.update(&buf[carry.len()..]);
                }
                let last = read < BATCH_BYTES;
                let (bounds, cut) = group_boundaries(&buf);
                let lines_in_groups = ((bounds.len() - 1) as u64) << GROUP_BITS;
                if last {
                    let _ = tx.send(Ok(Batch {
                        bytes: buf,
                        bounds,
                        cut,
                        first_line,
                        last,
                    }));
                    return sha.map(|h| h.finalize().into());
                }
                if buf.len() - cut > CARRY_MAX {
                    let first = first_line + lines_in_groups;
                    let _ = tx.send(Err(overlong_line(&buf[cut..], first)));
                    return None;
                }
                carry.clear();
                carry.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
                let batch = Batch {
                    bytes: buf,
                    bounds,
                    cut,
                    first_line,
                    last,
                };
                first_line += lines_in_groups;
                if tx.send(Ok(batch)).is_err() {
                    return None;
                }
            }
        });

        for batch in rx {
            let batch = batch?;
            let parse = error.is_none();
            let mut outs: Vec<(GroupOut, Option<GroupRoots>)> = batch
                .bounds
                .par_windows(2)
                .enumerate()
                .map(|(g, w)| {
                    let first = batch.first_line + ((g as u64) << GROUP_BITS);
                    let mut out =
                        process_group(&batch.bytes[w[0]..w[1]], first, pools, false, parse, tree);
                    let root = tree.then(|| reduce_complete(std::mem::take(&mut out.hashes)));
                    (out, root)
                })
                .collect();
            if batch.last && batch.cut < batch.bytes.len() {
                let tail = &batch.bytes[batch.cut..];
                let first = batch.first_line + (((batch.bounds.len() - 1) as u64) << GROUP_BITS);
                let unterminated = !tail.ends_with(b"\n");
                outs.push((
                    process_group(tail, first, pools, unterminated, parse, tree),
                    None,
                ));
            }
            for (g, (out, root)) in outs.into_iter().enumerate() {
                lines += out.lines;
                match root {
                    Some((r, blocks)) => {
                        let group = &batch.bytes[batch.bounds[g]..batch.bounds[g + 1]];
                        let ends = out.block_starts[1..].iter().copied().chain([group.len()]);
                        let mut aligned = stream.push_subtree(GROUP_BITS, r);
                        for ((root, start), end) in blocks.iter().zip(&out.block_starts).zip(ends) {
                            aligned &= tiles.push_block(*root, (end - start) as u64);
                        }
                        if !aligned {
                            return Err(io::Error::other("misaligned group"));
                        }
                    }
                    // The tail's lines one by one (none without a tree), each with the bytes it
                    // takes (a last line may lack its LF).
                    None => {
                        let tail = batch.bytes[batch.cut..].split_inclusive(|&b| b == b'\n');
                        for (h, line) in out.hashes.iter().zip(tail) {
                            stream.push_leaf_hash(*h);
                            tiles.push_leaf(*h, line.len() as u64);
                        }
                    }
                }
                if error.is_some() {
                    continue;
                }
                if let (Some(&first), Some(&last)) = (out.tickets.first(), tickets.last()) {
                    if first <= last {
                        // The group's first line is out of order with the previous group.
                        error = Some(SnapshotError::TicketOrder {
                            line: tickets.len() as u64 + 1,
                        });
                        continue;
                    }
                }
                entries.extend_from_slice(&out.entries);
                tickets.extend_from_slice(&out.tickets);
                tags.extend(&out.tags);
                error = out.error;
            }
            consumed += batch.bytes.len() as u64;
            progress(consumed);
            let _ = spent_tx.send(batch.bytes);
        }
        reader_thread
            .join()
            .map_err(|_| io::Error::other("the reader thread panicked"))
    })?;

    // Duplicate person tags among the lines that passed every other rule.
    let duplicate = tags.any_duplicate();
    Ok(EntrantScan {
        root: tree.then(|| stream.root()),
        tiles: tree.then(|| tiles.finish()),
        file_sha256,
        lines,
        error,
        duplicate_tag: duplicate,
        entries,
        tickets,
    })
}

/// Person tags kept for the duplicate check, spread over 256 buckets by their top byte as they
/// arrive. Tags are HMAC outputs, so the buckets are even, and each is sorted on its own, in
/// cache and in parallel, instead of one sort of the whole array. (Skewed input is still
/// answered correctly, only more slowly.)
struct TagBuckets {
    buckets: Vec<Vec<u128>>,
}

impl TagBuckets {
    /// Room for about `total` tags (more only costs address space until touched).
    fn with_capacity(total: usize) -> Self {
        let each = total / 256 + total / 2048 + 16;
        Self {
            buckets: (0..256).map(|_| Vec::with_capacity(each)).collect(),
        }
    }

    fn extend(&mut self, tags: &[u128]) {
        for &t in tags {
            self.buckets[(t >> 120) as usize].push(t);
        }
    }

    /// Whether two of the tags are equal.
    fn any_duplicate(self) -> bool {
        self.buckets.into_par_iter().any(|mut bucket| {
            bucket.sort_unstable();
            bucket.windows(2).any(|w| w[0] == w[1])
        })
    }
}

/// Whether two values are equal (see [`TagBuckets`]).
#[cfg(test)]
fn any_duplicate(values: Vec<u128>) -> bool {
    let mut buckets = TagBuckets::with_capacity(values.len());
    buckets.extend(&values);
    buckets.any_duplicate()
}

/// [`scan_entrants`] over a file, resolving a duplicate `person_tag` to the
/// exact line with a second, sequential pass (only on that error path).
///
/// # Errors
/// I/O errors opening or reading the file.
pub fn scan_entrants_file(
    path: &std::path::Path,
    pools: Option<&PoolIndex>,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<EntrantScan> {
    scan_entrants_file_with(path, pools, ScanDigest::Tree, progress)
}

/// [`scan_entrants_file`] computing the chosen `digest`.
///
/// # Errors
/// As [`scan_entrants_file`].
pub fn scan_entrants_file_with(
    path: &std::path::Path,
    pools: Option<&PoolIndex>,
    digest: ScanDigest,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<EntrantScan> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut scan = scan_sized(file, size, pools, digest, progress)?;
    if scan.duplicate_tag {
        let clean = scan.tickets.len() as u64;
        if let Some(dup) = first_duplicate_tag(std::fs::File::open(path)?, clean)? {
            scan.error = Some(dup);
        }
    }
    Ok(scan)
}

/// The first line whose `person_tag` appeared on an earlier line, scanning at
/// most `limit` lines of `reader` (the slow path after [`scan_entrants`]
/// reported a duplicate).
///
/// # Errors
/// I/O errors of the reader.
pub fn first_duplicate_tag<R: Read>(reader: R, limit: u64) -> io::Result<Option<SnapshotError>> {
    use std::io::BufRead;
    let mut seen: std::collections::HashMap<[u8; 32], u64> = std::collections::HashMap::new();
    let mut reader = io::BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::new();
    let mut number = 0u64;
    while number < limit {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        if line.len() < 33 {
            continue;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let mut tag = [0u8; 32];
        tag.copy_from_slice(&body[body.len() - 32..]);
        if let Some(&first_line) = seen.get(&tag) {
            return Ok(Some(SnapshotError::DuplicatePersonTag {
                line: number,
                first_line,
            }));
        }
        seen.insert(tag, number);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::any_duplicate;

    #[test]
    fn duplicates_are_found_in_any_bucket_and_with_skewed_input() {
        let spread: Vec<u128> = (0..10_000u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        assert!(!any_duplicate(spread.clone()));
        for at in [0, 1, 4_999, 9_999] {
            let mut with = spread.clone();
            with.push(spread[at]);
            assert!(any_duplicate(with), "copy of element {at}");
        }
        // Every value in one bucket (same top byte), then in none but the last.
        let skewed: Vec<u128> = (0..5_000u128).collect();
        assert!(!any_duplicate(skewed.clone()));
        let mut with = skewed.clone();
        with.push(4_321);
        assert!(any_duplicate(with));
        let top: Vec<u128> = (0..5_000u128).map(|i| u128::MAX - i).collect();
        let mut with = top.clone();
        with.insert(0, u128::MAX - 17);
        assert!(!any_duplicate(top) && any_duplicate(with));
        assert!(!any_duplicate(Vec::new()) && !any_duplicate(vec![7]));
    }
}
