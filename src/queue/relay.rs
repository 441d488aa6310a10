//! Moves the Redis fallback stream into RabbitMQ once the broker is back: publish with a
//! confirm, then delete the entry. A crash between the two publishes an entry twice, which the
//! persister's idempotent insert absorbs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::broker::Broker;
use super::publisher::publish_confirmed;
use crate::metrics::Metrics;
use crate::store::redis::RedisStore;

/// One pass: relays up to `count` entries. Returns how many were relayed.
pub async fn relay_once(
    broker: &Broker,
    redis: &RedisStore,
    count: usize,
    timeout: Duration,
) -> usize {
    let Some(link) = broker.current() else {
        return 0;
    };
    let entries = match redis.read_fallback(count).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = ?e, "reading the fallback stream");
            return 0;
        }
    };
    let mut done = Vec::new();
    for (id, body) in entries {
        if !publish_confirmed(&link, broker.queue(), &body, timeout).await {
            broker.invalidate();
            break;
        }
        done.push(id);
    }
    if let Err(e) = redis.delete_fallback(&done).await {
        tracing::warn!(error = ?e, "deleting relayed entries; they will be relayed again");
    }
    done.len()
}

/// Runs until `shutdown`: drains whenever the broker is up, and keeps the fallback depth gauge.
pub fn spawn(
    broker: Arc<Broker>,
    redis: RedisStore,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let n = relay_once(&broker, &redis, 256, Duration::from_secs(5)).await;
            metrics.relayed.inc_by(n as u64);
            if let Ok(depth) = redis.fallback_len().await {
                metrics.fallback_depth.set(depth as i64);
            }
            if n == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    })
}
