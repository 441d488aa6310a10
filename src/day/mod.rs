//! The officials' day: keys, stock, seal, draw, exports and the one-command demo. Formats and
//! the draw itself are the `lottery` crate's; this module moves data between PostgreSQL, Redis
//! and the snapshot directory, and talks to the officials.

pub mod demo;
pub mod draw;
pub mod keys;
pub mod seal;
pub mod stock;

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
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
    #[error("configuration")]
    Config(#[from] crate::config::ConfigError),
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
/// `cooldown_days` after the draw day).
pub fn cooldown_until(settings: &Settings, date: NaiveDate) -> NaiveDate {
    date + chrono::Duration::days(i64::from(settings.cooldown_days) + 1)
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
    }
}
