//! `maskdraw seal`: fixes the day's entrants into `snapshots/<date>/` (DESIGN.md "Sealed
//! snapshot format"), signs it, and records it.
//!
//! Rows are streamed from PostgreSQL straight into `entrants.csv` and the Merkle tree, whose
//! proof tiles (`entrants.tiles`, `lottery::tiles`) come out of the same pass: the entrants
//! are never held in memory. One seal of a date runs at a time (a PostgreSQL lock, taken before
//! any file is touched). The directory is written under a temporary name, every file and the
//! directory are synced, the seal is committed, and only then is the directory renamed into
//! place (and its parent synced) and the seal marked complete. A seal that died after its
//! commit is finished by `maskdraw seal --resume` ([`resume_seal`]).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use ed25519_dalek::{SigningKey, VerifyingKey};
use lottery::snapshot::{Ident, TicketId};
use lottery::text::{Commit, SealText};
use lottery::tiles::{TilesBuilder, TILES_FILE};
use sha2::{Digest, Sha256};

use super::{
    check_date, cooling_from, crash_at, cutoff, day_dir, entrants_check, io, lock_day, sync_path,
    ticket_ttl, Bar, Crash, DayContext, DayError,
};
use crate::store::day::{self, SealRecord, SealRow, Step};
use crate::store::redis::Settle;

pub struct SealReport {
    pub dir: PathBuf,
    pub seal_id: String,
    pub entrants: u64,
    pub expired: usize,
    pub pools: usize,
    /// The parties whose commitments the seal carries, in order.
    pub parties: Vec<String>,
    pub seconds: f64,
}

impl std::fmt::Display for SealReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sealed {} entrant(s) into {} in {:.2} s",
            self.entrants,
            self.dir.display(),
            self.seconds
        )?;
        writeln!(f, "  seal id   {}", self.seal_id)?;
        writeln!(f, "  pools     {}", self.pools)?;
        if self.parties.is_empty() {
            writeln!(
                f,
                "  commits   NONE: the seed will be the draw's material alone, so whoever types \
                 it can try material until the result pleases them (sealed with --no-commitments)"
            )?;
        } else {
            writeln!(
                f,
                "  commits   {} ({})",
                self.parties.len(),
                self.parties.join(", ")
            )?;
        }
        write!(
            f,
            "  expired   {} ticket(s) past their validity",
            self.expired
        )
    }
}

/// How to seal.
#[derive(Debug, Clone, Default)]
pub struct SealOptions {
    /// The parties' commitments, in order.
    pub commits: Vec<Commit>,
    /// Seal without any commitment. The seed is then the material alone, which whoever types
    /// it at the draw can grind; refused unless the officials ask for it by name.
    pub no_commitments: bool,
    #[doc(hidden)]
    pub crash: Option<Crash>,
}

/// Parses `PARTY=SHA256HEX` commitments.
///
/// # Errors
/// When a party or digest is malformed or a party repeats.
pub fn parse_commits(args: &[String]) -> Result<Vec<Commit>, DayError> {
    let mut out: Vec<Commit> = Vec::new();
    for a in args {
        let (party, hexd) = a.split_once('=').ok_or_else(|| {
            DayError::Refused(format!("--commit {a:?}: expected PARTY=SHA256HEX"))
        })?;
        if !lottery::text::check_party(party) || out.iter().any(|c| c.party == party) {
            return Err(DayError::Refused(format!(
                "--commit {a:?}: the party must match [a-z0-9-]{{1,32}} and appear once"
            )));
        }
        let digest: [u8; 32] = hex::decode(hexd)
            .ok()
            .filter(|_| hexd.bytes().all(|c| !c.is_ascii_uppercase()))
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                DayError::Refused(format!(
                    "--commit {a:?}: the commitment is 64 lowercase hex characters"
                ))
            })?;
        out.push(Commit {
            party: party.to_string(),
            digest,
        });
    }
    Ok(out)
}

/// Lines in a chunk (for the progress bar).
fn line_count(chunk: &[u8]) -> u64 {
    chunk.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Bytes of whole lines per hand-over to the writer thread.
const SEND_BYTES: usize = 256 << 10;

/// Checks, hashes and writes `entrants.csv` as its lines arrive.
struct Writer {
    file: std::io::BufWriter<std::fs::File>,
    /// The tree: its head for `seal.txt` and its proof tiles for `entrants.tiles`.
    tiles: TilesBuilder,
    /// SHA-256 of the file's bytes, recorded with the seal for the draw's check.
    sha: Sha256,
    last: Option<TicketId>,
    pools: HashSet<(Ident, Ident)>,
    n: u64,
}

impl Writer {
    /// Takes whole lines, each ending in LF.
    fn push_lines(&mut self, bytes: &[u8]) -> Result<(), String> {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let Some(body) = line.strip_suffix(b"\n") else {
                return Err("the database sent a row without its end of line".into());
            };
            // The database validated these at intake; the format is checked again here
            // because a sealed file that breaks its own grammar could never be verified.
            let e = lottery::snapshot::Entrant::parse_line(body).map_err(|why| {
                format!(
                    "ticket {}: {why}",
                    String::from_utf8_lossy(&body[..body.len().min(26)])
                )
            })?;
            if self.last.is_some_and(|l| l >= e.ticket_id) {
                return Err(format!("ticket {} is out of byte order", e.ticket_id));
            }
            self.tiles.push_line(body);
            self.pools.insert((e.pharmacy_id, e.product_id));
            self.last = Some(e.ticket_id);
            self.n += 1;
        }
        self.sha.update(bytes);
        self.file
            .write_all(bytes)
            .map_err(|e| format!("writing entrants.csv: {e}"))
    }
}

/// Seals `date` with the parties' `commits` (at least one: see [`seal_with`]).
///
/// # Errors
/// As [`seal_with`].
pub async fn seal(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    commits: Vec<Commit>,
    out: &Path,
) -> Result<SealReport, DayError> {
    let opts = SealOptions {
        commits,
        ..SealOptions::default()
    };
    seal_with(ctx, date, key, &opts, out).await
}

/// Seals `date`: expires what ran out, streams the eligible tickets into `out/<date>/`, links
/// the previous seal, signs with `key`, records the seal and its entries.
///
/// # Errors
/// `Refused` when there is no commitment and `no_commitments` is not set, another seal of the
/// date is running, the date is sealed already (or its seal is unfinished: see
/// [`resume_seal`]), has no stock, is not after the last sealed date, the last seal is
/// unfinished, or the directory exists; otherwise database, Redis or file errors (nothing is
/// recorded then).
pub async fn seal_with(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    opts: &SealOptions,
    out: &Path,
) -> Result<SealReport, DayError> {
    check_date(date)?;
    if opts.commits.is_empty() && !opts.no_commitments {
        return Err(DayError::Refused(format!(
            "no --commit given: without commitments the seed of {date} is the material alone, \
             which whoever types it can try again and again until the result pleases them; \
             pass the parties' commitments, or --no-commitments to seal without any"
        )));
    }
    if !opts.commits.is_empty() && opts.no_commitments {
        return Err(DayError::Refused(
            "--no-commitments contradicts the --commit given".into(),
        ));
    }
    // Every date and number the seal derives from the settings, before anything is touched.
    let cut = cutoff(&ctx.settings, date)?;
    let cooling = cooling_from(&ctx.settings, date)?;
    let ttl = ticket_ttl(&ctx.settings)?;
    // The nightly seal keeps the partitions ahead of the rows (a server that has not restarted
    // for months has not made them).
    crate::store::partitions::ensure_around(&ctx.db, date).await?;
    let lock = lock_day(&ctx.db, Step::Seal, date).await?;
    let sealed = seal_locked(ctx, date, key, opts, out, cut, cooling, ttl).await;
    lock.release().await;
    sealed
}

#[allow(clippy::too_many_arguments)] // the checked inputs of `seal_with`, passed on once
async fn seal_locked(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    opts: &SealOptions,
    out: &Path,
    cut: chrono::DateTime<chrono::Utc>,
    cooling_from: NaiveDate,
    ttl: u64,
) -> Result<SealReport, DayError> {
    let started = Instant::now();
    match day::seal(&ctx.db, date).await? {
        Some(row) if row.completed => {
            return Err(DayError::Refused(format!(
                "{date} is sealed already; a date is sealed once"
            )))
        }
        Some(_) => return Err(unfinished(date)),
        None => {}
    }
    let previous = day::latest_seal(&ctx.db).await?;
    if let Some(p) = &previous {
        if p.draw_date >= date {
            return Err(DayError::Refused(format!(
                "the last seal is for {}; seals go forward in time",
                p.draw_date
            )));
        }
        if !p.completed {
            return Err(DayError::Refused(format!(
                "the seal of {} is unfinished and {date} would link to it: run \
                 `maskdraw seal --resume --date {}` first",
                p.draw_date, p.draw_date
            )));
        }
    }
    let stock = day::stock(&ctx.db, date).await?;
    if stock.is_empty() {
        return Err(DayError::Refused(format!(
            "no stock imported for {date}: run `maskdraw stock import FILE --date {date}` first"
        )));
    }
    let final_dir = day_dir(out, date);
    // symlink_metadata: a dangling link there would make the final rename fail after the commit.
    if std::fs::symlink_metadata(&final_dir).is_ok() {
        return Err(DayError::Refused(format!(
            "{} exists already; move it aside if it is left from an interrupted seal",
            final_dir.display()
        )));
    }
    // Under the lock nobody else writes here: what is left is from a seal that died before
    // its commit, and it was never recorded.
    let tmp_dir = partial_dir(out, date);
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(io(tmp_dir.display()))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(io(tmp_dir.display()))?;

    let expired = day::expire(&ctx.db, cut).await?;
    let settle: Vec<Settle> = expired
        .iter()
        .map(|(t, tag)| Settle {
            person_tag: tag.clone(),
            ticket: t.clone(),
            status: "expired",
            cooldown: None,
            draw_field: None,
        })
        .collect();
    ctx.redis.settle(&settle, ttl).await?;

    let file = std::fs::File::create(tmp_dir.join("entrants.csv")).map_err(io("entrants.csv"))?;
    let writer = Writer {
        file: std::io::BufWriter::with_capacity(1 << 20, file),
        tiles: TilesBuilder::new(),
        sha: Sha256::new(),
        last: None,
        pools: HashSet::new(),
        n: 0,
    };
    // The lines go to a thread of their own that checks, hashes and writes them while this
    // task receives the next ones: the database and the hashing overlap instead of taking turns.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let writer_thread = std::thread::Builder::new()
        .name("seal-writer".into())
        .spawn(move || -> Result<Writer, String> {
            let mut w = writer;
            for lines in rx {
                w.push_lines(&lines)?;
            }
            Ok(w)
        })
        .map_err(io("starting the seal's writer thread"))?;
    let tx = std::cell::RefCell::new(Some(tx));
    let pending = std::cell::RefCell::new(Vec::with_capacity(SEND_BYTES + 4096));
    // Hands the pending whole lines to the writer (keeping a partial last line back); `false`
    // when it has stopped (on an error it reports when joined).
    let send = |force: bool| -> bool {
        let mut pending = pending.borrow_mut();
        if pending.is_empty() || (!force && pending.len() < SEND_BYTES) {
            return true;
        }
        let whole = if force {
            pending.len()
        } else {
            match pending.iter().rposition(|&b| b == b'\n') {
                Some(at) => at + 1,
                None => return true,
            }
        };
        let rest = pending[whole..].to_vec();
        let mut lines = std::mem::replace(&mut *pending, Vec::with_capacity(SEND_BYTES + 4096));
        lines.truncate(whole);
        pending.extend_from_slice(&rest);
        tx.borrow()
            .as_ref()
            .is_some_and(|tx| tx.send(lines).is_ok())
    };
    let writer_thread = std::cell::RefCell::new(Some(writer_thread));
    let pool_count = std::cell::Cell::new(0usize);
    let join = || -> Result<Writer, String> {
        drop(tx.borrow_mut().take());
        match writer_thread.borrow_mut().take() {
            Some(handle) => handle
                .join()
                .map_err(|_| "the seal's writer thread panicked".to_string())?,
            None => Err("the seal's writer thread was joined already".into()),
        }
    };
    let bar = Bar::new(ctx.progress);
    bar.step("sealing entrants");
    let previous_id = previous.as_ref().map(|p| p.seal_id.clone());
    let catalog = &ctx.catalog;
    let tmp = tmp_dir.clone();
    let final_str = final_dir.display().to_string();
    let commits = &opts.commits;
    let record = day::seal_day(
        &ctx.db,
        date,
        cut,
        cooling_from,
        previous_id.as_deref(),
        |chunk| {
            bar.inc(line_count(chunk));
            pending.borrow_mut().extend_from_slice(chunk);
            if send(false) {
                Ok(())
            } else {
                Err(join()
                    .err()
                    .unwrap_or_else(|| "the seal's writer stopped".into()))
            }
        },
        || {
            if !send(true) {
                return Err(join()
                    .err()
                    .unwrap_or_else(|| "the seal's writer stopped".into()));
            }
            let mut w = join()?;
            w.file
                .flush()
                .map_err(|e| format!("writing entrants.csv: {e}"))?;
            w.file
                .get_ref()
                .sync_all()
                .map_err(|e| format!("syncing entrants.csv: {e}"))?;
            let tiles = std::mem::take(&mut w.tiles).finish();
            tiles
                .write_file(&tmp.join(TILES_FILE), true)
                .map_err(|e| format!("writing {TILES_FILE}: {e}"))?;
            let stock_bytes = stock_file(&stock, &w.pools, catalog)?;
            write_synced(&tmp.join("stock.csv"), &stock_bytes)?;
            let previous = previous_id
                .as_deref()
                .map(|p| {
                    hex::decode(p)
                        .ok()
                        .and_then(|v| <[u8; 32]>::try_from(v).ok())
                        .ok_or("the previous seal id is not 64 hex")
                })
                .transpose()?;
            let text = SealText {
                draw_date: date.to_string(),
                cutoff: cut.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                entrants: w.n,
                entrants_root: tiles.root(),
                stock_sha256: Sha256::digest(&stock_bytes).into(),
                previous,
                commits: commits.clone(),
            };
            let bytes = text.to_bytes();
            write_synced(&tmp.join("seal.txt"), &bytes)?;
            write_synced(
                &tmp.join("seal.sig"),
                lottery::sign::sign(key, &bytes).as_bytes(),
            )?;
            // The directory's entries too: after the commit, a crash must not lose a file.
            std::fs::File::open(&tmp)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("syncing {}: {e}", tmp.display()))?;
            pool_count.set(w.pools.len());
            let entrants_sha256 = hex::encode(w.sha.finalize());
            Ok(SealRecord {
                seal_id: hex::encode(text.seal_id()),
                entrants: w.n,
                entrants_root: hex::encode(text.entrants_root),
                stock_sha256: hex::encode(text.stock_sha256),
                entrants_sha256,
                seal_txt: String::from_utf8_lossy(&bytes).into_owned(),
                dir: final_str.clone(),
            })
        },
    )
    .await;
    bar.done();
    let record = match record {
        Ok(r) => r,
        Err(e) => {
            // The writer stops once its channel closes; nothing may write after the removal.
            let _ = join();
            let _ = std::fs::remove_dir_all(&tmp_dir);
            return Err(match day::broken_constraint(&e).as_deref() {
                Some("seals_pkey") => {
                    DayError::Refused(format!("{date} is sealed already; a date is sealed once"))
                }
                Some(c @ ("seals_one_successor" | "seals_one_genesis")) => {
                    DayError::Refused(format!(
                        "another seal was recorded while this one ran ({c}), so {date} would fork \
                     the chain: nothing was recorded; seal {date} again"
                    ))
                }
                _ => e.into(),
            });
        }
    };
    crash_at(opts.crash, Crash::SealAfterCommit)?;
    put_in_place(&tmp_dir, &final_dir)?;
    day::complete_seal(&ctx.db, date).await?;
    Ok(SealReport {
        dir: final_dir,
        seal_id: record.seal_id,
        entrants: record.entrants,
        expired: expired.len(),
        pools: pool_count.get(),
        parties: opts.commits.iter().map(|c| c.party.clone()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where a seal of `date` writes before its commit: beside `out/<date>`, hidden.
fn partial_dir(out: &Path, date: NaiveDate) -> PathBuf {
    out.join(format!(".{date}.partial"))
}

fn unfinished(date: NaiveDate) -> DayError {
    DayError::Refused(format!(
        "the seal of {date} is recorded but unfinished (its directory was not moved into \
         place): run `maskdraw seal --resume --date {date}`"
    ))
}

/// Renames the synced temporary directory to its final name and syncs the parent, so the
/// rename survives a crash.
fn put_in_place(tmp: &Path, final_dir: &Path) -> Result<(), DayError> {
    std::fs::rename(tmp, final_dir).map_err(io(format!(
        "moving {} to {}",
        tmp.display(),
        final_dir.display()
    )))?;
    match final_dir.parent() {
        Some(parent) => sync_path(parent),
        None => Ok(()),
    }
}

/// What `maskdraw seal --resume` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealResumed {
    /// The recorded seal's files were checked and its directory put in place.
    Finished(PathBuf),
    /// The seal was complete already; its directory holds the recorded seal.
    Complete(PathBuf),
    /// The unfinished seal's files were gone (neither its directory nor the temporary one
    /// exists), so its record was removed: the date can be sealed again.
    Forgotten(NaiveDate),
}

impl std::fmt::Display for SealResumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Finished(dir) => write!(
                f,
                "finished the interrupted seal: {} holds the recorded seal, checked and synced",
                dir.display()
            ),
            Self::Complete(dir) => write!(
                f,
                "nothing to finish: the seal is complete and {} holds it",
                dir.display()
            ),
            Self::Forgotten(date) => write!(
                f,
                "the interrupted seal of {date} had lost its files before anyone could see them; \
                 its record is removed: seal {date} again with `maskdraw seal --date {date}`"
            ),
        }
    }
}

/// Finishes a seal of `date` that died after its commit: checks the recorded seal's files
/// (where they are: the final directory, or the temporary one) exactly as the draw will, syncs
/// them, renames the directory into place and marks the seal complete. Idempotent: a complete
/// seal is checked and left as it is. A seal whose files are lost is rolled back (its record
/// removed) when nobody can have seen it.
///
/// # Errors
/// `Refused` when nothing is recorded for the date, another seal of it is running, or the files
/// found are not the recorded seal's; database or file errors.
pub async fn resume_seal(
    ctx: &DayContext,
    date: NaiveDate,
    key: &VerifyingKey,
) -> Result<SealResumed, DayError> {
    check_date(date)?;
    let lock = lock_day(&ctx.db, Step::Seal, date).await?;
    let resumed = resume_locked(ctx, date, key).await;
    lock.release().await;
    resumed
}

async fn resume_locked(
    ctx: &DayContext,
    date: NaiveDate,
    key: &VerifyingKey,
) -> Result<SealResumed, DayError> {
    let row = day::seal(&ctx.db, date).await?.ok_or_else(|| {
        DayError::Refused(format!(
            "nothing to resume: no seal of {date} is recorded (a seal that died before its \
             commit left nothing): seal it with `maskdraw seal --date {date}`"
        ))
    })?;
    let final_dir = PathBuf::from(&row.dir);
    let out = final_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let tmp_dir = partial_dir(&out, date);
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    if row.completed {
        check_sealed_dir(ctx, &final_dir, &row, date, key)?;
        return Ok(SealResumed::Complete(final_dir));
    }
    if is_dir(&final_dir) {
        // Renamed, but not yet marked: make sure the rename is durable, then mark it.
        check_sealed_dir(ctx, &final_dir, &row, date, key)?;
        sync_path(&out)?;
    } else if is_dir(&tmp_dir) {
        check_sealed_dir(ctx, &tmp_dir, &row, date, key)?;
        for e in std::fs::read_dir(&tmp_dir).map_err(io(tmp_dir.display()))? {
            sync_path(&e.map_err(io(tmp_dir.display()))?.path())?;
        }
        sync_path(&tmp_dir)?;
        put_in_place(&tmp_dir, &final_dir)?;
    } else {
        if !is_dir(&out) {
            return Err(DayError::Refused(format!(
                "{} is not there (unmounted?): cannot tell whether the seal of {date} lost its files",
                out.display()
            )));
        }
        return if day::forget_unfinished_seal(&ctx.db, date).await? {
            Ok(SealResumed::Forgotten(date))
        } else {
            Err(DayError::Refused(format!(
                "the seal of {date} lost its files ({} and {} are missing) and something \
                 depends on it already: restore its directory from a backup",
                final_dir.display(),
                tmp_dir.display()
            )))
        };
    }
    day::complete_seal(&ctx.db, date).await?;
    Ok(SealResumed::Finished(final_dir))
}

/// Checks that `dir` holds the seal recorded for `date`: the same `seal.txt`, for that date, and
/// every check `notary verify` runs on a sealed directory (with `entrants.csv`'s recorded
/// digest in place of the tree).
fn check_sealed_dir(
    ctx: &DayContext,
    dir: &Path,
    row: &SealRow,
    date: NaiveDate,
    key: &VerifyingKey,
) -> Result<(), DayError> {
    super::read_recorded_seal(dir, row, date)?;
    let bar = Bar::new(ctx.progress);
    let check = entrants_check(row, date)?;
    let (report, _) = lottery::verify::verify_dir_scanned(dir, key, None, &check, &bar);
    bar.done();
    if report.all_passed() {
        Ok(())
    } else {
        Err(DayError::Refused(format!(
            "{} does not hold the seal recorded for {date}:\n{report}",
            dir.display()
        )))
    }
}

/// Writes `bytes` to a new file at `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::File::create(path)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `stock.csv`: the imported stock plus a 0-pack line for every pool an entrant names that
/// the import left out (DESIGN.md: every pool an entrant names must be listed).
fn stock_file(
    stock: &[day::StockRow],
    pools: &HashSet<(Ident, Ident)>,
    catalog: &crate::catalog::Catalog,
) -> Result<Vec<u8>, String> {
    let listed: HashSet<(&str, &str)> = stock
        .iter()
        .map(|s| (s.pharmacy_id.as_str(), s.product_id.as_str()))
        .collect();
    let mut lines: Vec<(String, String, String, i64)> = stock
        .iter()
        .map(|s| {
            (
                s.pharmacy_id.clone(),
                s.district_id.clone(),
                s.product_id.clone(),
                s.packs,
            )
        })
        .collect();
    // In byte order, so an error names the same pharmacy every time.
    let mut named: Vec<&(Ident, Ident)> = pools.iter().collect();
    named.sort_unstable();
    for (ph, pr) in named {
        let (ph, pr) = (ph.as_str(), pr.as_str());
        if !listed.contains(&(ph, pr)) {
            let district = catalog
                .pharmacy(ph)
                .map(|p| p.district.to_string())
                .ok_or_else(|| {
                    format!("entrants name pharmacy {ph}, which is not in the catalog")
                })?;
            lines.push((ph.to_string(), district, pr.to_string(), 0));
        }
    }
    lines.sort_by(|a, b| (a.0.as_bytes(), a.2.as_bytes()).cmp(&(b.0.as_bytes(), b.2.as_bytes())));
    let mut out = Vec::with_capacity(lines.len() * 32);
    for (ph, d, pr, packs) in lines {
        out.extend_from_slice(format!("{ph},{d},{pr},{packs}\n").as_bytes());
    }
    lottery::snapshot::parse_stock(&out)
        .map_err(|e| format!("stock.csv would break a rule: {e}"))?;
    Ok(out)
}
