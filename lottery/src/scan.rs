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

use crate::draw::pack_entry;
use crate::merkle::{
    group_boundaries, leaf_hash, memchr_lines, node_hash, Hash, MerkleStream, GROUP_BITS,
};
use crate::snapshot::{Entrant, PoolIndex, SnapshotError};

/// Bytes read per batch.
const BATCH_BYTES: usize = 16 << 20;

/// What one pass over `entrants.csv` found.
#[derive(Debug)]
pub struct EntrantScan {
    /// RFC 6962 tree head over the lines.
    pub root: Hash,
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
    hashes: Vec<Hash>,
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
) -> GroupOut {
    let mut out = GroupOut {
        hashes: Vec::with_capacity(1 << GROUP_BITS),
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
        out.hashes.push(leaf_hash(line));
        if !parse || out.error.is_some() {
            continue;
        }
        if unterminated_last && lines.peek().is_none() {
            out.error = Some(SnapshotError::MissingFinalLf { line: number });
            continue;
        }
        let e = match Entrant::parse_line(line) {
            Ok(e) => e,
            Err(reason) => {
                out.error = Some(SnapshotError::Grammar {
                    line: number,
                    reason,
                });
                continue;
            }
        };
        let ticket = e.ticket_id.to_u128();
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

fn reduce_complete(mut hashes: Vec<Hash>) -> Hash {
    let mut n = hashes.len();
    while n > 1 {
        for i in 0..n / 2 {
            hashes[i] = node_hash(&hashes[2 * i], &hashes[2 * i + 1]);
        }
        n /= 2;
    }
    hashes[0]
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
    let mut stream = MerkleStream::new();
    let mut error: Option<SnapshotError> = None;
    let mut entries: Vec<u32> = Vec::new();
    let mut tickets: Vec<u128> = Vec::new();
    let mut tags: Vec<u128> = Vec::new();
    let mut consumed = 0u64;

    std::thread::scope(|scope| -> io::Result<()> {
        let (tx, rx) = sync_channel::<io::Result<Batch>>(2);
        scope.spawn(move || {
            let mut reader = reader;
            let mut carry: Vec<u8> = Vec::new();
            let mut first_line = 0u64;
            loop {
                let mut buf = Vec::with_capacity(BATCH_BYTES + carry.len());
                buf.extend_from_slice(&carry);
                let read = match (&mut reader).take(BATCH_BYTES as u64).read_to_end(&mut buf) {
                    Ok(read) => read,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
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
                    return;
                }
                carry = buf[cut..].to_vec();
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
                    return;
                }
            }
        });

        for batch in rx {
            let batch = batch?;
            let parse = error.is_none();
            let mut outs: Vec<(GroupOut, Option<Hash>)> = batch
                .bounds
                .par_windows(2)
                .enumerate()
                .map(|(g, w)| {
                    let first = batch.first_line + ((g as u64) << GROUP_BITS);
                    let out = process_group(&batch.bytes[w[0]..w[1]], first, pools, false, parse);
                    let mut out = out;
                    let root = reduce_complete(std::mem::take(&mut out.hashes));
                    (out, Some(root))
                })
                .collect();
            if batch.last && batch.cut < batch.bytes.len() {
                let tail = &batch.bytes[batch.cut..];
                let first = batch.first_line + (((batch.bounds.len() - 1) as u64) << GROUP_BITS);
                let unterminated = !tail.ends_with(b"\n");
                outs.push((process_group(tail, first, pools, unterminated, parse), None));
            }
            for (out, root) in outs {
                match root {
                    Some(r) => stream
                        .push_subtree(GROUP_BITS, r)
                        .then_some(())
                        .ok_or_else(|| io::Error::other("misaligned group"))?,
                    None => out.hashes.iter().for_each(|h| stream.push_leaf_hash(*h)),
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
                tags.extend_from_slice(&out.tags);
                error = out.error;
            }
            consumed += batch.bytes.len() as u64;
            progress(consumed);
        }
        Ok(())
    })?;

    // Duplicate person tags among the lines that passed every other rule.
    tags.par_sort_unstable();
    let duplicate = tags.par_windows(2).any(|w| w[0] == w[1]);
    drop(tags);
    let lines = stream.len();
    Ok(EntrantScan {
        root: stream.root(),
        lines,
        error,
        duplicate_tag: duplicate,
        entries,
        tickets,
    })
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
    let mut scan = scan_entrants(std::fs::File::open(path)?, pools, progress)?;
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
