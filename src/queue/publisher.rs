//! The intake's group commit: reservations that arrive within a millisecond or two (or up to
//! `publish_batch` of them) share one persistent message and one publisher confirm. A request
//! hears back only when the message carrying it is durable: confirmed by the broker, or, when
//! the broker is unreachable, appended to the Redis fallback stream.
//!
//! A durable batch is signed once by the intake key (lottery/SPEC.md §16): the receipts of its
//! reservations are the leaves of one tree whose head is signed, and each request gets its
//! own receipt with its audit path. One signature per batch, not per reservation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::BasicPublishOptions;
use lapin::publisher_confirm::Confirmation;
use lapin::BasicProperties;
use tokio::sync::{mpsc, oneshot};

use super::broker::{Broker, Link};
use super::message::{Envelope, ReservationEvent};
use crate::metrics::Metrics;
use crate::store::redis::{FallbackDemand, RedisStore, StoreError};

/// Where the reservation became durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Broker,
    Fallback,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("neither the broker nor the fallback stream took the reservation")]
    Unavailable,
    #[error("the broker is away and Redis would not keep the reservation")]
    NotDurable,
    #[error("the publisher has stopped")]
    Stopped,
}

/// A durable reservation: where it became durable, and its signed receipt file when one was
/// asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub durability: Durability,
    pub receipt: Option<Arc<[u8]>>,
}

struct Job {
    event: ReservationEvent,
    receipt: Option<lottery::receipt::Receipt>,
    done: oneshot::Sender<Result<Published, PublishError>>,
}

#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Job>,
    fallback: Arc<FallbackStatus>,
}

#[derive(Debug, Clone, Copy)]
pub struct PublisherConfig {
    pub batch: usize,
    pub linger: Duration,
    pub confirm_timeout: Duration,
    /// What Redis must do before a fallback entry counts as durable.
    pub fallback: FallbackDemand,
}

/// The intake key that signs each durable batch's receipts.
pub type IntakeSigner = Arc<ed25519_dalek::SigningKey>;

/// Whether Redis keeps what the fallback writes, as last seen by the monitor or by an append:
/// for `/readyz` and the `redis_persistent` gauge. The appends themselves check Redis anew
/// (see [`RedisStore::append_fallback_durable`]), so this flag never lets one through.
pub struct FallbackStatus {
    demand: FallbackDemand,
    keeps: AtomicBool,
}

impl FallbackStatus {
    fn set(&self, keeps: bool, metrics: &Metrics) {
        self.keeps.store(keeps, Ordering::Relaxed);
        metrics.redis_persistent.set(i64::from(keeps));
    }

    /// Reads Redis's persistence and replication now. An unreachable Redis keeps nothing.
    pub async fn refresh(&self, redis: &RedisStore, metrics: &Metrics) {
        let keeps = match redis.persistence().await {
            Ok(p) => match self.demand {
                FallbackDemand::Replicas { count, .. } => p.replicas >= count,
                FallbackDemand::Aof | FallbackDemand::Nothing => p.persists(),
            },
            Err(e) => {
                tracing::debug!(error = ?e, "reading Redis persistence");
                false
            }
        };
        if !keeps && self.keeps.load(Ordering::Relaxed) {
            tracing::warn!(demand = ?self.demand, "Redis no longer keeps fallback entries");
        }
        self.set(keeps, metrics);
    }

    /// Whether Redis keeps fallback entries (AOF on; in replica mode, enough replicas).
    pub fn redis_persistent(&self) -> bool {
        self.keeps.load(Ordering::Relaxed)
    }

    /// `available`, `refused` (the fallback would answer 503), or `unsafe` (it answers 202
    /// on a Redis that keeps nothing, as configured).
    pub fn state(&self) -> &'static str {
        match (self.redis_persistent(), self.demand) {
            (true, _) => "available",
            (false, FallbackDemand::Nothing) => "unsafe",
            (false, _) => "refused",
        }
    }
}

impl Publisher {
    /// Starts the batching task; it ends when every `Publisher` clone is dropped.
    pub fn spawn(
        broker: Arc<Broker>,
        redis: RedisStore,
        metrics: Metrics,
        cfg: PublisherConfig,
        signer: IntakeSigner,
    ) -> Self {
        let (tx, rx) = mpsc::channel(cfg.batch * 64);
        let fallback = Arc::new(FallbackStatus {
            demand: cfg.fallback,
            keeps: AtomicBool::new(false),
        });
        tokio::spawn(run(
            rx,
            broker,
            redis,
            metrics,
            cfg,
            fallback.clone(),
            signer,
        ));
        Self { tx, fallback }
    }

    /// What the fallback stream can do now, as last seen.
    pub fn fallback(&self) -> &FallbackStatus {
        &self.fallback
    }

    /// Waits until the reservation is durable; with a `receipt`, answers its signed receipt
    /// file too (signed with the rest of its batch).
    ///
    /// # Errors
    /// `Unavailable` when neither the broker nor Redis took it; `Stopped` on shutdown.
    pub async fn publish(
        &self,
        event: ReservationEvent,
        receipt: Option<lottery::receipt::Receipt>,
    ) -> Result<Published, PublishError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job {
                event,
                receipt,
                done,
            })
            .await
            .map_err(|_| PublishError::Stopped)?;
        rx.await.map_err(|_| PublishError::Stopped)?
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    broker: Arc<Broker>,
    redis: RedisStore,
    metrics: Metrics,
    cfg: PublisherConfig,
    fallback: Arc<FallbackStatus>,
    signer: IntakeSigner,
) {
    while let Some(first) = rx.recv().await {
        let started = Instant::now();
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + cfg.linger;
        while jobs.len() < cfg.batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => jobs.push(job),
                        _ => break,
                    }
                }
            }
        }
        // Settle in its own task so the next batch is published while this one awaits its
        // confirm: confirms pipeline on the one channel.
        let (broker, redis, metrics, fallback, signer) = (
            broker.clone(),
            redis.clone(),
            metrics.clone(),
            fallback.clone(),
            signer.clone(),
        );
        tokio::spawn(async move {
            let mut events = Vec::with_capacity(jobs.len());
            let mut wanted = Vec::with_capacity(jobs.len());
            let mut senders = Vec::with_capacity(jobs.len());
            for j in jobs {
                events.push(j.event);
                wanted.push(j.receipt);
                senders.push(j.done);
            }
            let n = events.len() as u64;
            let envelope = Envelope::new(events);
            let body = envelope.to_bytes();
            let outcome = make_durable(&broker, &redis, &body, &cfg).await;
            let mut receipts: Vec<Option<Arc<[u8]>>> = vec![None; wanted.len()];
            if outcome.is_ok() {
                receipts = sign_receipts(&signer, wanted);
                // Durable now: a failure to write the status loses nothing (the persister
                // writes it again and the status API falls back to PostgreSQL).
                if let Err(e) = redis.confirm_many(&envelope.reservations, &receipts).await {
                    tracing::warn!(error = ?e, "writing the accepted statuses");
                }
            }
            match outcome {
                Ok(Durability::Broker) => {
                    metrics.published.inc_by(n);
                    metrics.published_messages.inc();
                    metrics.degraded.set(0);
                }
                Ok(Durability::Fallback) => {
                    metrics.fallback.inc_by(n);
                    metrics.degraded.set(1);
                    if cfg.fallback != FallbackDemand::Nothing {
                        fallback.set(true, &metrics);
                    }
                }
                Err(PublishError::NotDurable) => {
                    metrics.fallback_refused.inc_by(n);
                    metrics.degraded.set(1);
                    fallback.set(false, &metrics);
                }
                Err(_) => metrics.degraded.set(1),
            }
            metrics
                .publish_latency
                .observe(started.elapsed().as_secs_f64());
            for (s, receipt) in senders.into_iter().zip(receipts) {
                let _ = s.send(outcome.clone().map(|durability| Published {
                    durability,
                    receipt,
                }));
            }
        });
    }
}

/// Signs the batch's receipts with one signature (those asked for, in batch order), and hands
/// each its receipt file. Receipts were checked when stated, so a refusal here is a bug: it is
/// logged and the batch answers without receipts rather than failing durable reservations.
fn sign_receipts(
    signer: &ed25519_dalek::SigningKey,
    wanted: Vec<Option<lottery::receipt::Receipt>>,
) -> Vec<Option<Arc<[u8]>>> {
    let mut out: Vec<Option<Arc<[u8]>>> = vec![None; wanted.len()];
    let (places, leaves): (Vec<usize>, Vec<_>) = wanted
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (i, r)))
        .unzip();
    if leaves.is_empty() {
        return out;
    }
    match lottery::receipt::sign_batch_files(signer, &leaves) {
        Ok(files) => {
            for (i, file) in places.into_iter().zip(files) {
                out[i] = Some(Arc::from(file));
            }
        }
        Err(e) => tracing::error!(error = %e, "signing a batch of receipts"),
    }
    out
}

/// Publishes one message with mandatory routing and waits for its confirm, bounded by
/// `timeout`. `Ok(true)` only for a plain ack of a routed message.
pub async fn publish_confirmed(link: &Link, queue: &str, body: &[u8], timeout: Duration) -> bool {
    let attempt = async {
        let confirm = link
            .publish
            .basic_publish(
                "",
                queue,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into()),
            )
            .await?;
        confirm.await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(Confirmation::Ack(None))) => true,
        Ok(Ok(other)) => {
            tracing::warn!(confirmation = ?other, "broker did not take the message");
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "publish failed");
            false
        }
        Err(_) => {
            tracing::warn!(?timeout, "no publisher confirm in time");
            false
        }
    }
}

async fn make_durable(
    broker: &Broker,
    redis: &RedisStore,
    body: &[u8],
    cfg: &PublisherConfig,
) -> Result<Durability, PublishError> {
    if let Some(link) = broker.current() {
        if publish_confirmed(&link, broker.queue(), body, cfg.confirm_timeout).await {
            return Ok(Durability::Broker);
        }
        broker.invalidate();
    }
    match redis.append_fallback_durable(body, cfg.fallback).await {
        Ok(_) => Ok(Durability::Fallback),
        Err(StoreError::NotDurable(why)) => {
            tracing::error!(%why, "broker away and the fallback refused: answering 503");
            Err(PublishError::NotDurable)
        }
        Err(e) => {
            tracing::error!(error = ?e, "fallback stream refused the message too");
            Err(PublishError::Unavailable)
        }
    }
}
