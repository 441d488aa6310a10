//! One ticket's proof: "its leaf and audit path prove it was sealed; the seed
//! and its index give its rolls; the published cutoffs say whether it had to
//! win" (DESIGN.md, "The two-roll draw (version 1)").
//!
//! The JSON of [`TicketProof`] is what `notary proof` prints and what the
//! service's HTTP API returns.
//!
//! Two ways to make it, giving the same JSON:
//! - [`DayProofs`], the fast path: open a day once, then answer each ticket with a
//!   binary search over `entrants.tiles`' line offsets, one block of at most 256 lines
//!   read and hashed, the block's siblings read from the tiles and a binary search in
//!   `result.csv` (SPEC.md §12): O(log n) positioned reads.
//! - [`full_read::ticket_proof`], the old path: read and hash all of `entrants.csv`.
//!   [`DayProofs`] falls back to it when the day has no tiles (sealed before them, or
//!   the shared vectors) and when the tiles cannot answer a request soundly.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::limits::{
    entrants_max, read_at_most, ENTRANT_LINE_MAX, RESULT_LINE_MAX, TABLE_MAX, TEXT_MAX,
};
use crate::merkle::{
    inclusion_proof, leaf_hash, memchr_lines, root_from_inclusion, root_of_leaf_hashes,
    verify_inclusion, Hash,
};
use crate::rolls::{roll, POOL_ROLL, SPILL_ROLL};
use crate::snapshot::{parse_stock, Entrant, PoolIndex, StockLine, TicketId};
use crate::text::{DrawText, SealText};
use crate::tiles::{TilesFile, BLOCK_LINES, TILES_FILE};

pub mod full_read;

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The ticket id is not a ULID.
    #[error("{0:?} is not a ticket id (26 uppercase Crockford base32 characters)")]
    BadTicketId(String),
    /// The ticket is not in `entrants.csv`.
    #[error("ticket {0} is not among the sealed entrants")]
    UnknownTicket(String),
    /// A file is missing or unreadable.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A file breaks the format.
    #[error("{0}")]
    Invalid(String),
}

/// Everything a citizen needs to check one ticket by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketProof {
    /// The ticket.
    pub ticket_id: String,
    /// 0-based line index in `entrants.csv`.
    pub leaf_index: u64,
    /// Number of lines of `entrants.csv`.
    pub tree_size: u64,
    /// The line, without LF.
    pub leaf: String,
    /// SHA-256(0x00 ‖ leaf), hex.
    pub leaf_hash: String,
    /// RFC 6962 audit path, leaf side first, hex.
    pub audit_path: Vec<String>,
    /// `entrants_root` of `seal.txt`, hex.
    pub root: String,
    /// Whether the audit path leads from the leaf to `root`.
    pub path_verifies: bool,
    /// SHA-256 of `seal.txt`, hex.
    pub seal_id: String,
    /// The ticket's pharmacy.
    pub pharmacy_id: String,
    /// The pharmacy's district.
    pub district_id: String,
    /// The product.
    pub product_id: String,
    /// Whether the ticket also took part in roll two.
    pub flexible: bool,
    /// Whether the directory has been drawn; the fields below are `null` when not.
    pub drawn: bool,
    /// The draw's seed, hex.
    pub seed: Option<String>,
    /// `roll_1(leaf_index)`, 16 hex.
    pub roll_1: Option<String>,
    /// `roll_2(leaf_index)`, 16 hex.
    pub roll_2: Option<String>,
    /// The pool's cutoff as in `pools.csv`: 16 hex, or `-` when everyone (or
    /// no one, with 0 packs) won.
    pub pool_cutoff: Option<String>,
    /// For a flexible ticket whose group is in `spill.csv`: the group's roll-two
    /// cutoff (16 hex or `-`).
    pub spill_cutoff: Option<String>,
    /// Whether the ticket is in `result.csv`.
    pub won: Option<bool>,
    /// `1` or `2` when it won.
    pub won_roll: Option<u8>,
    /// The pharmacy where the pack is picked up, when it won.
    pub won_at: Option<String>,
}

/// Builds the proof for `ticket_id` from a sealed (and possibly drawn)
/// directory: [`DayProofs::open`] then [`DayProofs::proof`] (a caller with
/// many tickets for one day keeps the [`DayProofs`]). The published
/// `pools.csv`, `spill.csv` and `result.csv` are read, not recomputed:
/// `notary verify` is what checks them.
///
/// # Errors
/// [`ProofError::UnknownTicket`] when the ticket was not sealed; the others
/// for unreadable or invalid files.
pub fn ticket_proof(dir: &Path, ticket_id: &str) -> Result<TicketProof, ProofError> {
    // A malformed id is refused before any file is read, as it always was.
    TicketId::parse(ticket_id.as_bytes())
        .map_err(|_| ProofError::BadTicketId(ticket_id.to_string()))?;
    DayProofs::open(dir)?.proof(ticket_id)
}

/// How a proof was (or will be) made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofSource {
    /// From `entrants.tiles`: O(log n) reads, and the block read was proven to be the sealed
    /// one before anything was answered.
    Tiles,
    /// From all of `entrants.csv` ([`full_read::ticket_proof`]).
    FullRead(FullReadReason),
}

/// Why a proof was made by the full read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullReadReason {
    /// The day has no `entrants.tiles` (sealed before it existed, or received without it).
    Absent,
    /// `entrants.tiles` cannot serve this seal (another day's, truncated, unreadable, …).
    Unusable(String),
    /// For this request, `entrants.tiles` and `entrants.csv` did not lead to `seal.txt`'s
    /// `entrants_root`: one of them is damaged. The answer is the full read's.
    Disagrees(String),
}

impl std::fmt::Display for FullReadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => write!(f, "the day has no {TILES_FILE}"),
            Self::Unusable(why) | Self::Disagrees(why) => f.write_str(why),
        }
    }
}

/// A failure kept from [`DayProofs::open`] until a proof needs the file, so that each proof
/// fails (or not) exactly as the full read would: a day whose `spill.csv` is unreadable still
/// answers for tickets that are not flexible.
#[derive(Debug)]
enum Deferred {
    Io {
        file: &'static str,
        kind: io::ErrorKind,
        message: String,
    },
    Invalid(String),
}

impl Deferred {
    fn io(file: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |e| Self::Io {
            file,
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    fn error(&self) -> ProofError {
        match self {
            Self::Io {
                file,
                kind,
                message,
            } => ProofError::Io {
                file,
                source: io::Error::new(*kind, message.clone()),
            },
            Self::Invalid(why) => ProofError::Invalid(why.clone()),
        }
    }
}

/// The draw's files, as loaded by [`DayProofs::open`].
#[derive(Debug)]
struct Drawn {
    text: Result<DrawText, Deferred>,
    /// Per line of `pools.csv`: its last field (the cutoff).
    pool_cutoffs: Result<Vec<String>, Deferred>,
    /// Per (`district_id`, `product_id`) of `spill.csv`, first line wins: its last field.
    spill_cutoffs: Result<HashMap<(String, String), String>, Deferred>,
    /// `result.csv`, searched with positioned reads, and its length.
    result: Result<(File, u64), Deferred>,
}

/// How this day's proofs are made.
#[derive(Debug)]
enum Mode {
    Tiles(Fast),
    FullRead(FullReadReason),
}

/// The fast path's open files.
#[derive(Debug)]
struct Fast {
    tiles: TilesFile,
    entrants: File,
    entrants_len: u64,
}

/// One sealed day opened for proofs: the small files loaded once, `entrants.csv`,
/// `entrants.tiles` and `result.csv` kept open and read with positioned reads, so that
/// [`DayProofs::proof`] takes `&self` and may be called from any number of threads at once.
///
/// It is a snapshot of the directory when opened: open it again after the day is drawn.
#[derive(Debug)]
pub struct DayProofs {
    dir: PathBuf,
    seal: SealText,
    seal_id: Hash,
    mode: Mode,
    stock: Result<(Vec<StockLine>, PoolIndex), Deferred>,
    drawn: Option<Drawn>,
}

/// The sealed block of lines a proof is answered from.
struct Block {
    bytes: Vec<u8>,
    /// Each line's span in `bytes` (without its LF).
    spans: Vec<(usize, usize)>,
    leaves: Vec<Hash>,
    /// The block's audit path among the blocks (from the tiles).
    upper: Vec<Hash>,
}

impl Block {
    fn line(&self, j: usize) -> &[u8] {
        let (a, b) = self.spans[j];
        &self.bytes[a..b]
    }

    /// The first 26 bytes of line `j` (fewer if the line is shorter).
    fn key(&self, j: usize) -> &[u8] {
        let line = self.line(j);
        &line[..line.len().min(26)]
    }
}

/// A ticket's line found in a proven block.
struct Found {
    index: u64,
    line: Vec<u8>,
    leaf: Hash,
    path: Vec<Hash>,
}

enum Located {
    Found(Found),
    Absent,
}

impl Fast {
    fn first_ticket(&self, b: u64) -> io::Result<[u8; 26]> {
        let at = self.tiles.offset(b)?;
        let mut key = [0u8; 26];
        self.entrants.read_exact_at(&mut key, at)?;
        Ok(key)
    }

    /// Reads block `b` of `entrants.csv` where the tiles say it lies and proves it is sealed
    /// block `b`: its root, with its siblings from the tiles, must lead to `root`.
    fn block(&self, b: u64, n: u64, root: &Hash) -> Result<Block, String> {
        let io = |e: io::Error| format!("reading block {b} through {TILES_FILE}: {e}");
        let blocks = self.tiles.layout().blocks();
        let (start, end) = (
            self.tiles.offset(b).map_err(io)?,
            self.tiles.offset(b + 1).map_err(io)?,
        );
        let count = BLOCK_LINES.min(n - b * BLOCK_LINES);
        // The offsets are not trusted: they bound nothing until checked against what the
        // block's lines can take.
        if end <= start || end - start > count * ENTRANT_LINE_MAX || end > self.entrants_len {
            return Err(format!(
                "{TILES_FILE} places block {b} at bytes {start}..{end} of entrants.csv, where \
                 {count} lines cannot lie"
            ));
        }
        let mut bytes = vec![0u8; (end - start) as usize];
        self.entrants.read_exact_at(&mut bytes, start).map_err(io)?;
        let mut spans = Vec::with_capacity(count as usize);
        let mut at = 0usize;
        for line in memchr_lines(&bytes) {
            spans.push((at, at + line.len()));
            at += line.len() + 1;
        }
        if spans.len() as u64 != count {
            return Err(format!(
                "block {b} at the offsets in {TILES_FILE} has {} lines of entrants.csv, not {count}",
                spans.len()
            ));
        }
        let leaves: Vec<Hash> = spans
            .iter()
            .map(|&(a, z)| leaf_hash(&bytes[a..z]))
            .collect();
        let upper = self.tiles.upper_path(b).map_err(io)?;
        match root_from_inclusion(b, blocks, &root_of_leaf_hashes(&leaves), &upper) {
            Ok(r) if &r == root => Ok(Block {
                bytes,
                spans,
                leaves,
                upper,
            }),
            _ => Err(format!(
                "block {b} of entrants.csv (lines {} to {}) with the hashes of {TILES_FILE} does \
                 not lead to seal.txt's entrants_root",
                b * BLOCK_LINES + 1,
                b * BLOCK_LINES + count
            )),
        }
    }

    /// Finds `ticket` among the `n` sealed lines. Every answer rests on proven blocks: a
    /// found line with a verified audit path, or an absence shown by the proven lines
    /// around where the ticket would be (the sealed lines ascend). `Err` when the files do
    /// not agree with the seal.
    fn locate(&self, ticket: &[u8; 26], n: u64, root: &Hash) -> Result<Located, String> {
        if n == 0 {
            return Ok(Located::Absent);
        }
        let blocks = self.tiles.layout().blocks();
        let io = |e: io::Error| format!("searching entrants.csv through {TILES_FILE}: {e}");
        // The last block whose first ticket is not above the ticket (block 0 if none).
        let (mut lo, mut hi) = (0u64, blocks);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.first_ticket(mid).map_err(io)? <= *ticket {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let b = lo;
        let block = self.block(b, n, root)?;
        let hit = (0..block.spans.len()).find(|&j| {
            let line = block.line(j);
            line.len() > 26 && &line[..26] == ticket && line[26] == b','
        });
        let Some(j) = hit else {
            let last = block.spans.len() - 1;
            let before_first = ticket.as_slice() < block.key(0);
            let after_last = ticket.as_slice() > block.key(last);
            return if before_first && b > 0 {
                Err(format!(
                    "the search through {TILES_FILE} passed the ticket's block"
                ))
            } else if after_last && b + 1 < blocks {
                // The gap between two blocks: the next block's first line must be above it.
                let next = self.block(b + 1, n, root)?;
                if ticket.as_slice() < next.key(0) {
                    Ok(Located::Absent)
                } else {
                    Err(format!(
                        "the search through {TILES_FILE} stopped before the ticket's block"
                    ))
                }
            } else {
                Ok(Located::Absent)
            };
        };
        let index = b * BLOCK_LINES + j as u64;
        let mut path = inclusion_proof(&block.leaves, j as u64).map_err(|e| e.to_string())?;
        path.extend_from_slice(&block.upper);
        let leaf = block.leaves[j];
        // Proven already (the block led to the root); checked once more as the citizen will.
        verify_inclusion(index, n, &leaf, &path, root)
            .map_err(|e| format!("the audit path of line {}: {e}", index + 1))?;
        Ok(Located::Found(Found {
            index,
            line: block.line(j).to_vec(),
            leaf,
            path,
        }))
    }
}

impl DayProofs {
    /// Opens a sealed (and possibly drawn) directory: reads `seal.txt`, `stock.csv`,
    /// `draw.txt`, `pools.csv`, `spill.csv` and `entrants.tiles`' header once, and opens
    /// `entrants.csv` and `result.csv`. Without a usable `entrants.tiles`, proofs are made by
    /// the full read ([`DayProofs::source`] says which).
    ///
    /// # Errors
    /// [`ProofError`] when `seal.txt` is unreadable or invalid, or `entrants.csv` cannot be
    /// opened. Problems with the other files are reported by the proofs that need them.
    pub fn open(dir: &Path) -> Result<Self, ProofError> {
        let seal_bytes =
            read_at_most(&dir.join("seal.txt"), TEXT_MAX).map_err(|source| ProofError::Io {
                file: "seal.txt",
                source,
            })?;
        let seal = SealText::parse(&seal_bytes).map_err(|e| ProofError::Invalid(e.to_string()))?;
        let io_entrants = |source| ProofError::Io {
            file: "entrants.csv",
            source,
        };
        let entrants = File::open(dir.join("entrants.csv")).map_err(io_entrants)?;
        let entrants_len = entrants.metadata().map_err(io_entrants)?.len();
        let mode = match TilesFile::open(&dir.join(TILES_FILE), seal.entrants, &seal.entrants_root)
        {
            Ok(None) => Mode::FullRead(FullReadReason::Absent),
            Err(why) => Mode::FullRead(FullReadReason::Unusable(why)),
            Ok(Some(tiles)) => match tiles.offset(tiles.layout().blocks()) {
                Ok(end) if end == entrants_len => Mode::Tiles(Fast {
                    tiles,
                    entrants,
                    entrants_len,
                }),
                Ok(end) => Mode::FullRead(FullReadReason::Unusable(format!(
                    "{TILES_FILE} describes an entrants.csv of {end} bytes, the file has {entrants_len}"
                ))),
                Err(e) => Mode::FullRead(FullReadReason::Unusable(format!(
                    "cannot read {TILES_FILE}: {e}"
                ))),
            },
        };
        let stock = read_at_most(&dir.join("stock.csv"), TABLE_MAX)
            .map_err(Deferred::io("stock.csv"))
            .and_then(|b| parse_stock(&b).map_err(|e| Deferred::Invalid(format!("stock.csv {e}"))))
            .map(|lines| {
                let index = PoolIndex::new(&lines);
                (lines, index)
            });
        let drawn = dir
            .join("draw.txt")
            .exists()
            .then(|| Drawn::load(dir, seal.entrants));
        Ok(Self {
            dir: dir.to_path_buf(),
            seal_id: seal.seal_id(),
            seal,
            mode,
            stock,
            drawn,
        })
    }

    /// How proofs are answered: [`ProofSource::Tiles`], or the full read and why. (A single
    /// proof may still be answered by the full read: see [`DayProofs::proof_with_source`].)
    #[must_use]
    pub fn source(&self) -> ProofSource {
        match &self.mode {
            Mode::Tiles(_) => ProofSource::Tiles,
            Mode::FullRead(why) => ProofSource::FullRead(why.clone()),
        }
    }

    /// The proof for `ticket_id`: the same as [`full_read::ticket_proof`] gives for a sound
    /// day, in O(log n) reads when the day has tiles.
    ///
    /// # Errors
    /// [`ProofError::UnknownTicket`] when the ticket was not sealed; the others
    /// for unreadable or invalid files.
    pub fn proof(&self, ticket_id: &str) -> Result<TicketProof, ProofError> {
        self.proof_with_source(ticket_id).0
    }

    /// [`DayProofs::proof`], also saying how it was made. The tiles answer only from a block
    /// of `entrants.csv` proven against `seal.txt`'s `entrants_root`; when that proof fails
    /// (damaged tiles or a damaged `entrants.csv`), the request is answered by the full read
    /// and the source says why, so that a caller can report the damage (`notary proof` warns
    /// on stderr; `notary verify` names the file).
    pub fn proof_with_source(
        &self,
        ticket_id: &str,
    ) -> (Result<TicketProof, ProofError>, ProofSource) {
        let fast = match &self.mode {
            Mode::FullRead(why) => {
                return (
                    full_read::ticket_proof(&self.dir, ticket_id),
                    ProofSource::FullRead(why.clone()),
                )
            }
            Mode::Tiles(fast) => fast,
        };
        let Ok(ticket) = TicketId::parse(ticket_id.as_bytes()) else {
            return (
                Err(ProofError::BadTicketId(ticket_id.to_string())),
                ProofSource::Tiles,
            );
        };
        match fast.locate(
            ticket.as_bytes(),
            self.seal.entrants,
            &self.seal.entrants_root,
        ) {
            Ok(Located::Found(found)) => {
                (self.assemble(ticket_id, &ticket, found), ProofSource::Tiles)
            }
            Ok(Located::Absent) => (
                Err(ProofError::UnknownTicket(ticket_id.to_string())),
                ProofSource::Tiles,
            ),
            Err(why) => (
                full_read::ticket_proof(&self.dir, ticket_id),
                ProofSource::FullRead(FullReadReason::Disagrees(why)),
            ),
        }
    }

    /// The rest of the proof from the loaded files, field for field as the full read.
    fn assemble(
        &self,
        ticket_id: &str,
        ticket: &TicketId,
        found: Found,
    ) -> Result<TicketProof, ProofError> {
        let Found {
            index,
            line,
            leaf,
            path,
        } = found;
        let entrant = Entrant::parse_line(&line)
            .map_err(|e| ProofError::Invalid(format!("entrants.csv line {}: {e}", index + 1)))?;
        let (stock, pools) = self.stock.as_ref().map_err(Deferred::error)?;
        let pool = pools
            .get(&entrant.pharmacy_id, &entrant.product_id)
            .ok_or_else(|| ProofError::Invalid("the ticket's pool is not in stock.csv".into()))?;
        let district = stock[pool as usize].district_id;
        let mut proof = TicketProof {
            ticket_id: ticket_id.to_string(),
            leaf_index: index,
            tree_size: self.seal.entrants,
            leaf: String::from_utf8_lossy(&line).into_owned(),
            leaf_hash: hex::encode(leaf),
            audit_path: path.iter().map(hex::encode).collect(),
            root: hex::encode(self.seal.entrants_root),
            // `locate` answers only with a verified path.
            path_verifies: true,
            seal_id: hex::encode(self.seal_id),
            pharmacy_id: entrant.pharmacy_id.to_string(),
            district_id: district.to_string(),
            product_id: entrant.product_id.to_string(),
            flexible: entrant.flexible,
            drawn: false,
            seed: None,
            roll_1: None,
            roll_2: None,
            pool_cutoff: None,
            spill_cutoff: None,
            won: None,
            won_roll: None,
            won_at: None,
        };
        let Some(drawn) = &self.drawn else {
            return Ok(proof);
        };
        let text = drawn.text.as_ref().map_err(Deferred::error)?;
        proof.drawn = true;
        proof.seed = Some(hex::encode(text.seed));
        proof.roll_1 = Some(format!("{:016x}", roll(&text.seed, POOL_ROLL, index)));
        proof.roll_2 = Some(format!("{:016x}", roll(&text.seed, SPILL_ROLL, index)));
        let cutoffs = drawn.pool_cutoffs.as_ref().map_err(Deferred::error)?;
        proof.pool_cutoff = cutoffs.get(pool as usize).cloned();
        if entrant.flexible {
            let spill = drawn.spill_cutoffs.as_ref().map_err(Deferred::error)?;
            proof.spill_cutoff = spill
                .get(&(district.to_string(), entrant.product_id.to_string()))
                .cloned();
        }
        let (result, len) = drawn.result.as_ref().map_err(Deferred::error)?;
        let hit = find_sorted_line(result, *len, ticket.as_bytes())
            .map_err(|source| ProofError::Io {
                file: "result.csv",
                source,
            })?
            .filter(|l| l.len() > 27 && l[26] == b',');
        proof.won = Some(hit.is_some());
        if let Some(l) = hit {
            let text = String::from_utf8_lossy(&l);
            let fields: Vec<&str> = text.split(',').collect();
            if fields.len() == 4 {
                proof.won_at = Some(fields[1].to_string());
                proof.won_roll = fields[3].parse().ok();
            }
        }
        Ok(proof)
    }
}

impl Drawn {
    fn load(dir: &Path, entrants: u64) -> Self {
        let table = |file: &'static str| {
            read_at_most(&dir.join(file), TABLE_MAX)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(Deferred::io(file))
        };
        let text = read_at_most(&dir.join("draw.txt"), TEXT_MAX)
            .map_err(Deferred::io("draw.txt"))
            .and_then(|b| DrawText::parse(&b).map_err(|e| Deferred::Invalid(e.to_string())));
        // `str::lines` and the last comma-separated field: what the full read looks up.
        let pool_cutoffs = table("pools.csv").map(|t| {
            t.lines()
                .map(|l| l.rsplit(',').next().unwrap_or_default().to_string())
                .collect()
        });
        let spill_cutoffs = table("spill.csv").map(|t| {
            let mut map = HashMap::new();
            for l in t.lines() {
                // "starts with `district,product,`": the identifiers hold no comma.
                let mut fields = l.splitn(3, ',');
                if let (Some(d), Some(p), Some(_)) = (fields.next(), fields.next(), fields.next()) {
                    map.entry((d.to_string(), p.to_string()))
                        .or_insert_with(|| l.rsplit(',').next().unwrap_or_default().to_string());
                }
            }
            map
        });
        let result = File::open(dir.join("result.csv"))
            .and_then(|f| {
                let len = f.metadata()?.len();
                // Each winner is a sealed entrant.
                let max = entrants_max(entrants, RESULT_LINE_MAX);
                if len > max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("it is {len} bytes, more than the {max} a valid file can have"),
                    ));
                }
                Ok((f, len))
            })
            .map_err(Deferred::io("result.csv"));
        Self {
            text,
            pool_cutoffs,
            spill_cutoffs,
            result,
        }
    }
}

/// Below this many bytes, the rest of a binary search reads the range whole.
const SEARCH_WINDOW: u64 = 4096;
/// Bytes read to reach the end of any valid `result.csv` line.
const LINE_READ: usize = 2 * RESULT_LINE_MAX as usize;

/// Reads up to `buf.len()` bytes at `at` (fewer at the end of the file).
fn read_upto(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The line of a file of `len` bytes whose lines ascend by their first 26 bytes that starts
/// with `key`, by binary search over byte positions (lines have variable length): O(log len)
/// positioned reads of one line each, then one read of at most [`SEARCH_WINDOW`] bytes.
fn find_sorted_line(file: &File, len: u64, key: &[u8; 26]) -> io::Result<Option<Vec<u8>>> {
    // Invariant: a line starting with `key`, if any, starts in [lo, hi); lo is a line start.
    let (mut lo, mut hi) = (0u64, len);
    let mut buf = [0u8; LINE_READ];
    while hi - lo > SEARCH_WINDOW {
        let mid = lo + (hi - lo) / 2;
        // The first line starting at or after `mid`: after the first LF at or after mid − 1.
        let got = read_upto(file, &mut buf, mid - 1)?;
        let Some(lf) = memchr::memchr(b'\n', &buf[..got]) else {
            hi = mid;
            continue;
        };
        let start = mid + lf as u64;
        if start >= hi {
            hi = mid;
            continue;
        }
        let got = read_upto(file, &mut buf, start)?;
        let line = &buf[..got];
        let line = &line[..memchr::memchr(b'\n', line).unwrap_or(got)];
        match line[..line.len().min(26)].cmp(key.as_slice()) {
            std::cmp::Ordering::Less => lo = start,
            std::cmp::Ordering::Equal if line.len() >= 26 => return Ok(Some(line.to_vec())),
            _ => hi = start,
        }
    }
    let end = hi.saturating_add(LINE_READ as u64).min(len);
    let mut window = vec![0u8; (end - lo) as usize];
    let got = read_upto(file, &mut window, lo)?;
    window.truncate(got);
    let complete = if lo + got as u64 == len {
        &window[..]
    } else {
        // A piece cut by the window's end is not a whole line.
        &window[..window
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)]
    };
    let found = memchr_lines(complete)
        .find(|l| l.len() >= 26 && &l[..26] == key)
        .map(<[u8]>::to_vec);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn day_proofs_can_be_shared_between_threads() {
        assert_send_sync::<DayProofs>();
    }

    #[test]
    fn the_sorted_line_search_finds_every_line_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0usize, 1, 2, 3, 50, 51, 200, 1000, 3001] {
            // Keys 0, 2, 4, … as 26 digits; lines of varying length as in result.csv.
            let mut text = String::new();
            for i in 0..n {
                text.push_str(&format!(
                    "{:026},PH{},SURG,{}\n",
                    2 * i,
                    "0".repeat(i % 13),
                    1 + i % 2
                ));
            }
            let path = dir.path().join(format!("r{n}"));
            std::fs::write(&path, &text).unwrap();
            let file = File::open(&path).unwrap();
            let len = text.len() as u64;
            for k in 0..2 * n + 1 {
                let key: [u8; 26] = format!("{k:026}").into_bytes().try_into().unwrap();
                let got = find_sorted_line(&file, len, &key).unwrap();
                if k % 2 == 0 && k < 2 * n {
                    let want = text.lines().nth(k / 2).unwrap().as_bytes().to_vec();
                    assert_eq!(got, Some(want), "n {n} key {k}");
                } else {
                    assert_eq!(got, None, "n {n} key {k}");
                }
            }
        }
    }
}
