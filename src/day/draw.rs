//! `maskdraw draw`: runs the two-roll draw on a sealed directory in front of the notary,
//! records the winners with pickup codes, tells Redis, writes per-pharmacy exports, and prints
//! a summary officials can read aloud.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use lottery::draw::DrawOutcome;
use lottery::text::{Reveal, SealText};

use super::{
    cooldown_until, io, local_to_utc, publish_at, seal::ticket_ttl, Bar, DayContext, DayError,
};
use crate::store::day::{self, WinnerRow};
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
}

/// Pickup codes: 10 characters of Crockford base32 from the OS's random source (50 bits;
/// not part of the verifiable draw, only a claim check for pharmacies).
fn pickup_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 10];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect()
}

/// Draws `date`.
///
/// # Errors
/// `Refused` when the date is not sealed, drawn already, the directory does not match the
/// recorded seal or fails verification, a reveal does not match its commitment, or an
/// interrupted draw left different results; otherwise database, Redis or file errors.
pub async fn draw(
    ctx: &DayContext,
    date: NaiveDate,
    key: &SigningKey,
    reveals: Vec<Reveal>,
    material: String,
    exports_root: &Path,
) -> Result<DrawReport, DayError> {
    let started = Instant::now();
    let sealed = day::seal(&ctx.db, date).await?.ok_or_else(|| {
        DayError::Refused(format!(
            "{date} is not sealed: run `maskdraw seal --date {date}` first"
        ))
    })?;
    if day::draw(&ctx.db, date).await?.is_some() {
        return Err(DayError::Refused(format!(
            "{date} is drawn already; a date is drawn once"
        )));
    }
    let dir = PathBuf::from(&sealed.dir);
    let seal_bytes =
        std::fs::read(dir.join("seal.txt")).map_err(io(dir.join("seal.txt").display()))?;
    if seal_bytes != sealed.seal_txt.as_bytes() {
        return Err(DayError::Refused(format!(
            "{}/seal.txt is not the seal recorded for {date}",
            dir.display()
        )));
    }
    let seal = SealText::parse(&seal_bytes)?;
    lottery::text::check_reveals(&seal.commits, &reveals)?;
    if !lottery::text::check_material(&material) {
        return Err(DayError::Refused("the material must be one non-empty line without control characters or surrounding spaces".into()));
    }
    let bar = Bar::new(ctx.progress);
    // Check the directory exactly as the notary will, before anything depends on it.
    let interrupted = dir.join("draw.txt").exists();
    // Its one pass over entrants.csv is also the draw's input: the file is read and hashed once.
    // The seal recorded the SHA-256 of the file it wrote and computed entrants_root over those
    // bytes, so matching that digest ties the file to the seal without rebuilding the tree (the
    // notary rebuilds it). Seals from before the digest was recorded are checked by their root.
    let check = match sealed.entrants_sha256.as_deref().map(hex::decode) {
        None => lottery::verify::EntrantsCheck::Root,
        Some(Ok(d)) if d.len() == 32 => {
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&d);
            lottery::verify::EntrantsCheck::FileSha256(digest)
        }
        Some(_) => {
            return Err(DayError::Refused(format!(
                "the seal of {date} records a malformed entrants.csv digest"
            )))
        }
    };
    let (report, scan) =
        lottery::verify::verify_dir_scanned(&dir, &key.verifying_key(), None, &check, &bar);
    let lottery::verify::Scanned {
        stock,
        entrants: scan,
    } = match scan {
        Some(scanned) if report.all_passed() => scanned,
        _ => {
            return Err(DayError::Refused(format!(
                "the sealed directory fails verification:\n{report}"
            )))
        }
    };
    if interrupted {
        // An interrupted draw wrote its files but did not record them. Finishing it is allowed
        // only with the same seed: a second roll of the dice is exactly what must never happen.
        let existing = lottery::text::DrawText::parse(
            &std::fs::read(dir.join("draw.txt")).map_err(io("draw.txt"))?,
        )?;
        let seed = lottery::text::SeedText {
            seal_id: seal.seal_id(),
            reveals: reveals.clone(),
            material: material.clone(),
        }
        .seed();
        if existing.seed != seed {
            return Err(DayError::Refused(format!(
                "{} holds an unrecorded draw with another seed; finish it with its own reveals and material (see its draw.txt)",
                dir.display()
            )));
        }
    }
    bar.step("drawing");
    let (drawn, outcome) =
        lottery::dir::write_draw_scanned(&dir, &scan, &stock, &seal, reveals, material, key)?;

    bar.step("recording the draw");
    let winner_ids: Vec<String> = outcome
        .winners
        .iter()
        .map(|w| w.ticket_id.to_string())
        .collect();
    let idents = day::ticket_identities(&ctx.db, &winner_ids).await?;
    let publish = publish_at(&ctx.settings, date)?;
    let mut rows: Vec<WinnerRow> = outcome
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
    let draw_txt = String::from_utf8_lossy(&drawn.to_bytes()).into_owned();
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
    let record = async {
        let mut attempt = 0;
        loop {
            match day::record_draw(
                &ctx.db,
                date,
                &seed_hex,
                &draw_txt,
                publish,
                &scan.tickets,
                &rows,
            )
            .await
            {
                Ok(()) => return Ok(()),
                // Two equal pickup codes (a 2^-50 event per pair) fail the unique index: new
                // codes.
                Err(e) if attempt < 3 && e.to_string().contains("pickup_code") => {
                    attempt += 1;
                    for r in &mut rows {
                        r.pickup_code = pickup_code();
                    }
                }
                Err(e) if e.to_string().contains("draws_pkey") => {
                    return Err(DayError::Refused(format!(
                        "{date} is drawn already; a date is drawn once"
                    )))
                }
                Err(e) => return Err(DayError::from(e)),
            }
        }
    };
    // The losers' outcomes go to Redis while PostgreSQL records the draw: nobody sees them
    // before the draws row exists and its publish_at has passed, and finishing an interrupted
    // draw (same seed, so same losers) writes the same values again. The winners' settlement
    // (locks, cooldowns) waits for the recording.
    let (recorded, told) = tokio::join!(record, ctx.redis.record_outcome(&losers, &field, "lost"));
    recorded?;
    told?;
    drop(losers);

    bar.step("settling the winners in Redis");
    let until = cooldown_until(&ctx.settings, date);
    let until_utc = local_to_utc(&ctx.settings, until, chrono::NaiveTime::MIN)?;
    let cool_secs = (until_utc - Utc::now()).num_seconds();
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
    ctx.redis.settle(&settle, ticket_ttl(ctx)).await?;

    bar.step("writing exports");
    let exports = exports_root.join(date.to_string());
    write_exports(&exports, &rows, &ctx.catalog)?;
    bar.done();
    Ok(DrawReport {
        dir,
        exports,
        seed: seed_hex,
        entrants: scan.tickets.len(),
        outcome,
        publish_at: publish,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `exports/<date>/<pharmacy_id>.csv`, one per pharmacy with winners, with a header line:
/// what counter staff need to hand over the masks.
fn write_exports(
    dir: &Path,
    rows: &[WinnerRow],
    catalog: &crate::catalog::Catalog,
) -> Result<(), DayError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    let mut by: BTreeMap<&str, Vec<&WinnerRow>> = BTreeMap::new();
    for r in rows {
        by.entry(&r.pharmacy_id).or_default().push(r);
    }
    for (ph, mut list) in by {
        list.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
        let mut text = String::from("ticket_id,masked_id,product_id,product_name,pickup_code\n");
        for r in list {
            let name = catalog
                .product(&r.product_id)
                .map(|p| p.name.as_str())
                .unwrap_or("");
            text.push_str(&format!(
                "{},{},{},{},{}\n",
                r.ticket_id, r.masked_id, r.product_id, name, r.pickup_code
            ));
        }
        let path = dir.join(format!("{ph}.csv"));
        std::fs::write(&path, text).map_err(io(path.display()))?;
    }
    Ok(())
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
        write!(f, "  took          {:.2} s", self.seconds)
    }
}
