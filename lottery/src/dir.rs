//! Writing a sealed and a drawn snapshot directory (DESIGN.md, "Sealed
//! snapshot format (version 1)", "The two-roll draw (version 1)"), shared by
//! the service's seal/draw commands and `notary sample`.
//!
//! These are the only functions of the crate that write files, and they write
//! only into the directory they are handed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::draw::{draw, DrawError, DrawOutcome};
use crate::merkle::{Hash, GROUP_LINES};
use crate::sign::sign;
use crate::snapshot::{check_pools, parse_stock, stock_csv, Entrant, SnapshotError, StockLine};
use crate::text::{
    check_date, check_material, check_party, check_reveals, check_timestamp, Commit, DrawText,
    Reveal, SealText, SeedText, TextError,
};
use crate::tiles::{group_blocks, Tiles, TilesBuilder, TILES_FILE};
use crate::{NoProgress, Progress};

/// Why a directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// Writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The entrants or stock break a snapshot rule.
    #[error("snapshot rule broken: {0}")]
    Snapshot(#[from] SnapshotError),
    /// A seal field, reveal or material is invalid.
    #[error(transparent)]
    Text(#[from] TextError),
    /// The draw refused its input.
    #[error(transparent)]
    Draw(#[from] DrawError),
    /// The audit refused the draw's outcome (it cannot, for a draw this crate made).
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A seal field is malformed.
    #[error("{0}")]
    Field(String),
}

/// The seal's fields that are not computed from the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFields {
    /// `YYYY-MM-DD`.
    pub draw_date: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub cutoff: String,
    /// Seal id of the previous seal, if any.
    pub previous: Option<Hash>,
    /// Commitments of the parties, in order.
    pub commits: Vec<Commit>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DirError> {
    std::fs::write(path, bytes).map_err(io_err(path))
}

/// Checks the snapshot rules on in-memory entrants: ascending tickets, unique
/// person tags, listed pools.
///
/// # Errors
/// The first line (1-based) breaking a rule.
pub fn check_entrants(entrants: &[Entrant], stock: &[StockLine]) -> Result<(), SnapshotError> {
    for (i, w) in entrants.windows(2).enumerate() {
        if w[1].ticket_id <= w[0].ticket_id {
            return Err(SnapshotError::TicketOrder { line: i as u64 + 2 });
        }
    }
    let mut tags: Vec<u128> = entrants
        .par_iter()
        .map(|e| u128::from_be_bytes(e.person_tag.0))
        .collect();
    tags.par_sort_unstable();
    if tags.par_windows(2).any(|w| w[0] == w[1]) {
        let mut seen = std::collections::HashMap::new();
        for (i, e) in entrants.iter().enumerate() {
            if let Some(&first) = seen.get(&e.person_tag) {
                return Err(SnapshotError::DuplicatePersonTag {
                    line: i as u64 + 1,
                    first_line: first,
                });
            }
            seen.insert(e.person_tag, i as u64 + 1);
        }
    }
    check_pools(entrants, stock)
}

/// Writes `entrants.csv`, hashing it on every core as it goes; returns its
/// proof tiles, whose root is the tree head.
fn write_entrants(
    path: &Path,
    entrants: &[Entrant],
    progress: &dyn Progress,
) -> Result<Tiles, DirError> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut tiles = TilesBuilder::new();
    progress.start("write entrants.csv", entrants.len() as u64);
    const BATCH: usize = GROUP_LINES * 64;
    for (b, batch) in entrants.chunks(BATCH).enumerate() {
        let parts: Vec<(Vec<u8>, bool)> = batch
            .par_chunks(GROUP_LINES)
            .map(|group| {
                let mut bytes = Vec::with_capacity(group.len() * 80);
                for e in group {
                    e.write_line(&mut bytes);
                }
                (bytes, group.len() == GROUP_LINES)
            })
            .collect();
        let blocks: Vec<Option<Vec<(Hash, u64)>>> = parts
            .par_iter()
            .map(|(bytes, complete)| complete.then(|| group_blocks(bytes)))
            .collect();
        for ((bytes, _), blocks) in parts.iter().zip(blocks) {
            out.write_all(bytes).map_err(io_err(path))?;
            match blocks {
                // Complete groups come first and hold whole blocks, so every block is aligned.
                Some(blocks) => blocks.into_iter().for_each(|(root, len)| {
                    tiles.push_block(root, len);
                }),
                None => crate::merkle::memchr_lines(bytes).for_each(|l| {
                    tiles.push_line(l);
                }),
            }
        }
        progress.set(((b * BATCH) + batch.len()) as u64);
    }
    out.flush().map_err(io_err(path))?;
    progress.finish();
    Ok(tiles.finish())
}

/// Writes `entrants.csv`, its proof tiles `entrants.tiles` (SPEC.md §12),
/// `stock.csv`, `seal.txt` and `seal.sig` into `dir` (created if missing) after
/// checking every snapshot rule.
///
/// # Errors
/// [`DirError`] when a rule or field is broken or a write fails.
pub fn write_seal(
    dir: &Path,
    entrants: &[Entrant],
    stock: &[StockLine],
    fields: &SealFields,
    key: &SigningKey,
) -> Result<SealText, DirError> {
    write_seal_with_progress(dir, entrants, stock, fields, key, &NoProgress)
}

/// [`write_seal`] with progress reporting.
///
/// # Errors
/// As [`write_seal`].
pub fn write_seal_with_progress(
    dir: &Path,
    entrants: &[Entrant],
    stock: &[StockLine],
    fields: &SealFields,
    key: &SigningKey,
    progress: &dyn Progress,
) -> Result<SealText, DirError> {
    if !check_date(&fields.draw_date) {
        return Err(DirError::Field(format!(
            "draw_date {:?} is not YYYY-MM-DD",
            fields.draw_date
        )));
    }
    if !check_timestamp(&fields.cutoff) {
        return Err(DirError::Field(format!(
            "cutoff {:?} is not YYYY-MM-DDTHH:MM:SSZ",
            fields.cutoff
        )));
    }
    for (i, c) in fields.commits.iter().enumerate() {
        if !check_party(&c.party) || fields.commits[..i].iter().any(|o| o.party == c.party) {
            return Err(DirError::Field(format!(
                "party {:?} is invalid or repeated",
                c.party
            )));
        }
    }
    let stock_bytes = stock_csv(stock);
    parse_stock(&stock_bytes)?;
    check_entrants(entrants, stock)?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tiles = write_entrants(&dir.join("entrants.csv"), entrants, progress)?;
    let root = tiles.root();
    let tiles_path = dir.join(TILES_FILE);
    tiles
        .write_file(&tiles_path, false)
        .map_err(io_err(&tiles_path))?;
    write_file(&dir.join("stock.csv"), &stock_bytes)?;
    let seal = SealText {
        draw_date: fields.draw_date.clone(),
        cutoff: fields.cutoff.clone(),
        entrants: entrants.len() as u64,
        entrants_root: root,
        stock_sha256: Sha256::digest(&stock_bytes).into(),
        previous: fields.previous,
        commits: fields.commits.clone(),
    };
    let seal_bytes = seal.to_bytes();
    write_file(&dir.join("seal.txt"), &seal_bytes)?;
    write_file(&dir.join("seal.sig"), sign(key, &seal_bytes).as_bytes())?;
    Ok(seal)
}

/// Runs the draw for a sealed directory's data and writes `result.csv`,
/// `pools.csv`, `spill.csv`, the fairness audit `audit.txt` (SPEC.md §13), `draw.txt` and
/// `draw.sig` into `dir`.
///
/// The reveals are checked against the seal's commitments first; the draw is
/// refused when one does not match (DESIGN.md "Seed").
///
/// # Errors
/// [`DirError`] for a bad reveal or material, a draw error or a write failure.
pub fn write_draw(
    dir: &Path,
    entrants: &[Entrant],
    stock: &[StockLine],
    seal: &SealText,
    reveals: Vec<Reveal>,
    material: String,
    key: &SigningKey,
) -> Result<(DrawText, DrawOutcome), DirError> {
    write_draw_with(
        dir,
        seal,
        reveals,
        material,
        key,
        |seed| draw(entrants, stock, seed),
        |outcome| crate::audit::audit_outcome(entrants, stock, outcome),
    )
}

/// [`write_draw`] over a streaming scan of `entrants.csv` (see [`crate::draw::draw_scanned`]).
///
/// # Errors
/// As [`write_draw`].
pub fn write_draw_scanned(
    dir: &Path,
    scan: &crate::scan::EntrantScan,
    stock: &[StockLine],
    seal: &SealText,
    reveals: Vec<Reveal>,
    material: String,
    key: &SigningKey,
) -> Result<(DrawText, DrawOutcome), DirError> {
    write_draw_with(
        dir,
        seal,
        reveals,
        material,
        key,
        |seed| crate::draw::draw_scanned(scan, stock, seed),
        |outcome| {
            let pools = crate::snapshot::PoolIndex::new(stock);
            crate::audit::audit_scanned_outcome(
                &scan.entries,
                &scan.tickets,
                stock,
                &pools,
                outcome,
            )
        },
    )
}

fn write_draw_with(
    dir: &Path,
    seal: &SealText,
    reveals: Vec<Reveal>,
    material: String,
    key: &SigningKey,
    run: impl FnOnce(&[u8; 32]) -> Result<DrawOutcome, DrawError>,
    audit: impl FnOnce(&DrawOutcome) -> Result<crate::audit::Audit, crate::audit::AuditError>,
) -> Result<(DrawText, DrawOutcome), DirError> {
    check_reveals(&seal.commits, &reveals)?;
    if !check_material(&material) {
        return Err(DirError::Field(
            "material must be one non-empty line without control characters or surrounding spaces"
                .into(),
        ));
    }
    let seed_text = SeedText {
        seal_id: seal.seal_id(),
        reveals,
        material,
    };
    let seed = seed_text.seed();
    let outcome = run(&seed)?;
    let audit = audit(&outcome)?;

    let drawn = DrawText {
        seal_id: seed_text.seal_id,
        seed,
        winners: outcome.winners.len() as u64,
        result_sha256: Sha256::digest(&outcome.result_csv).into(),
        pools_sha256: Sha256::digest(&outcome.pools_csv).into(),
        spill_sha256: Sha256::digest(&outcome.spill_csv).into(),
        reveals: seed_text.reveals,
        material: seed_text.material,
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    write_file(&dir.join("result.csv"), &outcome.result_csv)?;
    write_file(&dir.join("pools.csv"), &outcome.pools_csv)?;
    write_file(&dir.join("spill.csv"), &outcome.spill_csv)?;
    // Derived and unsigned, like entrants.tiles: the notary recomputes it byte for byte.
    // Written before draw.txt, so a day with draw.txt has its whole audit.txt.
    write_file(&dir.join(crate::audit::AUDIT_FILE), &audit.text)?;
    let draw_bytes = drawn.to_bytes();
    write_file(&dir.join("draw.txt"), &draw_bytes)?;
    write_file(&dir.join("draw.sig"), sign(key, &draw_bytes).as_bytes())?;
    Ok((drawn, outcome))
}
