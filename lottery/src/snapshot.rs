//! `entrants.csv` and `stock.csv`: the sealed snapshot's two data files
//! (DESIGN.md, "Sealed snapshot format (version 1)").
//!
//! The parsers are strict: the first line that breaks any rule is reported by
//! its 1-based number together with the rule. The same line grammar is used by
//! the streaming scanner in [`crate::scan`], so the in-memory and the streaming
//! paths cannot disagree.

use std::collections::HashMap;
use std::fmt;

/// A rule of the snapshot format that a line broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The line does not match the grammar of its file.
    #[error("line {line}: {reason}")]
    Grammar {
        /// 1-based line number.
        line: u64,
        /// Which part of the grammar was broken.
        reason: &'static str,
    },
    /// The file has bytes after its last LF.
    #[error("line {line}: missing final LF")]
    MissingFinalLf {
        /// 1-based line number of the unterminated line.
        line: u64,
    },
    /// `entrants.csv` is not strictly ascending by `ticket_id`.
    #[error("line {line}: ticket_id is not strictly greater than the previous line's")]
    TicketOrder {
        /// 1-based line number.
        line: u64,
    },
    /// `stock.csv` is not strictly ascending by (`pharmacy_id`, `product_id`).
    #[error(
        "line {line}: (pharmacy_id, product_id) is not strictly greater than the previous line's"
    )]
    StockOrder {
        /// 1-based line number.
        line: u64,
    },
    /// Two entrants share a `person_tag`.
    #[error("line {line}: person_tag already used on line {first_line}")]
    DuplicatePersonTag {
        /// 1-based line number of the second use.
        line: u64,
        /// 1-based line number of the first use.
        first_line: u64,
    },
    /// An entrant names a pool that `stock.csv` does not list.
    #[error("line {line}: pool ({pharmacy_id}, {product_id}) is not listed in stock.csv")]
    UnknownPool {
        /// 1-based line number in `entrants.csv`.
        line: u64,
        /// The pharmacy named.
        pharmacy_id: String,
        /// The product named.
        product_id: String,
    },
    /// A pharmacy has two different districts in `stock.csv`.
    #[error("line {line}: pharmacy {pharmacy_id} is in district {district_id} here but in {first_district} on line {first_line}")]
    DistrictMismatch {
        /// 1-based line number.
        line: u64,
        /// The pharmacy.
        pharmacy_id: String,
        /// The district on this line.
        district_id: String,
        /// The district on the first line of the pharmacy.
        first_district: String,
        /// 1-based line number of the pharmacy's first line.
        first_line: u64,
    },
}

impl SnapshotError {
    /// The 1-based number of the offending line.
    #[must_use]
    pub fn line(&self) -> u64 {
        match self {
            Self::Grammar { line, .. }
            | Self::MissingFinalLf { line }
            | Self::TicketOrder { line }
            | Self::StockOrder { line }
            | Self::DuplicatePersonTag { line, .. }
            | Self::UnknownPool { line, .. }
            | Self::DistrictMismatch { line, .. } => *line,
        }
    }
}

/// Crockford base32 digit values, `0xff` for bytes outside the uppercase alphabet.
const CROCKFORD: [u8; 256] = {
    let alphabet = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 32 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const CROCKFORD_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ticket id: a ULID, 26 uppercase Crockford base32 characters whose value
/// fits in 128 bits (so the first character is `0`–`7`).
///
/// Byte order of the text equals numeric order of the value, which is why
/// "ascending by `ticket_id`" can be checked on either.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketId([u8; 26]);

impl TicketId {
    /// Parses the 26-character text form.
    ///
    /// # Errors
    /// A reason when the text is not a ULID in uppercase Crockford base32.
    pub fn parse(text: &[u8]) -> Result<Self, &'static str> {
        Self::parse_with_value(text).map(|(id, _)| id)
    }

    /// [`TicketId::parse`], also giving [`TicketId::to_u128`]'s value from the same pass.
    ///
    /// # Errors
    /// As [`TicketId::parse`].
    pub fn parse_with_value(text: &[u8]) -> Result<(Self, u128), &'static str> {
        let bytes: [u8; 26] = text
            .try_into()
            .map_err(|_| "ticket_id is not 26 characters")?;
        // Branch-free over the 26 bytes: digit values are 0..=31, so any high bit is a bad byte.
        let mut bad = 0u8;
        let mut digits = |s: &[u8]| {
            s.iter().fold(0u64, |acc, &b| {
                let d = CROCKFORD[b as usize];
                bad |= d;
                (acc << 5) | u64::from(d & 31)
            })
        };
        // In 64-bit parts: 2 + 12 + 12 digits are 8 (the first digit has 3 bits) + 60 + 60 bits.
        let (high, middle, low) = (
            digits(&bytes[..2]),
            digits(&bytes[2..14]),
            digits(&bytes[14..]),
        );
        if bad > 31 {
            return Err("ticket_id has a character outside uppercase Crockford base32");
        }
        if CROCKFORD[bytes[0] as usize] > 7 {
            return Err("ticket_id exceeds 128 bits (first character above 7)");
        }
        let value = (u128::from(high) << 120) | (u128::from(middle) << 60) | u128::from(low);
        Ok((Self(bytes), value))
    }

    /// The 128-bit value of the ULID.
    #[must_use]
    pub fn to_u128(&self) -> u128 {
        // In 64-bit parts: 2 + 12 + 12 digits are 8 (the first digit has 3 bits) + 60 + 60 bits.
        let digits = |s: &[u8]| {
            s.iter().fold(0u64, |acc, &b| {
                (acc << 5) | u64::from(CROCKFORD[b as usize])
            })
        };
        (u128::from(digits(&self.0[..2])) << 120)
            | (u128::from(digits(&self.0[2..14])) << 60)
            | u128::from(digits(&self.0[14..]))
    }

    /// The ULID whose 128-bit value is `value`.
    #[must_use]
    pub fn from_u128(value: u128) -> Self {
        let mut bytes = [b'0'; 26];
        for (i, slot) in bytes.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *slot = CROCKFORD_ALPHABET[((value >> shift) & 31) as usize];
        }
        Self(bytes)
    }

    /// The text form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes from the alphabet are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The text form as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 26] {
        &self.0
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketId({})", self.as_str())
    }
}

/// An identifier (`pharmacy_id`, `district_id`, `product_id`): `[A-Z0-9-]{1,16}`.
///
/// Stored inline; the derived order is the byte order of the text because the
/// padding byte (0) sorts below every allowed character.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident {
    bytes: [u8; 16],
    len: u8,
}

impl Ident {
    /// Parses an identifier.
    ///
    /// # Errors
    /// A reason when the text is empty, longer than 16 bytes, or has a byte
    /// outside `[A-Z0-9-]`.
    pub fn parse(text: &[u8]) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("identifier is empty");
        }
        if text.len() > 16 {
            return Err("identifier is longer than 16 characters");
        }
        if !text.iter().fold(true, |ok, &b| ok & IDENT_BYTE[b as usize]) {
            return Err("identifier has a character outside [A-Z0-9-]");
        }
        let mut bytes = [0u8; 16];
        bytes[..text.len()].copy_from_slice(text);
        Ok(Self {
            bytes,
            len: text.len() as u8,
        })
    }

    /// The text form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The text form as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::str::FromStr for Ident {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// A `person_tag`: 16 bytes, written as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PersonTag(pub [u8; 16]);

impl PersonTag {
    /// Parses 32 lowercase hex characters.
    ///
    /// # Errors
    /// A reason when the text is not 32 lowercase hex characters.
    pub fn parse(text: &[u8]) -> Result<Self, &'static str> {
        if text.len() != 32 {
            return Err("person_tag is not 32 hex characters");
        }
        let mut out = [0u8; 16];
        decode_lower_hex(text, &mut out).ok_or("person_tag is not lowercase hex")?;
        Ok(Self(out))
    }

    /// The 32-character lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Decodes lowercase hex into `out` (`text.len() == 2 * out.len()`); `None` on
/// any other byte, uppercase included.
pub(crate) fn decode_lower_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != 2 * out.len() {
        return None;
    }
    // Branch-free: nibble values are 0..=15, so any high bit is a bad byte.
    let mut bad = 0u8;
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (LOWER_HEX[pair[0] as usize], LOWER_HEX[pair[1] as usize]);
        bad |= hi | lo;
        *slot = (hi << 4) | (lo & 0x0f);
    }
    (bad < 16).then_some(())
}

/// Lowercase hex digit values, `0xff` for every other byte.
const LOWER_HEX: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The bytes of an identifier: `[A-Z0-9-]`.
const IDENT_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] =
            (b as u8).is_ascii_uppercase() || (b as u8).is_ascii_digit() || b == b'-' as usize;
        b += 1;
    }
    table
};

/// One line of `entrants.csv`: `ticket_id,pharmacy_id,product_id,flexible,person_tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entrant {
    /// The reservation's ULID.
    pub ticket_id: TicketId,
    /// The pharmacy named.
    pub pharmacy_id: Ident,
    /// The product named.
    pub product_id: Ident,
    /// Whether the entrant also takes part in roll two.
    pub flexible: bool,
    /// The keyed hash of the person's identity.
    pub person_tag: PersonTag,
}

impl Entrant {
    /// Parses one line (without its LF).
    ///
    /// # Errors
    /// A reason naming the broken part of the grammar.
    pub fn parse_line(line: &[u8]) -> Result<Self, &'static str> {
        Self::parse_line_with_value(line).map(|(e, _)| e)
    }

    /// [`Entrant::parse_line`], also giving the ticket id's 128-bit value from the same pass.
    ///
    /// # Errors
    /// As [`Entrant::parse_line`].
    pub fn parse_line_with_value(line: &[u8]) -> Result<(Self, u128), &'static str> {
        // Fixed-width parts first: 26 + ',' ... ',' + flag + ',' + 32.
        if line.len() < 26 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 32 {
            return Err("line too short for ticket_id,pharmacy_id,product_id,flexible,person_tag");
        }
        let (ticket_id, value) = TicketId::parse_with_value(&line[..26])?;
        if line[26] != b',' {
            return Err("ticket_id is not 26 characters followed by a comma");
        }
        let tail = line.len() - 32;
        if line[tail - 1] != b',' {
            return Err("person_tag is not the last field of 32 characters");
        }
        let person_tag = PersonTag::parse(&line[tail..])?;
        let flexible = match line[tail - 2] {
            b'0' => false,
            b'1' => true,
            _ => return Err("flexible is not 0 or 1"),
        };
        if line[tail - 3] != b',' {
            return Err("flexible is not a single character 0 or 1");
        }
        let middle = &line[27..tail - 3];
        let comma = middle
            .iter()
            .position(|&b| b == b',')
            .ok_or("wrong number of fields")?;
        let pharmacy_id =
            Ident::parse(&middle[..comma]).map_err(|_| "pharmacy_id is not [A-Z0-9-]{1,16}")?;
        let product_id =
            Ident::parse(&middle[comma + 1..]).map_err(|_| "product_id is not [A-Z0-9-]{1,16}")?;
        Ok((
            Self {
                ticket_id,
                pharmacy_id,
                product_id,
                flexible,
                person_tag,
            },
            value,
        ))
    }

    /// The line without its LF.
    #[must_use]
    pub fn to_line(&self) -> String {
        let mut out = Vec::with_capacity(96);
        self.write_line(&mut out);
        out.pop();
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the line and its LF to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.ticket_id.as_bytes());
        out.push(b',');
        out.extend_from_slice(self.pharmacy_id.as_bytes());
        out.push(b',');
        out.extend_from_slice(self.product_id.as_bytes());
        out.push(b',');
        out.push(if self.flexible { b'1' } else { b'0' });
        out.push(b',');
        let mut hex_tag = [0u8; 32];
        // Cannot fail: the buffer is exactly twice the input.
        let _ = hex::encode_to_slice(self.person_tag.0, &mut hex_tag);
        out.extend_from_slice(&hex_tag);
        out.push(b'\n');
    }
}

/// One line of `stock.csv`: `pharmacy_id,district_id,product_id,packs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockLine {
    /// The pharmacy.
    pub pharmacy_id: Ident,
    /// The pharmacy's district.
    pub district_id: Ident,
    /// The product.
    pub product_id: Ident,
    /// Packs on offer, one per winner.
    pub packs: u64,
}

impl StockLine {
    /// Parses one line (without its LF).
    ///
    /// # Errors
    /// A reason naming the broken part of the grammar.
    pub fn parse_line(line: &[u8]) -> Result<Self, &'static str> {
        let mut fields = line.split(|&b| b == b',');
        let (Some(ph), Some(di), Some(pr), Some(pa), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err("wrong number of fields (want pharmacy_id,district_id,product_id,packs)");
        };
        Ok(Self {
            pharmacy_id: Ident::parse(ph).map_err(|_| "pharmacy_id is not [A-Z0-9-]{1,16}")?,
            district_id: Ident::parse(di).map_err(|_| "district_id is not [A-Z0-9-]{1,16}")?,
            product_id: Ident::parse(pr).map_err(|_| "product_id is not [A-Z0-9-]{1,16}")?,
            packs: parse_decimal(pa)
                .ok_or("packs is not a decimal integer without leading zeros")?,
        })
    }

    /// The line without its LF.
    #[must_use]
    pub fn to_line(&self) -> String {
        format!(
            "{},{},{},{}",
            self.pharmacy_id, self.district_id, self.product_id, self.packs
        )
    }

    /// The pool key (`pharmacy_id`, `product_id`).
    #[must_use]
    pub fn pool(&self) -> (Ident, Ident) {
        (self.pharmacy_id, self.product_id)
    }
}

/// A decimal `u64` without sign or leading zeros (`0` itself allowed).
pub(crate) fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text[0] == b'0') {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Splits a file into lines, reporting a missing final LF.
///
/// Returns the lines without LF. An empty file has no lines.
pub(crate) fn split_lines(bytes: &[u8]) -> Result<Vec<&[u8]>, SnapshotError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // `split` yields an empty last piece exactly when the file ends with LF.
    match lines.pop() {
        Some([]) => Ok(lines),
        _ => Err(SnapshotError::MissingFinalLf {
            line: lines.len() as u64 + 1,
        }),
    }
}

/// Parses `entrants.csv`: grammar of every line, strictly ascending
/// `ticket_id`, no duplicate `person_tag`, final LF (DESIGN.md "Sealed snapshot
/// format", `entrants.csv`).
///
/// Whether each named pool exists is checked by [`check_pools`], which needs the
/// stock.
///
/// # Errors
/// The first offending line and the rule it breaks.
pub fn parse_entrants(bytes: &[u8]) -> Result<Vec<Entrant>, SnapshotError> {
    let lines = match split_lines(bytes) {
        Ok(lines) => lines,
        Err(missing_lf) => {
            // A bad line before the unterminated one is the first error.
            let complete = bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(&bytes[..0], |p| &bytes[..=p]);
            parse_entrants(complete)?;
            return Err(missing_lf);
        }
    };
    let mut out = Vec::with_capacity(lines.len());
    let mut seen: HashMap<PersonTag, u64> = HashMap::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let number = i as u64 + 1;
        let entrant = Entrant::parse_line(line).map_err(|reason| SnapshotError::Grammar {
            line: number,
            reason,
        })?;
        if let Some(prev) = out.last() {
            let prev: &Entrant = prev;
            if entrant.ticket_id <= prev.ticket_id {
                return Err(SnapshotError::TicketOrder { line: number });
            }
        }
        if let Some(&first_line) = seen.get(&entrant.person_tag) {
            return Err(SnapshotError::DuplicatePersonTag {
                line: number,
                first_line,
            });
        }
        seen.insert(entrant.person_tag, number);
        out.push(entrant);
    }
    Ok(out)
}

/// Parses `stock.csv`: grammar, strictly ascending (`pharmacy_id`,
/// `product_id`), one district per pharmacy, final LF.
///
/// # Errors
/// The first offending line and the rule it breaks.
pub fn parse_stock(bytes: &[u8]) -> Result<Vec<StockLine>, SnapshotError> {
    let lines = match split_lines(bytes) {
        Ok(lines) => lines,
        Err(missing_lf) => {
            let complete = bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(&bytes[..0], |p| &bytes[..=p]);
            parse_stock(complete)?;
            return Err(missing_lf);
        }
    };
    let mut out: Vec<StockLine> = Vec::with_capacity(lines.len());
    let mut districts: HashMap<Ident, (Ident, u64)> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let number = i as u64 + 1;
        let stock = StockLine::parse_line(line).map_err(|reason| SnapshotError::Grammar {
            line: number,
            reason,
        })?;
        if let Some(prev) = out.last() {
            if stock.pool() <= prev.pool() {
                return Err(SnapshotError::StockOrder { line: number });
            }
        }
        match districts.get(&stock.pharmacy_id) {
            Some(&(district, first_line)) if district != stock.district_id => {
                return Err(SnapshotError::DistrictMismatch {
                    line: number,
                    pharmacy_id: stock.pharmacy_id.to_string(),
                    district_id: stock.district_id.to_string(),
                    first_district: district.to_string(),
                    first_line,
                });
            }
            Some(_) => {}
            None => {
                districts.insert(stock.pharmacy_id, (stock.district_id, number));
            }
        }
        out.push(stock);
    }
    Ok(out)
}

/// Checks that every entrant names a pool listed in the stock.
///
/// # Errors
/// [`SnapshotError::UnknownPool`] for the first entrant whose pool is missing.
pub fn check_pools(entrants: &[Entrant], stock: &[StockLine]) -> Result<(), SnapshotError> {
    let index = PoolIndex::new(stock);
    for (i, e) in entrants.iter().enumerate() {
        if index.get(&e.pharmacy_id, &e.product_id).is_none() {
            return Err(SnapshotError::UnknownPool {
                line: i as u64 + 1,
                pharmacy_id: e.pharmacy_id.to_string(),
                product_id: e.product_id.to_string(),
            });
        }
    }
    Ok(())
}

/// Formats a whole `entrants.csv`.
#[must_use]
pub fn entrants_csv(entrants: &[Entrant]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entrants.len() * 80);
    for e in entrants {
        e.write_line(&mut out);
    }
    out
}

/// Formats a whole `stock.csv`.
#[must_use]
pub fn stock_csv(stock: &[StockLine]) -> Vec<u8> {
    let mut out = String::with_capacity(stock.len() * 32);
    for s in stock {
        out.push_str(&s.to_line());
        out.push('\n');
    }
    out.into_bytes()
}

/// Lookup from pool (`pharmacy_id`, `product_id`) to its stock line index.
#[derive(Debug, Clone)]
pub struct PoolIndex {
    /// Keyed by both identifiers' zero-padded bytes as integers: the padding cannot occur in an
    /// identifier, so the bytes alone tell identifiers apart, and four words hash faster than
    /// the derived hash of two arrays and their lengths.
    map: rustc_hash::FxHashMap<(u128, u128), u32>,
}

fn pool_key(pharmacy_id: &Ident, product_id: &Ident) -> (u128, u128) {
    (
        u128::from_le_bytes(pharmacy_id.bytes),
        u128::from_le_bytes(product_id.bytes),
    )
}

impl PoolIndex {
    /// Builds the index. Later duplicates (impossible in a parsed stock) lose.
    #[must_use]
    pub fn new(stock: &[StockLine]) -> Self {
        let mut map = rustc_hash::FxHashMap::default();
        map.reserve(stock.len());
        for (i, s) in stock.iter().enumerate() {
            map.entry(pool_key(&s.pharmacy_id, &s.product_id))
                .or_insert(i as u32);
        }
        Self { map }
    }

    /// The stock line index of a pool.
    #[must_use]
    pub fn get(&self, pharmacy_id: &Ident, product_id: &Ident) -> Option<u32> {
        self.map.get(&pool_key(pharmacy_id, product_id)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] =
        b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb";

    #[test]
    fn an_entrant_line_round_trips() {
        let e = Entrant::parse_line(LINE).unwrap();
        assert_eq!(e.to_line().as_bytes(), LINE);
        assert_eq!(e.pharmacy_id.as_str(), "PH0004");
        assert!(!e.flexible);
    }

    #[test]
    fn a_ticket_id_round_trips_through_its_value() {
        let t = TicketId::parse(b"01KARC38627GVHHC7H1R7AQYA9").unwrap();
        assert_eq!(TicketId::from_u128(t.to_u128()), t);
        assert_eq!(
            TicketId::from_u128(u128::MAX).as_str(),
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
    }

    #[test]
    fn the_value_from_parsing_is_the_value_of_the_id() {
        for text in [
            &b"00000000000000000000000000"[..],
            b"01KARC38627GVHHC7H1R7AQYA9",
            b"7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ] {
            let (id, value) = TicketId::parse_with_value(text).unwrap();
            assert_eq!(value, id.to_u128());
            assert_eq!(TicketId::from_u128(value), id);
        }
        assert_eq!(
            TicketId::parse_with_value(b"7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
                .unwrap()
                .1,
            u128::MAX
        );
    }

    #[test]
    fn a_ticket_id_above_128_bits_or_with_excluded_letters_is_refused() {
        assert!(TicketId::parse(b"81KARC38627GVHHC7H1R7AQYA9").is_err());
        assert!(TicketId::parse(b"01KARC38627GVHHC7H1R7AQYAI").is_err());
        assert!(TicketId::parse(b"01karc38627gvhhc7h1r7aqya9").is_err());
    }

    #[test]
    fn broken_entrant_lines_are_refused() {
        for bad in [
            &b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,2,1807dfaf1f7e42734f56d48f05e1ddfb"[..],
            b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,0,1807DFAF1F7E42734F56D48F05E1DDFB",
            b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb ",
            b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb\r",
            b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,X,0,1807dfaf1f7e42734f56d48f05e1ddfb",
            b"01KARC38627GVHHC7H1R7AQYA9,,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb",
            b"01KARC38627GVHHC7H1R7AQYA9,ph0004,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb",
            b"01KARC38627GVHHC7H1R7AQYA9,PH00040000000000000,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb",
            b"",
        ] {
            assert!(Entrant::parse_line(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn every_byte_is_judged_by_its_field_alphabet() {
        // One byte replaced in the ticket id, the pharmacy id and the person tag, against the
        // grammar written out plainly.
        for b in 0..=255u8 {
            for (at, allowed) in [
                (5, b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)),
                (
                    29,
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-',
                ),
                (50, b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            ] {
                let mut line = LINE.to_vec();
                line[at] = b;
                assert_eq!(
                    Entrant::parse_line(&line).is_ok(),
                    allowed,
                    "byte {b:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn the_first_bad_entrant_line_is_reported_by_number() {
        let mut file = Vec::new();
        file.extend_from_slice(LINE);
        file.push(b'\n');
        file.extend_from_slice(LINE);
        file.push(b'\n');
        assert_eq!(
            parse_entrants(&file),
            Err(SnapshotError::TicketOrder { line: 2 })
        );
        // An unterminated last line is reported as such, whatever else is
        // wrong with it (the streaming scanner does the same).
        assert_eq!(
            parse_entrants(&file[..file.len() - 1]),
            Err(SnapshotError::MissingFinalLf { line: 2 })
        );
        assert_eq!(
            parse_entrants(&file[..LINE.len()]),
            Err(SnapshotError::MissingFinalLf { line: 1 })
        );
        assert_eq!(parse_entrants(b""), Ok(vec![]));
    }

    #[test]
    fn a_person_tag_used_twice_is_reported_on_its_second_line() {
        let file = b"01KARC38627GVHHC7H1R7AQYA9,PH0004,SURG,0,1807dfaf1f7e42734f56d48f05e1ddfb\n\
01KARCQ2JXAYPZ9W1HZJ5CNJJ5,PH0001,KN95,0,b8bfe77a0e5f87558f94b50b328bf8ae\n\
01KARCQWRPGYMTAJBRCCGGYKF3,PH0001,KN95,1,1807dfaf1f7e42734f56d48f05e1ddfb\n";
        assert_eq!(
            parse_entrants(file),
            Err(SnapshotError::DuplicatePersonTag {
                line: 3,
                first_line: 1
            })
        );
    }

    #[test]
    fn stock_rules_are_enforced_with_line_numbers() {
        assert_eq!(parse_stock(b"PH1,D1,KN95,01\n").unwrap_err().line(), 1);
        assert!(matches!(
            parse_stock(b"PH1,D1,SURG,1\nPH1,D1,KN95,2\n"),
            Err(SnapshotError::StockOrder { line: 2 })
        ));
        assert!(matches!(
            parse_stock(b"PH1,D1,KN95,1\nPH1,D2,SURG,2\n"),
            Err(SnapshotError::DistrictMismatch { line: 2, .. })
        ));
        assert!(matches!(
            parse_stock(b"PH1,D1,KN95,1\nPH1,D1,KN95,2\n"),
            Err(SnapshotError::StockOrder { line: 2 })
        ));
        assert_eq!(parse_stock(b"PH1,D1,KN95,0\n").unwrap()[0].packs, 0);
        assert!(parse_stock(b"PH1,D1,KN95,18446744073709551616\n").is_err());
    }

    #[test]
    fn an_entrant_naming_an_unlisted_pool_is_reported() {
        let stock = parse_stock(b"PH0004,D00,KN95,1\n").unwrap();
        let entrants = parse_entrants(&[LINE, b"\n"].concat()).unwrap();
        assert!(matches!(
            check_pools(&entrants, &stock),
            Err(SnapshotError::UnknownPool { line: 1, .. })
        ));
    }
}
