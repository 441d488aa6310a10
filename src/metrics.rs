//! Prometheus metrics, one registry per application so that tests in one process do not mix.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub accepted: IntCounter,
    pub published: IntCounter,
    pub published_messages: IntCounter,
    pub fallback: IntCounter,
    pub relayed: IntCounter,
    pub publish_latency: Histogram,
    pub queue_depth: IntGauge,
    pub dead_letters: IntGauge,
    pub fallback_depth: IntGauge,
    pub poison: IntCounter,
    pub persisted: IntCounter,
    pub rejected: IntCounter,
    pub persister_lag: prometheus::Gauge,
    pub shed: IntCounterVec,
    pub degraded: IntGauge,
    pub status_fallbacks: IntCounter,
    /// Statements those reads cost (several reads can share one: `TicketReads`).
    pub status_statements: IntCounter,
    /// Reservations whose person was looked up in PostgreSQL because Redis was not known warm.
    pub intake_database_checks: IntCounter,
    pub cache_complete: IntGauge,
    pub redis_persistent: IntGauge,
    pub fallback_refused: IntCounter,
    /// Phone codes asked for, by outcome: `sent`, `limited`, `failed` (the SMS gateway).
    pub phone_codes: IntCounterVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Registration fails only on a duplicate name, which the fixed list below rules out.
    let _ = r.register(Box::new(c.clone()));
    c
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new_custom(Some("maskdraw".into()), None).unwrap_or_default();
        let counter = |n: &str, h: &str| IntCounter::new(n, h).unwrap_or_else(|_| unreachable!());
        let gauge = |n: &str, h: &str| IntGauge::new(n, h).unwrap_or_else(|_| unreachable!());
        Self {
            http_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests by route and status"),
                    &["route", "status"],
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            accepted: reg(
                &r,
                counter("reservations_accepted_total", "reservations answered 202"),
            ),
            published: reg(
                &r,
                counter(
                    "reservations_published_total",
                    "reservations confirmed by the broker",
                ),
            ),
            published_messages: reg(
                &r,
                counter(
                    "messages_published_total",
                    "confirmed broker messages (batches)",
                ),
            ),
            fallback: reg(
                &r,
                counter(
                    "reservations_fallback_total",
                    "reservations made durable in the Redis fallback stream",
                ),
            ),
            relayed: reg(
                &r,
                counter(
                    "fallback_relayed_total",
                    "fallback messages relayed to the broker",
                ),
            ),
            publish_latency: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("publish_latency_seconds", "time from enqueue to durable")
                        .buckets(vec![
                            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                        ]),
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            queue_depth: reg(
                &r,
                gauge("queue_depth", "messages waiting in the reservations queue"),
            ),
            dead_letters: reg(
                &r,
                gauge("dead_letters", "messages in the dead-letter queue"),
            ),
            fallback_depth: reg(
                &r,
                gauge(
                    "fallback_depth",
                    "messages waiting in the Redis fallback stream",
                ),
            ),
            poison: reg(
                &r,
                counter(
                    "poison_messages_total",
                    "messages rejected to the dead-letter queue",
                ),
            ),
            persisted: reg(
                &r,
                counter("tickets_persisted_total", "tickets written to PostgreSQL"),
            ),
            rejected: reg(
                &r,
                counter(
                    "tickets_rejected_total",
                    "tickets refused by the database (duplicate person)",
                ),
            ),
            persister_lag: reg(
                &r,
                prometheus::Gauge::new("persister_lag_seconds", "acceptance to commit, last batch")
                    .unwrap_or_else(|_| unreachable!()),
            ),
            shed: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("shed_total", "requests refused by admission"),
                    &["reason"],
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            degraded: reg(
                &r,
                gauge(
                    "degraded",
                    "1 while the broker is unreachable and the fallback is in use",
                ),
            ),
            status_fallbacks: reg(
                &r,
                counter(
                    "status_database_reads_total",
                    "status reads answered from PostgreSQL (Redis did not hold the ticket)",
                ),
            ),
            status_statements: reg(
                &r,
                counter(
                    "status_database_statements_total",
                    "PostgreSQL statements run for status reads (gathered reads share one)",
                ),
            ),
            intake_database_checks: reg(
                &r,
                counter(
                    "intake_database_checks_total",
                    "reservations checked against PostgreSQL because Redis was not known to \
                     hold every live ticket",
                ),
            ),
            cache_complete: reg(
                &r,
                gauge(
                    "redis_cache_complete",
                    "1 while Redis holds every live ticket (warmed since it last lost its data)",
                ),
            ),
            redis_persistent: reg(
                &r,
                gauge(
                    "redis_persistent",
                    "1 while Redis keeps what the fallback writes (AOF on; in replica mode: enough replicas), as last checked",
                ),
            ),
            fallback_refused: reg(
                &r,
                counter(
                    "reservations_fallback_refused_total",
                    "reservations answered 503 because the fallback stream would not be durable",
                ),
            ),
            phone_codes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "phone_codes_total",
                        "phone codes asked for, by outcome (sent, limited, failed)",
                    ),
                    &["outcome"],
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
