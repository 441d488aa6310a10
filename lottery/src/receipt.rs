//! Signed intake receipts (`maskdraw-receipt-v1`, SPEC.md §16) and their check against the
//! published days (`notary receipt`).
//!
//! Every 202 carries a receipt: the ticket, its person tag, pool, times and the first draw
//! date it is guaranteed to enter, signed by an *intake* key (not the authority's). The intake
//! signs once per group-commit batch: the receipts of a batch are the leaves of an RFC 6962
//! tree, the intake signs the tree head, and each receipt carries its audit path, so a receipt
//! is checked alone with the intake's public key.
//!
//! With the published days, a receipt shows that its ticket was sealed into every day it was
//! guaranteed, or names the published rule that kept it out (it won, its person was cooling
//! down from a win, its person was entered with another ticket), or proves the omission.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::limits::{read_at_most, TEXT_MAX};
use crate::merkle::{all_inclusion_proofs, leaf_hash, root_from_inclusion, Hash, MerkleStream};
use crate::snapshot::{decode_lower_hex, parse_decimal, Ident, PersonTag, TicketId};
use crate::text::{
    check_date, check_timestamp, date_from_days, days_from_date, DrawText, SealText,
};

/// The first line of a receipt.
pub const RECEIPT_VERSION: &str = "maskdraw-receipt-v1";

/// The first line of a batch head, the bytes the intake key signs.
pub const BATCH_VERSION: &str = "maskdraw-receipt-batch-v1";

/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// Why a receipt was refused or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt text breaks the format.
    #[error("receipt line {line}: {reason}")]
    Format {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A field given to the signer is invalid.
    #[error("{0}")]
    Field(String),
    /// The audit path does not lead to a root whose head the intake key signed.
    #[error("the receipt's signature does not verify under the intake key")]
    BadSignature,
    /// A file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What the intake promises about one accepted ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The person's tag (as in `entrants.csv`).
    pub person_tag: PersonTag,
    /// The pharmacy named.
    pub pharmacy_id: Ident,
    /// The product named.
    pub product_id: Ident,
    /// Whether roll two may place it at another pharmacy of the district.
    pub flexible: bool,
    /// Acceptance time, milliseconds since the Unix epoch (UTC).
    pub accepted_ms: u64,
    /// The ticket enters draws whose cutoff is before this time (ms since the epoch).
    pub valid_until_ms: u64,
    /// The first draw date it is guaranteed to enter (`YYYY-MM-DD`): the first date whose
    /// cutoff is after acceptance plus the intake's maximum merge delay. The service computes
    /// it (the crate has no clock or time zone).
    pub first_draw: String,
    /// A winner's person is out for the draws of this many days after the win's draw date.
    pub cooldown_days: u32,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch.
#[must_use]
pub fn format_ms(ms: u64) -> String {
    let days = (ms / DAY_MS as u64) as i64;
    let rest = ms % DAY_MS as u64;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        date_from_days(days),
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ` strictly.
#[must_use]
pub fn parse_ms(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.len() != 24 || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let whole = format!("{}Z", &v[..19]);
    let ms: u64 = v[20..23]
        .parse()
        .ok()
        .filter(|_| v[20..23].bytes().all(|c| c.is_ascii_digit()))?;
    Some(timestamp_ms(&whole)? + ms)
}

/// Milliseconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` (seal.txt's `cutoff`).
#[must_use]
pub fn timestamp_ms(v: &str) -> Option<u64> {
    if !check_timestamp(v) {
        return None;
    }
    let days = days_from_date(&v[..10])?;
    let h: i64 = v[11..13].parse().ok()?;
    let m: i64 = v[14..16].parse().ok()?;
    let s: i64 = v[17..19].parse().ok()?;
    u64::try_from(days * DAY_MS + h * 3_600_000 + m * 60_000 + s * 1000).ok()
}

impl Receipt {
    /// The signed leaf: the receipt's ten lines.
    #[must_use]
    pub fn statement(&self) -> Vec<u8> {
        format!(
            "{RECEIPT_VERSION}\nticket:{}\nperson:{}\npharmacy:{}\nproduct:{}\nflexible:{}\n\
             accepted:{}\nvalid_until:{}\nfirst_draw:{}\ncooldown_days:{}\n",
            self.ticket_id,
            self.person_tag.to_hex(),
            self.pharmacy_id,
            self.product_id,
            u8::from(self.flexible),
            format_ms(self.accepted_ms),
            format_ms(self.valid_until_ms),
            self.first_draw,
            self.cooldown_days
        )
        .into_bytes()
    }

    /// The `entrants.csv` line the ticket must have, without its LF.
    #[must_use]
    pub fn entrant_line(&self) -> String {
        format!(
            "{},{},{},{},{}",
            self.ticket_id,
            self.pharmacy_id,
            self.product_id,
            u8::from(self.flexible),
            self.person_tag.to_hex()
        )
    }

    fn check(&self) -> Result<(), ReceiptError> {
        if !check_date(&self.first_draw) {
            return Err(ReceiptError::Field(format!(
                "first_draw {:?} is not YYYY-MM-DD",
                self.first_draw
            )));
        }
        if self.valid_until_ms <= self.accepted_ms {
            return Err(ReceiptError::Field(
                "valid_until is not after accepted".into(),
            ));
        }
        // The text format has four-digit years.
        if self.valid_until_ms >= 253_402_300_800_000 {
            return Err(ReceiptError::Field(
                "times must be before year 10000".into(),
            ));
        }
        Ok(())
    }
}

/// A receipt with its place in a signed batch: what the 202 carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    /// The promise.
    pub receipt: Receipt,
    /// Its leaf index in the batch.
    pub index: u64,
    /// The batch's size.
    pub size: u64,
    /// The RFC 6962 audit path of its leaf, leaf side first.
    pub path: Vec<Hash>,
    /// The intake key's signature of the batch head.
    pub signature: [u8; 64],
}

/// The signed batch head: `maskdraw-receipt-batch-v1`, `size:`, `root:` lines.
#[must_use]
pub fn batch_head(size: u64, root: &Hash) -> Vec<u8> {
    format!("{BATCH_VERSION}\nsize:{size}\nroot:{}\n", hex::encode(root)).into_bytes()
}

/// The batch's statements, audit paths and signature (each statement formed once).
struct SignedBatch {
    statements: Vec<Vec<u8>>,
    paths: Vec<Vec<Hash>>,
    signature: [u8; 64],
}

fn sign_statements(key: &SigningKey, receipts: &[Receipt]) -> Result<SignedBatch, ReceiptError> {
    if receipts.is_empty() {
        return Err(ReceiptError::Field(
            "an empty batch has nothing to sign".into(),
        ));
    }
    let mut statements = Vec::with_capacity(receipts.len());
    let mut leaves = Vec::with_capacity(receipts.len());
    for r in receipts {
        r.check()?;
        let statement = r.statement();
        leaves.push(leaf_hash(&statement));
        statements.push(statement);
    }
    let (root, paths) = all_inclusion_proofs(&leaves);
    let signature = key
        .sign(&batch_head(receipts.len() as u64, &root))
        .to_bytes();
    Ok(SignedBatch {
        statements,
        paths,
        signature,
    })
}

/// Signs a group-commit batch with one signature: every receipt gets its audit path.
///
/// # Errors
/// [`ReceiptError::Field`] for an invalid receipt or an empty batch.
pub fn sign_batch(
    key: &SigningKey,
    receipts: &[Receipt],
) -> Result<Vec<SignedReceipt>, ReceiptError> {
    let batch = sign_statements(key, receipts)?;
    let size = receipts.len() as u64;
    Ok(receipts
        .iter()
        .zip(batch.paths)
        .enumerate()
        .map(|(i, (r, path))| SignedReceipt {
            receipt: r.clone(),
            index: i as u64,
            size,
            path,
            signature: batch.signature,
        })
        .collect())
}

/// [`sign_batch`], answering each receipt's file (the bytes of [`SignedReceipt::to_bytes`])
/// without forming any statement twice: what the intake hands out.
///
/// # Errors
/// As [`sign_batch`].
pub fn sign_batch_files(
    key: &SigningKey,
    receipts: &[Receipt],
) -> Result<Vec<Vec<u8>>, ReceiptError> {
    let batch = sign_statements(key, receipts)?;
    let size = receipts.len() as u64;
    Ok(batch
        .statements
        .into_iter()
        .zip(&batch.paths)
        .enumerate()
        .map(|(i, (statement, path))| {
            receipt_file(statement, i as u64, size, path, &batch.signature)
        })
        .collect())
}

/// A receipt file: `statement`, then `batch:<index>/<size>`, one `path:` line per hash,
/// `signature:`. Hex goes straight into the one buffer (no string per line).
fn receipt_file(
    mut out: Vec<u8>,
    index: u64,
    size: u64,
    path: &[Hash],
    signature: &[u8; 64],
) -> Vec<u8> {
    fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
        let at = out.len();
        out.resize(at + 2 * bytes.len(), 0);
        // The slice is exactly twice the input's length, so this cannot fail.
        let _ = hex::encode_to_slice(bytes, &mut out[at..]);
    }
    out.reserve(32 + path.len() * 70 + 140);
    out.extend_from_slice(format!("batch:{index}/{size}\n").as_bytes());
    for h in path {
        out.extend_from_slice(b"path:");
        push_hex(&mut out, h);
        out.push(b'\n');
    }
    out.extend_from_slice(b"signature:");
    push_hex(&mut out, signature);
    out.push(b'\n');
    out
}

impl SignedReceipt {
    /// The receipt file: the statement, `batch:<index>/<size>`, one `path:` line per hash,
    /// `signature:`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        receipt_file(
            self.receipt.statement(),
            self.index,
            self.size,
            &self.path,
            &self.signature,
        )
    }

    /// Checks the audit path and the intake key's signature of the batch head (strict
    /// Ed25519).
    ///
    /// # Errors
    /// [`ReceiptError::BadSignature`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ReceiptError> {
        let leaf = leaf_hash(&self.receipt.statement());
        let root = root_from_inclusion(self.index, self.size, &leaf, &self.path)
            .map_err(|_| ReceiptError::BadSignature)?;
        key.verify_strict(
            &batch_head(self.size, &root),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ReceiptError::BadSignature)
    }

    /// Parses a receipt file strictly (it formats back to the same bytes).
    ///
    /// # Errors
    /// [`ReceiptError::Format`] naming the first bad line.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let err = |line: usize, reason: &str| ReceiptError::Format {
            line,
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| err(1, "not UTF-8"))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(err(text.split('\n').count(), "missing final LF"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let field = |k: usize, key: &str| -> Result<&str, ReceiptError> {
            lines
                .get(k)
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(':'))
                .ok_or_else(|| err(k + 1, &format!("want {key}:…")))
        };
        if lines.first() != Some(&RECEIPT_VERSION) {
            return Err(err(1, &format!("want {RECEIPT_VERSION}")));
        }
        let ticket_id = TicketId::parse(field(1, "ticket")?.as_bytes()).map_err(|e| err(2, e))?;
        let person_tag = PersonTag::parse(field(2, "person")?.as_bytes()).map_err(|e| err(3, e))?;
        let pharmacy_id = Ident::parse(field(3, "pharmacy")?.as_bytes()).map_err(|e| err(4, e))?;
        let product_id = Ident::parse(field(4, "product")?.as_bytes()).map_err(|e| err(5, e))?;
        let flexible = match field(5, "flexible")? {
            "0" => false,
            "1" => true,
            _ => return Err(err(6, "flexible is not 0 or 1")),
        };
        let accepted_ms = parse_ms(field(6, "accepted")?)
            .ok_or_else(|| err(7, "not YYYY-MM-DDTHH:MM:SS.mmmZ"))?;
        let valid_until_ms = parse_ms(field(7, "valid_until")?)
            .ok_or_else(|| err(8, "not YYYY-MM-DDTHH:MM:SS.mmmZ"))?;
        let first_draw = field(8, "first_draw")?;
        if !check_date(first_draw) {
            return Err(err(9, "not a YYYY-MM-DD date"));
        }
        let cooldown_days = parse_decimal(field(9, "cooldown_days")?.as_bytes())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| err(10, "not a decimal number of days"))?;
        let (index, size) = field(10, "batch")?
            .split_once('/')
            .and_then(|(a, b)| Some((parse_decimal(a.as_bytes())?, parse_decimal(b.as_bytes())?)))
            .filter(|(i, n)| i < n)
            .ok_or_else(|| err(11, "want batch:<index>/<size>, index < size"))?;
        let mut path = Vec::new();
        let mut k = 11;
        while let Some(h) = lines.get(k).and_then(|l| l.strip_prefix("path:")) {
            let mut hash = [0u8; 32];
            decode_lower_hex(h.as_bytes(), &mut hash)
                .ok_or_else(|| err(k + 1, "not 64 lowercase hex"))?;
            path.push(hash);
            k += 1;
            if path.len() > 64 {
                return Err(err(k, "more than 64 path hashes"));
            }
        }
        let mut signature = [0u8; 64];
        decode_lower_hex(field(k, "signature")?.as_bytes(), &mut signature)
            .ok_or_else(|| err(k + 1, "not 128 lowercase hex"))?;
        if lines.len() != k + 1 {
            return Err(err(k + 2, "unexpected extra line"));
        }
        let parsed = Self {
            receipt: Receipt {
                ticket_id,
                person_tag,
                pharmacy_id,
                product_id,
                flexible,
                accepted_ms,
                valid_until_ms,
                first_draw: first_draw.to_string(),
                cooldown_days,
            },
            index,
            size,
            path,
            signature,
        };
        if parsed.to_bytes() != bytes {
            return Err(err(1, "not in canonical form"));
        }
        Ok(parsed)
    }
}

/// What one published day says about the receipt's ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Before the first guaranteed date and not sealed: nothing was promised.
    NotYetGuaranteed,
    /// Sealed, with the receipt's very line.
    Entered {
        /// 1-based line of `entrants.csv`.
        line: u64,
        /// When the ticket won that day: its `result.csv` line.
        won: Option<(u64, String)>,
    },
    /// Kept out by a published rule, with the evidence.
    Excluded(String),
    /// The ticket's id is sealed with other fields than the receipt's.
    Altered {
        /// 1-based line.
        line: u64,
        /// The sealed line.
        sealed: String,
    },
    /// Not sealed, and no published rule explains it.
    Omitted(String),
    /// The day's files do not verify under the authority key (with `--authority`).
    Unverified(String),
    /// A sealed day between this one and the day before it here is missing.
    Gap(String),
}

impl Verdict {
    /// Whether the day keeps the receipt's promise (or made none).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Verdict::NotYetGuaranteed | Verdict::Entered { .. } | Verdict::Excluded(_)
        )
    }
}

/// The check of a receipt against a snapshots directory.
#[derive(Debug, Clone)]
pub struct ReceiptReport {
    /// The receipt checked.
    pub receipt: SignedReceipt,
    /// (date, verdict) for every day the ticket could have entered, ascending.
    pub days: Vec<(String, Verdict)>,
    /// Whether the days' signatures and digests were checked (an authority key was given).
    pub authenticated: bool,
}

impl ReceiptReport {
    /// Whether every day kept the promise.
    #[must_use]
    pub fn all_kept(&self) -> bool {
        self.days.iter().all(|(_, v)| v.is_ok())
    }
}

impl std::fmt::Display for ReceiptReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.receipt.receipt;
        writeln!(
            f,
            "receipt {} (batch {}/{}) signed by the intake key: accepted {}, first draw {}, valid until {}",
            r.ticket_id,
            self.receipt.index,
            self.receipt.size,
            format_ms(r.accepted_ms),
            r.first_draw,
            format_ms(r.valid_until_ms)
        )?;
        if !self.authenticated {
            writeln!(
                f,
                "NOTE the days' signatures and digests were not checked (no --authority)"
            )?;
        }
        for (date, v) in &self.days {
            let text = match v {
                Verdict::NotYetGuaranteed => {
                    "not entered, before the first guaranteed date".to_string()
                }
                Verdict::Entered { line, won: None } => {
                    format!("ENTERED (entrants.csv line {line})")
                }
                Verdict::Entered {
                    line,
                    won: Some((rl, text)),
                } => {
                    format!("ENTERED (entrants.csv line {line}); WON: result.csv line {rl} {text}")
                }
                Verdict::Excluded(why) => format!("EXCLUDED: {why}"),
                Verdict::Altered { line, sealed } => format!(
                    "ALTERED: entrants.csv line {line} is {sealed}, the receipt says {}",
                    r.entrant_line()
                ),
                Verdict::Omitted(why) => format!("OMITTED: {why}"),
                Verdict::Unverified(why) => format!("UNVERIFIED: {why}"),
                Verdict::Gap(why) => format!("GAP: {why}"),
            };
            writeln!(f, "{date} {text}")?;
        }
        let bad = self.days.iter().filter(|(_, v)| !v.is_ok()).count();
        match (self.days.first(), self.days.last()) {
            (Some((a, _)), Some((b, _))) => writeln!(
                f,
                "summary: {} days from {a} to {b}; {}",
                self.days.len(),
                if bad == 0 {
                    "the receipt's promise is kept".to_string()
                } else {
                    format!("{bad} break the receipt's promise")
                }
            ),
            _ => writeln!(
                f,
                "summary: no sealed day in the directory falls in the ticket's validity"
            ),
        }
    }
}

/// What one day's published files hold about the ticket and its person.
struct DayFacts {
    date: String,
    seal: SealText,
    seal_id: Hash,
    /// The line with the ticket's id: (line, text).
    ticket: Option<(u64, String)>,
    /// The line with the person's tag: (line, ticket id).
    person: Option<(u64, String)>,
    /// The result.csv line of the person's sealed ticket, if it won: (line, text).
    person_won: Option<(u64, String)>,
    /// Whether the day is drawn.
    drawn: bool,
    /// Why the day's files do not verify (with an authority key).
    unverified: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReceiptError + '_ {
    move |source| ReceiptError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Streams a file's lines (without LF) to `each`, which returns `false` to stop.
fn for_lines(path: &Path, mut each: impl FnMut(u64, &[u8]) -> bool) -> Result<(), ReceiptError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(128);
    let mut n = 0u64;
    loop {
        line.clear();
        let got = reader.read_until(b'\n', &mut line).map_err(io(path))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        if !each(n, body) {
            return Ok(());
        }
    }
}

fn day_facts(
    dir: &Path,
    date: &str,
    receipt: &Receipt,
    authority: Option<&VerifyingKey>,
) -> Result<DayFacts, ReceiptError> {
    let seal_path = dir.join("seal.txt");
    let seal_bytes = read_at_most(&seal_path, TEXT_MAX).map_err(io(&seal_path))?;
    let seal = SealText::parse(&seal_bytes)
        .map_err(|e| ReceiptError::Field(format!("{}: {e}", seal_path.display())))?;
    let seal_id: Hash = Sha256::digest(&seal_bytes).into();
    let mut unverified: Vec<String> = Vec::new();
    if let Some(key) = authority {
        let sig = read_at_most(&dir.join("seal.sig"), 1024).unwrap_or_default();
        if crate::sign::verify_signature(key, &seal_bytes, &sig).is_err() {
            unverified.push("seal.sig is not the authority's signature of seal.txt".into());
        }
    }
    let ticket_prefix = format!("{},", receipt.ticket_id);
    let tag = receipt.person_tag.to_hex();
    let mut ticket = None;
    let mut person = None;
    let mut tree = MerkleStream::new();
    let hash = authority.is_some();
    for_lines(&dir.join("entrants.csv"), |n, line| {
        if hash {
            tree.push(line);
        }
        if ticket.is_none() && line.starts_with(ticket_prefix.as_bytes()) {
            ticket = Some((n, String::from_utf8_lossy(line).into_owned()));
        }
        if person.is_none()
            && line.len() > 33
            && line.ends_with(tag.as_bytes())
            && line[line.len() - 33] == b','
        {
            person = Some((n, String::from_utf8_lossy(&line[..26]).into_owned()));
        }
        hash || ticket.is_none() || person.is_none()
    })?;
    if hash && tree.root() != seal.entrants_root {
        unverified.push("entrants.csv does not hash to seal.txt's entrants_root".into());
    }
    let drawn = dir.join("draw.txt").exists();
    let mut person_won = None;
    if drawn {
        if let Some((_, t)) = &person {
            let prefix = format!("{t},");
            let mut sha = Sha256::new();
            for_lines(&dir.join("result.csv"), |n, line| {
                if hash {
                    sha.update(line);
                    sha.update(b"\n");
                }
                if person_won.is_none() && line.starts_with(prefix.as_bytes()) {
                    person_won = Some((n, String::from_utf8_lossy(line).into_owned()));
                }
                hash || person_won.is_none()
            })?;
            if let Some(key) = authority {
                let draw_bytes = read_at_most(&dir.join("draw.txt"), TEXT_MAX).unwrap_or_default();
                let sig = read_at_most(&dir.join("draw.sig"), 1024).unwrap_or_default();
                let digest: Hash = sha.finalize().into();
                match DrawText::parse(&draw_bytes) {
                    Ok(d)
                        if crate::sign::verify_signature(key, &draw_bytes, &sig).is_ok()
                            && d.seal_id == seal_id
                            && d.result_sha256 == digest => {}
                    _ => unverified.push(
                        "result.csv, draw.txt and draw.sig do not verify under the authority key"
                            .into(),
                    ),
                }
            }
        }
    }
    Ok(DayFacts {
        date: date.to_string(),
        seal,
        seal_id,
        ticket,
        person,
        person_won,
        drawn,
        unverified: (!unverified.is_empty()).then(|| unverified.join("; ")),
    })
}

/// Checks a receipt (whose signature the caller verified) against every sealed day of
/// `snapshots` (its `YYYY-MM-DD` directories) that the ticket could have entered: from the
/// cooldown before its acceptance or first guaranteed date, to the last day whose cutoff is
/// before `valid_until`. With `authority`, each day used is tied to the authority's
/// signatures (`seal.sig`; `entrants.csv` to `entrants_root`; `result.csv` to `draw.txt` and
/// `draw.sig`).
///
/// # Errors
/// [`ReceiptError::Io`] when the directory or a day's files cannot be read.
pub fn check_receipt(
    signed: &SignedReceipt,
    snapshots: &Path,
    authority: Option<&VerifyingKey>,
) -> Result<ReceiptReport, ReceiptError> {
    let r = &signed.receipt;
    let first = days_from_date(&r.first_draw).unwrap_or(0);
    let accepted_day = (r.accepted_ms / DAY_MS as u64) as i64;
    let from = first.min(accepted_day) - i64::from(r.cooldown_days);
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(snapshots).map_err(io(snapshots))? {
        let entry = entry.map_err(io(snapshots))?;
        if let Ok(name) = entry.file_name().into_string() {
            if days_from_date(&name).is_some_and(|d| d >= from) && entry.path().is_dir() {
                names.push(name);
            }
        }
    }
    names.sort();
    let mut facts: Vec<DayFacts> = Vec::new();
    for name in &names {
        let day = day_facts(&snapshots.join(name), name, r, authority)?;
        let in_validity = timestamp_ms(&day.seal.cutoff).is_some_and(|c| c < r.valid_until_ms);
        if !in_validity {
            break;
        }
        facts.push(day);
    }

    let mut days = Vec::new();
    let mut won: Option<(String, u64)> = None;
    for (k, day) in facts.iter().enumerate() {
        let d = days_from_date(&day.date).unwrap_or(0);
        let cutoff = timestamp_ms(&day.seal.cutoff).unwrap_or(0);
        // Days before acceptance only serve as evidence of an earlier win.
        if d < first && cutoff < r.accepted_ms {
            continue;
        }
        let verdict = if let Some(why) = &day.unverified {
            Verdict::Unverified(why.clone())
        } else if k > 0 && day.seal.previous != Some(facts[k - 1].seal_id) {
            Verdict::Gap(format!(
                "seal.txt's previous is not {}'s seal: a sealed day in between is missing here",
                facts[k - 1].date
            ))
        } else if let Some((line, text)) = &day.ticket {
            if *text != r.entrant_line() {
                Verdict::Altered {
                    line: *line,
                    sealed: text.clone(),
                }
            } else {
                let own_win = day
                    .person_won
                    .clone()
                    .filter(|(_, l)| l.starts_with(&format!("{},", r.ticket_id)));
                if let Some((rl, _)) = &own_win {
                    won = Some((day.date.clone(), *rl));
                }
                Verdict::Entered {
                    line: *line,
                    won: own_win,
                }
            }
        } else if d < first {
            Verdict::NotYetGuaranteed
        } else if let Some((date, rl)) = &won {
            Verdict::Excluded(format!(
                "the ticket won on {date} (its result.csv line {rl}) and left the game"
            ))
        } else if let Some(why) = cooling(&facts[..k], d, r) {
            Verdict::Excluded(why)
        } else if let Some((line, other)) = &day.person {
            Verdict::Excluded(format!(
                "the same person is entered with ticket {other} (entrants.csv line {line}): one active reservation per person"
            ))
        } else {
            let mut why = "not in entrants.csv, and no published rule keeps it out".to_string();
            if d == first && cutoff < r.accepted_ms {
                why.push_str(&format!(
                    " (the receipt guarantees this day, but its cutoff {} is before the acceptance)",
                    day.seal.cutoff
                ));
            }
            Verdict::Omitted(why)
        };
        days.push((day.date.clone(), verdict));
    }
    Ok(ReceiptReport {
        receipt: signed.clone(),
        days,
        authenticated: authority.is_some(),
    })
}

/// A win of the person's ticket on a drawn day `d'` with `d − cooldown ≤ d' < d`, as evidence.
fn cooling(earlier: &[DayFacts], d: i64, r: &Receipt) -> Option<String> {
    earlier.iter().rev().find_map(|day| {
        let dd = days_from_date(&day.date)?;
        if dd < d - i64::from(r.cooldown_days) || !day.drawn {
            return None;
        }
        let (pl, ticket) = day.person.as_ref()?;
        let (rl, _) = day.person_won.as_ref()?;
        Some(format!(
            "the person is cooling down: its ticket {ticket} (entrants.csv line {pl} of {}) won on {} (result.csv line {rl}), within {} days",
            day.date, day.date, r.cooldown_days
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_times_round_trip_and_are_strict() {
        let ms = 1_795_442_400_123u64;
        assert_eq!(format_ms(ms), "2026-11-23T14:00:00.123Z");
        assert_eq!(parse_ms("2026-11-23T14:00:00.123Z"), Some(ms));
        assert_eq!(parse_ms("2026-11-23T14:00:00.12Z"), None);
        assert_eq!(parse_ms("2026-11-23T14:00:00.1234"), None);
        assert_eq!(parse_ms("2026-11-23T24:00:00.000Z"), None);
        assert_eq!(parse_ms("2026-11-23T14:00:00.+12Z"), None);
        assert_eq!(timestamp_ms("1970-01-02T00:00:01Z"), Some(86_401_000));
    }

    #[test]
    fn the_files_signed_at_once_are_the_signed_receipts_bytes() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let receipts: Vec<Receipt> = (0..5u64)
            .map(|i| Receipt {
                ticket_id: TicketId::parse(format!("01JD00000000000000000000{i:02}").as_bytes())
                    .unwrap(),
                person_tag: PersonTag::parse(b"0123456789abcdef0123456789abcdef").unwrap(),
                pharmacy_id: Ident::parse(b"GZ-TH-0001").unwrap(),
                product_id: Ident::parse(b"KN95").unwrap(),
                flexible: i % 2 == 0,
                accepted_ms: 1_795_442_400_123 + i,
                valid_until_ms: 1_796_306_400_123 + i,
                first_draw: "2026-11-24".into(),
                cooldown_days: 3,
            })
            .collect();
        let files = sign_batch_files(&key, &receipts).unwrap();
        let signed = sign_batch(&key, &receipts).unwrap();
        assert_eq!(files.len(), 5);
        for (file, one) in files.iter().zip(&signed) {
            assert_eq!(file, &one.to_bytes());
            SignedReceipt::parse(file)
                .unwrap()
                .verify(&key.verifying_key())
                .unwrap();
        }
        assert!(sign_batch_files(&key, &[]).is_err());
    }
}
