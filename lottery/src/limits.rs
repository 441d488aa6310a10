//! How large each file of a day can be, and reading a file only up to that bound.
//!
//! Nothing in this crate sizes memory from a length it reads (a file's metadata, a count in
//! `seal.txt`, an offset in `entrants.tiles`) without a bound it can justify: a 64 GiB sparse
//! file costs no disk, and reading it whole, or reserving room for the lines it claims, would
//! abort the process on allocation (issue 9, item 14). The bounds below follow from the grammar
//! of SPEC.md wherever the grammar bounds a line; where it does not (how many parties, pools or
//! pharmacies a day has), they are generous implementation limits, listed in SPEC.md §11.

use std::io::{self, Read};
use std::path::Path;

/// The longest `entrants.csv` line with its LF: a 26-character ticket, two 16-character
/// identifiers, the flag, a 32-character tag and four commas (SPEC.md §2).
pub const ENTRANT_LINE_MAX: u64 = 26 + 1 + 16 + 1 + 16 + 1 + 1 + 1 + 32 + 1;

/// The longest `result.csv` line with its LF: ticket, two identifiers, the roll (SPEC.md §9).
pub const RESULT_LINE_MAX: u64 = 26 + 1 + 16 + 1 + 16 + 1 + 1 + 1;

/// `seal.txt` and `draw.txt`: 1 MiB, thousands of parties' commitment and reveal lines (a
/// real day has two or three).
pub const TEXT_MAX: u64 = 1 << 20;

/// `seal.sig`, `draw.sig`, `authority.pub` and key files: 129 and 65 bytes when valid.
pub const KEY_OR_SIGNATURE_MAX: u64 = 1 << 10;

/// `stock.csv`, `pools.csv` and `spill.csv`: one line of at most 115 bytes per pool (or group);
/// 128 MiB is over a million pools, ten times a city of 100,000 pharmacies with five products.
pub const TABLE_MAX: u64 = 128 << 20;

/// The bound for a file of a day read whole by name; `None` for `entrants.csv` and
/// `result.csv`, whose bound depends on the number of entrants (see [`entrants_max`]).
#[must_use]
pub fn file_max(name: &str) -> Option<u64> {
    match name {
        "seal.txt" | "draw.txt" => Some(TEXT_MAX),
        "seal.sig" | "draw.sig" | "authority.pub" => Some(KEY_OR_SIGNATURE_MAX),
        "stock.csv" | "pools.csv" | "spill.csv" | "audit.txt" => Some(TABLE_MAX),
        _ => None,
    }
}

/// The most bytes `entrants.csv` (or, with [`RESULT_LINE_MAX`], `result.csv`) can have for
/// `entrants` lines of at most `line_max` bytes each.
#[must_use]
pub fn entrants_max(entrants: u64, line_max: u64) -> u64 {
    entrants.saturating_mul(line_max)
}

/// Reads the file at `path` whole, refusing (before allocating anything) a file longer than
/// `max` bytes.
///
/// # Errors
/// The open or read error, or [`io::ErrorKind::InvalidData`] naming both sizes when the file
/// is longer than `max` (also when it grows past `max` while being read).
pub fn read_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(too_long(len, max));
    }
    // `len <= max`, and every `max` here is far below `usize::MAX` on 64-bit targets.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_long(bytes.len() as u64, max));
    }
    Ok(bytes)
}

fn too_long(len: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("it is {len} bytes, more than the {max} a valid file can have"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_its_bound_is_refused_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stock.csv");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_at_most(&path, 10).unwrap(), b"0123456789");
        let err = read_at_most(&path, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "it is 10 bytes, more than the 9 a valid file can have"
        );
        // A sparse file far larger than memory is refused from its length alone.
        let huge = dir.path().join("huge");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(64 << 30)
            .unwrap();
        assert!(read_at_most(&huge, TABLE_MAX).is_err());
    }

    #[test]
    fn the_line_bounds_follow_the_grammar() {
        let longest = format!(
            "{},{},{},1,{}\n",
            "7".repeat(26),
            "A".repeat(16),
            "B".repeat(16),
            "f".repeat(32)
        );
        assert_eq!(longest.len() as u64, ENTRANT_LINE_MAX);
        assert!(
            crate::snapshot::Entrant::parse_line(&longest.as_bytes()[..longest.len() - 1]).is_ok()
        );
        let result = format!(
            "{},{},{},2\n",
            "7".repeat(26),
            "A".repeat(16),
            "B".repeat(16)
        );
        assert_eq!(result.len() as u64, RESULT_LINE_MAX);
    }
}
