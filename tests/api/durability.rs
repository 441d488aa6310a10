//! Never lose an accepted reservation: broker outages, persister crashes, poison messages.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use maskdraw::config::FallbackDurability;
use maskdraw::metrics::Metrics;
use maskdraw::queue::broker::{connect, declare_topology};
use maskdraw::queue::{dlq, Envelope, ReservationEvent};
use maskdraw::startup;
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

use crate::helpers::{reservation, spawn_app, spawn_app_with, Options, TestApp};

fn direct_amqp() -> String {
    format!("amqp://guest:guest@{}/%2f", crate::helpers::AMQP)
}

async fn ticket_ids(app: &TestApp) -> HashSet<String> {
    let rows = app
        .db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT ticket_id FROM tickets",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "ticket_id").unwrap())
        .collect()
}

async fn submit_many(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let resp = app.reserve(&reservation()).await;
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.unwrap();
        ids.push(body["ticket_id"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test]
async fn with_the_broker_unreachable_reservations_go_through_the_fallback_and_arrive_later() {
    // The shared Redis runs without AOF, where the default refuses the fallback; this test is
    // about the relay (fallback_durability.rs tests the refusal and a Redis with AOF).
    let app = spawn_app_with(Options::default(), |s| {
        s.fallback_durability = FallbackDurability::Unsafe;
    })
    .await;
    let before = submit_many(&app, 5).await;
    app.proxy.cut();
    // While the broker is away every 202 comes from the Redis fallback stream.
    let during = submit_many(&app, 20).await;
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    let fallback_line = metrics
        .lines()
        .find(|l| l.starts_with("maskdraw_reservations_fallback_total"))
        .unwrap()
        .to_string();
    let used: u64 = fallback_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(used >= 20, "{fallback_line}");
    assert!(
        redis.fallback_len().await.unwrap() >= 1,
        "nothing waits in the fallback stream"
    );
    let ready: Value = app.admin_get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["degraded"], true);

    app.proxy.restore();
    app.wait_for_tickets("registered", 25, Duration::from_secs(60))
        .await;
    let stored = ticket_ids(&app).await;
    for t in before.iter().chain(&during) {
        assert!(stored.contains(t), "ticket {t} was lost");
    }
    let start = Instant::now();
    while redis.fallback_len().await.unwrap() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the relay did not drain the fallback stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_persister_that_dies_after_commit_but_before_ack_leaves_each_ticket_once() {
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |_| {},
    )
    .await;
    let accepted = submit_many(&app, 30).await;

    // A persister that commits and then dies: it consumes, stores, and closes its
    // connection without acking, so the broker redelivers everything it held.
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    let p = startup::persister(&app.settings, app.db.clone(), redis.clone(), Metrics::new());
    let conn = connect(&direct_amqp()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            &app.settings.queue_name(),
            "doomed",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut held = Vec::new();
    let mut seen = 0;
    while seen < 30 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen += Envelope::parse(&d.data).unwrap().reservations.len();
        held.push(d);
    }
    let bodies: Vec<&[u8]> = held.iter().map(|d| d.data.as_slice()).collect();
    let outcome = p.handle_batch(&bodies).await.unwrap();
    assert_eq!(outcome.stored.inserted.len(), 30);
    conn.close(320, "killed").await.unwrap();
    drop(held);

    // The real persister takes the redelivered messages: nothing new, nothing twice.
    let (tx, rx) = tokio::sync::watch::channel(false);
    startup::spawn_persister(&app.settings, p.clone(), rx);
    let start = Instant::now();
    loop {
        let conn = connect(&direct_amqp()).await.unwrap();
        let depth = maskdraw::queue::broker::queue_depth(&conn, &app.settings.queue_name())
            .await
            .unwrap();
        let _ = conn.close(200, "probe").await;
        if depth == 0 && start.elapsed() > Duration::from_millis(500) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "redelivered messages were not consumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tx.send(true);
    assert_eq!(app.count_tickets(None).await, 30);
    assert_eq!(ticket_ids(&app).await, accepted.into_iter().collect());
    app.teardown().await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_a_replayed_good_one_is_persisted() {
    let app = spawn_app().await;
    let conn = connect(&direct_amqp()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    declare_topology(
        &conn,
        &app.settings.queue_name(),
        &app.settings.dead_queue_name(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publish = |queue: String, body: Vec<u8>| {
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                "",
                &queue,
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap()
        }
    };
    publish(
        app.settings.queue_name(),
        b"{\"v\":1,\"reservations\":[{\"ticket_id\":\"nope\"}]}".to_vec(),
    )
    .await;
    let uri = direct_amqp();
    let (q, dead) = (app.settings.queue_name(), app.settings.dead_queue_name());
    let start = Instant::now();
    let letters = loop {
        let letters = dlq::list(std::slice::from_ref(&uri), &q, &dead)
            .await
            .unwrap();
        if !letters.is_empty() {
            break letters;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the poison message never reached {dead}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].content.starts_with("unreadable"),
        "{:?}",
        letters[0]
    );
    // Listing does not consume.
    assert_eq!(
        dlq::list(std::slice::from_ref(&uri), &q, &dead)
            .await
            .unwrap()
            .len(),
        1
    );

    // A good message that was dead-lettered (say, by an older persister's bug) is replayed.
    let good = ReservationEvent {
        ticket_id: "01KARC38627GVHHC7H1R7AQYA9".into(),
        person_tag: "1807dfaf1f7e42734f56d48f05e1ddfb".into(),
        phone_tag: "2807dfaf1f7e42734f56d48f05e1ddfb".into(),
        masked_id: "4401**********123X".into(),
        pharmacy_id: crate::helpers::first_pharmacy(),
        product_id: "KN95".into(),
        flexible: false,
        accepted_at: chrono::Utc::now(),
        valid_until: chrono::Utc::now() + chrono::Duration::days(10),
    };
    publish(dead.clone(), Envelope::new(vec![good]).to_bytes()).await;
    let moved = dlq::replay(std::slice::from_ref(&uri), &q, &dead)
        .await
        .unwrap();
    assert_eq!(moved, 2);
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    assert!(ticket_ids(&app)
        .await
        .contains("01KARC38627GVHHC7H1R7AQYA9"));
    // The poison came straight back to the dead-letter queue; nothing else is there.
    let start = Instant::now();
    loop {
        let letters = dlq::list(std::slice::from_ref(&uri), &q, &dead)
            .await
            .unwrap();
        if letters.len() == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dead letters: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = conn.close(200, "done").await;
    app.teardown().await;
}

#[tokio::test]
async fn the_database_catches_a_duplicate_person_that_redis_missed() {
    let app = spawn_app().await;
    // Redis is known to be complete, so intake trusts its locks and does not ask PostgreSQL.
    app.wait_for_cache(true).await;
    let body = reservation();
    let first: Value = app.reserve(&body).await.json().await.unwrap();
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    // Redis loses the person's lock (a flush, a failover without AOF): intake lets them in again.
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    let mut conn = redis.connection().await.unwrap();
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("{}:*:active", app.settings.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let _: () = deadpool_redis::redis::cmd("DEL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let second: Value = app.reserve(&body).await.json().await.unwrap();
    assert_ne!(first["ticket_id"], second["ticket_id"]);
    app.wait_for_tickets("rejected", 1, Duration::from_secs(20))
        .await;
    let t = second["ticket_id"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let st: Value = app
            .get(&format!("/api/v1/reservations/{t}"))
            .await
            .json()
            .await
            .unwrap();
        if st["status"] == "rejected" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_persister_process_killed_mid_batch_loses_nothing_and_stores_each_ticket_once() {
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |_| {},
    )
    .await;
    // Enough reservations that a deliberately slow persister (one message at a time, one row
    // per INSERT) is still busy when it is killed.
    let mut accepted = Vec::new();
    for _ in 0..6 {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (client, url) = (
                app.client.clone(),
                format!("{}/api/v1/reservations", app.address),
            );
            tasks.push(tokio::spawn(async move {
                let resp = client.post(url).json(&reservation()).send().await.unwrap();
                let status = resp.status();
                let body = resp.json::<Value>().await.unwrap();
                assert_eq!(status, 202, "{body}");
                body["ticket_id"].as_str().unwrap().to_string()
            }));
        }
        for t in tasks {
            accepted.push(t.await.unwrap());
        }
    }
    let s = &app.settings;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_maskdraw"))
        .arg("persist")
        .env("MASKDRAW_DATABASE_URL", &s.database_url)
        .env("MASKDRAW_REDIS_URL", &s.redis_url)
        .env("MASKDRAW_AMQP_URL", direct_amqp())
        .env("MASKDRAW_KEY_PREFIX", &s.key_prefix)
        .env("MASKDRAW_QUEUE_PREFIX", &s.queue_prefix)
        .env("MASKDRAW_ENVIRONMENT", "development")
        .env("MASKDRAW_HMAC_SECRET", s.hmac_secret.expose())
        .env("MASKDRAW_TOKEN_SECRET", s.token_secret.expose())
        .env("MASKDRAW_STATIC_DIR", &s.static_dir)
        .env("MASKDRAW_PERSIST_PREFETCH", "1")
        .env("MASKDRAW_PERSIST_BATCH", "1")
        .env("MASKDRAW_PERSIST_CONSUMERS", "1")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start maskdraw persist");
    // Kill it once it has stored some but not all.
    let start = Instant::now();
    loop {
        let n = app.count_tickets(None).await;
        if n > 0 {
            assert!(n < 600, "the persister finished before it could be killed");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the persister process stored nothing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stored_at_kill = app.count_tickets(None).await;
    assert!(stored_at_kill < 600);

    // A new persister takes over: the unacked messages come back, nothing twice.
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    let p = startup::persister(&app.settings, app.db.clone(), redis, Metrics::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    startup::spawn_persister(&app.settings, p, rx);
    app.wait_for_tickets("registered", 600, Duration::from_secs(60))
        .await;
    let _ = tx.send(true);
    assert_eq!(app.count_tickets(None).await, 600);
    assert_eq!(ticket_ids(&app).await, accepted.into_iter().collect());
    app.teardown().await;
}

#[tokio::test]
async fn with_redis_cut_off_reservations_get_503_and_intake_recovers_when_it_returns() {
    // Redis through a proxy of its own, so its connections can be cut like the broker's.
    let redis_proxy = crate::helpers::TcpProxy::start("127.0.0.1:6379").await;
    let port = redis_proxy.port;
    let app = spawn_app_with(Options::default(), move |s| {
        s.redis_url = format!("redis://127.0.0.1:{port}/0");
    })
    .await;
    assert_eq!(app.reserve(&reservation()).await.status(), 202);

    redis_proxy.cut();
    let resp = app.reserve(&reservation()).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unavailable");
    assert_eq!(app.get("/readyz").await.status(), 503);

    // Back: the per-worker multiplexed connections reconnect by themselves.
    redis_proxy.restore();
    let start = Instant::now();
    loop {
        let status = app.reserve(&reservation()).await.status();
        if status == 202 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "intake did not recover after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    app.teardown().await;
}
