//! The person's lock when things go wrong: a confirm lost on the way, a request that died
//! holding the lock, servers whose clocks disagree, a ticket that ran out before the next seal.
//! Each ends with the person holding one registered ticket, the one they were given.

use std::time::{Duration, Instant};

use maskdraw::domain::{person_tag, IdNumber, TicketId};
use maskdraw::queue::ReservationEvent;
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

use crate::helpers::{reservation, spawn_app, spawn_app_with, Options, TestApp};

fn redis(app: &TestApp) -> RedisStore {
    RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap()
}

fn tag_of(app: &TestApp, body: &Value) -> String {
    let id = IdNumber::parse(body["id_number"].as_str().unwrap()).unwrap();
    person_tag(app.settings.hmac_secret.expose().as_bytes(), &id)
}

async fn cmd<T: deadpool_redis::redis::FromRedisValue>(r: &RedisStore, args: &[&str]) -> T {
    let mut conn = r.connection().await.unwrap();
    let mut c = deadpool_redis::redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query_async(&mut conn).await.unwrap()
}

/// Redis's own clock, in seconds.
async fn redis_now(r: &RedisStore) -> i64 {
    let t: Vec<String> = cmd(r, &["TIME"]).await;
    t[0].parse().unwrap()
}

/// Leaves a lock for a new ticket as a request would while publishing it: `state` `p` since
/// `since`, the reservation kept beside it, and the idempotency key `key` naming it.
async fn leave_lock(app: &TestApp, body: &Value, since: i64, key: Option<&str>) -> String {
    let r = redis(app);
    let tag = tag_of(app, body);
    let now = chrono::Utc::now() - chrono::Duration::seconds(60);
    let ticket = TicketId::generate(now.timestamp_millis() as u64).to_string();
    let event = ReservationEvent {
        ticket_id: ticket.clone(),
        person_tag: tag.clone(),
        phone_tag: "0".repeat(32),
        masked_id: "4401**********123X".into(),
        pharmacy_id: body["pharmacy_id"].as_str().unwrap().into(),
        product_id: "KN95".into(),
        flexible: false,
        accepted_at: now,
        valid_until: now + chrono::Duration::days(10),
    };
    let prefix = &app.settings.key_prefix;
    let lock = format!("{ticket}|p|{since}");
    let _: () = cmd(&r, &["SET", &format!("{prefix}:{{{tag}}}:active"), &lock]).await;
    let bytes = String::from_utf8(event.to_bytes()).unwrap();
    let _: () = cmd(&r, &["SET", &format!("{prefix}:{{{tag}}}:pending"), &bytes]).await;
    if let Some(k) = key {
        let _: () = cmd(
            &r,
            &["SET", &format!("{prefix}:{{{tag}}}:idem:{k}"), &ticket],
        )
        .await;
    }
    ticket
}

async fn tickets_of(app: &TestApp, body: &Value) -> Vec<(String, String)> {
    let rows = app
        .db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT ticket_id, status FROM tickets WHERE person_tag = '{}' ORDER BY ticket_id",
                tag_of(app, body)
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "ticket_id").unwrap(),
                r.try_get::<String>("", "status").unwrap(),
            )
        })
        .collect()
}

/// Polls until the person's tickets in PostgreSQL are `want`.
async fn wait_for_person(app: &TestApp, body: &Value, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect();
    let start = Instant::now();
    loop {
        let have = tickets_of(app, body).await;
        if have == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the person's tickets are {have:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes the Redis fallback stream unusable: a key of the wrong type in its place.
async fn break_fallback(app: &TestApp) {
    let r = redis(app);
    let _: () = cmd(&r, &["SET", &r.fallback_stream(), "not a stream"]).await;
}

#[tokio::test]
async fn after_a_lost_confirm_with_no_fallback_a_retry_ends_with_one_ticket_the_one_it_was_given() {
    let app = spawn_app_with(Options::default(), |s| s.publish_timeout_ms = 500).await;
    app.wait_for_cache(true).await;
    break_fallback(&app).await;
    let body = reservation();
    // The broker takes the message, but its confirm never comes back in time.
    app.proxy.stall();
    let first = app.reserve(&body).await;
    assert_eq!(first.status(), 503);
    app.proxy.unstall();
    // The message arrives after all and is stored.
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    // The person retries (without the page's key, as a second tap would) until the broker
    // link is back.
    let start = Instant::now();
    let given = loop {
        let r = app.reserve(&body).await;
        if r.status() == 202 {
            break r.json::<Value>().await.unwrap()["ticket_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_for_person(&app, &body, &[(&given, "registered")]).await;
    assert_eq!(app.count_tickets(Some("rejected")).await, 0);
    app.teardown().await;
}

#[tokio::test]
async fn with_neither_broker_nor_fallback_the_answer_is_503_and_the_retry_sends_the_same_ticket() {
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |s| s.publish_timeout_ms = 300,
    )
    .await;
    break_fallback(&app).await;
    app.proxy.cut();
    let body = reservation();
    let before = chrono::Utc::now().timestamp_millis() as u64;
    let resp = app.reserve(&body).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unavailable");
    let after = chrono::Utc::now().timestamp_millis() as u64;
    // Once the broker is back the person gets in, with the ticket of the first attempt (which
    // might have reached the broker): its id was made during that attempt.
    app.proxy.restore();
    let start = Instant::now();
    let ticket = loop {
        let r = app.reserve(&body).await;
        if r.status() == 202 {
            break r.json::<Value>().await.unwrap()["ticket_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", r.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let made = TicketId::parse(&ticket).unwrap().timestamp_ms();
    assert!(
        (before..=after).contains(&made),
        "{made} not in {before}..={after}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_lock_left_by_a_request_that_died_is_taken_over_with_its_own_ticket_once_stale() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let r = redis(&app);
    // With the page's idempotency key: the same ticket, not `request_in_progress` for a day.
    let body = reservation();
    let ticket = leave_lock(&app, &body, redis_now(&r).await - 100, Some("page-key-1")).await;
    let resp = app.reserve_with_key(&body, "page-key-1").await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["ticket_id"],
        ticket.as_str()
    );
    wait_for_person(&app, &body, &[(&ticket, "registered")]).await;

    // Without a key (a second tap): the same.
    let body = reservation();
    let ticket = leave_lock(&app, &body, redis_now(&r).await - 100, None).await;
    let resp = app.reserve(&body).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["ticket_id"],
        ticket.as_str()
    );
    wait_for_person(&app, &body, &[(&ticket, "registered")]).await;
    assert_eq!(app.count_tickets(Some("rejected")).await, 0);
    app.teardown().await;
}

#[tokio::test]
async fn a_lock_whose_confirm_was_never_written_is_taken_over_without_a_second_ticket() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let r = redis(&app);
    // The ticket reached PostgreSQL, but the server died before marking the lock durable.
    let body = reservation();
    let first: Value = app.reserve(&body).await.json().await.unwrap();
    let ticket = first["ticket_id"].as_str().unwrap().to_string();
    wait_for_person(&app, &body, &[(&ticket, "registered")]).await;
    let tag = tag_of(&app, &body);
    let prefix = &app.settings.key_prefix;
    let event = ReservationEvent {
        ticket_id: ticket.clone(),
        person_tag: tag.clone(),
        phone_tag: "0".repeat(32),
        masked_id: "4401**********123X".into(),
        pharmacy_id: body["pharmacy_id"].as_str().unwrap().into(),
        product_id: "KN95".into(),
        flexible: true,
        accepted_at: chrono::Utc::now(),
        valid_until: chrono::Utc::now() + chrono::Duration::days(10),
    };
    let lock = format!("{ticket}|p|{}", redis_now(&r).await - 100);
    let _: () = cmd(&r, &["SET", &format!("{prefix}:{{{tag}}}:active"), &lock]).await;
    let bytes = String::from_utf8(event.to_bytes()).unwrap();
    let _: () = cmd(&r, &["SET", &format!("{prefix}:{{{tag}}}:pending"), &bytes]).await;
    let again: Value = app.reserve(&body).await.json().await.unwrap();
    assert_eq!(again["ticket_id"], ticket.as_str(), "{again}");
    // Delivered twice, stored once; nothing rejected.
    wait_for_person(&app, &body, &[(&ticket, "registered")]).await;
    assert_eq!(app.count_tickets(Some("rejected")).await, 0);
    app.teardown().await;
}

#[tokio::test]
async fn a_server_whose_clock_runs_ahead_does_not_take_over_a_fresh_lock() {
    // This server's clock is an hour ahead of Redis's.
    let app = spawn_app_with(Options::default(), |s| {
        s.simulated_clock_offset_secs = 3600;
    })
    .await;
    let r = redis(&app);
    let body = reservation();
    leave_lock(&app, &body, redis_now(&r).await, None).await;
    let resp = app.reserve(&body).await;
    assert_eq!(resp.status(), 409);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "request_in_progress"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_person_whose_ticket_ran_out_before_the_next_seal_reserves_again_and_holds_one_ticket() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let body = reservation();
    let first: Value = app.reserve(&body).await.json().await.unwrap();
    let old = first["ticket_id"].as_str().unwrap().to_string();
    wait_for_person(&app, &body, &[(&old, "registered")]).await;
    // Its validity ended an hour ago; no seal has run since. The lock ended with it.
    app.db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "UPDATE tickets SET accepted_at = now() - interval '10 days 1 hour', \
                 valid_until = now() - interval '1 hour' WHERE ticket_id = '{old}'"
            ),
        ))
        .await
        .unwrap();
    let r = redis(&app);
    let tag = tag_of(&app, &body);
    let _: () = cmd(
        &r,
        &[
            "DEL",
            &format!("{}:{{{tag}}}:active", app.settings.key_prefix),
        ],
    )
    .await;
    let second: Value = app.reserve(&body).await.json().await.unwrap();
    let new = second["ticket_id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    wait_for_person(&app, &body, &[(&old, "expired"), (&new, "registered")]).await;
    let st: Value = app
        .get(&format!("/api/v1/reservations/{old}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "expired", "{st}");
    app.teardown().await;
}
