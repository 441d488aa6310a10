//! No fallback 202 on a Redis that keeps nothing (issue 9): each test runs a redis-server of its
//! own on a free port, so it can kill -9 and restart it without touching the shared one.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use maskdraw::config::FallbackDurability;
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

pub use crate::common::faults::OwnRedis;
use crate::helpers::{reservation, spawn_app_with, Options, TestApp};

async fn ticket_ids(app: &TestApp) -> HashSet<String> {
    app.db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT ticket_id FROM tickets",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "ticket_id").unwrap())
        .collect()
}

/// Submits `body` until it gets 202 (the broker reconnects within the bound), accepting only
/// 503 `unavailable` meanwhile; returns the ticket id.
async fn reserve_until_accepted(app: &TestApp, body: &Value) -> String {
    let start = Instant::now();
    loop {
        let resp = app.reserve(body).await;
        let status = resp.status().as_u16();
        let json: Value = resp.json().await.unwrap();
        if status == 202 {
            return json["ticket_id"].as_str().unwrap().to_string();
        }
        assert_eq!(status, 503, "{json}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no 202 within 30 s after the broker came back: {json}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `/readyz` until `pred` holds for its body; returns the status and the body.
async fn readyz_until(app: &TestApp, pred: impl Fn(&Value) -> bool) -> (u16, Value) {
    let start = Instant::now();
    loop {
        let resp = app.admin_get("/readyz").await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        if pred(&body) {
            return (status, body);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "/readyz never matched: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reservations from `n` new people while the broker is away; each answer's status.
async fn statuses_while_cut(app: &TestApp, bodies: &[Value]) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    for body in bodies {
        let resp = app.reserve(body).await;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").is_some();
        let json: Value = resp.json().await.unwrap();
        if status == 503 {
            assert!(retry_after, "503 without Retry-After");
        }
        out.push((status, json));
    }
    out
}

#[tokio::test]
async fn with_a_redis_that_keeps_nothing_a_broker_outage_answers_503_and_no_202_is_ever_lost() {
    let mut redis = OwnRedis::start(false).await;
    let url = redis.url();
    let app = spawn_app_with(Options::default(), move |s| {
        s.redis_url = url;
        s.publish_timeout_ms = 300;
    })
    .await;
    let mut accepted: Vec<String> = Vec::new();

    // Told at start, before any outage: ready (the broker is up), but Redis keeps nothing.
    let (status, ready) = readyz_until(&app, |b| b["rabbitmq"] == true).await;
    assert_eq!(status, 200);
    assert_eq!(ready["redis_persistent"], false);
    assert_eq!(ready["fallback"], "refused");
    assert_eq!(app.metric("maskdraw_redis_persistent").await, 0.0);
    for _ in 0..3 {
        accepted.push(reserve_until_accepted(&app, &reservation()).await);
    }

    // Broker away: the fallback is refused, so 503, never 202.
    app.proxy.cut();
    let people: Vec<Value> = (0..5).map(|_| reservation()).collect();
    for (status, json) in statuses_while_cut(&app, &people).await {
        assert_eq!(status, 503, "a 202 from a Redis that keeps nothing: {json}");
        assert_eq!(json["code"], "unavailable");
    }
    assert!(
        app.metric("maskdraw_reservations_fallback_refused_total")
            .await
            >= 5.0
    );
    assert_eq!(
        app.metric("maskdraw_reservations_fallback_total").await,
        0.0
    );
    let (status, ready) = readyz_until(&app, |b| b["rabbitmq"] == false).await;
    assert_eq!(status, 503, "unready: no broker and no fallback: {ready}");
    assert_eq!(ready["fallback"], "refused");

    // Broker back, same Redis: each person's lock was released, so each gets in.
    app.proxy.restore();
    for body in &people {
        accepted.push(reserve_until_accepted(&app, body).await);
    }

    // A second outage, and this time Redis dies too: still nothing 202 that it could lose.
    app.proxy.cut();
    let more: Vec<Value> = (0..5).map(|_| reservation()).collect();
    for (status, json) in statuses_while_cut(&app, &more).await {
        assert_eq!(status, 503, "a 202 from a Redis that keeps nothing: {json}");
    }
    redis.kill_and_restart().await;
    app.proxy.restore();
    for body in &more {
        accepted.push(reserve_until_accepted(&app, body).await);
    }

    app.wait_for_tickets("registered", accepted.len() as i64, Duration::from_secs(60))
        .await;
    let stored = ticket_ids(&app).await;
    for t in &accepted {
        assert!(stored.contains(t), "ticket {t} was answered 202 and lost");
    }
    app.teardown().await;
}

#[tokio::test]
async fn with_a_redis_that_keeps_an_aof_the_fallback_202s_survive_a_kill_9_and_reach_postgresql() {
    let mut redis = OwnRedis::start(true).await;
    let url = redis.url();
    let app = spawn_app_with(Options::default(), move |s| {
        s.redis_url = url;
        s.publish_timeout_ms = 300;
    })
    .await;
    let (_, ready) = readyz_until(&app, |b| b["rabbitmq"] == true).await;
    assert_eq!(ready["redis_persistent"], true);
    assert_eq!(ready["fallback"], "available");
    assert_eq!(app.metric("maskdraw_redis_persistent").await, 1.0);
    let mut accepted = vec![reserve_until_accepted(&app, &reservation()).await];

    app.proxy.cut();
    let people: Vec<Value> = (0..10).map(|_| reservation()).collect();
    for (status, json) in statuses_while_cut(&app, &people).await {
        assert_eq!(status, 202, "{json}");
        accepted.push(json["ticket_id"].as_str().unwrap().to_string());
    }
    assert!(app.metric("maskdraw_reservations_fallback_total").await >= 10.0);
    let (status, ready) = readyz_until(&app, |b| b["rabbitmq"] == false).await;
    assert_eq!(status, 200, "degraded but ready: {ready}");
    assert_eq!(ready["degraded"], true);

    // kill -9: the AOF (fsynced on every write) brings the stream back.
    let store = RedisStore::connect(&redis.url(), &app.settings.key_prefix).unwrap();
    let waiting = store.fallback_len().await.unwrap();
    assert!(waiting >= 1, "nothing waits in the fallback stream");
    redis.kill_and_restart().await;
    assert_eq!(store.fallback_len().await.unwrap(), waiting);

    app.proxy.restore();
    app.wait_for_tickets("registered", accepted.len() as i64, Duration::from_secs(60))
        .await;
    let stored = ticket_ids(&app).await;
    for t in &accepted {
        assert!(stored.contains(t), "ticket {t} was answered 202 and lost");
    }
    app.teardown().await;
}

#[tokio::test]
async fn in_unsafe_mode_a_redis_that_keeps_nothing_loses_its_fallback_202s_on_a_restart() {
    // What the default prevents, shown once: the same outage with `unsafe`.
    let mut redis = OwnRedis::start(false).await;
    let url = redis.url();
    let app = spawn_app_with(Options::default(), move |s| {
        s.redis_url = url;
        s.publish_timeout_ms = 300;
        s.fallback_durability = FallbackDurability::Unsafe;
    })
    .await;
    let (_, ready) = readyz_until(&app, |b| b["rabbitmq"] == true).await;
    assert_eq!(ready["fallback"], "unsafe");

    app.proxy.cut();
    let people: Vec<Value> = (0..5).map(|_| reservation()).collect();
    let mut lost = Vec::new();
    for (status, json) in statuses_while_cut(&app, &people).await {
        assert_eq!(status, 202, "{json}");
        lost.push(json["ticket_id"].as_str().unwrap().to_string());
    }
    redis.kill_and_restart().await;
    app.proxy.restore();

    // One more person after the broker is back; once their ticket is in PostgreSQL and the
    // (new, empty) fallback stream is drained, nothing else can still arrive.
    let sentinel = reserve_until_accepted(&app, &reservation()).await;
    app.wait_for_tickets("registered", 1, Duration::from_secs(60))
        .await;
    let store = RedisStore::connect(&redis.url(), &app.settings.key_prefix).unwrap();
    assert_eq!(store.fallback_len().await.unwrap(), 0);
    let stored = ticket_ids(&app).await;
    assert!(stored.contains(&sentinel));
    for t in &lost {
        assert!(
            !stored.contains(t),
            "ticket {t} survived a Redis with no AOF"
        );
    }
    app.teardown().await;
}

#[tokio::test]
async fn in_replica_mode_the_fallback_answers_202_only_while_a_replica_confirms_the_entry() {
    let primary = OwnRedis::start(false).await;
    let url = primary.url();
    let app = spawn_app_with(Options::default(), move |s| {
        s.redis_url = url;
        s.publish_timeout_ms = 300;
        s.fallback_durability = FallbackDurability::Replica;
        s.fallback_wait_ms = 2_000;
    })
    .await;
    let (_, ready) = readyz_until(&app, |b| b["rabbitmq"] == true).await;
    assert_eq!(ready["fallback"], "refused");

    // No replica: WAIT reports 0, so 503, and the entry is taken back out of the stream.
    app.proxy.cut();
    let alone: Vec<Value> = (0..2).map(|_| reservation()).collect();
    for (status, json) in statuses_while_cut(&app, &alone).await {
        assert_eq!(status, 503, "{json}");
    }
    let store = RedisStore::connect(&primary.url(), &app.settings.key_prefix).unwrap();
    assert_eq!(store.fallback_len().await.unwrap(), 0);

    // With a replica attached and synced (the monitor sees it within seconds), the same
    // outage gets 202.
    let _replica = OwnRedis::start_with(false, Some(primary.port)).await;
    let (_, ready) = readyz_until(&app, |b| b["fallback"] == "available").await;
    assert_eq!(ready["redis_persistent"], true);
    let mut accepted = Vec::new();
    for (status, json) in statuses_while_cut(&app, &alone).await {
        assert_eq!(status, 202, "{json}");
        accepted.push(json["ticket_id"].as_str().unwrap().to_string());
    }
    app.proxy.restore();
    app.wait_for_tickets("registered", accepted.len() as i64, Duration::from_secs(60))
        .await;
    let stored = ticket_ids(&app).await;
    for t in &accepted {
        assert!(stored.contains(t), "ticket {t} was answered 202 and lost");
    }
    app.teardown().await;
}
