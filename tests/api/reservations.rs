use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{first_pharmacy, id_number, reservation, spawn_app, spawn_app_with, Options};

#[tokio::test]
async fn a_reservation_is_accepted_and_then_registered_in_postgres() {
    let app = spawn_app().await;
    let resp = app.reserve(&reservation()).await;
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    let ticket = body["ticket_id"].as_str().unwrap().to_string();
    assert_eq!(ticket.len(), 26);
    assert_eq!(body["status"], "accepted");
    assert!(body["valid_until"].as_str().unwrap().starts_with("20"));

    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    // The status API then reads `registered` (Redis updated by the persister, or PostgreSQL).
    let start = std::time::Instant::now();
    loop {
        let st: Value = app
            .get(&format!("/api/v1/reservations/{ticket}"))
            .await
            .json()
            .await
            .unwrap();
        if st["status"] == "registered" {
            assert_eq!(st["product_id"], "KN95");
            assert_eq!(st["draws"], json!([]));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "status stayed {st}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.teardown().await;
}

#[tokio::test]
async fn the_raw_identity_number_is_never_stored() {
    let app = spawn_app().await;
    let body = reservation();
    let id = body["id_number"].as_str().unwrap().to_string();
    assert_eq!(app.reserve(&body).await.status(), 202);
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    let row = sea_orm::ConnectionTrait::query_one(
        &app.db,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT row_to_json(t)::text AS j FROM tickets t",
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let j: String = row.try_get("", "j").unwrap();
    assert!(!j.contains(&id), "{j}");
    assert!(!j.contains("13800138000"), "{j}");
    assert!(
        j.contains(&format!("{}**********{}", &id[..4], &id[14..])),
        "{j}"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_same_ticket() {
    let app = spawn_app().await;
    let body = reservation();
    let first: Value = app
        .reserve_with_key(&body, "tap-123")
        .await
        .json()
        .await
        .unwrap();
    let second = app.reserve_with_key(&body, "tap-123").await;
    assert_eq!(second.status(), 202);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["ticket_id"], second["ticket_id"]);
    // Without the key the same person is simply refused: one active ticket per person.
    let third = app.reserve(&body).await;
    assert_eq!(third.status(), 409);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["code"], "already_reserved");
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    app.teardown().await;
}

#[tokio::test]
async fn a_retry_with_the_same_key_is_answered_as_before_while_redis_is_not_yet_known_warm() {
    // Never warmed: every reservation also asks PostgreSQL for the person's standing.
    let app = spawn_app_with(Options::default(), |s| s.auto_warm = false).await;
    let body = reservation();
    let first = app.reserve_with_key(&body, "tap-cold").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    let again = app.reserve_with_key(&body, "tap-cold").await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["ticket_id"], first["ticket_id"]);
    // Another key is another request: the database refuses a second ticket.
    let other = app.reserve_with_key(&body, "tap-other").await;
    assert_eq!(other.status(), 409);
    assert_eq!(
        other.json::<Value>().await.unwrap()["code"],
        "already_reserved"
    );
    app.teardown().await;
}

#[tokio::test]
async fn fifty_concurrent_submissions_by_one_person_get_exactly_one_202() {
    let app = spawn_app().await;
    let body = reservation();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, body) = (
            app.client.clone(),
            format!("{}/api/v1/reservations", app.address),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 409),
        "{statuses:?}"
    );
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    assert_eq!(app.count_tickets(None).await, 1);
    app.teardown().await;
}

#[tokio::test]
async fn bad_bodies_get_the_right_4xx_code_and_field() {
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |_| {},
    )
    .await;
    let good = reservation();
    let with = |field: &str, v: Value| {
        let mut b = good.clone();
        b[field] = v;
        b
    };
    let without = |field: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(field);
        b
    };
    let mut bad_check = good["id_number"].as_str().unwrap().to_string();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
        (
            "wrong check character",
            with("id_number", json!(bad_check)),
            "validation_failed",
            Some("id_number"),
        ),
        (
            "short id",
            with("id_number", json!("44010619900101")),
            "validation_failed",
            Some("id_number"),
        ),
        (
            "id as a number",
            with("id_number", json!(440106199001011234u64)),
            "validation_failed",
            Some("id_number"),
        ),
        (
            "missing id",
            without("id_number"),
            "validation_failed",
            Some("id_number"),
        ),
        (
            "landline",
            with("phone", json!("020-83838383")),
            "validation_failed",
            Some("phone"),
        ),
        (
            "empty name",
            with("name", json!("")),
            "validation_failed",
            Some("name"),
        ),
        (
            "long name",
            with("name", json!("名".repeat(31))),
            "validation_failed",
            Some("name"),
        ),
        (
            "unknown pharmacy",
            with("pharmacy_id", json!("NOPE-1")),
            "validation_failed",
            Some("pharmacy_id"),
        ),
        (
            "unknown product",
            with("product_id", json!("N100")),
            "validation_failed",
            Some("product_id"),
        ),
        (
            "flexible as text",
            with("flexible", json!("yes")),
            "validation_failed",
            Some("flexible"),
        ),
        ("an array", json!([1, 2]), "malformed_json", None),
    ];
    for (what, body, code, field) in cases {
        let resp = app.reserve(&body).await;
        assert_eq!(resp.status(), 400, "{what}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], code, "{what}: {err}");
        assert_eq!(err["field"].as_str(), field, "{what}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    // Raw bodies and headers that never become a reservation: (content type, body, header,
    // status, code).
    let url = format!("{}/api/v1/reservations", app.address);
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
    let key = Some(("Idempotency-Key", "no spaces allowed"));
    type Raw<'a> = (
        &'a str,
        String,
        Option<(&'a str, &'a str)>,
        u16,
        &'a str,
        Option<&'a str>,
    );
    let raw: Vec<Raw> = vec![
        (
            "application/json",
            "{\"id_number\": ".into(),
            None,
            400,
            "malformed_json",
            None,
        ),
        (
            "text/plain",
            good.to_string(),
            None,
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "application/json",
            huge,
            None,
            413,
            "payload_too_large",
            None,
        ),
        (
            "application/json",
            good.to_string(),
            key,
            400,
            "validation_failed",
            Some("Idempotency-Key"),
        ),
    ];
    for (content_type, body, header, status, code, field) in raw {
        let mut req = app
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{code}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], code);
        assert_eq!(err["field"].as_str(), field);
    }
    let ticket = app.get("/api/v1/reservations/not-a-ticket").await;
    assert_eq!(ticket.status(), 400);
    let unknown = app
        .get("/api/v1/reservations/01KARC38627GVHHC7H1R7AQYA9")
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "not_found");
    // Nothing of this reached the queue or the database.
    assert_eq!(app.count_tickets(None).await, 0);
    app.teardown().await;
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_to_retry_later() {
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |s| s.ip_rate_per_sec = 3,
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let resp = app.reserve(&json!({"id_number": id_number()})).await;
        if resp.status() == 429 {
            assert!(resp.headers().get("retry-after").is_some());
            codes.push(
                resp.json::<Value>().await.unwrap()["code"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    app.teardown().await;
}

#[tokio::test]
async fn load_is_shed_with_503_when_in_flight_requests_pass_the_bound() {
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |s| s.max_in_flight = 0,
    )
    .await;
    let resp = app.reserve(&reservation()).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "overloaded");
    app.teardown().await;
}

#[tokio::test]
async fn a_person_finds_their_tickets_by_id_and_phone_only() {
    let app = spawn_app().await;
    let body = reservation();
    let ticket: Value = app.reserve(&body).await.json().await.unwrap();
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    let found = app.lookup(&body["id_number"], "13800138000").await;
    assert_eq!(found["tickets"][0]["ticket_id"], ticket["ticket_id"]);
    assert_eq!(found["tickets"][0]["pharmacy_id"], first_pharmacy());
    let wrong = app.lookup(&body["id_number"], "13900139000").await;
    assert_eq!(wrong["tickets"], json!([]));
    app.teardown().await;
}
