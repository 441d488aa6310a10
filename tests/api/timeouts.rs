//! No hangs: a stalled Redis or PostgreSQL, or a client trickling its body, gets an answer
//! within the configured bounds (`redis_timeout_ms`, `db_timeout_ms`, `body_timeout_ms`).
//! Each request is itself bounded by the test, so that the old behaviour (waiting for ever)
//! fails the test instead of hanging it.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{reservation, spawn_app_with, Options, TcpProxy};

/// Runs `call`, which must finish within `limit`.
async fn within<T>(limit: Duration, call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?}: a hang"));
    (out, start.elapsed())
}

#[tokio::test]
async fn a_stalled_redis_gives_503_within_its_bound_not_a_hang() {
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let port = proxy.port;
    let app = spawn_app_with(Options::default(), |s| {
        s.redis_url = format!("redis://127.0.0.1:{port}/0");
        s.redis_timeout_ms = 1_000;
    })
    .await;
    assert_eq!(app.reserve(&reservation()).await.status(), 202);
    // Redis takes the commands and never answers.
    proxy.stall();
    let (resp, took) = within(Duration::from_secs(10), app.reserve(&reservation())).await;
    assert_eq!(resp.status(), 503, "after {took:?}");
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unavailable");
    proxy.unstall();
    app.teardown().await;
}

#[tokio::test]
async fn a_stalled_postgres_gives_503_within_its_bound_not_a_hang() {
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let port = proxy.port;
    let app = spawn_app_with(Options::default(), |s| {
        s.database_url = s.database_url.replace(":5432/", &format!(":{port}/"));
        s.db_timeout_ms = 1_000;
    })
    .await;
    let body = reservation();
    let lookup = || {
        app.client
            .post(format!("{}/api/v1/reservations/lookup", app.address))
            .json(&serde_json::json!({"id_number": body["id_number"], "phone": "13800138000"}))
            .send()
    };
    assert_eq!(lookup().await.unwrap().status(), 200);
    proxy.stall();
    let (resp, took) = within(Duration::from_secs(10), lookup()).await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 503, "after {took:?}");
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unavailable");
    proxy.unstall();
    app.teardown().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_refused_with_408_when_its_time_is_up() {
    let app = spawn_app_with(Options::default(), |s| s.body_timeout_ms = 500).await;
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/reservations HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 200\r\n\r\n{{\"id_number\":"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    // …and nothing more.
    let (answer, _) = within(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 4096];
        let n = sock.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    app.teardown().await;
}
