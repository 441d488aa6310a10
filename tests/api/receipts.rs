//! Signed receipts on every 202 (issue 12 item 1, lottery/SPEC.md §16): the receipt verifies
//! under the served `intake.pub`, states the ticket, is the same on a retry, and `notary
//! receipt` finds the ticket sealed, or names its omission, against the published days.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use lottery::receipt::SignedReceipt;
use maskdraw::domain::{person_tag, IdNumber};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;

use crate::day::{district_pharmacies, Day};
use crate::helpers::{notary, reservation, spawn_app, TestApp};

async fn intake_key(app: &TestApp) -> (String, ed25519_dalek::VerifyingKey) {
    let resp = app.get("/snapshots/intake.pub").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    let key = lottery::sign::parse_public_key_file(text.as_bytes()).expect("64 hex and LF");
    (text, key)
}

/// A reservation's 202 body and its receipt, parsed.
async fn reserve(app: &TestApp, body: &Value, idem: &str) -> (Value, SignedReceipt) {
    let resp = app.reserve_with_key(body, idem).await;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{idem}: {v}");
    let text = v["receipt"].as_str().expect("the 202 carries a receipt");
    let signed = SignedReceipt::parse(text.as_bytes()).expect("a receipt file, exactly");
    (v, signed)
}

fn ms(rfc3339: &str) -> u64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
        .timestamp_millis() as u64
}

#[tokio::test]
async fn a_202_carries_a_receipt_that_verifies_under_the_served_intake_key_and_states_the_ticket() {
    let app = spawn_app().await;
    // Until Redis is known warm, the database's refusals come first (a retry would read as
    // "already reserved"): as a running server is.
    app.wait_for_cache(true).await;
    let (_, key) = intake_key(&app).await;
    // Several at once, so they share group-commit batches: each receipt verifies alone.
    let bodies: Vec<Value> = (0..12).map(|_| reservation()).collect();
    let app_ref = &app;
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| async move { reserve(app_ref, b, &format!("key-{i}")).await }),
    )
    .await;
    let mut batched = false;
    for ((v, signed), body) in answers.iter().zip(&bodies) {
        signed.verify(&key).expect("the receipt verifies");
        batched |= signed.size > 1;
        let r = &signed.receipt;
        assert_eq!(r.ticket_id.to_string(), v["ticket_id"].as_str().unwrap());
        let id = IdNumber::parse(body["id_number"].as_str().unwrap()).unwrap();
        assert_eq!(
            r.person_tag.to_hex(),
            person_tag(app.settings.hmac_secret.expose().as_bytes(), &id)
        );
        assert_eq!(
            r.pharmacy_id.to_string(),
            body["pharmacy_id"].as_str().unwrap()
        );
        assert_eq!(r.product_id.to_string(), "KN95");
        assert!(r.flexible);
        assert_eq!(r.cooldown_days, app.settings.cooldown_days);
        assert_eq!(r.valid_until_ms, ms(v["valid_until"].as_str().unwrap()));
        // The ULID's time is the acceptance time.
        assert_eq!(
            r.accepted_ms,
            ulid::Ulid::from_string(v["ticket_id"].as_str().unwrap())
                .unwrap()
                .timestamp_ms()
        );
        let accepted = DateTime::<Utc>::from_timestamp_millis(r.accepted_ms as i64).unwrap();
        assert_eq!(
            r.first_draw,
            maskdraw::receipts::first_draw(&app.settings, accepted)
                .unwrap()
                .to_string()
        );
        // Another key does not verify it, nor does an altered statement.
        let other = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert!(signed.verify(&other).is_err());
        let mut altered = signed.clone();
        altered.receipt.flexible = false;
        assert!(altered.verify(&key).is_err());
    }
    assert!(
        batched,
        "twelve reservations at once share at least one batch"
    );
    // A retry with the same idempotency key answers the very same receipt.
    let (again, _) = reserve(&app, &bodies[0], "key-0").await;
    assert_eq!(again["ticket_id"], answers[0].0["ticket_id"]);
    assert_eq!(again["receipt"], answers[0].0["receipt"]);
    app.teardown().await;
}

/// Writes `text` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_notary_receipt(receipt: &Path, intake: &Path, d: &Day) -> (bool, String) {
    let out = Command::new(notary())
        .arg("receipt")
        .arg(receipt)
        .arg("--key")
        .arg(intake)
        .arg("--snapshots")
        .arg(d.snapshots())
        .arg("--authority")
        .arg(d.ctx.settings.keys_dir.join("authority.pub"))
        .output()
        .expect("notary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn after_the_seal_and_draw_notary_receipt_finds_the_ticket_entered_and_names_an_omission() {
    let app = spawn_app().await;
    let (pub_text, _) = intake_key(&app).await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let mut kept = reservation();
    kept["pharmacy_id"] = ph[0].clone().into();
    let mut lost = reservation();
    lost["pharmacy_id"] = ph[0].clone().into();
    let (_, kept_receipt) = reserve(&app, &kept, "kept").await;
    let (lost_body, lost_receipt) = reserve(&app, &lost, "lost").await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    // The database loses the second ticket: the seal cannot have it.
    app.db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "DELETE FROM tickets WHERE ticket_id = '{}'",
                lost_body["ticket_id"].as_str().unwrap()
            ),
        ))
        .await
        .unwrap();
    // The first draw both receipts guarantee (accepted a moment apart: the same day, or the
    // second's the day after).
    let date: NaiveDate = kept_receipt.receipt.first_draw.parse().unwrap();
    assert!(lost_receipt.receipt.first_draw.as_str() <= kept_receipt.receipt.first_draw.as_str());
    d.stock(date, &[(&ph[0], "KN95", 5)]).await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();

    let files = d.root.join("citizen");
    let intake = write(&files, "intake.pub", pub_text.as_bytes());
    let kept_file = write(&files, "kept.txt", &kept_receipt.to_bytes());
    let lost_file = write(&files, "lost.txt", &lost_receipt.to_bytes());

    let (ok, said) = run_notary_receipt(&kept_file, &intake, &d);
    assert!(ok, "{said}");
    assert!(said.contains(&format!("{date} ENTERED")), "{said}");
    assert!(said.contains("WON"), "five packs, one entrant: {said}");
    assert!(said.contains("the receipt's promise is kept"), "{said}");

    let (ok, said) = run_notary_receipt(&lost_file, &intake, &d);
    assert!(!ok, "an omitted ticket must fail the check: {said}");
    assert!(said.contains(&format!("{date} OMITTED")), "{said}");
    assert!(said.contains("break the receipt's promise"), "{said}");

    // A receipt signed by another key is refused outright.
    let other = write(
        &files,
        "other.pub",
        lottery::sign::public_key_file(
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key(),
        )
        .as_bytes(),
    );
    let (ok, said) = run_notary_receipt(&kept_file, &other, &d);
    assert!(!ok && said.contains("signature"), "{said}");
    app.teardown().await;
}

#[tokio::test]
async fn a_kept_receipt_lives_as_long_as_the_idempotency_key_not_as_long_as_the_status() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let (first, _) = reserve(&app, &reservation(), "receipt-ttl").await;
    let ticket = first["ticket_id"].as_str().unwrap();
    let store = maskdraw::store::redis::RedisStore::connect(
        &app.settings.redis_endpoint(),
        &app.settings.key_prefix,
    )
    .unwrap();
    let mut conn = store.connection().await.unwrap();
    let prefix = &app.settings.key_prefix;
    let mut ttl = async |key: String| -> i64 {
        deadpool_redis::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    // The status is written with the receipt, after the batch is durable.
    let mut receipt_ttl = -2;
    for _ in 0..100 {
        receipt_ttl = ttl(format!("{prefix}:{{{ticket}}}:r")).await;
        if receipt_ttl > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status_ttl = ttl(format!("{prefix}:{{{ticket}}}:t")).await;
    let day = 86_400;
    assert!(
        receipt_ttl > day - 600 && receipt_ttl <= day,
        "the receipt is kept for the idempotency window (24 h), not {receipt_ttl} s"
    );
    assert!(
        status_ttl > 30 * day,
        "the status stays for validity + 30 days ({status_ttl} s)"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_retry_after_redis_lost_the_receipt_gets_the_same_statement_signed_again() {
    let app = spawn_app().await;
    app.wait_for_cache(true).await;
    let (_, key) = intake_key(&app).await;
    let body = reservation();
    let (first, signed) = reserve(&app, &body, "lost-receipt").await;
    let ticket = first["ticket_id"].as_str().unwrap();
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    // Redis loses the kept receipt and the ticket's status (the idempotency key survives).
    let store = maskdraw::store::redis::RedisStore::connect(
        &app.settings.redis_endpoint(),
        &app.settings.key_prefix,
    )
    .unwrap();
    let mut conn = store.connection().await.unwrap();
    let prefix = &app.settings.key_prefix;
    let _: i64 = deadpool_redis::redis::cmd("DEL")
        .arg(format!("{prefix}:{{{ticket}}}:r"))
        .arg(format!("{prefix}:{{{ticket}}}:t"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let (again, resigned) = reserve(&app, &body, "lost-receipt").await;
    assert_eq!(again["ticket_id"], first["ticket_id"]);
    resigned
        .verify(&key)
        .expect("the receipt signed again verifies");
    assert_eq!(resigned.receipt, signed.receipt, "the very same statement");
    assert_eq!((resigned.index, resigned.size), (0, 1), "a batch of one");
    app.teardown().await;
}
