//! One ticket's proof: "its leaf and audit path prove it was sealed; the seed
//! and its index give its rolls; the published cutoffs say whether it had to
//! win" (DESIGN.md, "The two-roll draw (version 1)").
//!
//! The JSON of [`TicketProof`] is what `notary proof` prints and what the
//! service's HTTP API returns.

use std::path::Path;

use serde::Serialize;

use crate::merkle::{inclusion_proof_for_lines, verify_inclusion};
use crate::rolls::{roll, POOL_ROLL, SPILL_ROLL};
use crate::snapshot::{parse_stock, Entrant, PoolIndex, TicketId};
use crate::text::{DrawText, SealText};

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

fn read(dir: &Path, file: &'static str) -> Result<Vec<u8>, ProofError> {
    std::fs::read(dir.join(file)).map_err(|source| ProofError::Io { file, source })
}

/// Finds the line of a ticket in `entrants.csv` bytes.
fn find_ticket<'a>(bytes: &'a [u8], ticket: &[u8; 26]) -> Option<(u64, &'a [u8])> {
    crate::merkle::memchr_lines(bytes)
        .enumerate()
        .find(|(_, line)| line.len() > 26 && &line[..26] == ticket && line[26] == b',')
        .map(|(i, line)| (i as u64, line))
}

/// Builds the proof for `ticket_id` from a sealed (and possibly drawn)
/// directory. The published `pools.csv`, `spill.csv` and `result.csv` are
/// read, not recomputed: `notary verify` is what checks them.
///
/// # Errors
/// [`ProofError::UnknownTicket`] when the ticket was not sealed; the others
/// for unreadable or invalid files.
pub fn ticket_proof(dir: &Path, ticket_id: &str) -> Result<TicketProof, ProofError> {
    let ticket = TicketId::parse(ticket_id.as_bytes())
        .map_err(|_| ProofError::BadTicketId(ticket_id.to_string()))?;
    let seal_bytes = read(dir, "seal.txt")?;
    let seal = SealText::parse(&seal_bytes).map_err(|e| ProofError::Invalid(e.to_string()))?;
    let entrants = read(dir, "entrants.csv")?;
    let (index, line) = find_ticket(&entrants, ticket.as_bytes())
        .ok_or_else(|| ProofError::UnknownTicket(ticket_id.to_string()))?;
    let entrant = Entrant::parse_line(line)
        .map_err(|e| ProofError::Invalid(format!("entrants.csv line {}: {e}", index + 1)))?;
    let leaf_text = String::from_utf8_lossy(line).into_owned();
    let (leaf, path, size) = inclusion_proof_for_lines(&entrants, index)
        .map_err(|e| ProofError::Invalid(e.to_string()))?;
    drop(entrants);
    let path_verifies = verify_inclusion(index, size, &leaf, &path, &seal.entrants_root).is_ok();

    let stock = parse_stock(&read(dir, "stock.csv")?)
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
    let drawn =
        DrawText::parse(&read(dir, "draw.txt")?).map_err(|e| ProofError::Invalid(e.to_string()))?;
    proof.drawn = true;
    proof.seed = Some(hex::encode(drawn.seed));
    proof.roll_1 = Some(format!("{:016x}", roll(&drawn.seed, POOL_ROLL, index)));
    proof.roll_2 = Some(format!("{:016x}", roll(&drawn.seed, SPILL_ROLL, index)));

    let pools = String::from_utf8_lossy(&read(dir, "pools.csv")?).into_owned();
    proof.pool_cutoff = pools
        .lines()
        .nth(pool as usize)
        .and_then(|l| l.rsplit(',').next())
        .map(str::to_string);
    if entrant.flexible {
        let spill = String::from_utf8_lossy(&read(dir, "spill.csv")?).into_owned();
        let prefix = format!("{},{},", district, entrant.product_id);
        proof.spill_cutoff = spill
            .lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(',').next())
            .map(str::to_string);
    }
    let result = read(dir, "result.csv")?;
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
