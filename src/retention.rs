//! `maskdraw retention --keep-days N`: forgets on time.
//!
//! The Personal Information Protection Law keeps personal data no longer than its purpose
//! needs. A ticket's purpose ends with its last draw, the pickup and the winner's cooldown;
//! what remains after that is the public record (the seal chain, each draw's seed and winners
//! count, which ticket won) which holds nothing personal. Retention removes, for every day
//! older than the cutoff (today minus N days, in the city's zone):
//! - the partitions of `draw_entries` and `tickets` whose whole month is older (a `DROP
//!   TABLE`, no `DELETE`);
//! - the day's snapshot directory (`entrants.csv` lists person tags) and exports directory
//!   (masked ids of winners);
//! - the person tag, phone tag and masked id of every ticket accepted before the cutoff that a
//!   kept partition still holds, and the masked ids of that day's winners.
//!
//! It keeps the `seals`, `draws`, `draw_seeds` rows and the winners' rows without their masked
//! ids: later seals chain to the earlier ones' ids, so the chain stays verifiable.
//!
//! **Invariant:** retention never removes a day that is newer than the cutoff, nor one that is
//! sealed but not drawn, nor one whose seal or draw is running (it takes the same advisory
//! locks, `store::day::DayLocks`); whatever depends on such a day is kept too, and said so.
//! A second run removes nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Months, NaiveDate, NaiveTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};

use crate::config::Settings;
use crate::store::day::{DayLocks, Step};
use crate::store::partitions::{self, Partition, Table};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Refused(String),
    #[error("the database failed")]
    Db(#[from] DbErr),
    #[error("the settings are not usable")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// What to keep, and when "today" is.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    pub keep_days: u32,
    /// The city's date today (the command passes the real one; tests choose theirs).
    pub today: NaiveDate,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The fewest days retention keeps: a ticket accepted `validity_days` before a draw can enter
/// it, and its person's win must be known `cooldown_days` after (with a day's margin on each
/// side for the zone and the cutoff hour).
pub fn min_keep_days(settings: &Settings) -> u32 {
    settings
        .validity_days
        .saturating_add(settings.cooldown_days)
        .saturating_add(3)
}

/// A dropped partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub name: String,
    pub rows: i64,
    pub bytes: u64,
}

/// A removed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedDir {
    pub date: NaiveDate,
    pub path: PathBuf,
    pub files: u64,
    pub bytes: u64,
}

/// What a run removed, and what it kept although it was old, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    pub keep_days: u32,
    /// Everything dated before this day was due.
    pub cutoff: NaiveDate,
    pub partitions: Vec<Dropped>,
    pub dirs: Vec<RemovedDir>,
    /// Tickets whose person tag, phone tag and masked id were erased.
    pub tickets_erased: u64,
    /// Winners' rows whose masked id was erased.
    pub winners_erased: u64,
    /// Days (and partitions) kept although old, with the reason.
    pub kept: Vec<String>,
    /// Rows in a DEFAULT partition (a partition was missing when they came).
    pub default_rows: Vec<(String, i64)>,
}

impl RetentionReport {
    /// Whether this run removed anything at all.
    pub fn removed_anything(&self) -> bool {
        !self.partitions.is_empty()
            || !self.dirs.is_empty()
            || self.tickets_erased > 0
            || self.winners_erased > 0
    }

    /// Bytes freed: dropped partitions and removed directories.
    pub fn bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.bytes).sum::<u64>()
            + self.dirs.iter().map(|d| d.bytes).sum::<u64>()
    }
}

/// 1536 → "1.5 KiB".
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl fmt::Display for RetentionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "retention: keeping {} days; due: everything dated before {}",
            self.keep_days, self.cutoff
        )?;
        if !self.removed_anything() {
            writeln!(
                f,
                "nothing to remove: what was due before {} is already gone",
                self.cutoff
            )?;
        } else {
            let rows: i64 = self.partitions.iter().map(|p| p.rows).sum();
            let names: Vec<&str> = self.partitions.iter().map(|p| p.name.as_str()).collect();
            writeln!(
                f,
                "  partitions dropped:      {} ({} rows, {}){}",
                self.partitions.len(),
                rows,
                human(self.partitions.iter().map(|p| p.bytes).sum()),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(": {}", names.join(", "))
                }
            )?;
            let dates: BTreeSet<NaiveDate> = self.dirs.iter().map(|d| d.date).collect();
            writeln!(
                f,
                "  directories removed:     {} for {} day(s) ({} files, {}){}",
                self.dirs.len(),
                dates.len(),
                self.dirs.iter().map(|d| d.files).sum::<u64>(),
                human(self.dirs.iter().map(|d| d.bytes).sum()),
                match (dates.first(), dates.last()) {
                    (Some(a), Some(b)) if a == b => format!(": {a}"),
                    (Some(a), Some(b)) => format!(": {a} to {b}"),
                    _ => String::new(),
                }
            )?;
            writeln!(
                f,
                "  personal data erased:    {} ticket(s) (person tag, phone tag, masked id), \
                 {} winner(s)' masked id",
                self.tickets_erased, self.winners_erased
            )?;
            writeln!(f, "  freed:                   {}", human(self.bytes()))?;
        }
        for k in &self.kept {
            writeln!(f, "  kept: {k}")?;
        }
        for (table, n) in &self.default_rows {
            writeln!(
                f,
                "  warning: {table}_default holds {n} row(s): a partition was missing when they \
                 came; `maskdraw migrate` (or any start) moves them into their month"
            )?;
        }
        Ok(())
    }
}

/// Size and count of the files under `path`.
fn tree_size(path: &Path) -> (u64, u64) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !meta.is_dir() {
        return (1, meta.len());
    }
    let mut total = (0, 0);
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let (n, b) = tree_size(&e.path());
            total.0 += n;
            total.1 += b;
        }
    }
    total
}

/// The `YYYY-MM-DD` directories under `root` dated before `before`.
fn dated_dirs(root: &Path, before: NaiveDate) -> Vec<(NaiveDate, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<(NaiveDate, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| {
            let name = e.file_name();
            let d = NaiveDate::parse_from_str(name.to_str()?, "%Y-%m-%d").ok()?;
            (d < before).then(|| (d, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The first day of the month after `month`'s.
fn next_month(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

/// Every date in `[from, to)`.
fn dates(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d < to).collect()
}

/// A progress bar on stderr for `total` steps of `stage` (nothing when `on` is false).
fn bar(on: bool, total: u64, stage: &str) -> crate::day::Bar {
    let b = crate::day::Bar::new(on);
    lottery::Progress::start(&b, stage, total);
    b
}

/// Tickets per erasing statement.
const ERASE_BATCH: i64 = 20_000;

/// Runs retention (see the module's documentation).
///
/// # Errors
/// `Refused` when `keep_days` is below [`min_keep_days`]; `Db`/`Io` when the database or the
/// disk fails (what was removed before stays removed; a new run goes on from there).
pub async fn run(
    settings: &Settings,
    db: &DatabaseConnection,
    opts: &RetentionOptions,
) -> Result<RetentionReport, RetentionError> {
    let least = min_keep_days(settings);
    if opts.keep_days < least {
        return Err(RetentionError::Refused(format!(
            "--keep-days {} is too short: a ticket takes part in draws for {} days \
             (validity_days) and its win holds its person back for {} more (cooldown_days); \
             keep at least {least} days",
            opts.keep_days, settings.validity_days, settings.cooldown_days
        )));
    }
    let cutoff = opts
        .today
        .checked_sub_days(Days::new(u64::from(opts.keep_days)))
        .ok_or_else(|| RetentionError::Refused("--keep-days reaches before the calendar".into()))?;
    let tz = settings.tz()?;
    let cutoff_at: DateTime<Utc> = cutoff
        .and_time(NaiveTime::MIN)
        .and_local_timezone(tz)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| RetentionError::Refused(format!("{cutoff} 00:00 does not exist")))?;
    let mut report = RetentionReport {
        keep_days: opts.keep_days,
        cutoff,
        partitions: Vec::new(),
        dirs: Vec::new(),
        tickets_erased: 0,
        winners_erased: 0,
        kept: Vec::new(),
        default_rows: Vec::new(),
    };

    // The days: sealed ones from PostgreSQL, and any dated directory on disk.
    let records = partitions::days_before(db, cutoff).await?;
    let snapshots = dated_dirs(&settings.snapshots_dir, cutoff);
    let exports = dated_dirs(&settings.exports_dir, cutoff);
    let mut days: BTreeSet<NaiveDate> = records.iter().map(|r| r.date).collect();
    days.extend(snapshots.iter().map(|(d, _)| *d));
    days.extend(exports.iter().map(|(d, _)| *d));
    // Days that must stay: not drawn, or whose seal or draw is running.
    let mut blocked: BTreeSet<NaiveDate> = BTreeSet::new();
    let progress = bar(opts.progress, days.len() as u64, "old days");
    for date in &days {
        progress.inc(1);
        let record = records.iter().find(|r| r.date == *date);
        if !record.is_some_and(|r| r.drawn) {
            report.kept.push(format!(
                "{date}: {}",
                if record.is_some() {
                    "sealed but not drawn"
                } else {
                    "never sealed nor drawn (its directories stay until an official looks)"
                }
            ));
            blocked.insert(*date);
            continue;
        }
        let Some(locks) =
            DayLocks::try_acquire(db, &[(Step::Seal, *date), (Step::Draw, *date)]).await?
        else {
            report
                .kept
                .push(format!("{date}: a seal or draw of it is running"));
            blocked.insert(*date);
            continue;
        };
        let done = remove_day(settings, db, *date, record, &mut report).await;
        locks.release().await;
        done?;
    }
    progress.done();

    // Partitions whose whole month is older than the cutoff, unless they hold a kept day's
    // data: draw_entries the day's own month; tickets the months whose tickets could have
    // entered it (accepted up to validity_days + 2 days before).
    let validity = u64::from(settings.validity_days) + 2;
    let mut due: Vec<(Partition, NaiveDate, NaiveDate)> = Vec::new();
    for table in [Table::DrawEntries, Table::Tickets] {
        for p in partitions::list(db, table).await? {
            let end = next_month(p.month);
            let whole_month_old = match table {
                Table::DrawEntries => end <= cutoff,
                // Ticket months are UTC months of accepted_at.
                Table::Tickets => end.and_time(NaiveTime::MIN).and_utc() <= cutoff_at,
            };
            if !whole_month_old {
                continue;
            }
            // The dates whose data the partition may hold.
            let last = match table {
                Table::DrawEntries => end,
                Table::Tickets => end
                    .checked_add_days(Days::new(validity + 1))
                    .unwrap_or(NaiveDate::MAX),
            };
            if let Some(d) = blocked.iter().find(|d| **d >= p.month && **d < last) {
                report
                    .kept
                    .push(format!("{}: it holds data of {d}, which stays", p.name));
                continue;
            }
            let first = p.month;
            due.push((p, first, last));
        }
    }
    let progress = bar(opts.progress, due.len() as u64, "partitions");
    for (p, first, last) in due {
        progress.inc(1);
        if p.table == Table::Tickets {
            let registered = partitions::registered_in(db, &p).await?;
            if registered > 0 {
                report.kept.push(format!(
                    "{}: {registered} ticket(s) in it are still registered",
                    p.name
                ));
                continue;
            }
        }
        let steps: Vec<(Step, NaiveDate)> = dates(first, last.min(cutoff))
            .into_iter()
            .flat_map(|d| [(Step::Seal, d), (Step::Draw, d)])
            .collect();
        let Some(locks) = DayLocks::try_acquire(db, &steps).await? else {
            report.kept.push(format!(
                "{}: a seal or draw of one of its days is running",
                p.name
            ));
            continue;
        };
        let dropped = partitions::drop_partition(db, &p).await;
        locks.release().await;
        report.partitions.push(Dropped {
            rows: dropped?,
            bytes: p.bytes,
            name: p.name.clone(),
        });
    }
    progress.done();

    // Personal data of the tickets a kept partition still holds. Not of tickets that may have
    // entered a kept day: the draw of a sealed day reads its winners' masked ids from them.
    let erase_before = match blocked.first() {
        Some(d) => {
            let lowest = d
                .checked_sub_days(Days::new(validity))
                .unwrap_or(NaiveDate::MIN)
                .and_time(NaiveTime::MIN)
                .and_utc();
            lowest.min(cutoff_at)
        }
        None => cutoff_at,
    };
    let todo = partitions::tickets_with_personal_data(db, erase_before).await?;
    if todo > 0 {
        let progress = bar(opts.progress, todo as u64, "tickets' personal data");
        let mut after = String::new();
        loop {
            let (n, last) =
                partitions::erase_ticket_personal_data(db, erase_before, &after, ERASE_BATCH)
                    .await?;
            report.tickets_erased += n;
            progress.inc(n);
            match last {
                Some(l) => after = l,
                None => break,
            }
        }
        progress.done();
    }
    for table in [Table::Tickets, Table::DrawEntries] {
        let n = partitions::default_rows(db, table).await?;
        if n > 0 {
            report.default_rows.push((table.name().to_string(), n));
        }
    }
    Ok(report)
}

/// Removes one drawn day's directories and its winners' masked ids (the caller holds the
/// day's locks).
async fn remove_day(
    settings: &Settings,
    db: &DatabaseConnection,
    date: NaiveDate,
    record: Option<&partitions::DayRecord>,
    report: &mut RetentionReport,
) -> Result<(), RetentionError> {
    let mut paths: Vec<PathBuf> = vec![
        settings.snapshots_dir.join(date.to_string()),
        settings.exports_dir.join(date.to_string()),
    ];
    if let Some(dir) = record.and_then(|r| r.seal_dir.as_deref()) {
        let dir = PathBuf::from(dir);
        if !paths.contains(&dir) {
            paths.push(dir);
        }
    }
    for path in paths {
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let (files, bytes) = tree_size(&path);
        std::fs::remove_dir_all(&path)
            .map_err(|e| RetentionError::Io(format!("removing {}", path.display()), e))?;
        report.dirs.push(RemovedDir {
            date,
            path,
            files,
            bytes,
        });
    }
    if record.is_some_and(|r| r.winners_with_masked_id > 0) {
        report.winners_erased += partitions::erase_winner_personal_data(db, date).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_would_write_them() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn retention_refuses_to_keep_less_than_a_ticket_and_its_cooldown_need() {
        let s = Settings::default();
        assert_eq!(min_keep_days(&s), s.validity_days + s.cooldown_days + 3);
    }

    #[test]
    fn only_dated_directories_before_the_cutoff_are_found() {
        let root = std::env::temp_dir().join(format!("md-ret-{}", uuid::Uuid::new_v4().simple()));
        for d in ["2026-01-01", "2026-02-01", "not-a-date", "2026-03-01"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let cutoff = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let found: Vec<String> = dated_dirs(&root, cutoff)
            .into_iter()
            .map(|(d, _)| d.to_string())
            .collect();
        assert_eq!(found, ["2026-01-01", "2026-02-01"]);
        std::fs::remove_dir_all(root).unwrap();
    }
}
