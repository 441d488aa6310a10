//! `maskdraw cache warm`: rebuilds from PostgreSQL what Redis holds for the live tickets,
//! after Redis lost its data (DESIGN.md "Publication"): status hashes, draw outcomes, the
//! persons' locks of their active tickets and winners' cooldowns. Without it a Redis restart
//! would let a person hold two tickets (the lock is gone) or a winner reserve during the
//! cooldown, and every status read would go to PostgreSQL.
//!
//! One warm at a time holds a lease in Redis; it sets the "complete" marker only if its lease
//! survived to the end (a flush in the middle takes both the lease and the half-written data).

use std::pin::pin;
use std::time::Instant;

use chrono::{Duration, NaiveTime, Utc};
use futures_util::TryStreamExt;
use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::store::redis::{RedisStore, StoreError, TicketStatus, Warm};
use crate::store::warm as pg;

#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("redis")]
    Redis(#[from] StoreError),
    #[error("another warm is running")]
    Busy,
    #[error("Redis lost the warm's lease (flushed or restarted while warming); run it again")]
    Lost,
    #[error("configuration")]
    Config(#[from] crate::day::DayError),
}

/// What a warm wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmReport {
    pub tickets: u64,
    pub outcomes: u64,
    pub locks: u64,
    pub cooldowns: u64,
    pub seconds: f64,
}

impl std::fmt::Display for WarmReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Redis warmed from PostgreSQL in {:.2} s", self.seconds)?;
        writeln!(f, "  ticket statuses  {}", self.tickets)?;
        writeln!(f, "  draw outcomes    {}", self.outcomes)?;
        writeln!(f, "  active locks     {}", self.locks)?;
        write!(f, "  cooldowns        {}", self.cooldowns)
    }
}

/// Rows per Redis pipeline.
const CHUNK: usize = 5_000;
/// The lease outlives a stalled chunk by a wide margin and is renewed at every chunk.
const LEASE_SECS: u64 = 120;

/// How long a ticket's status hash lives after acceptance (as the draw keeps it).
pub fn status_days(settings: &Settings) -> i64 {
    i64::from(settings.validity_days) + i64::from(settings.cooldown_days) + 30
}

struct Writer<'a> {
    redis: &'a RedisStore,
    token: String,
    chunk: Warm,
    report: WarmReport,
}

impl Writer<'_> {
    async fn flush_if(&mut self, force: bool) -> Result<(), WarmError> {
        if self.chunk.is_empty() || (self.chunk.len() < CHUNK && !force) {
            return Ok(());
        }
        if !self.redis.lease_warm(&self.token, LEASE_SECS).await? {
            return Err(WarmError::Lost);
        }
        self.redis.write_warm(&self.chunk).await?;
        let c = std::mem::take(&mut self.chunk);
        self.report.tickets += c.statuses.len() as u64;
        self.report.outcomes += c.outcomes.len() as u64;
        self.report.locks += c.locks.len() as u64;
        self.report.cooldowns += c.cooldowns.len() as u64;
        Ok(())
    }
}

/// Warms Redis for `settings`' key prefix.
///
/// # Errors
/// `Busy` when another warm holds the lease, `Lost` when Redis lost it mid-way; database and
/// Redis errors otherwise. Nothing is marked complete unless everything was written.
pub async fn warm(
    settings: &Settings,
    db: &DatabaseConnection,
    redis: &RedisStore,
) -> Result<WarmReport, WarmError> {
    let started = Instant::now();
    let token = uuid::Uuid::new_v4().simple().to_string();
    if !redis.lease_warm(&token, LEASE_SECS).await? {
        return Err(WarmError::Busy);
    }
    let now = Utc::now();
    let horizon = now - Duration::days(status_days(settings));
    let mut w = Writer {
        redis,
        token,
        chunk: Warm::default(),
        report: WarmReport::default(),
    };

    let mut tickets = pin!(pg::tickets_since(db, horizon));
    while let Some(t) = tickets.try_next().await? {
        let ttl = (t.accepted_at + Duration::days(status_days(settings)) - now).num_seconds();
        if t.status == "registered" && t.valid_until > now {
            let lock = (t.valid_until - now).num_seconds() + 3600;
            w.chunk.locks.push((
                t.person_tag.clone(),
                t.ticket_id.clone(),
                lock.max(1) as u64,
            ));
        }
        w.chunk.statuses.push((
            t.ticket_id.clone(),
            TicketStatus {
                status: t.status,
                pharmacy_id: t.pharmacy_id,
                product_id: t.product_id,
                flexible: t.flexible,
                accepted_at: t.accepted_at.to_rfc3339(),
                valid_until: t.valid_until.to_rfc3339(),
                draws: Vec::new(),
            },
            ttl.max(1) as u64,
        ));
        w.flush_if(false).await?;
    }

    let mut entries = pin!(pg::entries_since(db, horizon.date_naive()));
    while let Some((ticket, e)) = entries.try_next().await? {
        w.chunk
            .outcomes
            .push((ticket, e.redis_field(), e.redis_value()));
        w.flush_if(false).await?;
    }

    let tz = settings.tz().map_err(crate::day::DayError::from)?;
    let today = now.with_timezone(&tz).date_naive();
    let since = today - Duration::days(i64::from(settings.cooldown_days));
    for win in pg::wins_since(db, since).await? {
        let until = crate::day::cooldown_until(settings, win.draw_date);
        let until_utc = crate::day::local_to_utc(settings, until, NaiveTime::MIN)?;
        let secs = (until_utc - now).num_seconds();
        if secs > 0 {
            w.chunk.cooldowns.push((
                win.person_tag,
                format!("{until}|{}", win.publish_at.timestamp()),
                secs as u64,
            ));
        }
        w.flush_if(false).await?;
    }
    w.flush_if(true).await?;
    if !redis.finish_warm(&w.token).await? {
        return Err(WarmError::Lost);
    }
    w.report.seconds = started.elapsed().as_secs_f64();
    Ok(w.report)
}
