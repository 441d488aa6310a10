//! `maskdraw persist`: a competing consumer that writes reservations to PostgreSQL.
//!
//! `handle_batch` is the whole decision (STYLE.md "Queues and stores"); `run` is the thin loop
//! around it: explicit prefetch, batch what has arrived, commit, update Redis, then ack.
//! At-least-once delivery plus the idempotent insert gives each ticket exactly once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::queue::broker::{bounded, connect_any, declare_topology};
use crate::queue::{Envelope, ReservationEvent};
use crate::store::redis::{RedisStore, TicketStatus};
use crate::store::tickets::{self, InsertOutcome};

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("broker")]
    Broker(#[from] crate::queue::BrokerError),
    #[error("amqp")]
    Amqp(#[from] lapin::Error),
}

/// What became of one batch of deliveries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Indexes (into the batch) of deliveries that are stored and may be acked.
    pub ack: Vec<usize>,
    /// Indexes of poison deliveries for the dead-letter queue.
    pub dead: Vec<usize>,
    pub stored: InsertOutcome,
}

fn merge(into: &mut InsertOutcome, from: InsertOutcome) {
    into.inserted.extend(from.inserted);
    into.rejected.extend(from.rejected);
    into.duplicates += from.duplicates;
    into.expired.extend(from.expired);
}

#[derive(Clone)]
pub struct Persister {
    pub db: DatabaseConnection,
    pub redis: RedisStore,
    pub metrics: Metrics,
    pub batch_rows: usize,
    /// Time to live of the Redis status hash.
    pub status_ttl_secs: u64,
    /// Bound on each statement as the client sees it (a database that stops answering), and on
    /// each broker operation.
    pub db_timeout: Duration,
    pub amqp_timeout: Duration,
}

impl Persister {
    /// Decodes the bodies, stores every good reservation (in statements of at most
    /// `batch_rows` rows), and updates Redis. Poison does not stop the rest: a body that does
    /// not parse is dead-lettered at once, and when the database refuses a batch for a reason
    /// that would come back (`store::is_permanent`), each message is stored on its own and the
    /// ones it still refuses are dead-lettered.
    ///
    /// # Errors
    /// When the database fails for a passing reason: nothing is acked then and the deliveries
    /// come back.
    pub async fn handle_batch(&self, bodies: &[&[u8]]) -> Result<Outcome, PersistError> {
        let mut outcome = Outcome::default();
        let mut messages: Vec<(usize, Vec<ReservationEvent>)> = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            match Envelope::parse(body) {
                Ok(env) => messages.push((i, env.reservations)),
                Err(e) => {
                    tracing::warn!(error = %e, "poison message goes to the dead-letter queue");
                    outcome.dead.push(i);
                }
            }
        }
        let events: Vec<ReservationEvent> = messages
            .iter()
            .flat_map(|(_, evs)| evs.iter().cloned())
            .collect();
        match self.store(&events).await {
            Ok(stored) => {
                outcome.stored = stored;
                outcome.ack.extend(messages.iter().map(|(i, _)| *i));
            }
            Err(e) if crate::store::is_permanent(&e) => {
                tracing::warn!(error = %e, "the database refuses a batch; storing its messages one by one");
                for (i, evs) in &messages {
                    match self.store(evs).await {
                        Ok(stored) => {
                            merge(&mut outcome.stored, stored);
                            outcome.ack.push(*i);
                        }
                        Err(e) if crate::store::is_permanent(&e) => {
                            tracing::warn!(error = %e, "the database refuses a message; it goes to the dead-letter queue");
                            outcome.dead.push(*i);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                outcome.ack.sort_unstable();
                outcome.dead.sort_unstable();
            }
            Err(e) => return Err(e.into()),
        }
        let stored_events: Vec<ReservationEvent> = messages
            .into_iter()
            .filter(|(i, _)| !outcome.dead.contains(i))
            .flat_map(|(_, evs)| evs)
            .collect();
        self.after_commit(&stored_events, &outcome.stored).await;
        Ok(outcome)
    }

    /// Stores `events` in statements of at most `batch_rows` rows (each its own transaction;
    /// a retry after a failure finds the committed ones as duplicates).
    async fn store(&self, events: &[ReservationEvent]) -> Result<InsertOutcome, sea_orm::DbErr> {
        let mut all = InsertOutcome::default();
        for chunk in events.chunks(self.batch_rows.max(1)) {
            let insert =
                tokio::time::timeout(self.db_timeout, tickets::insert_batch(&self.db, chunk));
            let stored = insert.await.map_err(|_| {
                sea_orm::DbErr::Custom("PostgreSQL did not answer in time".into())
            })??;
            merge(&mut all, stored);
        }
        Ok(all)
    }

    /// Redis learns what PostgreSQL now holds. Best effort: the status API falls back to
    /// PostgreSQL, so a Redis hiccup here loses nothing.
    async fn after_commit(&self, events: &[ReservationEvent], stored: &InsertOutcome) {
        // The usual batch: every reservation new and stored, no lookups needed.
        let all_new = stored.inserted.len() == events.len() && stored.rejected.is_empty();
        let (rejected, inserted): (HashSet<&str>, HashSet<&str>) = if all_new {
            Default::default()
        } else {
            (
                stored.rejected.iter().map(String::as_str).collect(),
                stored.inserted.iter().map(String::as_str).collect(),
            )
        };
        // Redeliveries: stored before, perhaps without Redis hearing of it (a crash between the
        // commit and the status write); their status now is whatever PostgreSQL says.
        let earlier: std::collections::HashMap<String, String> = if stored.duplicates == 0 {
            Default::default()
        } else {
            let ids: Vec<&str> = events
                .iter()
                .map(|e| e.ticket_id.as_str())
                .filter(|t| !inserted.contains(t) && !rejected.contains(t))
                .collect();
            tickets::statuses(&self.db, &ids)
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(error = ?err, "reading redelivered tickets' statuses");
                    Default::default()
                })
        };
        let mut statuses = Vec::with_capacity(events.len());
        for e in events {
            let status = if all_new {
                "registered"
            } else if rejected.contains(e.ticket_id.as_str()) {
                "rejected"
            } else if inserted.contains(e.ticket_id.as_str()) {
                "registered"
            } else if let Some(st) = earlier.get(&e.ticket_id) {
                st.as_str()
            } else {
                continue;
            };
            statuses.push((
                e.ticket_id.clone(),
                TicketStatus {
                    status: status.into(),
                    pharmacy_id: e.pharmacy_id.clone(),
                    product_id: e.product_id.clone(),
                    flexible: e.flexible,
                    accepted_at: e.accepted_at.to_rfc3339(),
                    valid_until: e.valid_until.to_rfc3339(),
                    draws: Vec::new(),
                },
            ));
            if status == "rejected" {
                if let Err(err) = self.redis.release(&e.person_tag, &e.ticket_id, None).await {
                    tracing::warn!(error = ?err, "releasing a rejected ticket's lock");
                }
            }
        }
        if let Err(err) = self
            .redis
            .set_statuses(&statuses, self.status_ttl_secs)
            .await
        {
            tracing::warn!(error = ?err, "updating ticket statuses in redis");
        }
        if stored.expired.is_empty() {
        } else if let Err(err) = self
            .redis
            .record_outcome(&stored.expired, "status", "expired")
            .await
        {
            tracing::warn!(error = ?err, "marking replaced tickets expired in redis");
        }
        self.metrics.persisted.inc_by(stored.inserted.len() as u64);
        self.metrics.rejected.inc_by(stored.rejected.len() as u64);
        if let Some(latest) = events.iter().map(|e| e.accepted_at).max() {
            let lag = (chrono::Utc::now() - latest).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics.persister_lag.set(lag);
        }
    }

    /// Consumes `queue` until `shutdown` flips, reconnecting to the broker with backoff.
    pub async fn run(
        self: Arc<Self>,
        uris: Vec<String>,
        queue: String,
        dead: String,
        prefetch: u16,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut node = 0usize;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self
                .consume(&uris, &mut node, &queue, &dead, prefetch, &mut shutdown)
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = ?e, retry_in = ?backoff, "persister lost its broker or database; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn consume(
        &self,
        uris: &[String],
        node: &mut usize,
        queue: &str,
        dead: &str,
        prefetch: u16,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), PersistError> {
        // The next node after the one that failed, or the first that answers.
        let (conn, at) = connect_any(uris, *node).await?;
        *node = at + 1;
        let t = self.amqp_timeout;
        let ch = bounded(t, conn.create_channel()).await?;
        declare_topology(&conn, queue, dead).await?;
        bounded(t, ch.basic_qos(prefetch, BasicQosOptions::default())).await?;
        let mut consumer = bounded(
            t,
            ch.basic_consume(
                queue,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        tracing::info!(queue, prefetch, "persister consuming");
        loop {
            let first = tokio::select! {
                d = consumer.next() => d,
                _ = shutdown.changed() => { let _ = conn.close(200, "shutdown").await; return Ok(()); }
            };
            let Some(first) = first else {
                return Err(PersistError::Broker(
                    crate::queue::BrokerError::NotConnected,
                ));
            };
            let mut batch: Vec<Delivery> = vec![first?];
            // Take whatever else has already arrived, up to the prefetch window.
            while batch.len() < usize::from(prefetch) {
                match tokio::time::timeout(Duration::from_millis(2), consumer.next()).await {
                    Ok(Some(d)) => batch.push(d?),
                    _ => break,
                }
            }
            let bodies: Vec<&[u8]> = batch.iter().map(|d| d.data.as_slice()).collect();
            let outcome = loop {
                match self.handle_batch(&bodies).await {
                    Ok(o) => break o,
                    Err(e) => {
                        // The deliveries stay unacked while the database is away; if the
                        // broker connection goes too, they are redelivered elsewhere.
                        tracing::warn!(error = ?e, "storing a batch failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        if !conn.status().connected() {
                            return Err(e);
                        }
                    }
                }
            };
            // A broker that stops answering here ends this connection: the deliveries not yet
            // acked come back (stored already, they are duplicates the insert absorbs).
            for i in &outcome.dead {
                let nack = BasicNackOptions {
                    requeue: false,
                    multiple: false,
                };
                bounded(t, batch[*i].nack(nack)).await?;
                self.metrics.poison.inc();
            }
            if outcome.dead.is_empty() {
                // One frame acks the whole batch: every delivery up to the last is stored.
                if let Some(last) = batch.last() {
                    bounded(t, last.ack(BasicAckOptions { multiple: true })).await?;
                }
            } else {
                for i in &outcome.ack {
                    bounded(t, batch[*i].ack(BasicAckOptions::default())).await?;
                }
            }
        }
    }
}
