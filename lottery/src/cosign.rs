//! Witness cosignatures of a seal, `seal.cosig.<party>` (`maskdraw-cosig-v1`, SPEC.md §15).
//!
//! Before the draw, each configured witness (the notary, and any other) verifies the sealed
//! directory and countersigns its seal. A witness keeps a small append-only state of the
//! (date, seal id) pairs it has cosigned and never cosigns a second, different seal for a date
//! (C2SP tlog-witness's rule, applied to seals): an authority that sealed two lists for one day
//! could show at most one of them with the witness's cosignature.
//!
//! The signed bytes are a statement of their own, starting `maskdraw-cosig-v1`, that names the
//! party, the date and the seal id: they can never be taken for `seal.txt` or `draw.txt`, so a
//! cosignature is not an authority signature even under the same key, nor the reverse.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::limits::{read_at_most, KEY_OR_SIGNATURE_MAX, TEXT_MAX};
use crate::merkle::Hash;
use crate::snapshot::decode_lower_hex;
use crate::text::{check_date, check_party, SealText};
use crate::verify::{Check, Outcome, DRAW_FILES};

/// The first line of a cosignature.
pub const COSIG_VERSION: &str = "maskdraw-cosig-v1";

/// The largest state file read (about 90 bytes per cosigned day: 20,000 years of days is far
/// less).
const STATE_MAX: u64 = 64 << 20;

/// Why a cosignature was not made or does not hold.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// A file is missing or unreadable, or cannot be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The party name is not `[a-z0-9-]{1,32}`.
    #[error("party {0:?} is not [a-z0-9-]{{1,32}}")]
    BadParty(String),
    /// The sealed directory does not verify under the authority's key.
    #[error("the sealed directory does not verify:\n{0}")]
    NotVerified(String),
    /// The day is drawn already: a cosignature after the draw witnesses nothing.
    #[error("the day is drawn already ({0} exists); a witness cosigns before the draw")]
    AlreadyDrawn(&'static str),
    /// The witness cosigned another seal for this date: the authority equivocates.
    #[error(
        "refusing: {party} cosigned seal {cosigned} for {date} already, and this directory's seal is {offered}: two different seals for one date"
    )]
    Equivocation {
        /// The witness.
        party: String,
        /// The date.
        date: String,
        /// The seal cosigned before.
        cosigned: String,
        /// The seal offered now.
        offered: String,
    },
    /// The state file is malformed: the witness cannot know what it cosigned.
    #[error("witness state {} line {line}: {reason}", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Another cosign holds the state's lock file.
    #[error(
        "{} exists: another cosign is running (if none is, a crashed one left it: remove it)",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A cosignature file is malformed.
    #[error("{file}: {reason}")]
    Format {
        /// The file name.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A cosignature names another party, date or seal, or its signature does not verify.
    #[error("{file}: {reason}")]
    Mismatch {
        /// The file name.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CosignError + '_ {
    move |source| CosignError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file name of `party`'s cosignature.
#[must_use]
pub fn cosig_file(party: &str) -> String {
    format!("seal.cosig.{party}")
}

/// The signed statement: `maskdraw-cosig-v1`, `party:`, `draw_date:`, `seal:` lines.
#[must_use]
pub fn statement(party: &str, draw_date: &str, seal_id: &Hash) -> Vec<u8> {
    format!(
        "{COSIG_VERSION}\nparty:{party}\ndraw_date:{draw_date}\nseal:{}\n",
        hex::encode(seal_id)
    )
    .into_bytes()
}

/// The contents of `seal.cosig.<party>`: the statement and a `signature:` line, the Ed25519
/// signature of the statement's bytes.
#[must_use]
pub fn cosignature(key: &SigningKey, party: &str, draw_date: &str, seal_id: &Hash) -> Vec<u8> {
    let mut out = statement(party, draw_date, seal_id);
    let sig = key.sign(&out);
    out.extend_from_slice(format!("signature:{}\n", hex::encode(sig.to_bytes())).as_bytes());
    out
}

/// Checks `party`'s cosignature of the seal in `dir` under `key`.
///
/// # Errors
/// [`CosignError`] when `seal.txt` or the cosignature is unreadable or malformed, names
/// another party, date or seal, or its signature does not verify (strictly).
pub fn check_cosignature(dir: &Path, party: &str, key: &VerifyingKey) -> Result<(), CosignError> {
    if !check_party(party) {
        return Err(CosignError::BadParty(party.to_string()));
    }
    let seal_path = dir.join("seal.txt");
    let seal_bytes = read_at_most(&seal_path, TEXT_MAX).map_err(io_err(&seal_path))?;
    let seal = SealText::parse(&seal_bytes).map_err(|e| CosignError::Format {
        file: "seal.txt".into(),
        reason: e.to_string(),
    })?;
    let seal_id: Hash = Sha256::digest(&seal_bytes).into();
    let file = cosig_file(party);
    let path = dir.join(&file);
    let bytes = read_at_most(&path, KEY_OR_SIGNATURE_MAX).map_err(io_err(&path))?;
    let want = statement(party, &seal.draw_date, &seal_id);
    let Some(rest) = bytes.strip_prefix(want.as_slice()) else {
        let shown = String::from_utf8_lossy(&bytes);
        return Err(CosignError::Mismatch {
            file,
            reason: format!(
                "does not state this seal: want {:?}…, file has {:?}",
                String::from_utf8_lossy(&want),
                shown.chars().take(160).collect::<String>()
            ),
        });
    };
    let sig_hex = rest
        .strip_prefix(b"signature:")
        .and_then(|r| r.strip_suffix(b"\n"))
        .ok_or_else(|| CosignError::Format {
            file: file.clone(),
            reason: "want a last line signature:<128 hex>".into(),
        })?;
    let mut sig = [0u8; 64];
    decode_lower_hex(sig_hex, &mut sig).ok_or_else(|| CosignError::Format {
        file: file.clone(),
        reason: "the signature is not 128 lowercase hex characters".into(),
    })?;
    key.verify_strict(&want, &Signature::from_bytes(&sig))
        .map_err(|_| CosignError::Mismatch {
            file,
            reason: format!("the signature does not verify under {party}'s key"),
        })
}

/// Checks every named witness's cosignature (the draw's gate: every configured witness must
/// have cosigned before the draw).
///
/// # Errors
/// The first witness whose cosignature is missing or does not hold.
pub fn check_cosignatures(
    dir: &Path,
    witnesses: &[(String, VerifyingKey)],
) -> Result<(), CosignError> {
    for (party, key) in witnesses {
        check_cosignature(dir, party, key)?;
    }
    Ok(())
}

/// One verification check per witness, for `notary verify --witness`.
#[must_use]
pub fn witness_checks(dir: &Path, witnesses: &[(String, VerifyingKey)]) -> Vec<Check> {
    witnesses
        .iter()
        .map(|(party, key)| Check {
            name: format!(
                "{} is {party}'s cosignature of this seal",
                cosig_file(party)
            ),
            outcome: match check_cosignature(dir, party, key) {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Failed(e.to_string()),
            },
        })
        .collect()
}

/// What a witness has cosigned: its state file, one `<YYYY-MM-DD> <64 hex seal id>` line per
/// date, in the order cosigned (append-only: lines are only ever added).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessState {
    /// (date, seal id), in the order cosigned.
    pub entries: Vec<(String, Hash)>,
}

impl WitnessState {
    /// Reads a state file; a missing file is the empty state.
    ///
    /// # Errors
    /// [`CosignError::BadState`] for a malformed file, [`CosignError::Io`] when unreadable.
    pub fn load(path: &Path) -> Result<Self, CosignError> {
        let bytes = match read_at_most(path, STATE_MAX) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io_err(path)(e)),
        };
        let bad = |line: usize, reason: &str| CosignError::BadState {
            path: path.to_path_buf(),
            line,
            reason: reason.to_string(),
        };
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            return Err(bad(
                bytes.split(|&b| b == b'\n').count(),
                "missing final LF (an interrupted write?)",
            ));
        }
        let mut entries: Vec<(String, Hash)> = Vec::new();
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if body.is_empty() {
            return Ok(Self { entries });
        }
        for (k, line) in body.split(|&b| b == b'\n').enumerate() {
            let text = std::str::from_utf8(line).map_err(|_| bad(k + 1, "not UTF-8"))?;
            let (date, id) = text
                .split_once(' ')
                .ok_or_else(|| bad(k + 1, "want <YYYY-MM-DD> <64 hex>"))?;
            if !check_date(date) {
                return Err(bad(k + 1, "not a YYYY-MM-DD date"));
            }
            let mut seal = [0u8; 32];
            decode_lower_hex(id.as_bytes(), &mut seal)
                .ok_or_else(|| bad(k + 1, "the seal id is not 64 lowercase hex"))?;
            if entries.iter().any(|(d, _)| d.as_str() == date) {
                return Err(bad(k + 1, "a date cosigned twice"));
            }
            entries.push((date.to_string(), seal));
        }
        Ok(Self { entries })
    }

    /// The seal cosigned for `date`, if any.
    #[must_use]
    pub fn get(&self, date: &str) -> Option<&Hash> {
        self.entries
            .iter()
            .find(|(d, _)| d.as_str() == date)
            .map(|(_, h)| h)
    }

    /// The file's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 76);
        for (d, h) in &self.entries {
            out.extend_from_slice(format!("{d} {}\n", hex::encode(h)).as_bytes());
        }
        out
    }
}

/// Writes `bytes` to `path` atomically and durably: a temporary file beside it, fsync, rename,
/// fsync of the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), CosignError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    // The rename is durable only once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// A lock file made with `create_new`, removed on drop.
struct Lock(PathBuf);

impl Lock {
    fn take(state: &Path) -> Result<Self, CosignError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => Ok(Self(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(CosignError::Locked { path })
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Nothing to do if it is gone already; a stale lock only makes the next run refuse.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What [`cosign_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The file written.
    pub path: PathBuf,
    /// The date cosigned.
    pub draw_date: String,
    /// The seal cosigned.
    pub seal_id: Hash,
    /// Whether the state already held this (date, seal) (the file was written again, with the
    /// same bytes: Ed25519 signatures are deterministic).
    pub repeated: bool,
}

/// The witness's whole act: verifies the sealed, not yet drawn directory under the authority's
/// key, refuses a date its state has with another seal, records (date, seal id) in the state
/// durably, then writes `seal.cosig.<party>` into `dir`.
///
/// # Errors
/// [`CosignError`]; nothing is recorded or written on any error.
pub fn cosign_dir(
    dir: &Path,
    authority: &VerifyingKey,
    key: &SigningKey,
    party: &str,
    state_path: &Path,
) -> Result<Cosigned, CosignError> {
    if !check_party(party) {
        return Err(CosignError::BadParty(party.to_string()));
    }
    if let Some(f) = DRAW_FILES.iter().find(|f| dir.join(f).exists()) {
        return Err(CosignError::AlreadyDrawn(f));
    }
    let report = crate::verify::verify_dir(dir, authority, None);
    if !report.all_passed() {
        return Err(CosignError::NotVerified(report.to_string()));
    }
    let seal_path = dir.join("seal.txt");
    let seal_bytes = read_at_most(&seal_path, TEXT_MAX).map_err(io_err(&seal_path))?;
    let seal = SealText::parse(&seal_bytes).map_err(|e| CosignError::Format {
        file: "seal.txt".into(),
        reason: e.to_string(),
    })?;
    let seal_id: Hash = Sha256::digest(&seal_bytes).into();

    let _lock = Lock::take(state_path)?;
    let mut state = WitnessState::load(state_path)?;
    let repeated = match state.get(&seal.draw_date) {
        Some(cosigned) if *cosigned == seal_id => true,
        Some(cosigned) => {
            return Err(CosignError::Equivocation {
                party: party.to_string(),
                date: seal.draw_date.clone(),
                cosigned: hex::encode(cosigned),
                offered: hex::encode(seal_id),
            })
        }
        None => false,
    };
    if !repeated {
        state.entries.push((seal.draw_date.clone(), seal_id));
        write_durably(state_path, &state.to_bytes())?;
    }
    let path = dir.join(cosig_file(party));
    write_durably(&path, &cosignature(key, party, &seal.draw_date, &seal_id))?;
    Ok(Cosigned {
        path,
        draw_date: seal.draw_date,
        seal_id,
        repeated,
    })
}
