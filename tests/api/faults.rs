//! The fault campaign's scenarios, short (issue 10, item 1): a few seconds of reservations from
//! new people at a low rate through real `maskdraw serve` and `maskdraw persist` processes, one
//! fault in the middle, the people without a final answer asked again; then every 202 must be a
//! row in PostgreSQL (checked ticket by ticket) and no person may hold two registered tickets.
//! The full campaign, with its timings, is `cargo bench --bench faults` (BENCHMARKS.md).

use std::time::Duration;

use crate::common::faults::{run_scenario, Fault, Outcome};

const RATE: u64 = 100;
const SECONDS: u64 = 8;

async fn short(fault: Fault) -> Outcome {
    let out = run_scenario(fault, RATE, SECONDS).await;
    println!("{}\n{}", Outcome::header(), out.row());
    assert!(out.accepted > 0, "nothing was accepted: {out:?}");
    assert_eq!(out.lost, 0, "202s missing from PostgreSQL: {out:?}");
    assert_eq!(
        out.duplicates, 0,
        "people with two registered tickets: {out:?}"
    );
    out
}

#[tokio::test]
async fn a_broker_cut_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    short(Fault::BrokerCut(Duration::from_secs(2))).await;
}

#[tokio::test]
async fn a_redis_cut_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    let out = short(Fault::RedisCut(Duration::from_secs(1))).await;
    // Without Redis no lock can be taken: the cut shows as answers other than 202.
    assert!(out.unavailable + out.other > 0, "{out:?}");
}

#[tokio::test]
async fn a_postgresql_cut_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    short(Fault::PostgresCut(Duration::from_secs(3))).await;
}

#[tokio::test]
async fn a_persister_killed_three_times_under_load_loses_no_202_and_stores_each_once() {
    short(Fault::PersisterKills {
        times: 3,
        gap: Duration::from_millis(800),
    })
    .await;
}

#[tokio::test]
async fn one_of_two_servers_killed_under_load_loses_no_202_and_gives_no_one_two_tickets() {
    short(Fault::ServeKill).await;
}

#[tokio::test]
async fn a_redis_with_aof_killed_and_restarted_under_load_loses_no_202() {
    short(Fault::RedisRestart).await;
}

#[tokio::test]
async fn a_rabbitmq_node_killed_and_restarted_under_load_loses_no_202() {
    short(Fault::BrokerRestart).await;
}

/// The intake's Redis connection after a cut of a few seconds: while Redis is unreachable each
/// command fails within the store's bound (the reconnection does not hold it), and soon after
/// Redis is reachable again commands succeed. (redis-rs' connection manager's default backoff
/// waited 60 to 120 s before its second attempt: a 5 s cut stalled the intake for a minute or
/// two; the connection is now reconnected by `store::redis::Hot`, at most every 100 ms.) The
/// bounds here are generous; the time to full rate is measured by the fault campaign.
#[tokio::test]
async fn the_intakes_redis_connection_fails_fast_during_a_cut_and_is_back_soon_after() {
    use crate::common::faults::TcpProxy;
    use std::time::Instant;
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let prefix = format!("md_cut_{}", uuid::Uuid::new_v4().simple());
    let store = maskdraw::store::redis::RedisStore::connect_with_timeout(
        &format!("redis://127.0.0.1:{}/0", proxy.port),
        &prefix,
        Duration::from_millis(500),
    )
    .unwrap()
    .with_own_connection();
    let ticket = "01JD0000000000000000000000";
    assert!(store.ticket_status(ticket).await.unwrap().is_none());

    proxy.cut();
    let cut = Instant::now();
    while cut.elapsed() < Duration::from_secs(4) {
        let asked = Instant::now();
        assert!(store.ticket_status(ticket).await.is_err(), "Redis is cut");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "a command during the cut waited {:?} (bound 500 ms)",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    let restored = Instant::now();
    loop {
        if store.ticket_status(ticket).await.is_ok() {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(20),
            "no command succeeded within 20 s of Redis being reachable again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("back {:?} after the cut ended", restored.elapsed());
}

/// A Redis cut that lost nothing must not send the intake to PostgreSQL: while Redis is
/// unreachable its warmth is unknown (not cold), and the first reservation after it is back
/// settles it with one `EXISTS` of the warm marker. (The monitor used to mark Redis cold on
/// any error, and then every reservation looked its person up in PostgreSQL until the
/// monitor's next look: at 5,000/s that queued thousands of requests on the database pool for
/// seconds after each Redis blip.) And when Redis comes back without its data, the first
/// reservation after it sees so and the database refuses a person who already holds a ticket.
#[tokio::test]
async fn after_a_redis_cut_the_intake_asks_redis_whether_it_kept_its_data_not_postgresql() {
    use crate::common::faults::TcpProxy;
    use crate::helpers::{reservation, spawn_app_with, Options};
    use std::time::Instant;

    let redis = TcpProxy::start("127.0.0.1:6379").await;
    let port = redis.port;
    let app = spawn_app_with(Options::default(), |s| {
        s.redis_url = format!("redis://127.0.0.1:{port}/0");
        s.redis_timeout_ms = 300;
    })
    .await;
    app.wait_for_cache(true).await;
    let checks = "maskdraw_intake_database_checks_total";
    let reserve_until_answered = |body: serde_json::Value| {
        let app = &app;
        async move {
            let start = Instant::now();
            loop {
                let resp = app.reserve(&body).await;
                let status = resp.status().as_u16();
                if status != 503 {
                    return (status, resp.json::<serde_json::Value>().await.unwrap());
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "Redis did not come back within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let holder = reservation();
    let (status, _) = reserve_until_answered(holder.clone()).await;
    assert_eq!(status, 202);
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;

    // 1. A cut that loses nothing.
    let before = app.metric(checks).await;
    redis.cut();
    app.wait_for_cache(false).await;
    assert_eq!(
        app.reserve(&reservation()).await.status(),
        503,
        "Redis is cut"
    );
    redis.restore();
    for _ in 0..10 {
        let (status, body) = reserve_until_answered(reservation()).await;
        assert_eq!(status, 202, "{body}");
    }
    assert_eq!(
        app.metric(checks).await - before,
        0.0,
        "no reservation went to PostgreSQL: Redis kept its data"
    );
    app.wait_for_cache(true).await;

    // 2. Redis comes back without its data (as after a restart without persistence).
    redis.cut();
    app.wait_for_cache(false).await;
    let store = maskdraw::store::redis::RedisStore::connect(
        "redis://127.0.0.1:6379/0",
        &app.settings.key_prefix,
    )
    .unwrap();
    store.delete_all().await.unwrap();
    redis.restore();
    // Refused by the database, or by the lock a warm (started by the monitor) put back.
    let (status, body) = reserve_until_answered(holder).await;
    assert_eq!(status, 409, "the person already holds a ticket: {body}");
    assert_eq!(body["code"], "already_reserved", "{body}");
    app.teardown().await;
}

/// While Redis is cold every reservation is checked in PostgreSQL; when those checks cannot
/// keep up (here: the tickets table is locked), a few wait on the database and the rest are
/// shed with 503 `overloaded` and `Retry-After`, instead of all queueing on the pool with their
/// in-flight slots held.
#[tokio::test]
async fn when_the_database_checks_of_a_cold_redis_cannot_keep_up_the_excess_is_shed() {
    use crate::helpers::{reservation, spawn_app_with, Options};
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let app = spawn_app_with(Options::default(), |s| {
        s.auto_warm = false;
        s.db_timeout_ms = 2_000;
        // No queue: past the 8 checks in flight, a reservation is shed at once.
        s.cold_check_queue = 0;
    })
    .await;
    app.wait_for_cache(false).await;
    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let answers = futures_util::future::join_all((0..40).map(|_| {
        let app = &app;
        async move {
            let resp = app.reserve(&reservation()).await;
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").is_some();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, retry_after, body)
        }
    }))
    .await;
    lock.rollback().await.unwrap();
    let overloaded = answers
        .iter()
        .filter(|(status, _, body)| *status == 503 && body["code"] == "overloaded")
        .count();
    for (status, retry_after, body) in &answers {
        assert_eq!(*status, 503, "the database is locked: {body}");
        assert!(retry_after, "503 without Retry-After: {body}");
    }
    assert!(
        overloaded >= 40 - 8,
        "at most the 8 checks in flight wait on the database; the rest are shed: {answers:?}"
    );
    let shed = app
        .metric("maskdraw_shed_total{reason=\"database_checks\"}")
        .await;
    assert!(shed >= overloaded as f64, "{shed} shed counted");
    // Once the database answers again, a reservation goes through the check.
    let resp = app.reserve(&reservation()).await;
    assert_eq!(resp.status(), 202);
    app.teardown().await;
}
