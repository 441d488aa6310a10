//! The full-read proof: read all of `entrants.csv`, find the ticket's line by a scan, rebuild
//! the tree's subtrees for its audit path. O(n) per proof (0.35 s of CPU at a million
//! entrants), and the only way without `entrants.tiles`.
//!
//! [`super::DayProofs`] answers with it for a day sealed without tiles (and the shared
//! version-1 vectors), and for a request the tiles could not answer soundly. It is also the
//! reference the fast path is tested against: its answers define what a proof says.

use std::path::Path;

use super::{ProofError, TicketProof};
use crate::limits::{entrants_max, file_max, read_at_most, ENTRANT_LINE_MAX, RESULT_LINE_MAX};
use crate::merkle::{inclusion_proof_for_lines, verify_inclusion};
use crate::rolls::{roll, POOL_ROLL, SPILL_ROLL};
use crate::snapshot::{parse_stock, Entrant, PoolIndex, TicketId};
use crate::text::{DrawText, SealText};

/// Reads a file whole within `max` bytes (see [`crate::limits`]).
fn read(dir: &Path, file: &'static str, max: u64) -> Result<Vec<u8>, ProofError> {
    read_at_most(&dir.join(file), max).map_err(|source| ProofError::Io { file, source })
}

/// Reads one of the day's small files (whose bound is fixed).
fn read_small(dir: &Path, file: &'static str) -> Result<Vec<u8>, ProofError> {
    read(dir, file, file_max(file).unwrap_or(crate::limits::TEXT_MAX))
}

/// Finds the line of a ticket in `entrants.csv` bytes.
fn find_ticket<'a>(bytes: &'a [u8], ticket: &[u8; 26]) -> Option<(u64, &'a [u8])> {
    crate::merkle::memchr_lines(bytes)
        .enumerate()
        .find(|(_, line)| line.len() > 26 && &line[..26] == ticket && line[26] == b',')
        .map(|(i, line)| (i as u64, line))
}

/// Builds the proof for `ticket_id` from a sealed (and possibly drawn) directory by reading
/// every file whole. The published `pools.csv`, `spill.csv` and `result.csv` are read, not
/// recomputed: `notary verify` is what checks them. `entrants.csv` is read only when it is no
/// longer than the entrants `seal.txt` counts can be.
///
/// # Errors
/// [`ProofError::UnknownTicket`] when the ticket was not sealed; the others
/// for unreadable or invalid files.
pub fn ticket_proof(dir: &Path, ticket_id: &str) -> Result<TicketProof, ProofError> {
    let ticket = TicketId::parse(ticket_id.as_bytes())
        .map_err(|_| ProofError::BadTicketId(ticket_id.to_string()))?;
    let seal_bytes = read_small(dir, "seal.txt")?;
    let seal = SealText::parse(&seal_bytes).map_err(|e| ProofError::Invalid(e.to_string()))?;
    let entrants = read(
        dir,
        "entrants.csv",
        entrants_max(seal.entrants, ENTRANT_LINE_MAX),
    )?;
    let (index, line) = find_ticket(&entrants, ticket.as_bytes())
        .ok_or_else(|| ProofError::UnknownTicket(ticket_id.to_string()))?;
    let entrant = Entrant::parse_line(line)
        .map_err(|e| ProofError::Invalid(format!("entrants.csv line {}: {e}", index + 1)))?;
    let leaf_text = String::from_utf8_lossy(line).into_owned();
    let (leaf, path, size) = inclusion_proof_for_lines(&entrants, index)
        .map_err(|e| ProofError::Invalid(e.to_string()))?;
    drop(entrants);
    let path_verifies = verify_inclusion(index, size, &leaf, &path, &seal.entrants_root).is_ok();

    let stock = parse_stock(&read_small(dir, "stock.csv")?)
        .map_err(|e| ProofError::Invalid(format!("stock.csv {e}")))?;
    let pool = PoolIndex::new(&stock)
        .get(&entrant.pharmacy_id, &entrant.product_id)
        .ok_or_else(|| ProofError::Invalid("the ticket's pool is not in stock.csv".into()))?;
    let district = stock[pool as usize].district_id;

    let mut proof = TicketProof {
        ticket_id: ticket_id.to_string(),
        leaf_index: index,
        tree_size: size,
        leaf: leaf_text,
        leaf_hash: hex::encode(leaf),
        audit_path: path.iter().map(hex::encode).collect(),
        root: hex::encode(seal.entrants_root),
        path_verifies,
        seal_id: hex::encode(seal.seal_id()),
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
    if !dir.join("draw.txt").exists() {
        return Ok(proof);
    }
    let drawn = DrawText::parse(&read_small(dir, "draw.txt")?)
        .map_err(|e| ProofError::Invalid(e.to_string()))?;
    proof.drawn = true;
    proof.seed = Some(hex::encode(drawn.seed));
    proof.roll_1 = Some(format!("{:016x}", roll(&drawn.seed, POOL_ROLL, index)));
    proof.roll_2 = Some(format!("{:016x}", roll(&drawn.seed, SPILL_ROLL, index)));

    let pools = String::from_utf8_lossy(&read_small(dir, "pools.csv")?).into_owned();
    proof.pool_cutoff = pools
        .lines()
        .nth(pool as usize)
        .and_then(|l| l.rsplit(',').next())
        .map(str::to_string);
    if entrant.flexible {
        let spill = String::from_utf8_lossy(&read_small(dir, "spill.csv")?).into_owned();
        let prefix = format!("{},{},", district, entrant.product_id);
        proof.spill_cutoff = spill
            .lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(',').next())
            .map(str::to_string);
    }
    let result = read(
        dir,
        "result.csv",
        entrants_max(seal.entrants, RESULT_LINE_MAX),
    )?;
    let hit = crate::merkle::memchr_lines(&result)
        .find(|l| l.len() > 27 && &l[..26] == ticket.as_bytes() && l[26] == b',');
    proof.won = Some(hit.is_some());
    if let Some(l) = hit {
        let text = String::from_utf8_lossy(l);
        let fields: Vec<&str> = text.split(',').collect();
        if fields.len() == 4 {
            proof.won_at = Some(fields[1].to_string());
            proof.won_roll = fields[3].parse().ok();
        }
    }
    Ok(proof)
}
