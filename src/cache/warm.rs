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

/// Chunks waiting for a writer.
const QUEUED: usize = 8;
/// Pipelines in flight at once: enough to keep Redis busy while the next rows arrive.
const WRITERS: usize = 4;
/// How often the lease is renewed while writing.
const RENEW: std::time::Duration = std::time::Duration::from_secs(5);

/// Turns rows into chunks and hands full ones to the writers.
struct Chunker {
    tx: tokio::sync::mpsc::Sender<Warm>,
    chunk: Warm,
}

impl Chunker {
    async fn flush_if(&mut self, force: bool) -> Result<(), WarmError> {
        if self.chunk.is_empty() || (self.chunk.len() < CHUNK && !force) {
            return Ok(());
        }
        // The writers stopped (and say why): nothing more to read for.
        self.tx
            .send(std::mem::take(&mut self.chunk))
            .await
            .map_err(|_| WarmError::Lost)
    }
}

/// Writes the chunks as they come, `WRITERS` pipelines at a time, renewing the lease.
async fn write_all(
    redis: &RedisStore,
    token: &str,
    mut rx: tokio::sync::mpsc::Receiver<Warm>,
) -> Result<WarmReport, WarmError> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut report = WarmReport::default();
    let mut inflight = FuturesUnordered::new();
    let mut renewed = Instant::now();
    let count = |r: &mut WarmReport, c: &Warm| {
        r.tickets += c.statuses.len() as u64;
        r.outcomes += c.outcomes.len() as u64;
        r.locks += c.locks.len() as u64;
        r.cooldowns += c.cooldowns.len() as u64;
    };
    while let Some(chunk) = rx.recv().await {
        if renewed.elapsed() >= RENEW {
            if !redis.lease_warm(token, LEASE_SECS).await? {
                return Err(WarmError::Lost);
            }
            renewed = Instant::now();
        }
        while inflight.len() >= WRITERS {
            if let Some(done) = inflight.next().await {
                let c: Warm = done?;
                count(&mut report, &c);
            }
        }
        let r = redis.clone();
        inflight.push(async move { r.write_warm(&chunk).await.map(|()| chunk) });
    }
    while let Some(done) = inflight.next().await {
        let c: Warm = done?;
        count(&mut report, &c);
    }
    Ok(report)
}

/// Warms Redis for `settings`' key prefix. The tickets and the draws' entries are read on two
/// connections at once while up to four pipelines write what was read.
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
    let (tx, rx) = tokio::sync::mpsc::channel::<Warm>(QUEUED);
    let writer = write_all(redis, &token, rx);

    let tickets = {
        let tx = tx.clone();
        async move {
            let mut c = Chunker {
                tx,
                chunk: Warm::default(),
            };
            let mut rows = pin!(pg::tickets_since(db, horizon));
            while let Some(t) = rows.try_next().await? {
                let ttl =
                    (t.accepted_at + Duration::days(status_days(settings)) - now).num_seconds();
                if t.status == "registered" && t.valid_until > now {
                    let lock = (t.valid_until - now).num_seconds() + 3600;
                    c.chunk.locks.push((
                        t.person_tag.clone(),
                        t.ticket_id.clone(),
                        lock.max(1) as u64,
                    ));
                }
                c.chunk.statuses.push((
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
                c.flush_if(false).await?;
            }
            c.flush_if(true).await
        }
    };
    let entries = {
        let tx = tx.clone();
        async move {
            let mut c = Chunker {
                tx,
                chunk: Warm::default(),
            };
            let mut rows = pin!(pg::entries_since(db, horizon.date_naive()));
            while let Some((ticket, e)) = rows.try_next().await? {
                c.chunk
                    .outcomes
                    .push((ticket, e.redis_field(), e.redis_value()));
                c.flush_if(false).await?;
            }
            c.flush_if(true).await
        }
    };
    let cooldowns = {
        let tx = tx.clone();
        async move {
            let mut c = Chunker {
                tx,
                chunk: Warm::default(),
            };
            let tz = settings.tz().map_err(crate::day::DayError::from)?;
            let today = now.with_timezone(&tz).date_naive();
            let since = today - Duration::days(i64::from(settings.cooldown_days));
            for win in pg::wins_since(db, since).await? {
                let until = crate::day::cooldown_until(settings, win.draw_date);
                let until_utc = crate::day::local_to_utc(settings, until, NaiveTime::MIN)?;
                let secs = (until_utc - now).num_seconds();
                if secs > 0 {
                    c.chunk.cooldowns.push((
                        win.person_tag,
                        format!("{until}|{}", win.publish_at.timestamp()),
                        secs as u64,
                    ));
                }
                c.flush_if(false).await?;
            }
            c.flush_if(true).await
        }
    };
    drop(tx);
    let read = async {
        let read = futures_util::future::try_join3(tickets, entries, cooldowns).await;
        read.map(|_| ())
    };
    let (read, written) = tokio::join!(read, writer);
    // A writer's error explains a reader's `Lost`; otherwise the reader's own error.
    let mut report = written?;
    read?;
    if !redis.finish_warm(&token).await? {
        return Err(WarmError::Lost);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
