//! Poison never wedges the persister: a message whose fields break the domain's rules, or that
//! the database keeps refusing, goes to `reservations.dead`, and the good messages beside it
//! are stored. The reservations queue dead-letters at least once.

use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::BasicProperties;
use maskdraw::queue::broker::connect;
use maskdraw::queue::{dlq, Envelope, ReservationEvent};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::helpers::{first_pharmacy, spawn_app, TestApp};

fn direct_amqp() -> String {
    format!("amqp://guest:guest@{}/%2f", crate::helpers::AMQP)
}

fn event(pharmacy: &str) -> ReservationEvent {
    let now = chrono::Utc::now();
    ReservationEvent {
        ticket_id: maskdraw::domain::TicketId::generate(now.timestamp_millis() as u64).to_string(),
        person_tag: format!("{:032x}", rand::random::<u128>()),
        phone_tag: format!("{:032x}", rand::random::<u128>()),
        masked_id: "4401**********123X".into(),
        pharmacy_id: pharmacy.into(),
        product_id: "KN95".into(),
        flexible: false,
        accepted_at: now,
        valid_until: now + chrono::Duration::days(10),
    }
}

/// Publishes the bodies to the app's queue, confirmed, back to back (so that the persister
/// usually takes them in one batch).
async fn publish(app: &TestApp, bodies: &[Vec<u8>]) {
    let conn = connect(&direct_amqp()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::new();
    for body in bodies {
        confirms.push(
            ch.basic_publish(
                "",
                &app.settings.queue_name(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        c.await.unwrap();
    }
    let _ = conn.close(200, "done").await;
}

async fn wait_for_dead_letters(app: &TestApp, n: usize) -> Vec<dlq::DeadLetter> {
    let (q, dead) = (app.settings.queue_name(), app.settings.dead_queue_name());
    let start = Instant::now();
    loop {
        let letters = dlq::list(&[direct_amqp()], &q, &dead).await.unwrap();
        if letters.len() >= n {
            assert_eq!(letters.len(), n, "{letters:?}");
            return letters;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "only {} dead letters",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_nul_byte_in_a_field_is_dead_lettered_and_the_good_messages_beside_it_are_stored() {
    let app = spawn_app().await;
    let ph = first_pharmacy();
    let good = event(&ph);
    let mut bad = event(&ph);
    bad.masked_id = "4401**********12\0X".into();
    let later = event(&ph);
    publish(
        &app,
        &[
            Envelope::new(vec![good.clone()]).to_bytes(),
            Envelope::new(vec![bad]).to_bytes(),
            Envelope::new(vec![later.clone()]).to_bytes(),
        ],
    )
    .await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    let letters = wait_for_dead_letters(&app, 1).await;
    assert!(letters[0].content.contains("masked_id"), "{letters:?}");
    app.teardown().await;
}

#[tokio::test]
async fn a_message_the_database_keeps_refusing_goes_to_the_dead_letter_queue_alone() {
    let app = spawn_app().await;
    // A rule of this database that the message breaks and no parser knows of: the database
    // refuses the same row every time (a check violation, SQLSTATE 23514).
    app.db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            "ALTER TABLE tickets ADD CONSTRAINT test_refuses CHECK (product_id <> 'PLAIN')",
        ))
        .await
        .unwrap();
    let ph = first_pharmacy();
    let mut refused = event(&ph);
    refused.product_id = "PLAIN".into();
    let (a, b, c) = (event(&ph), event(&ph), event(&ph));
    publish(
        &app,
        &[
            Envelope::new(vec![a, b]).to_bytes(),
            Envelope::new(vec![refused]).to_bytes(),
            Envelope::new(vec![c]).to_bytes(),
        ],
    )
    .await;
    app.wait_for_tickets("registered", 3, Duration::from_secs(30))
        .await;
    let letters = wait_for_dead_letters(&app, 1).await;
    assert_eq!(letters[0].content, "1 reservation(s)", "{letters:?}");
    app.teardown().await;
}

#[tokio::test]
async fn the_reservations_queue_dead_letters_at_least_once_and_limits_redeliveries() {
    let app = spawn_app().await;
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "arguments",
        ])
        .output()
        .expect("rabbitmqctl");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(app.settings.queue_name().as_str()))
        .unwrap_or_else(|| panic!("no {} in {text}", app.settings.queue_name()));
    for want in [
        r#"{"x-dead-letter-strategy","at-least-once"}"#,
        r#"{"x-overflow","reject-publish"}"#,
        r#"{"x-delivery-limit",20}"#,
        r#"{"x-queue-type","quorum"}"#,
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }
    app.teardown().await;
}
