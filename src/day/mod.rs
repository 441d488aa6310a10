//! The officials' day: keys, stock, seal, draw, exports and the one-command demo. Formats and
//! the draw itself are the `lottery` crate's; this module moves data between PostgreSQL, Redis
//! and the snapshot directory, and talks to the officials.

pub mod demo;
pub mod draw;
pub mod keys;
pub mod seal;
pub mod stock;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use sea_orm::DatabaseConnection;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::store::redis::RedisStore;

/// What every step of the day needs.
pub struct DayContext {
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub redis: RedisStore,
    pub catalog: Catalog,
    /// Show progress bars (off in tests).
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DayError {
    #[error("{0}")]
    Refused(String),
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("redis")]
    Redis(#[from] crate::store::redis::StoreError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A test stopped the run here, as if the process had died (see [`Crash`]).
    #[error("stopped {0:?} (a simulated crash)")]
    Crashed(Crash),
    #[error("snapshot")]
    Dir(#[from] lottery::dir::DirError),
    #[error("snapshot")]
    Snapshot(#[from] lottery::snapshot::SnapshotError),
    #[error("snapshot text")]
    Text(#[from] lottery::text::TextError),
    #[error("key")]
    Sign(#[from] lottery::sign::SignError),
}

pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DayError {
    let what = what.to_string();
    move |e| DayError::Io(what, e)
}

/// A point where a seal or a draw stops as if its process had died there, for the tests of
/// interrupted runs. The CLI never sets one.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The seal is committed; its directory still has the temporary name.
    SealAfterCommit,
    /// The draw's seed is pinned; no draw file is written.
    DrawAfterSeed,
    /// The draw files are written and synced; nothing else is recorded.
    DrawAfterFiles,
    /// The draw is recorded in PostgreSQL; Redis and the exports were not told.
    DrawAfterRecord,
}

/// `Err(Crashed)` when `at` is the point a test asked to stop at.
pub(crate) fn crash_at(asked: Option<Crash>, at: Crash) -> Result<(), DayError> {
    if asked == Some(at) {
        Err(DayError::Crashed(at))
    } else {
        Ok(())
    }
}

/// Takes the PostgreSQL lock of (`step`, `date`) for the whole seal or draw, or refuses at
/// once when another officer holds it.
///
/// # Errors
/// `Refused` when the lock is held; database errors.
pub async fn lock_day(
    db: &DatabaseConnection,
    step: crate::store::day::Step,
    date: NaiveDate,
) -> Result<crate::store::day::DayLock, DayError> {
    crate::store::day::DayLock::try_acquire(db, step, date)
        .await?
        .ok_or_else(|| {
            DayError::Refused(format!(
                "another {step} of {date} is running (it holds the {step}'s lock in PostgreSQL): \
                 wait for it to end, then check its outcome"
            ))
        })
}

/// Refuses a date the snapshot format cannot carry (`YYYY-MM-DD`, a four-digit year).
///
/// # Errors
/// `Refused` naming the date.
pub fn check_date(date: NaiveDate) -> Result<(), DayError> {
    if lottery::text::check_date(&date.to_string()) {
        Ok(())
    } else {
        Err(DayError::Refused(format!(
            "{date}: a draw date has a four-digit year (YYYY-MM-DD)"
        )))
    }
}

/// Reads `dir/seal.txt` and checks it is the seal recorded for `date`, byte for byte, and a
/// seal of that date: a directory is only ever taken for the day its own seal names.
///
/// # Errors
/// `Refused` when it is another seal or another date's; file or grammar errors.
pub(crate) fn read_recorded_seal(
    dir: &Path,
    row: &crate::store::day::SealRow,
    date: NaiveDate,
) -> Result<lottery::text::SealText, DayError> {
    let path = dir.join("seal.txt");
    let bytes = lottery::limits::read_at_most(&path, lottery::limits::TEXT_MAX)
        .map_err(io(path.display()))?;
    if bytes != row.seal_txt.as_bytes() {
        return Err(DayError::Refused(format!(
            "{} is not the seal recorded for {date}",
            path.display()
        )));
    }
    let seal = lottery::text::SealText::parse(&bytes)?;
    if seal.draw_date != date.to_string() {
        return Err(DayError::Refused(format!(
            "{} is the seal of draw_date {}, not of {date}",
            path.display(),
            seal.draw_date
        )));
    }
    Ok(seal)
}

/// How the draw (and `seal --resume`) ties `entrants.csv` to the recorded seal: by the file's
/// SHA-256 the seal recorded, or, for seals from before that column, by the tree head.
///
/// # Errors
/// `Refused` when the recorded digest is malformed.
pub(crate) fn entrants_check(
    row: &crate::store::day::SealRow,
    date: NaiveDate,
) -> Result<lottery::verify::EntrantsCheck, DayError> {
    match row.entrants_sha256.as_deref().map(hex::decode) {
        None => Ok(lottery::verify::EntrantsCheck::Root),
        Some(Ok(d)) => <[u8; 32]>::try_from(d)
            .map(lottery::verify::EntrantsCheck::FileSha256)
            .map_err(|_| malformed_digest(date)),
        Some(Err(_)) => Err(malformed_digest(date)),
    }
}

fn malformed_digest(date: NaiveDate) -> DayError {
    DayError::Refused(format!(
        "the seal of {date} records a malformed entrants.csv digest"
    ))
}

/// Makes `path` (a file or a directory) durable: its data, or for a directory its entries.
///
/// # Errors
/// `Io` naming the path.
pub(crate) fn sync_path(path: &Path) -> Result<(), DayError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing {}", path.display())))
}

/// Local `date` at `time` in the city's zone, as UTC.
///
/// # Errors
/// When the zone is misconfigured or the local time does not exist (a DST gap).
pub fn local_to_utc(
    settings: &Settings,
    date: NaiveDate,
    time: NaiveTime,
) -> Result<DateTime<Utc>, DayError> {
    let tz = settings.tz()?;
    tz.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            DayError::Refused(format!(
                "{date} {time} does not exist in {}",
                settings.timezone
            ))
        })
}

/// Entrants for `date` are those active at the cutoff on the day before.
///
/// # Errors
/// As [`local_to_utc`].
pub fn cutoff(settings: &Settings, date: NaiveDate) -> Result<DateTime<Utc>, DayError> {
    let day_before = date
        .pred_opt()
        .ok_or_else(|| DayError::Refused("date out of range".into()))?;
    local_to_utc(settings, day_before, settings.cutoff()?)
}

/// Results of `date` are shown from this instant.
///
/// # Errors
/// As [`local_to_utc`].
pub fn publish_at(settings: &Settings, date: NaiveDate) -> Result<DateTime<Utc>, DayError> {
    local_to_utc(settings, date, settings.publish_time()?)
}

/// The first local date on which a winner of `date` may enter again (they are out for
/// `cooldown_days` after the draw day). Saturates at the end of the calendar, which means
/// "never": settings that passed [`Settings::check`] never get there.
pub fn cooldown_until(settings: &Settings, date: NaiveDate) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(settings.cooldown_days) + 1))
        .unwrap_or(NaiveDate::MAX)
}

/// [`cooldown_until`] for the draw, which must not record a date it cannot compute.
///
/// # Errors
/// When `cooldown_days` is out of its bounds or the date would leave the calendar.
pub fn checked_cooldown_until(settings: &Settings, date: NaiveDate) -> Result<NaiveDate, DayError> {
    settings.check_day_counts()?;
    date.checked_add_days(Days::new(u64::from(settings.cooldown_days) + 1))
        .ok_or_else(|| out_of_calendar("cooldown_days", date))
}

/// The first draw date whose winners are still cooling down on `date`.
///
/// # Errors
/// As [`cooldown_until`].
pub fn cooling_from(settings: &Settings, date: NaiveDate) -> Result<NaiveDate, DayError> {
    settings.check_day_counts()?;
    date.checked_sub_days(Days::new(u64::from(settings.cooldown_days)))
        .ok_or_else(|| out_of_calendar("cooldown_days", date))
}

fn out_of_calendar(setting: &str, date: NaiveDate) -> DayError {
    DayError::Refused(format!(
        "{setting} takes {date} out of the calendar's range"
    ))
}

/// How long a ticket's status hash lives in Redis after a seal or draw settles it: its
/// validity, its cooldown and a month, in seconds.
///
/// # Errors
/// When `validity_days` or `cooldown_days` is out of its bounds.
pub fn ticket_ttl(settings: &Settings) -> Result<u64, DayError> {
    settings.check_day_counts()?;
    Ok((u64::from(settings.validity_days) + u64::from(settings.cooldown_days) + 30) * 86_400)
}

/// `snapshots/<date>` under `out`.
pub fn day_dir(out: &std::path::Path, date: NaiveDate) -> PathBuf {
    out.join(date.to_string())
}

/// An indicatif bar behind `lottery::Progress`, or nothing when progress is off.
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub fn new(on: bool) -> Self {
        Self(on.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar
        }))
    }

    /// A spinner with a message, for steps of unknown length.
    pub fn step(&self, msg: &str) {
        if let Some(b) = &self.0 {
            b.reset();
            b.set_length(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} {pos} [{elapsed_precise}] {per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.set_message(msg.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    pub fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl lottery::Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        if let Some(b) = &self.0 {
            b.reset();
            b.set_length(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>12} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(stage.to_string());
        }
    }
    fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_22_00_the_day_before_in_shanghai() {
        let s = Settings::default();
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(
            cutoff(&s, d).unwrap().to_rfc3339(),
            "2026-11-23T14:00:00+00:00"
        );
        assert_eq!(
            publish_at(&s, d).unwrap().to_rfc3339(),
            "2026-11-24T10:00:00+00:00"
        );
        assert_eq!(cooldown_until(&s, d).to_string(), "2026-11-28");
        assert_eq!(
            checked_cooldown_until(&s, d).unwrap().to_string(),
            "2026-11-28"
        );
    }

    #[test]
    fn dates_beyond_the_format_or_the_calendar_are_refused_instead_of_panicking() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert!(check_date(d).is_ok());
        assert!(check_date(NaiveDate::from_ymd_opt(12_026, 11, 24).unwrap()).is_err());
        let huge = Settings {
            cooldown_days: u32::MAX,
            validity_days: u32::MAX,
            ..Settings::default()
        };
        for err in [
            checked_cooldown_until(&huge, d).unwrap_err(),
            cooling_from(&huge, d).unwrap_err(),
            ticket_ttl(&huge).unwrap_err(),
        ] {
            assert!(err.to_string().contains("_days"), "{err}");
        }
        // The service's own use saturates: a cooldown past the calendar's end is "never".
        assert_eq!(cooldown_until(&huge, d), NaiveDate::MAX);
        let s = Settings::default();
        assert!(checked_cooldown_until(&s, NaiveDate::MAX).is_err());
        assert!(cooling_from(&s, NaiveDate::MIN).is_err());
    }
}
