//! `maskdraw draw`: runs the two-roll draw on a sealed directory in front of the notary,
//! records the winners with pickup codes, tells Redis, writes per-pharmacy exports, and prints
//! a summary officials can read aloud.
//!
//! One draw of a date runs at a time (a PostgreSQL lock). The seed is pinned in PostgreSQL
//! before any draw file is written; the files are synced before the draw is recorded; the
//! draw is marked complete once Redis and the exports are told. Whatever step a draw died in,
//! `maskdraw draw --resume` ([`resume_draw`]) finishes it from what was recorded, and the same
//! draw typed again (same reveals and material) does too; a different seed is refused.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use lottery::draw::DrawOutcome;
use lottery::text::{DrawText, Reveal, SealText, SeedText};
use lottery::verify::{EntrantsCheck, Scanned, DRAW_FILES};

use super::{
    check_date, checked_cooldown_until, crash_at, entrants_check, io, local_to_utc, lock_day,
    publish_at, read_recorded_seal, sync_path, ticket_ttl, Bar, Crash, DayContext, DayError,
};
use crate::store::day::{self, DrawRow, SeedRow, Step, WinnerRow};
use crate::store::redis::Settle;

/// Parses `PARTY=SECRETHEX` reveals.
///
/// # Errors
/// When a party or secret is malformed.
pub fn parse_reveals(args: &[String]) -> Result<Vec<Reveal>, DayError> {
    args.iter()
        .map(|a| {
            let (party, hexs) = a.split_once('=').ok_or_else(|| {
                DayError::Refused(format!(
                    "--reveal: expected PARTY=SECRETHEX, got {:?}",
                    a.split('=').next().unwrap_or("")
                ))
            })?;
            let secret = hex::decode(hexs)
                .ok()
                .filter(|s| s.len() >= 16 && hexs.bytes().all(|c| !c.is_ascii_uppercase()))
                .ok_or_else(|| {
                    DayError::Refused(format!(
                        "--reveal {party}=…: a secret is at least 16 bytes of lowercase hex"
                    ))
                })?;
            Ok(Reveal {
                party: party.to_string(),
                secret,
            })
        })
        .collect()
}

pub struct DrawReport {
    pub dir: PathBuf,
    pub exports: PathBuf,
    pub seed: String,
    pub entrants: usize,
    pub outcome: DrawOutcome,
    pub publish_at: chrono::DateTime<Utc>,
    pub seconds: f64,
    /// What this run finished of an interrupted draw, if it was one.
    pub notes: Vec<String>,
}

/// What a draw runs with.
#[derive(Debug, Clone)]
pub enum DrawInput {
    /// The parties' reveals and the material typed live.
    Live {
        reveals: Vec<Reveal>,
        material: String,
    },
    /// What PostgreSQL recorded of an interrupted draw of the date: the draw itself, or the
    /// seed it started with.
    Resume,
}

/// How to draw.
#[derive(Debug, Clone, Default)]
pub struct DrawOptions {
    #[doc(hidden)]
    pub crash: Option<Crash>,
}

/// Letters a pickup code starts with: none begins a month's or a weekday's name, a boolean or
/// a number, so no spreadsheet reads a code as anything but text (ARCHITECTURE.md, "exports").
const CODE_FIRST: &[u8; 13] = b"BCEGHKPQRVXYZ";

/// Pickup codes: a letter of [`CODE_FIRST`] then 9 characters of Crockford base32, from the
/// OS's random source (48.7 bits; not part of the verifiable draw, only a claim check for
/// pharmacies).
fn pickup_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut code = String::with_capacity(10);
    let mut byte = [0u8; 1];
    // Rejection keeps the first letter uniform.
    while code.is_empty() {
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut byte);
        if let Some(&c) = CODE_FIRST.get(usize::from(byte[0] & 15)) {
            code.push(char::from(c));
        }
    }
    let mut bytes = [0u8; 9];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    code.extend(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)])),
    );
    code
}

/// Draws `date` with the reveals and the material typed live.
///
/// # Errors
/// As [`draw_with`].
pub async fn draw(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    reveals: Vec<Reveal>,
    material: String,
    exports_root: &Path,
) -> Result<DrawReport, DayError> {
    let input = DrawInput::Live { reveals, material };
    draw_with(ctx, date, key, input, exports_root, &DrawOptions::default()).await
}

/// Finishes an interrupted draw of `date` from what PostgreSQL recorded (`maskdraw draw
/// --resume`): its draw, or the seed it started with. Files missing or damaged are rewritten
/// from the recorded seed and must give the recorded `draw.txt` byte for byte; Redis and the
/// exports are written again. Idempotent: on a complete draw it checks and rewrites the same.
///
/// # Errors
/// As [`draw_with`]; `Refused` when no draw of the date was started.
pub async fn resume_draw(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    exports_root: &Path,
) -> Result<DrawReport, DayError> {
    draw_with(
        ctx,
        date,
        key,
        DrawInput::Resume,
        exports_root,
        &DrawOptions::default(),
    )
    .await
}

/// What the draw derives from the settings, computed before anything is touched.
struct Dates {
    publish: chrono::DateTime<Utc>,
    cooldown_until: NaiveDate,
    cooldown_until_utc: chrono::DateTime<Utc>,
    ticket_ttl: u64,
}

/// Draws `date`.
///
/// # Errors
/// `Refused` when another draw of the date is running, the date is not sealed (or its seal is
/// unfinished), drawn already, the directory does not match the recorded seal or fails
/// verification, a reveal does not match its commitment, or an interrupted draw started with
/// another seed; otherwise database, Redis or file errors.
pub async fn draw_with(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    input: DrawInput,
    exports_root: &Path,
    opts: &DrawOptions,
) -> Result<DrawReport, DayError> {
    check_date(date)?;
    if let DrawInput::Live { material, .. } = &input {
        check_material(material)?;
    }
    let until = checked_cooldown_until(&ctx.settings, date)?;
    let dates = Dates {
        publish: publish_at(&ctx.settings, date)?,
        cooldown_until: until,
        cooldown_until_utc: local_to_utc(&ctx.settings, until, chrono::NaiveTime::MIN)?,
        ticket_ttl: ticket_ttl(&ctx.settings)?,
    };
    let lock = lock_day(&ctx.db, Step::Draw, date).await?;
    let drawn = draw_locked(ctx, date, key, input, exports_root, opts, &dates).await;
    lock.release().await;
    drawn
}

/// The witness gate (lottery/SPEC.md §15): every witness of the `witnesses` setting must have
/// cosigned this very seal (`seal.cosig.<party>` in the sealed directory, verifying under the
/// key configured for the party) before the draw touches anything.
///
/// # Errors
/// `Refused` naming each witness whose cosignature is missing or does not hold; `Config` when
/// a witness's key file cannot be read.
pub fn check_witnesses(settings: &crate::config::Settings, dir: &Path) -> Result<(), DayError> {
    let witnesses = settings.witness_keys()?;
    let missing: Vec<String> = witnesses
        .iter()
        .filter_map(|(party, key)| {
            lottery::cosign::check_cosignature(dir, party, key)
                .err()
                .map(|e| format!("{party} ({}: {e})", lottery::cosign::cosig_file(party)))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(DayError::Refused(format!(
        "the draw waits for the cosignature of every witness; missing or not holding: {}. \
         Each must run `notary cosign {} --key <party>.key --party <party> --state <file> \
         --authority authority.pub` first; nothing was written",
        missing.join("; "),
        dir.display()
    )))
}

fn check_material(material: &str) -> Result<(), DayError> {
    if lottery::text::check_material(material) {
        Ok(())
    } else {
        Err(DayError::Refused(
            "the material must be one non-empty line without control characters or surrounding spaces"
                .into(),
        ))
    }
}

#[allow(clippy::too_many_lines)] // the draw's steps in order, each short
async fn draw_locked(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    input: DrawInput,
    exports_root: &Path,
    opts: &DrawOptions,
    dates: &Dates,
) -> Result<DrawReport, DayError> {
    let started = Instant::now();
    let sealed = day::seal(&ctx.db, date).await?.ok_or_else(|| {
        DayError::Refused(format!(
            "{date} is not sealed: run `maskdraw seal --date {date}` first"
        ))
    })?;
    if !sealed.completed {
        return Err(DayError::Refused(format!(
            "the seal of {date} is unfinished: run `maskdraw seal --resume --date {date}` first"
        )));
    }
    let recorded = day::draw(&ctx.db, date).await?;
    let pinned = day::draw_seed(&ctx.db, date).await?;
    let dir = PathBuf::from(&sealed.dir);
    let seal = read_recorded_seal(&dir, &sealed, date)?;
    if recorded.is_none() && pinned.is_none() {
        // A draw that has not started waits for its witnesses; one that started passed here.
        check_witnesses(&ctx.settings, &dir)?;
    }
    let seed_text = choose_seed(date, &dir, &seal, input, recorded.as_ref(), pinned.as_ref())?;
    lottery::text::check_reveals(&seal.commits, &seed_text.reveals)?;
    check_material(&seed_text.material)?;
    let mut notes = Vec::new();
    if let Some(r) = &recorded {
        notes.push(if r.completed {
            "the draw was complete; checked it and told Redis and the exports again".to_string()
        } else {
            "finished the draw recorded before it was interrupted".to_string()
        });
    } else if pinned.is_some() {
        notes.push("finished an interrupted draw with the seed it started with".to_string());
    }

    // The files: kept when they are the recorded draw's and check out, otherwise (re)written
    // from the one seed this draw may have.
    let check = entrants_check(&sealed, date)?;
    let bar = Bar::new(ctx.progress);
    let verifying = key.verifying_key();
    let intact = match &recorded {
        Some(r) => recorded_files_intact(&dir, &verifying, &check, r, &bar)?,
        None => None,
    };
    let (scanned, drawn, outcome) = match intact {
        Some(kept) => kept,
        None => {
            let scanned = verify_sealed(&dir, &verifying, &check, &bar)?;
            if recorded.is_none() && pinned.is_none() {
                pin_seed(ctx, date, &seed_text).await?;
            }
            crash_at(opts.crash, Crash::DrawAfterSeed)?;
            bar.step("drawing");
            let (drawn, outcome) = write_draw_files(&dir, &scanned, &seal, &seed_text, key)?;
            if let Some(r) = &recorded {
                if drawn.to_bytes() != r.draw_txt.as_bytes() {
                    return Err(DayError::Refused(format!(
                        "the draw files of {date} rewritten from the recorded seed do not give \
                         the recorded draw.txt: the sealed files or the program changed since"
                    )));
                }
                notes.push(format!(
                    "rewrote the draw files in {} from the recorded seed: draw.txt is the recorded one, byte for byte",
                    dir.display()
                ));
            }
            crash_at(opts.crash, Crash::DrawAfterFiles)?;
            (scanned, drawn, outcome)
        }
    };
    let scan = &scanned.entrants;
    let seed_hex = hex::encode(drawn.seed);
    let field = format!("draw:{date}");
    let won: HashSet<u128> = outcome
        .winners
        .iter()
        .map(|w| w.ticket_id.to_u128())
        .collect();
    let losers: Vec<String> = scan
        .tickets
        .iter()
        .filter(|t| !won.contains(t))
        .map(|t| lottery::snapshot::TicketId::from_u128(*t).to_string())
        .collect();

    bar.step("recording the draw");
    let rows = match &recorded {
        Some(_) => {
            let rows = day::recorded_winners(&ctx.db, date).await?;
            same_winners(date, &rows, &outcome)?;
            ctx.redis.record_outcome(&losers, &field, "lost").await?;
            rows
        }
        None => {
            let rows = new_winner_rows(ctx, &outcome).await?;
            let draw_txt = String::from_utf8_lossy(&drawn.to_bytes()).into_owned();
            // The losers' outcomes go to Redis while PostgreSQL records the draw: nobody sees
            // them before the draws row exists and its publish_at has passed, and finishing an
            // interrupted draw (same seed, so same losers) writes the same values again. The
            // winners' settlement (locks, cooldowns) waits for the recording.
            let (rows, told) = tokio::join!(
                record(
                    ctx,
                    date,
                    &seed_hex,
                    &draw_txt,
                    dates.publish,
                    &scan.tickets,
                    rows
                ),
                ctx.redis.record_outcome(&losers, &field, "lost")
            );
            let rows = rows?;
            told?;
            crash_at(opts.crash, Crash::DrawAfterRecord)?;
            rows
        }
    };
    drop(losers);

    bar.step("settling the winners in Redis");
    let publish = recorded.as_ref().map_or(dates.publish, |r| r.publish_at);
    let cool_secs = (dates.cooldown_until_utc - Utc::now()).num_seconds();
    let until = dates.cooldown_until;
    let settle: Vec<Settle> = rows
        .iter()
        .map(|r| Settle {
            person_tag: r.person_tag.clone(),
            ticket: r.ticket_id.clone(),
            status: "won",
            cooldown: (cool_secs > 0)
                .then(|| (format!("{until}|{}", publish.timestamp()), cool_secs as u64)),
            draw_field: Some((
                field.clone(),
                format!(
                    "won|{}|{}|{}|{}",
                    r.pharmacy_id, r.product_id, r.pickup_code, r.roll
                ),
            )),
        })
        .collect();
    ctx.redis.settle(&settle, dates.ticket_ttl).await?;

    bar.step("writing exports");
    let exports = exports_root.join(date.to_string());
    write_exports(&exports, &rows, &ctx.catalog)?;
    day::complete_draw(&ctx.db, date).await?;
    bar.done();
    Ok(DrawReport {
        dir,
        exports,
        seed: seed_hex,
        entrants: scan.tickets.len(),
        outcome,
        publish_at: publish,
        seconds: started.elapsed().as_secs_f64(),
        notes,
    })
}

/// The seed text this run draws with: the recorded draw's or the pinned seed's when there is
/// one (a live run must then type the same), else the live input.
fn choose_seed(
    date: NaiveDate,
    dir: &Path,
    seal: &SealText,
    input: DrawInput,
    recorded: Option<&DrawRow>,
    pinned: Option<&SeedRow>,
) -> Result<SeedText, DayError> {
    let recorded_text = recorded
        .map(|r| DrawText::parse(r.draw_txt.as_bytes()).map(|d| d.seed_text()))
        .transpose()?;
    let pinned_text = pinned
        .map(|p| SeedText::parse(p.seed_txt.as_bytes()))
        .transpose()?;
    let started = recorded_text.or(pinned_text);
    let chosen = match input {
        DrawInput::Resume => started.ok_or_else(|| {
            DayError::Refused(format!(
                "nothing to resume: no draw of {date} was started; draw it with \
                 `maskdraw draw --date {date} --material …`"
            ))
        })?,
        DrawInput::Live { reveals, material } => {
            let given = SeedText {
                seal_id: seal.seal_id(),
                reveals,
                material,
            };
            if recorded.is_some_and(|r| r.completed) {
                return Err(DayError::Refused(format!(
                    "{date} is drawn already; a date is drawn once"
                )));
            }
            match started {
                Some(s) if s.seed() != given.seed() => {
                    return Err(DayError::Refused(format!(
                        "the draw of {date} started with another seed ({}) and is unfinished: \
                         finish it with `maskdraw draw --resume --date {date}`; a second roll \
                         of the dice is never allowed",
                        hex::encode(s.seed())
                    )))
                }
                Some(_) => {}
                None => unpinned_files_agree(dir, &given)?,
            }
            given
        }
    };
    if chosen.seal_id != seal.seal_id() {
        return Err(DayError::Refused(format!(
            "the draw of {date} started on seal {}, not on the recorded seal",
            hex::encode(chosen.seal_id)
        )));
    }
    Ok(chosen)
}

/// A directory with a `draw.txt` nobody pinned holds a draw started by a version that did not
/// pin seeds: it may only be finished with its own seed.
fn unpinned_files_agree(dir: &Path, given: &SeedText) -> Result<(), DayError> {
    let path = dir.join("draw.txt");
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    let bytes = lottery::limits::read_at_most(&path, lottery::limits::TEXT_MAX)
        .map_err(io(path.display()))?;
    match DrawText::parse(&bytes) {
        Ok(d) if d.seed == given.seed() => Ok(()),
        Ok(_) => Err(DayError::Refused(format!(
            "{} holds an unrecorded draw with another seed; finish it with its own reveals and \
             material (see its draw.txt)",
            dir.display()
        ))),
        Err(e) => Err(DayError::Refused(format!(
            "{} holds an unreadable draw.txt of an unrecorded draw ({e}); check that no result \
             of it was shown, then move its draw files aside",
            dir.display()
        ))),
    }
}

/// When `dir` holds the recorded draw's files, complete and passing every check: what the
/// check read, the recorded `draw.txt`, and the outcome replayed from its seed.
fn recorded_files_intact(
    dir: &Path,
    key: &VerifyingKey,
    check: &EntrantsCheck,
    recorded: &DrawRow,
    bar: &Bar,
) -> Result<Option<(Scanned, DrawText, DrawOutcome)>, DayError> {
    let on_disk =
        lottery::limits::read_at_most(&dir.join("draw.txt"), lottery::limits::TEXT_MAX).ok();
    if on_disk.as_deref() != Some(recorded.draw_txt.as_bytes()) {
        return Ok(None);
    }
    let (report, scanned) = lottery::verify::verify_dir_scanned(dir, key, None, check, bar);
    let Some(scanned) = scanned.filter(|_| report.all_passed()) else {
        return Ok(None);
    };
    let drawn = DrawText::parse(recorded.draw_txt.as_bytes())?;
    let outcome = lottery::draw::draw_scanned(&scanned.entrants, &scanned.stock, &drawn.seed)
        .map_err(lottery::dir::DirError::from)?;
    Ok(Some((scanned, drawn, outcome)))
}

/// Every file the draw writes into the sealed directory: the signed draw files and the audit
/// derived from them (a sealed day holding an audit without its draw fails verification).
fn drawn_files() -> impl Iterator<Item = &'static str> {
    DRAW_FILES
        .iter()
        .copied()
        .chain([lottery::audit::AUDIT_FILE])
}

/// Checks the sealed files exactly as the notary will, before anything depends on them. Draw
/// files already there (an interrupted or damaged draw: they are rewritten from the one seed
/// allowed) are set aside first, and put back if the seal fails its checks, so a refusal leaves
/// the directory as it was.
fn verify_sealed(
    dir: &Path,
    key: &VerifyingKey,
    check: &EntrantsCheck,
    bar: &Bar,
) -> Result<Scanned, DayError> {
    let aside = dir.with_file_name(format!(
        ".{}.draw-aside",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("day")
    ));
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(io(aside.display()))?;
    }
    let present: Vec<&str> = drawn_files()
        .filter(|f| std::fs::symlink_metadata(dir.join(f)).is_ok())
        .collect();
    if !present.is_empty() {
        std::fs::create_dir_all(&aside).map_err(io(aside.display()))?;
        for f in &present {
            std::fs::rename(dir.join(f), aside.join(f)).map_err(io(dir.join(f).display()))?;
        }
        sync_path(dir)?;
    }
    // Its one pass over entrants.csv is also the draw's input: the file is read and hashed once.
    // The seal recorded the SHA-256 of the file it wrote and computed entrants_root over those
    // bytes, so matching that digest ties the file to the seal without rebuilding the tree (the
    // notary rebuilds it). Seals from before the digest was recorded are checked by their root.
    let (report, scan) = lottery::verify::verify_dir_scanned(dir, key, None, check, bar);
    match scan {
        Some(scanned) if report.all_passed() => {
            if !present.is_empty() {
                std::fs::remove_dir_all(&aside).map_err(io(aside.display()))?;
            }
            Ok(scanned)
        }
        _ => {
            for f in &present {
                std::fs::rename(aside.join(f), dir.join(f)).map_err(io(dir.join(f).display()))?;
            }
            if !present.is_empty() {
                let _ = std::fs::remove_dir(&aside);
            }
            Err(DayError::Refused(format!(
                "the sealed directory fails verification:\n{report}"
            )))
        }
    }
}

/// Pins the seed in PostgreSQL before any draw file exists.
async fn pin_seed(ctx: &DayContext, date: NaiveDate, seed_text: &SeedText) -> Result<(), DayError> {
    let want = SeedRow {
        seed: hex::encode(seed_text.seed()),
        seed_txt: String::from_utf8_lossy(&seed_text.to_bytes()).into_owned(),
    };
    let pinned = day::pin_draw_seed(&ctx.db, date, &want).await?;
    if pinned.seed == want.seed {
        Ok(())
    } else {
        Err(DayError::Refused(format!(
            "another seed ({}) was pinned for {date} meanwhile",
            pinned.seed
        )))
    }
}

/// Writes the draw files of `seed_text` into the sealed `dir` and syncs them and the
/// directory. Everything that accompanies the draw files belongs here.
fn write_draw_files(
    dir: &Path,
    scanned: &Scanned,
    seal: &SealText,
    seed_text: &SeedText,
    key: &SigningKey,
) -> Result<(DrawText, DrawOutcome), DayError> {
    let (drawn, outcome) = lottery::dir::write_draw_scanned(
        dir,
        &scanned.entrants,
        &scanned.stock,
        seal,
        seed_text.reveals.clone(),
        seed_text.material.clone(),
        key,
    )?;
    for f in drawn_files() {
        sync_path(&dir.join(f))?;
    }
    sync_path(dir)?;
    Ok((drawn, outcome))
}

/// The winners as records: identities from the tickets, a fresh pickup code each.
async fn new_winner_rows(
    ctx: &DayContext,
    outcome: &DrawOutcome,
) -> Result<Vec<WinnerRow>, DayError> {
    let winner_ids: Vec<String> = outcome
        .winners
        .iter()
        .map(|w| w.ticket_id.to_string())
        .collect();
    let idents = day::ticket_identities(&ctx.db, &winner_ids).await?;
    let rows: Vec<WinnerRow> = outcome
        .winners
        .iter()
        .map(|w| {
            let t = w.ticket_id.to_string();
            let (masked, tag) = idents.get(&t).cloned().unwrap_or_default();
            WinnerRow {
                ticket_id: t,
                pharmacy_id: w.pharmacy_id.to_string(),
                product_id: w.product_id.to_string(),
                roll: i16::from(w.roll.number()),
                pickup_code: pickup_code(),
                masked_id: masked,
                person_tag: tag,
            }
        })
        .collect();
    if let Some(missing) = rows.iter().find(|r| r.person_tag.is_empty()) {
        return Err(DayError::Refused(format!(
            "winner {} is not in the database",
            missing.ticket_id
        )));
    }
    Ok(rows)
}

/// Records the draw; returns the rows as recorded (their pickup codes may have been redrawn).
async fn record(
    ctx: &DayContext,
    date: NaiveDate,
    seed_hex: &str,
    draw_txt: &str,
    publish: chrono::DateTime<Utc>,
    entrants: &[u128],
    mut rows: Vec<WinnerRow>,
) -> Result<Vec<WinnerRow>, DayError> {
    let mut attempt = 0;
    loop {
        match day::record_draw(&ctx.db, date, seed_hex, draw_txt, publish, entrants, &rows).await {
            Ok(()) => return Ok(rows),
            Err(e) => match day::broken_constraint(&e).as_deref() {
                // Two equal pickup codes (a 2^-48 event per pair) fail the unique index: new
                // codes.
                Some(c) if attempt < 3 && c.contains("pickup_code") => {
                    attempt += 1;
                    for r in &mut rows {
                        r.pickup_code = pickup_code();
                    }
                }
                Some("draws_pkey") => {
                    return Err(DayError::Refused(format!(
                        "{date} is drawn already; a date is drawn once"
                    )))
                }
                _ => return Err(DayError::from(e)),
            },
        }
    }
}

/// PostgreSQL's winners of `date` must be the directory's `result.csv`.
fn same_winners(
    date: NaiveDate,
    rows: &[WinnerRow],
    outcome: &DrawOutcome,
) -> Result<(), DayError> {
    let mut recorded: Vec<(String, String, String, i16)> = rows
        .iter()
        .map(|r| {
            (
                r.ticket_id.clone(),
                r.pharmacy_id.clone(),
                r.product_id.clone(),
                r.roll,
            )
        })
        .collect();
    let mut drawn: Vec<(String, String, String, i16)> = outcome
        .winners
        .iter()
        .map(|w| {
            (
                w.ticket_id.to_string(),
                w.pharmacy_id.to_string(),
                w.product_id.to_string(),
                i16::from(w.roll.number()),
            )
        })
        .collect();
    recorded.sort();
    drawn.sort();
    if recorded == drawn {
        Ok(())
    } else {
        Err(DayError::Refused(format!(
            "PostgreSQL records {} winner(s) of {date} that are not the {} of the directory's result.csv",
            recorded.len(),
            drawn.len()
        )))
    }
}

/// A field that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return) gets a leading apostrophe, which spreadsheets show as text (OWASP's
/// advice on CSV injection). Only catalog names can start so; identifiers and codes cannot.
fn inert(field: &str) -> std::borrow::Cow<'_, str> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{field}"))
    } else {
        std::borrow::Cow::Borrowed(field)
    }
}

/// `exports/<date>/<pharmacy_id>.csv`, one per pharmacy with winners, with a header line:
/// what counter staff need to hand over the masks. RFC 4180 CSV (the `csv` crate: quoted where
/// needed, CRLF) after a UTF-8 byte order mark, so that a spreadsheet reads the product names
/// as UTF-8; files 0640 in a 0750 directory (names and masked ids are personal data), each
/// replaced whole (written aside, synced, renamed).
fn write_exports(
    dir: &Path,
    rows: &[WinnerRow],
    catalog: &crate::catalog::Catalog,
) -> Result<(), DayError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
        .map_err(io(dir.display()))?;
    let mut by: BTreeMap<&str, Vec<&WinnerRow>> = BTreeMap::new();
    for r in rows {
        by.entry(&r.pharmacy_id).or_default().push(r);
    }
    for (ph, mut list) in by {
        list.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
        let path = dir.join(format!("{ph}.csv"));
        let csv_err = |e: csv::Error| DayError::Io(path.display().to_string(), e.into());
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(b"\xEF\xBB\xBF".to_vec());
        w.write_record([
            "ticket_id",
            "masked_id",
            "product_id",
            "product_name",
            "pickup_code",
        ])
        .map_err(csv_err)?;
        for r in list {
            let name = catalog
                .product(&r.product_id)
                .map(|p| p.name.as_str())
                .unwrap_or("");
            w.write_record(
                [
                    r.ticket_id.as_str(),
                    r.masked_id.as_str(),
                    r.product_id.as_str(),
                    name,
                    r.pickup_code.as_str(),
                ]
                .map(inert)
                .iter()
                .map(|f| f.as_bytes()),
            )
            .map_err(csv_err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| DayError::Io(path.display().to_string(), e.into_error()))?;
        let partial = dir.join(format!(".{ph}.csv.partial"));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&partial)
            .and_then(|mut f| {
                // The mode given at creation is narrowed by the umask, and an old file keeps
                // its own: set it.
                f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .map_err(io(partial.display()))?;
        std::fs::rename(&partial, &path).map_err(io(path.display()))?;
    }
    sync_path(dir)
}

impl std::fmt::Display for DrawReport {
    /// The summary read aloud at the draw.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.outcome;
        let packs: u64 = o.pools.iter().map(|p| p.packs).sum();
        let by_roll = |n: u8| o.winners.iter().filter(|w| w.roll.number() == n).count();
        writeln!(
            f,
            "draw for {} — {}",
            self.dir.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            self.dir.display()
        )?;
        writeln!(f, "  seed          {}", self.seed)?;
        writeln!(f, "  entrants      {}", self.entrants)?;
        writeln!(f, "  packs         {packs}")?;
        writeln!(
            f,
            "  winners       {} ({} in the pool roll, {} in the spill roll)",
            o.winners.len(),
            by_roll(1),
            by_roll(2)
        )?;
        writeln!(f, "  published at  {}", self.publish_at.to_rfc3339())?;
        writeln!(f, "  by district and product:")?;
        writeln!(
            f,
            "    {:<12} {:<10} {:>9} {:>9} {:>9}",
            "district", "product", "entrants", "packs", "winners"
        )?;
        let mut by: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
        for p in &o.pools {
            let e = by
                .entry((p.district_id.to_string(), p.product_id.to_string()))
                .or_default();
            e.0 += p.entrants;
            e.1 += p.packs;
            e.2 += p.winners;
        }
        for s in &o.spill {
            if let Some(e) = by.get_mut(&(s.district_id.to_string(), s.product_id.to_string())) {
                e.2 += s.winners;
            }
        }
        for ((d, p), (e, k, w)) in &by {
            writeln!(f, "    {d:<12} {p:<10} {e:>9} {k:>9} {w:>9}")?;
        }
        writeln!(
            f,
            "  spill (leftover packs offered to flexible losers of the district):"
        )?;
        for s in &o.spill {
            writeln!(
                f,
                "    {:<12} {:<10} leftover {:>6}  candidates {:>6}  winners {:>6}",
                s.district_id.to_string(),
                s.product_id.to_string(),
                s.leftover,
                s.candidates,
                s.winners
            )?;
        }
        writeln!(f, "  exports       {}", self.exports.display())?;
        for note in &self.notes {
            writeln!(f, "  resumed       {note}")?;
        }
        write!(f, "  took          {:.2} s", self.seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a spreadsheet would read `s` as something other than text: a number (with
    /// leading zeros dropped, or in scientific notation), a boolean, or the start of a date
    /// (a month's name).
    fn spreadsheet_reads_as_non_text(s: &str) -> bool {
        let upper = s.to_ascii_uppercase();
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let scientific = upper
            .split_once('E')
            .is_some_and(|(m, e)| digits(m) && digits(e.trim_start_matches(['+', '-'])));
        let month = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ]
        .iter()
        .any(|m| upper.starts_with(m));
        digits(s) || scientific || month || upper == "TRUE" || upper == "FALSE"
    }

    #[test]
    fn pickup_codes_never_read_as_a_number_a_date_or_a_formula_in_a_spreadsheet() {
        assert!(spreadsheet_reads_as_non_text("0012345678"));
        assert!(spreadsheet_reads_as_non_text("1234567E89"));
        assert!(spreadsheet_reads_as_non_text("MAR1234567"));
        for _ in 0..200_000 {
            let code = pickup_code();
            assert_eq!(code.len(), 10);
            assert!(!spreadsheet_reads_as_non_text(&code), "{code}");
            assert!(
                code.as_bytes()[0].is_ascii_uppercase(),
                "{code} starts with a letter"
            );
        }
    }
}
