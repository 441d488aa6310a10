//! The notary's verifier: every check DESIGN.md lists, each reported on its
//! own, never panicking (DESIGN.md, "The two-roll draw (version 1)", last
//! paragraph; STYLE.md: `verify_*` never panics).
//!
//! Checks run on a sealed-only directory (no draw files yet) and on a drawn
//! one. A check whose inputs are broken fails with "cannot check: …" so that
//! the report always says what could not be established.

use std::fmt;
use std::path::Path;

use std::io::Read;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::audit::AUDIT_FILE;
use crate::draw::{run, Core, DrawError};
use crate::limits::{entrants_max, file_max, read_at_most, RESULT_LINE_MAX, TEXT_MAX};
use crate::merkle::Hash;
use crate::scan::{scan_entrants_file, scan_entrants_file_with, EntrantScan, ScanDigest};
use crate::sign::{public_key_file, verify_signature};
use crate::snapshot::{parse_stock, PoolIndex, StockLine, TicketId};
use crate::text::{check_reveal, DrawText, SealText, SeedText};
use crate::tiles::TILES_FILE;
use crate::{NoProgress, Progress};

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Ok,
    /// The check failed, with why.
    Failed(String),
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `entrants_root matches entrants.csv`.
    pub name: String,
    /// Whether it held.
    pub outcome: Outcome,
}

/// Every check run on a directory, in the order run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed (and there was at least one).
    #[must_use]
    pub fn all_passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome == Outcome::Ok)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome != Outcome::Ok)
    }

    fn add(&mut self, name: impl Into<String>, result: Result<(), String>) {
        self.checks.push(Check {
            name: name.into(),
            outcome: match result {
                Ok(()) => Outcome::Ok,
                Err(why) => Outcome::Failed(why),
            },
        });
    }
}

impl fmt::Display for Report {
    /// One line per check: `PASS <check>` or `FAIL <check>: <why>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            match &c.outcome {
                Outcome::Ok => writeln!(f, "PASS {}", c.name)?,
                Outcome::Failed(why) => writeln!(f, "FAIL {}: {}", c.name, why)?,
            }
        }
        Ok(())
    }
}

/// Names of the files a drawn directory adds to a sealed one.
pub const DRAW_FILES: [&str; 5] = [
    "draw.txt",
    "draw.sig",
    "result.csv",
    "pools.csv",
    "spill.csv",
];

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Reads one of the day's small files whole, within its bound (see [`crate::limits`]).
fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    read_at_most(&dir.join(name), file_max(name).unwrap_or(TEXT_MAX))
        .map_err(|e| format!("cannot read {name}: {e}"))
}

/// What a streaming pass over a draw output found: its digest and line count, in constant
/// memory (`result.csv` may be tens of megabytes).
struct FileFacts {
    sha256: Hash,
    lines: u64,
}

/// Hashes and counts the lines of a file of at most `max` bytes, refusing a longer one from
/// its length alone (hashing a 64 GiB sparse file would take minutes).
fn file_facts(dir: &Path, name: &str, max: u64) -> Result<FileFacts, String> {
    let io = |e: std::io::Error| format!("cannot read {name}: {e}");
    let file = std::fs::File::open(dir.join(name)).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > max {
        return Err(format!(
            "cannot read {name}: it is {len} bytes, more than the {max} a valid file can have"
        ));
    }
    let mut file = file.take(max);
    let mut sha = Sha256::new();
    let mut lines = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        sha.update(&buf[..n]);
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
    Ok(FileFacts {
        sha256: sha.finalize().into(),
        lines,
    })
}

/// The first `max` bytes of a file (all of it when shorter).
fn read_prefix(dir: &Path, name: &str, max: usize) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("cannot read {name}: {e}");
    let file = std::fs::File::open(dir.join(name)).map_err(io)?;
    let mut out = Vec::new();
    file.take(max as u64).read_to_end(&mut out).map_err(io)?;
    Ok(out)
}

/// Bytes of a draw output read past the length the replay gives: enough to show the first
/// extra line in a FAIL line.
const EXTRA_SHOWN: usize = 4096;

/// The directory's last name when it looks like a date (`YYYY-MM-DD`): the service names a
/// day's directory after its draw date (SPEC.md §10).
fn date_name(dir: &Path) -> Option<String> {
    let last = match dir.components().next_back() {
        Some(std::path::Component::Normal(name)) => Some(name.to_os_string()),
        // `.` or `..`: the name is the one the path resolves to.
        _ => std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_os_string())),
    }?;
    let name = last.to_str()?;
    let b = name.as_bytes();
    let looks_like_date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    looks_like_date.then(|| name.to_string())
}

fn cannot(what: &str) -> String {
    format!("cannot check: {what}")
}

/// Runs every check on `dir` with the pinned authority key, and the chain link
/// to `previous` when given. Never panics; I/O problems are failed checks.
#[must_use]
pub fn verify_dir(dir: &Path, key: &VerifyingKey, previous: Option<&Path>) -> Report {
    verify_dir_with_progress(dir, key, previous, &NoProgress)
}

/// [`verify_dir`] reporting progress over `entrants.csv` (in bytes).
#[must_use]
pub fn verify_dir_with_progress(
    dir: &Path,
    key: &VerifyingKey,
    previous: Option<&Path>,
    progress: &dyn Progress,
) -> Report {
    verify_dir_scanned(dir, key, previous, &EntrantsCheck::Root, progress).0
}

/// How [`verify_dir_scanned`] ties `entrants.csv` to the seal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntrantsCheck {
    /// Recompute the tree head and compare it with `seal.txt`'s `entrants_root`: the notary's
    /// check, which needs nothing but the directory and the key.
    Root,
    /// Compare the file's SHA-256 with a digest recorded when the file was written, next to the
    /// seal (the officials' draw: the seal computed `entrants_root` from the very bytes it
    /// hashed). Skips the tree, about half of the scan's work; every other check is the same.
    FileSha256(Hash),
}

/// What [`verify_dir_scanned`] read, when `stock.csv` and `entrants.csv` were clean: exactly
/// the bytes the report judged, parsed, so that the draw needs no second read.
#[derive(Debug)]
pub struct Scanned {
    /// `stock.csv`.
    pub stock: Vec<StockLine>,
    /// The pass over `entrants.csv`, with pool indices into `stock`.
    pub entrants: EntrantScan,
}

/// [`verify_dir_with_progress`], also handing back what it read when `stock.csv` and
/// `entrants.csv` were clean (grammar, order, unique tags, every pool listed), so that a caller
/// about to draw does not read and hash `entrants.csv` a second time, nor re-read a file that
/// could have changed since it was checked. When [`Report::all_passed`] holds, this is the
/// sealed day's input to the draw.
#[must_use]
pub fn verify_dir_scanned(
    dir: &Path,
    key: &VerifyingKey,
    previous: Option<&Path>,
    check: &EntrantsCheck,
    progress: &dyn Progress,
) -> (Report, Option<Scanned>) {
    let mut r = Report::default();

    if dir.join("authority.pub").exists() {
        r.add(
            "authority.pub in the directory is the pinned key",
            read(dir, "authority.pub").and_then(|b| {
                if b == public_key_file(key).as_bytes() {
                    Ok(())
                } else {
                    Err("differs from the key given with --key".into())
                }
            }),
        );
    }

    // The seal.
    let seal_bytes = read(dir, "seal.txt");
    let seal: Result<SealText, String> = seal_bytes
        .clone()
        .and_then(|b| SealText::parse(&b).map_err(|e| e.to_string()));
    r.add(
        "seal.txt grammar",
        seal.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    r.add(
        "seal.sig is the authority's signature of seal.txt",
        match &seal_bytes {
            Ok(b) => read(dir, "seal.sig")
                .and_then(|sig| verify_signature(key, b, &sig).map_err(|e| e.to_string())),
            Err(e) => Err(cannot(e)),
        },
    );

    if let Some(name) = date_name(dir) {
        r.add(
            "directory name matches seal.txt draw_date",
            match &seal {
                Ok(s) if s.draw_date == name => Ok(()),
                Ok(s) => Err(format!(
                    "the directory is named {name}, seal.txt says draw_date:{}",
                    s.draw_date
                )),
                Err(_) => Err(cannot("seal.txt is invalid")),
            },
        );
    }

    // The stock.
    let stock_bytes = read(dir, "stock.csv");
    let stock: Result<Vec<StockLine>, String> = stock_bytes
        .clone()
        .and_then(|b| parse_stock(&b).map_err(|e| format!("stock.csv {e}")));
    r.add(
        "stock.csv grammar and order",
        stock.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    r.add(
        "stock_sha256 matches stock.csv",
        match (&seal, &stock_bytes) {
            (Ok(s), Ok(b)) => {
                let got = sha256(b);
                if got == s.stock_sha256 {
                    Ok(())
                } else {
                    Err(format!(
                        "stock.csv hashes to {}, seal.txt says {}",
                        hex::encode(got),
                        hex::encode(s.stock_sha256)
                    ))
                }
            }
            (Err(_), _) => Err(cannot("seal.txt is invalid")),
            (_, Err(e)) => Err(cannot(e)),
        },
    );

    // The entrants: one streaming pass.
    let size = std::fs::metadata(dir.join("entrants.csv"))
        .map(|m| m.len())
        .unwrap_or(0);
    progress.start("entrants.csv", size);
    let pools = stock.as_ref().ok().map(|s| PoolIndex::new(s));
    let scan: Result<EntrantScan, String> = scan_entrants_file_with(
        &dir.join("entrants.csv"),
        pools.as_ref(),
        match check {
            EntrantsCheck::Root => ScanDigest::Tree,
            EntrantsCheck::FileSha256(_) => ScanDigest::FileSha256,
        },
        &|done| progress.set(done),
    )
    .map_err(|e| format!("cannot read entrants.csv: {e}"));
    progress.finish();
    r.add(
        "entrants.csv grammar, order, unique person_tag, listed pools",
        match &scan {
            Ok(s) => match &s.error {
                None if s.duplicate_tag => Err("entrants.csv has a repeated person_tag".into()),
                None if pools.is_none() => Err(cannot("stock.csv is invalid, pools not checked")),
                None => Ok(()),
                Some(e) => Err(format!("entrants.csv {e}")),
            },
            Err(e) => Err(e.clone()),
        },
    );
    r.add(
        "entrants count matches seal.txt",
        match (&seal, &scan) {
            (Ok(s), Ok(sc)) if s.entrants == sc.lines => Ok(()),
            (Ok(s), Ok(sc)) => Err(format!(
                "entrants.csv has {} lines, seal.txt says {}",
                sc.lines, s.entrants
            )),
            (Err(_), _) => Err(cannot("seal.txt is invalid")),
            (_, Err(e)) => Err(cannot(e)),
        },
    );
    match check {
        EntrantsCheck::Root => r.add(
            "entrants_root matches entrants.csv",
            match (&seal, &scan) {
                (Ok(s), Ok(sc)) if Some(s.entrants_root) == sc.root => Ok(()),
                (Ok(s), Ok(sc)) => Err(format!(
                    "entrants.csv has root {}, seal.txt says {}",
                    sc.root.map(hex::encode).unwrap_or_default(),
                    hex::encode(s.entrants_root)
                )),
                (Err(_), _) => Err(cannot("seal.txt is invalid")),
                (_, Err(e)) => Err(cannot(e)),
            },
        ),
        EntrantsCheck::FileSha256(want) => r.add(
            "entrants.csv is the file the seal wrote (its SHA-256 as recorded)",
            match &scan {
                Ok(sc) if sc.file_sha256.as_ref() == Some(want) => Ok(()),
                Ok(sc) => Err(format!(
                    "entrants.csv hashes to {}, the seal recorded {}",
                    sc.file_sha256.map(hex::encode).unwrap_or_default(),
                    hex::encode(want)
                )),
                Err(e) => Err(cannot(e)),
            },
        ),
    }

    // The proof tiles: derived data, rebuilt from the same pass and compared byte for byte.
    // The officials' draw (which skips the tree) leaves them to the notary.
    if *check == EntrantsCheck::Root {
        let path = dir.join(TILES_FILE);
        if path.exists() {
            r.add(
                format!("{TILES_FILE} is rebuilt from entrants.csv byte for byte"),
                match &scan {
                    Ok(EntrantScan {
                        tiles: Some(tiles), ..
                    }) => tiles.compare_file(&path),
                    Ok(_) => Err(cannot("the scan built no tree")),
                    Err(e) => Err(cannot(e)),
                },
            );
        } else {
            r.add(
                format!("{TILES_FILE} is absent (optional derived data: nothing to check)"),
                Ok(()),
            );
        }
    }

    if let Some(prev) = previous {
        r.add(
            "previous seal links to this one",
            check_chain(prev, key, seal.as_ref().ok()),
        );
    }

    // The draw, when there is one.
    let present: Vec<&str> = DRAW_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if present.is_empty() {
        if dir.join(AUDIT_FILE).exists() {
            r.add(
                format!("{AUDIT_FILE} belongs to a drawn day"),
                Err("the day has no draw files to audit".into()),
            );
        }
        return (r, clean(stock, scan));
    }
    let missing: Vec<&str> = DRAW_FILES
        .iter()
        .copied()
        .filter(|f| !present.contains(f))
        .collect();
    r.add(
        "draw files complete",
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {}", missing.join(", ")))
        },
    );
    let draw_bytes = read(dir, "draw.txt");
    let drawn: Result<DrawText, String> = draw_bytes
        .clone()
        .and_then(|b| DrawText::parse(&b).map_err(|e| e.to_string()));
    r.add(
        "draw.txt grammar",
        drawn.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    r.add(
        "draw.sig is the authority's signature of draw.txt",
        match &draw_bytes {
            Ok(b) => read(dir, "draw.sig")
                .and_then(|sig| verify_signature(key, b, &sig).map_err(|e| e.to_string())),
            Err(e) => Err(cannot(e)),
        },
    );
    let seal_id = seal_bytes.as_ref().ok().map(|b| sha256(b));
    r.add(
        "draw.txt names this seal",
        match (&drawn, seal_id) {
            (Ok(d), Some(id)) if d.seal_id == id => Ok(()),
            (Ok(d), Some(id)) => Err(format!(
                "draw.txt names seal {}, seal.txt is {}",
                hex::encode(d.seal_id),
                hex::encode(id)
            )),
            (Err(_), _) => Err(cannot("draw.txt is invalid")),
            (_, None) => Err(cannot("seal.txt is unreadable")),
        },
    );
    match (&seal, &drawn) {
        (Ok(s), Ok(d)) => {
            for j in 0..s.commits.len().max(d.reveals.len()) {
                let (name, result) = match (s.commits.get(j), d.reveals.get(j)) {
                    (Some(c), Some(rv)) => (
                        format!("reveal {} matches its commitment", c.party),
                        check_reveal(c, rv).map_err(|e| e.to_string()),
                    ),
                    (Some(c), None) => (
                        format!("reveal {} matches its commitment", c.party),
                        Err("no reveal".into()),
                    ),
                    (None, Some(rv)) => (
                        format!("reveal {} has a commitment", rv.party),
                        Err("the seal has no commitment at this position".into()),
                    ),
                    (None, None) => continue,
                };
                r.add(name, result);
            }
        }
        _ => r.add(
            "reveals match their commitments",
            Err(cannot("seal.txt or draw.txt is invalid")),
        ),
    }
    // The seed is recomputed from this seal's id, not from draw.txt's seal line.
    let seed: Option<[u8; 32]> = match (&drawn, seal_id) {
        (Ok(d), Some(id)) => Some(
            SeedText {
                seal_id: id,
                reveals: d.reveals.clone(),
                material: d.material.clone(),
            }
            .seed(),
        ),
        _ => None,
    };
    r.add(
        "seed is SHA-256 of the seed text",
        match (&drawn, seed) {
            (Ok(d), Some(s)) if d.seed == s => Ok(()),
            (Ok(d), Some(s)) => Err(format!(
                "seed text hashes to {}, draw.txt says {}",
                hex::encode(s),
                hex::encode(d.seed)
            )),
            _ => Err(cannot("draw.txt or seal.txt is invalid")),
        },
    );

    // Replay both rolls.
    // Each winner is an entrant: result.csv's bound comes from the lines entrants.csv really
    // has (or, when it could not be read, from the count seal.txt states).
    let entrants = match (&scan, &seal) {
        (Ok(sc), _) => Some(sc.lines),
        (Err(_), Ok(s)) => Some(s.entrants),
        (Err(_), Err(_)) => None,
    };
    let files: Vec<Result<FileFacts, String>> = ["result.csv", "pools.csv", "spill.csv"]
        .iter()
        .map(|f| {
            let max = file_max(f)
                .or_else(|| entrants.map(|n| entrants_max(n, RESULT_LINE_MAX)))
                .ok_or_else(|| cannot("neither entrants.csv nor seal.txt could be read"))?;
            file_facts(dir, f, max)
        })
        .collect();
    let replayed: Result<Replayed, String> = match (&stock, &scan, seed) {
        (Ok(st), Ok(sc), Some(seed)) if sc.error.is_none() && !sc.duplicate_tag => {
            draw_from_scan(sc, st, &seed)
                .map_err(|e: DrawError| format!("the draw refused its input: {e}"))
        }
        (Err(_), _, _) => Err(cannot("stock.csv is invalid")),
        (_, Err(e), _) => Err(cannot(e)),
        (_, _, None) => Err(cannot("no seed")),
        _ => Err(cannot("entrants.csv is invalid")),
    };
    for (k, name) in ["result.csv", "pools.csv", "spill.csv"].iter().enumerate() {
        r.add(
            format!("{name} is reproduced by the draw byte for byte"),
            match (&replayed, &files[k]) {
                (Ok(outs), Ok(_)) => {
                    let want = [&outs.result_csv, &outs.pools_csv, &outs.spill_csv][k];
                    read_prefix(dir, name, want.len() + EXTRA_SHOWN)
                        .and_then(|file| compare_bytes(name, want, &file))
                }
                (Err(e), _) => Err(e.clone()),
                (_, Err(e)) => Err(e.clone()),
            },
        );
    }

    // draw.txt's counts and digests against the files.
    match &drawn {
        Ok(d) => {
            r.add(
                "draw.txt winners matches result.csv",
                files[0].as_ref().map_err(Clone::clone).and_then(|f| {
                    let lines = f.lines;
                    if lines == d.winners {
                        Ok(())
                    } else {
                        Err(format!(
                            "result.csv has {lines} lines, draw.txt says {}",
                            d.winners
                        ))
                    }
                }),
            );
            for (k, (name, want)) in [
                ("result", d.result_sha256),
                ("pools", d.pools_sha256),
                ("spill", d.spill_sha256),
            ]
            .iter()
            .enumerate()
            {
                r.add(
                    format!("draw.txt {name}_sha256 matches {name}.csv"),
                    files[k].as_ref().map_err(Clone::clone).and_then(|f| {
                        let got = f.sha256;
                        if &got == want {
                            Ok(())
                        } else {
                            Err(format!(
                                "{name}.csv hashes to {}, draw.txt says {}",
                                hex::encode(got),
                                hex::encode(want)
                            ))
                        }
                    }),
                );
            }
        }
        Err(_) => r.add(
            "draw.txt counts and digests",
            Err(cannot("draw.txt is invalid")),
        ),
    }

    // The fairness audit: derived from entrants.csv, stock.csv and result.csv alone, unsigned
    // like entrants.tiles, and optional (days drawn before it existed have none).
    if dir.join(AUDIT_FILE).exists() {
        r.add(
            format!("{AUDIT_FILE} is reproduced from entrants.csv, stock.csv and result.csv byte for byte"),
            check_audit(dir, stock.as_ref(), scan.as_ref(), &files[0]),
        );
    } else {
        r.add(
            format!("{AUDIT_FILE} is absent (optional derived data: nothing to check)"),
            Ok(()),
        );
    }
    (r, clean(stock, scan))
}

/// Recomputes the audit from the files the report judged and compares it with `audit.txt`.
fn check_audit(
    dir: &Path,
    stock: Result<&Vec<StockLine>, &String>,
    scan: Result<&EntrantScan, &String>,
    result_facts: &Result<FileFacts, String>,
) -> Result<(), String> {
    let stock = stock.map_err(|_| cannot("stock.csv is invalid"))?;
    let scan = scan.map_err(|e| cannot(e))?;
    if scan.error.is_some() || scan.duplicate_tag {
        return Err(cannot("entrants.csv is invalid"));
    }
    result_facts.as_ref().map_err(|e| cannot(e))?;
    let result = read_at_most(
        &dir.join("result.csv"),
        entrants_max(scan.lines, RESULT_LINE_MAX),
    )
    .map_err(|e| cannot(&format!("cannot read result.csv: {e}")))?;
    let pools = PoolIndex::new(stock);
    let want = match crate::audit::audit_files(&scan.entries, &scan.tickets, stock, &pools, &result)
    {
        Ok(a) => a.text,
        Err(e) => return Err(format!("the audit cannot be computed: {e}")),
    };
    let got = read(dir, AUDIT_FILE)?;
    compare_bytes(AUDIT_FILE, &want, &got)
}

/// Both files, when the stock parsed and the scan broke no rule.
fn clean(
    stock: Result<Vec<StockLine>, String>,
    scan: Result<EntrantScan, String>,
) -> Option<Scanned> {
    match (stock, scan) {
        (Ok(stock), Ok(entrants)) if entrants.error.is_none() && !entrants.duplicate_tag => {
            Some(Scanned { stock, entrants })
        }
        _ => None,
    }
}

fn outputs(core: &Core, stock: &[StockLine], tickets: &[u128]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        core.result_csv(stock, |i| TicketId::from_u128(tickets[i as usize])),
        core.pools_csv(),
        core.spill_csv(),
    )
}

fn compare_bytes(name: &str, want: &[u8], got: &[u8]) -> Result<(), String> {
    if want == got {
        return Ok(());
    }
    let mut w = want.split(|&b| b == b'\n');
    let mut g = got.split(|&b| b == b'\n');
    let mut line = 1usize;
    loop {
        match (w.next(), g.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                let show = |x: Option<&[u8]>| {
                    x.map_or_else(
                        || "end of file".to_string(),
                        |x| format!("{:?}", String::from_utf8_lossy(x)),
                    )
                };
                return Err(format!(
                    "{name} line {line}: draw gives {}, file has {}",
                    show(a),
                    show(b)
                ));
            }
        }
    }
}

fn check_chain(prev: &Path, key: &VerifyingKey, seal: Option<&SealText>) -> Result<(), String> {
    let seal = seal.ok_or_else(|| cannot("seal.txt is invalid"))?;
    let prev_bytes = read(prev, "seal.txt").map_err(|e| format!("previous directory: {e}"))?;
    let prev_seal = SealText::parse(&prev_bytes).map_err(|e| format!("previous directory: {e}"))?;
    let prev_sig = read(prev, "seal.sig").map_err(|e| format!("previous directory: {e}"))?;
    verify_signature(key, &prev_bytes, &prev_sig).map_err(|e| format!("previous seal.sig: {e}"))?;
    let prev_id = sha256(&prev_bytes);
    if seal.previous != Some(prev_id) {
        return Err(format!(
            "seal.txt previous is {}, the previous seal id is {}",
            seal.previous.map_or_else(|| "-".to_string(), hex::encode),
            hex::encode(prev_id)
        ));
    }
    if prev_seal.draw_date >= seal.draw_date {
        return Err(format!(
            "previous draw date {} is not before {}",
            prev_seal.draw_date, seal.draw_date
        ));
    }
    Ok(())
}

/// The three draw outputs recomputed from a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The seed recomputed from `seal.txt` and `draw.txt`'s reveals and material.
    pub seed: [u8; 32],
    /// `result.csv`.
    pub result_csv: Vec<u8>,
    /// `pools.csv`.
    pub pools_csv: Vec<u8>,
    /// `spill.csv`.
    pub spill_csv: Vec<u8>,
    /// Number of winners.
    pub winners: u64,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file is missing or unreadable.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file breaks the format.
    #[error("{0}")]
    Invalid(String),
    /// The draw refused its input.
    #[error(transparent)]
    Draw(#[from] DrawError),
}

/// Recomputes `result.csv`, `pools.csv` and `spill.csv` from `seal.txt`,
/// `stock.csv`, `entrants.csv` and the `reveal:`/`material:` lines of
/// `draw.txt` (DESIGN.md "Seed", "The two-roll draw"). Reveals are checked
/// against the seal's commitments first.
///
/// # Errors
/// [`ReplayError`] when a file is unreadable or invalid.
pub fn replay_dir(dir: &Path, progress: &dyn Progress) -> Result<Replayed, ReplayError> {
    let io = |file: &str| {
        let file = file.to_string();
        move |source| ReplayError::Io { file, source }
    };
    let seal_bytes = read_at_most(&dir.join("seal.txt"), TEXT_MAX).map_err(io("seal.txt"))?;
    let seal = SealText::parse(&seal_bytes).map_err(|e| ReplayError::Invalid(e.to_string()))?;
    let drawn_bytes = read_at_most(&dir.join("draw.txt"), TEXT_MAX).map_err(io("draw.txt"))?;
    let drawn = DrawText::parse(&drawn_bytes).map_err(|e| ReplayError::Invalid(e.to_string()))?;
    crate::text::check_reveals(&seal.commits, &drawn.reveals)
        .map_err(|e| ReplayError::Invalid(e.to_string()))?;
    let stock_bytes =
        read_at_most(&dir.join("stock.csv"), crate::limits::TABLE_MAX).map_err(io("stock.csv"))?;
    let stock =
        parse_stock(&stock_bytes).map_err(|e| ReplayError::Invalid(format!("stock.csv {e}")))?;
    let pools = PoolIndex::new(&stock);
    let path = dir.join("entrants.csv");
    progress.start(
        "entrants.csv",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    );
    let scan = scan_entrants_file(&path, Some(&pools), &|d| progress.set(d))
        .map_err(io("entrants.csv"))?;
    progress.finish();
    if let Some(e) = scan.error {
        return Err(ReplayError::Invalid(format!("entrants.csv {e}")));
    }
    let seed = SeedText {
        seal_id: sha256(&seal_bytes),
        reveals: drawn.reveals,
        material: drawn.material,
    }
    .seed();
    Ok(draw_from_scan(&scan, &stock, &seed)?)
}

/// Runs both rolls over a clean [`EntrantScan`] made with this stock's pool
/// index, without building [`crate::snapshot::Entrant`] values: the
/// verifier's and `replay`'s path for large days.
///
/// # Errors
/// [`DrawError`] when the scan is incomplete (it found a rule broken or had no
/// pool index) or counts overflow.
pub fn draw_from_scan(
    scan: &EntrantScan,
    stock: &[StockLine],
    seed: &[u8; 32],
) -> Result<Replayed, DrawError> {
    if scan.entries.len() as u64 != scan.lines || scan.tickets.len() as u64 != scan.lines {
        return Err(DrawError::Incomplete);
    }
    let core = run(&scan.entries, stock, seed)?;
    let (result_csv, pools_csv, spill_csv) = outputs(&core, stock, &scan.tickets);
    Ok(Replayed {
        seed: *seed,
        winners: core.winners.len() as u64,
        result_csv,
        pools_csv,
        spill_csv,
    })
}
