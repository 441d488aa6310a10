//! Two of every process (issue 10, item 2): two `maskdraw serve` and two `maskdraw persist`
//! processes (the real binary) on the same database, Redis key prefix and queues.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::common::faults::{pharmacies, reservation_body, Stack, StackOptions};
use crate::common::load;

/// Sends `body` to `server`; the status and the ticket id of a 202.
async fn reserve(
    client: &reqwest::Client,
    server: std::net::SocketAddr,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = client
        .post(format!("http://{server}/api/v1/reservations"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("an answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn with_two_servers_and_two_persisters_each_person_gets_one_ticket_and_every_202_is_stored_once(
) {
    // Persisters that take one message at a time, so a kill finds one at work.
    let slow = [
        ("MASKDRAW_PERSIST_PREFETCH", "1"),
        ("MASKDRAW_PERSIST_BATCH", "1"),
        ("MASKDRAW_PERSIST_CONSUMERS", "1"),
    ];
    let mut stack = Stack::start(StackOptions {
        serves: 2,
        persisters: 2,
        env: slow
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..StackOptions::default()
    })
    .await;
    let servers = stack.addrs();
    assert_eq!(servers.len(), 2);
    let (one, two) = (servers[0], servers[1]);
    let catalog = pharmacies();
    let client = reqwest::Client::new();
    let mut tickets: Vec<String> = Vec::new();

    // The same person on both servers at the same instant, for 200 people at once: exactly one
    // of each pair is accepted, the other is told the person already holds (or is making) one.
    const PAIRS: u64 = 200;
    let pairs = (0..PAIRS).map(|i| {
        let (client, body) = (client.clone(), reservation_body(i, &catalog));
        async move {
            tokio::join!(
                reserve(&client, one, body.clone()),
                reserve(&client, two, body)
            )
        }
    });
    for (i, (a, b)) in futures_util::future::join_all(pairs)
        .await
        .into_iter()
        .enumerate()
    {
        let accepted: Vec<&Value> = [&a, &b]
            .iter()
            .filter(|(s, _)| *s == 202)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(accepted.len(), 1, "person {i}: {a:?} and {b:?}");
        let refused = if a.0 == 202 { &b } else { &a };
        assert_eq!(refused.0, 409, "person {i}: {refused:?}");
        assert!(
            refused.1["code"] == "already_reserved" || refused.1["code"] == "request_in_progress",
            "person {i}: {refused:?}"
        );
        tickets.push(accepted[0]["ticket_id"].as_str().expect("id").to_string());
    }

    // New people through both servers for six seconds; a persister SIGKILLed in the middle
    // while the other goes on.
    const FIRST: u64 = 1_000;
    let load = load::open_model_on(
        &servers,
        64,
        600,
        100,
        |i| {
            load::post_json(
                one,
                "/api/v1/reservations",
                &reservation_body(FIRST + i, &catalog),
            )
        },
        &[202],
        |_, body| {
            serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["ticket_id"].as_str().map(str::to_string))
        },
    );
    let kill = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stack.kill_persister(0);
    };
    let (run, ()) = tokio::join!(load, kill);
    assert_eq!(run.count(&[202]), 600, "{}", run.summary());
    tickets.extend(run.kept.iter().cloned());
    assert!(stack.persisters[0].is_none() && stack.persisters[1].is_some());

    // Every 202 stored, once; one registered ticket per person.
    let lost = stack
        .settle(&tickets, Duration::from_secs(2), Duration::from_secs(120))
        .await;
    assert_eq!(lost, 0, "202s missing from PostgreSQL");
    assert_eq!(stack.count_tickets().await, tickets.len() as i64);
    assert_eq!(stack.duplicates().await, 0);
    let people: HashMap<String, i64> = stack
        .db
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT person_tag, count(*) AS n FROM tickets WHERE status = 'registered' \
             GROUP BY person_tag",
        ))
        .await
        .expect("query")
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "person_tag").expect("tag"),
                r.try_get::<i64>("", "n").expect("n"),
            )
        })
        .collect();
    assert_eq!(people.len() as u64, PAIRS + 600);
    assert!(people.values().all(|&n| n == 1));
    stack.teardown().await;
}
