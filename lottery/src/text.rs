//! `seal.txt`, `draw.txt` and the seed text (DESIGN.md, "Sealed snapshot
//! format (version 1)", "Seed", "The two-roll draw (version 1)"), with
//! commitments and reveals.
//!
//! Parsing is strict and canonical: a text that parses formats back to the
//! very same bytes, so the hash of the file is the hash of the parsed value.

use sha2::{Digest, Sha256};

use crate::merkle::Hash;
use crate::snapshot::{decode_lower_hex, parse_decimal};

/// Why a text file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A line is missing, extra or malformed.
    #[error("{file} line {line}: {reason}")]
    Line {
        /// Which text (`seal.txt`, `draw.txt`, `seed text`).
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The text is not UTF-8.
    #[error("{file} is not UTF-8")]
    NotUtf8 {
        /// Which text.
        file: &'static str,
    },
    /// A secret is shorter than 16 bytes.
    #[error("secret of {party} is {len} bytes, at least 16 are required")]
    ShortSecret {
        /// The party.
        party: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Reveals do not pair up with the seal's commitments.
    #[error("reveal {index}: {reason}")]
    Reveal {
        /// 0-based position among the reveals/commitments.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One `commit:<party>:<hex>` line of `seal.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// `[a-z0-9-]{1,32}`.
    pub party: String,
    /// SHA-256 of the party's secret bytes.
    pub digest: Hash,
}

/// One `reveal:<party>:<hex>` line of the seed text and `draw.txt`.
#[derive(Clone, PartialEq, Eq)]
pub struct Reveal {
    /// `[a-z0-9-]{1,32}`.
    pub party: String,
    /// The secret bytes (at least 16).
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Reveal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reveal({}:{} bytes)", self.party, self.secret.len())
    }
}

/// The commitment to a secret: SHA-256 of the secret bytes, not of its hex.
#[must_use]
pub fn commitment(secret: &[u8]) -> Hash {
    Sha256::digest(secret).into()
}

/// Checks that the reveals answer the seal's commitments one by one, in order
/// (DESIGN.md "Seed": the draw refuses a reveal that does not match).
///
/// # Errors
/// [`TextError::Reveal`] for the first reveal that is missing, extra, out of
/// order or does not hash to its commitment; [`TextError::ShortSecret`].
pub fn check_reveals(commits: &[Commit], reveals: &[Reveal]) -> Result<(), TextError> {
    for (index, r) in reveals.iter().enumerate() {
        let Some(c) = commits.get(index) else {
            return Err(TextError::Reveal {
                index,
                reason: format!(
                    "{} revealed but the seal has only {} commitments",
                    r.party,
                    commits.len()
                ),
            });
        };
        if c.party != r.party {
            return Err(TextError::Reveal {
                index,
                reason: format!("party {} where the seal commits {}", r.party, c.party),
            });
        }
        check_reveal(c, r)?;
    }
    if reveals.len() < commits.len() {
        return Err(TextError::Reveal {
            index: reveals.len(),
            reason: format!("no reveal for {}", commits[reveals.len()].party),
        });
    }
    Ok(())
}

/// Checks one reveal against one commitment.
///
/// # Errors
/// [`TextError::ShortSecret`], or [`TextError::Reveal`] when the party or
/// the hash differs.
pub fn check_reveal(commit: &Commit, reveal: &Reveal) -> Result<(), TextError> {
    if reveal.secret.len() < 16 {
        return Err(TextError::ShortSecret {
            party: reveal.party.clone(),
            len: reveal.secret.len(),
        });
    }
    if commit.party != reveal.party {
        return Err(TextError::Reveal {
            index: 0,
            reason: format!(
                "party {} where the seal commits {}",
                reveal.party, commit.party
            ),
        });
    }
    if commitment(&reveal.secret) != commit.digest {
        return Err(TextError::Reveal {
            index: 0,
            reason: format!("secret of {} does not hash to its commitment", reveal.party),
        });
    }
    Ok(())
}

/// `seal.txt`, version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealText {
    /// `YYYY-MM-DD`, the draw day.
    pub draw_date: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`, the entry cutoff in UTC.
    pub cutoff: String,
    /// Lines of `entrants.csv`.
    pub entrants: u64,
    /// RFC 6962 tree head over `entrants.csv`.
    pub entrants_root: Hash,
    /// SHA-256 of `stock.csv`.
    pub stock_sha256: Hash,
    /// Seal id of the previous seal, `None` for the first of a chain.
    pub previous: Option<Hash>,
    /// Committed parties, in order.
    pub commits: Vec<Commit>,
}

impl SealText {
    /// The exact bytes of `seal.txt`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::new();
        s.push_str("maskdraw-seal-v1\n");
        s.push_str(&format!("draw_date:{}\n", self.draw_date));
        s.push_str(&format!("cutoff:{}\n", self.cutoff));
        s.push_str(&format!("entrants:{}\n", self.entrants));
        s.push_str(&format!(
            "entrants_root:{}\n",
            hex::encode(self.entrants_root)
        ));
        s.push_str(&format!(
            "stock_sha256:{}\n",
            hex::encode(self.stock_sha256)
        ));
        match &self.previous {
            Some(p) => s.push_str(&format!("previous:{}\n", hex::encode(p))),
            None => s.push_str("previous:-\n"),
        }
        for c in &self.commits {
            s.push_str(&format!("commit:{}:{}\n", c.party, hex::encode(c.digest)));
        }
        s.into_bytes()
    }

    /// `seal_id` = SHA-256 of `seal.txt`.
    #[must_use]
    pub fn seal_id(&self) -> Hash {
        Sha256::digest(self.to_bytes()).into()
    }

    /// Parses `seal.txt` strictly.
    ///
    /// # Errors
    /// [`TextError`] naming the first bad line.
    pub fn parse(bytes: &[u8]) -> Result<Self, TextError> {
        const F: &str = "seal.txt";
        let mut lines = Lines::new(F, bytes)?;
        lines.exact("maskdraw-seal-v1")?;
        let draw_date = lines.field("draw_date", |v| {
            check_date(v)
                .then(|| v.to_string())
                .ok_or("not a YYYY-MM-DD date")
        })?;
        let cutoff = lines.field("cutoff", |v| {
            check_timestamp(v)
                .then(|| v.to_string())
                .ok_or("not a YYYY-MM-DDTHH:MM:SSZ time")
        })?;
        let entrants = lines.field("entrants", |v| {
            parse_decimal(v.as_bytes()).ok_or("not a decimal count without leading zeros")
        })?;
        let entrants_root = lines.field("entrants_root", parse_hash)?;
        let stock_sha256 = lines.field("stock_sha256", parse_hash)?;
        let previous = lines.field("previous", |v| {
            if v == "-" {
                Ok(None)
            } else {
                parse_hash(v).map(Some)
            }
        })?;
        let mut commits: Vec<Commit> = Vec::new();
        while let Some(rest) = lines.next_with_prefix("commit:")? {
            let (party, digest) = rest
                .split_once(':')
                .ok_or_else(|| lines.err("want commit:<party>:<64 hex>"))?;
            if !check_party(party) {
                return Err(lines.err("party is not [a-z0-9-]{1,32}"));
            }
            if commits.iter().any(|c| c.party == party) {
                return Err(lines.err("party commits twice"));
            }
            let digest = parse_hash(digest).map_err(|r| lines.err(r))?;
            commits.push(Commit {
                party: party.to_string(),
                digest,
            });
        }
        lines.end()?;
        let seal = Self {
            draw_date,
            cutoff,
            entrants,
            entrants_root,
            stock_sha256,
            previous,
            commits,
        };
        canonical(F, &seal.to_bytes(), bytes)?;
        Ok(seal)
    }
}

/// The seed text: the seal id, every reveal, and the live material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedText {
    /// The seal this seed is for.
    pub seal_id: Hash,
    /// One reveal per commitment, in the seal's order.
    pub reveals: Vec<Reveal>,
    /// The live material, one line as typed.
    pub material: String,
}

impl SeedText {
    /// The exact bytes of the seed text.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("maskdraw-seed-v1\nseal:{}\n", hex::encode(self.seal_id));
        push_reveals_and_material(&mut s, &self.reveals, &self.material);
        s.into_bytes()
    }

    /// `seed = SHA-256(seed text)`.
    #[must_use]
    pub fn seed(&self) -> [u8; 32] {
        Sha256::digest(self.to_bytes()).into()
    }

    /// Parses a seed text strictly.
    ///
    /// # Errors
    /// [`TextError`] naming the first bad line.
    pub fn parse(bytes: &[u8]) -> Result<Self, TextError> {
        const F: &str = "seed text";
        let mut lines = Lines::new(F, bytes)?;
        lines.exact("maskdraw-seed-v1")?;
        let seal_id = lines.field("seal", parse_hash)?;
        let (reveals, material) = parse_reveals_and_material(&mut lines)?;
        lines.end()?;
        let seed = Self {
            seal_id,
            reveals,
            material,
        };
        canonical(F, &seed.to_bytes(), bytes)?;
        Ok(seed)
    }
}

/// `draw.txt`, version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawText {
    /// The seal drawn.
    pub seal_id: Hash,
    /// The seed used.
    pub seed: [u8; 32],
    /// Lines of `result.csv`.
    pub winners: u64,
    /// SHA-256 of `result.csv`.
    pub result_sha256: Hash,
    /// SHA-256 of `pools.csv`.
    pub pools_sha256: Hash,
    /// SHA-256 of `spill.csv`.
    pub spill_sha256: Hash,
    /// The seed text's reveals.
    pub reveals: Vec<Reveal>,
    /// The seed text's material.
    pub material: String,
}

impl DrawText {
    /// The exact bytes of `draw.txt`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::from("maskdraw-draw-v1\n");
        s.push_str(&format!("seal:{}\n", hex::encode(self.seal_id)));
        s.push_str(&format!("seed:{}\n", hex::encode(self.seed)));
        s.push_str(&format!("winners:{}\n", self.winners));
        s.push_str(&format!(
            "result_sha256:{}\n",
            hex::encode(self.result_sha256)
        ));
        s.push_str(&format!(
            "pools_sha256:{}\n",
            hex::encode(self.pools_sha256)
        ));
        s.push_str(&format!(
            "spill_sha256:{}\n",
            hex::encode(self.spill_sha256)
        ));
        push_reveals_and_material(&mut s, &self.reveals, &self.material);
        s.into_bytes()
    }

    /// The seed text these reveals and material make with this seal id.
    #[must_use]
    pub fn seed_text(&self) -> SeedText {
        SeedText {
            seal_id: self.seal_id,
            reveals: self.reveals.clone(),
            material: self.material.clone(),
        }
    }

    /// Parses `draw.txt` strictly.
    ///
    /// # Errors
    /// [`TextError`] naming the first bad line.
    pub fn parse(bytes: &[u8]) -> Result<Self, TextError> {
        const F: &str = "draw.txt";
        let mut lines = Lines::new(F, bytes)?;
        lines.exact("maskdraw-draw-v1")?;
        let seal_id = lines.field("seal", parse_hash)?;
        let seed = lines.field("seed", parse_hash)?;
        let winners = lines.field("winners", |v| {
            parse_decimal(v.as_bytes()).ok_or("not a decimal count without leading zeros")
        })?;
        let result_sha256 = lines.field("result_sha256", parse_hash)?;
        let pools_sha256 = lines.field("pools_sha256", parse_hash)?;
        let spill_sha256 = lines.field("spill_sha256", parse_hash)?;
        let (reveals, material) = parse_reveals_and_material(&mut lines)?;
        lines.end()?;
        let draw = Self {
            seal_id,
            seed,
            winners,
            result_sha256,
            pools_sha256,
            spill_sha256,
            reveals,
            material,
        };
        canonical(F, &draw.to_bytes(), bytes)?;
        Ok(draw)
    }
}

fn push_reveals_and_material(s: &mut String, reveals: &[Reveal], material: &str) {
    for r in reveals {
        s.push_str(&format!("reveal:{}:{}\n", r.party, hex::encode(&r.secret)));
    }
    s.push_str(&format!("material:{material}\n"));
}

fn parse_reveals_and_material(lines: &mut Lines<'_>) -> Result<(Vec<Reveal>, String), TextError> {
    let mut reveals: Vec<Reveal> = Vec::new();
    while let Some(rest) = lines.next_with_prefix("reveal:")? {
        let (party, secret) = rest
            .split_once(':')
            .ok_or_else(|| lines.err("want reveal:<party>:<hex>"))?;
        if !check_party(party) {
            return Err(lines.err("party is not [a-z0-9-]{1,32}"));
        }
        if reveals.iter().any(|r| r.party == party) {
            return Err(lines.err("party reveals twice"));
        }
        if secret.len() % 2 != 0 || secret.len() < 32 {
            return Err(lines.err("secret is not lowercase hex of at least 16 bytes"));
        }
        let mut bytes = vec![0u8; secret.len() / 2];
        decode_lower_hex(secret.as_bytes(), &mut bytes)
            .ok_or_else(|| lines.err("secret is not lowercase hex"))?;
        reveals.push(Reveal {
            party: party.to_string(),
            secret: bytes,
        });
    }
    let material = lines.field("material", |v| {
        check_material(v).then(|| v.to_string()).ok_or(
            "material must be one non-empty line without control characters or trailing/leading spaces",
        )
    })?;
    Ok((reveals, material))
}

/// Material: at least one character, no control characters, no space at
/// either end (the format forbids trailing spaces; a leading one would be
/// invisible when read aloud and is refused for the same reason).
#[must_use]
pub fn check_material(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(char::is_control) && !v.starts_with(' ') && !v.ends_with(' ')
}

/// A party name: `[a-z0-9-]{1,32}`.
#[must_use]
pub fn check_party(p: &str) -> bool {
    (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn parse_hash(v: &str) -> Result<Hash, &'static str> {
    let mut out = [0u8; 32];
    decode_lower_hex(v.as_bytes(), &mut out).ok_or("not 64 lowercase hex characters")?;
    Ok(out)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(v: &str) -> Option<u32> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok())?
}

/// `YYYY-MM-DD`, a real calendar date.
#[must_use]
pub fn check_date(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (digits(&v[0..4]), digits(&v[5..7]), digits(&v[8..10])) {
        (Some(y), Some(m), Some(d)) => d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` that passes [`check_date`] (proleptic Gregorian,
/// H. Hinnant's `days_from_civil`); `None` for any other text.
#[must_use]
pub fn days_from_date(date: &str) -> Option<i64> {
    if !check_date(date) {
        return None;
    }
    let y = i64::from(digits(&date[0..4])?);
    let m = i64::from(digits(&date[5..7])?);
    let d = i64::from(digits(&date[8..10])?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// (year, month, day) of a day since 1970-01-01 (H. Hinnant's `civil_from_days`).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` of a day since 1970-01-01.
#[must_use]
pub fn date_from_days(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ`, a real UTC time (no leap second).
#[must_use]
pub fn check_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return false;
    }
    check_date(&v[..10])
        && matches!(digits(&v[11..13]), Some(h) if h < 24)
        && matches!(digits(&v[14..16]), Some(m) if m < 60)
        && matches!(digits(&v[17..19]), Some(s) if s < 60)
}

fn canonical(file: &'static str, formatted: &[u8], given: &[u8]) -> Result<(), TextError> {
    if formatted == given {
        Ok(())
    } else {
        // Unreachable for texts that passed the line rules; kept as a guard so
        // the hash of the file is always the hash of the parsed value.
        Err(TextError::Line {
            file,
            line: 0,
            reason: "not in canonical form".into(),
        })
    }
}

/// A strict line reader over LF-terminated UTF-8 text.
struct Lines<'a> {
    file: &'static str,
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(file: &'static str, bytes: &'a [u8]) -> Result<Self, TextError> {
        let text = std::str::from_utf8(bytes).map_err(|_| TextError::NotUtf8 { file })?;
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.pop() != Some("") {
            return Err(TextError::Line {
                file,
                line: lines.len() + 1,
                reason: "missing final LF".into(),
            });
        }
        if text.starts_with('\u{feff}') {
            return Err(TextError::Line {
                file,
                line: 1,
                reason: "byte order mark".into(),
            });
        }
        Ok(Self {
            file,
            lines,
            pos: 0,
        })
    }

    fn err(&self, reason: impl Into<String>) -> TextError {
        TextError::Line {
            file: self.file,
            line: self.pos.max(1),
            reason: reason.into(),
        }
    }

    fn next(&mut self) -> Result<&'a str, TextError> {
        let line = self.lines.get(self.pos).copied();
        self.pos += 1;
        line.ok_or_else(|| self.err("missing line"))
    }

    fn exact(&mut self, want: &str) -> Result<(), TextError> {
        let line = self.next()?;
        if line == want {
            Ok(())
        } else {
            Err(self.err(format!("want {want:?}")))
        }
    }

    fn field<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&'a str) -> Result<T, &'static str>,
    ) -> Result<T, TextError> {
        let line = self.next()?;
        let value = line
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| self.err(format!("want {key}:…")))?;
        parse(value).map_err(|reason| self.err(format!("{key}: {reason}")))
    }

    fn next_with_prefix(&mut self, prefix: &str) -> Result<Option<&'a str>, TextError> {
        match self.lines.get(self.pos) {
            Some(line) if line.starts_with(prefix) => {
                self.pos += 1;
                Ok(Some(&line[prefix.len()..]))
            }
            _ => Ok(None),
        }
    }

    fn end(&mut self) -> Result<(), TextError> {
        if self.pos < self.lines.len() {
            self.pos += 1;
            return Err(self.err("unexpected extra line"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_checked_against_the_calendar() {
        assert!(check_date("2024-02-29"));
        assert!(!check_date("2026-02-29"));
        assert!(!check_date("2026-13-01"));
        assert!(!check_date("2026-1-01"));
        assert!(check_timestamp("2026-11-23T14:00:00Z"));
        assert!(!check_timestamp("2026-11-23T24:00:00Z"));
        assert!(!check_timestamp("2026-11-23 14:00:00Z"));
    }

    #[test]
    fn calendar_days_round_trip_across_leap_years() {
        for d in [
            "1970-01-01",
            "2000-02-29",
            "2026-11-24",
            "2100-03-01",
            "1969-12-31",
        ] {
            assert_eq!(date_from_days(days_from_date(d).unwrap()), d);
        }
        let days = |d: &str| days_from_date(d).unwrap();
        assert_eq!(days("2026-03-01") - days("2026-02-28"), 1);
        assert_eq!(days("2024-03-01") - days("2024-02-28"), 2);
        assert_eq!(days("1970-01-02"), 1);
        assert_eq!(days_from_date("2026-02-29"), None);
    }

    #[test]
    fn a_short_secret_or_a_wrong_secret_is_refused() {
        let secret = vec![1u8; 16];
        let c = Commit {
            party: "notary".into(),
            digest: commitment(&secret),
        };
        let ok = Reveal {
            party: "notary".into(),
            secret: secret.clone(),
        };
        assert!(check_reveals(std::slice::from_ref(&c), std::slice::from_ref(&ok)).is_ok());
        let wrong = Reveal {
            party: "notary".into(),
            secret: vec![2u8; 16],
        };
        assert!(check_reveals(std::slice::from_ref(&c), &[wrong]).is_err());
        assert!(check_reveals(std::slice::from_ref(&c), &[]).is_err());
        let short = Reveal {
            party: "notary".into(),
            secret: vec![1u8; 15],
        };
        assert!(matches!(
            check_reveal(&c, &short),
            Err(TextError::ShortSecret { .. })
        ));
    }

    #[test]
    fn the_commitment_hashes_the_secret_bytes_not_their_hex() {
        assert_ne!(
            commitment(&[0xab; 16]),
            commitment(b"abababababababababababababababab")
        );
    }

    #[test]
    fn material_must_be_a_visible_non_empty_line() {
        assert!(check_material("3 1 4 1 5 9 2 6 case 2026"));
        assert!(!check_material(""));
        assert!(!check_material("dice "));
        assert!(!check_material("a\rb"));
    }
}
