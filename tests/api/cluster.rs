//! The whole many-machine topology on this machine (issue 11 items 2 and 3): scripts/cluster.sh
//! up with a Redis Cluster of 3 masters and 3 replicas, a 3-node RabbitMQ cluster, nginx in
//! front of 2 × serve, and 2 × persist, the apps on every node of both clusters. Reservations
//! go through nginx while a broker node is SIGKILLed; the same person goes to both serves at
//! the same instant.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sea_orm::Database;
use serde_json::Value;

use crate::cluster_infra::Cluster;
use crate::helpers::{reservation, PG_ADMIN};
use crate::redis_cluster::registered_by_person;

/// The apps' database, dropped when the test ends however it ends.
struct AppDb(String);

impl Drop for AppDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                "-X",
                "-w",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
            ])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

async fn reserve(client: &reqwest::Client, base: &str, body: &Value) -> (u16, Value) {
    match client
        .post(format!("{base}/api/v1/reservations"))
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or_default())
        }
        // nginx answers every request; a transport error is counted as one of "the others".
        Err(_) => (0, Value::Null),
    }
}

#[tokio::test]
async fn through_nginx_two_serves_and_two_persisters_lose_nothing_when_a_broker_node_is_killed() {
    let db_name = format!(
        "md_cluster_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let _db = AppDb(db_name.clone());
    let cluster = Cluster::with_apps(&db_name);
    let up = cluster.script(&["up"]);
    let printed = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(printed.contains("nginx:"), "{printed}");
    let lb = format!(
        "http://127.0.0.1:{}",
        cluster.var("MASKDRAW_CLUSTER_NGINX_PORT")
    );
    let serves: Vec<String> = cluster
        .var("MASKDRAW_CLUSTER_SERVE_PORTS")
        .split(' ')
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let client = reqwest::Client::new();
    // Both serves are on the Redis Cluster and on all three brokers.
    for port in cluster.var("MASKDRAW_CLUSTER_SERVE_PORTS").split(' ') {
        let ready: Value = client
            .get(format!("http://127.0.0.1:1{port}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["rabbitmq"], true, "{ready}");
    }

    // The same person on both serves at the same instant: one 202 each.
    let mut simultaneous = Vec::new();
    for _ in 0..20 {
        let body = reservation();
        let (a, b) = tokio::join!(
            reserve(&client, &serves[0], &body),
            reserve(&client, &serves[1], &body)
        );
        let won = [&a, &b].iter().filter(|(s, _)| *s == 202).count();
        assert_eq!(won, 1, "{a:?} {b:?}");
        simultaneous.push(if a.0 == 202 { a.1 } else { b.1 });
    }

    // Load through nginx for 15 s, ten clients; broker node 1 is killed at 3 s.
    let started = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            let lb = lb.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                while started.elapsed() < Duration::from_secs(15) {
                    let (status, json) = reserve(&client, &lb, &reservation()).await;
                    out.push((status, json));
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                out
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = std::fs::read_to_string(cluster.dir.join("rabbitmq/md1/rabbit.pid")).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success());
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    let mut accepted: HashSet<String> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, j)| j["ticket_id"].as_str().unwrap().to_string())
        .collect();
    let others: Vec<u16> = answers
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s != 202 && *s != 503)
        .collect();
    assert!(
        others.is_empty(),
        "answers other than 202 and 503: {others:?}"
    );
    assert!(accepted.len() > 100, "{} accepted", accepted.len());
    accepted.extend(
        simultaneous
            .iter()
            .map(|j| j["ticket_id"].as_str().unwrap().to_string()),
    );

    // Every 202 registered by the persisters (that carry on on the other nodes), once; one
    // registered ticket per person.
    let db = Database::connect(format!(
        "{}/{db_name}",
        PG_ADMIN.trim_end_matches("/postgres")
    ))
    .await
    .unwrap();
    let waited = Instant::now();
    loop {
        let by_person = registered_by_person(&db).await;
        let stored: HashSet<String> = by_person.values().flatten().cloned().collect();
        let missing = accepted.difference(&stored).count();
        if missing == 0 {
            for (person, held) in &by_person {
                assert_eq!(held.len(), 1, "{person} holds {held:?}");
            }
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(180),
            "{missing} of {} tickets answered 202 are not registered",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = db.close().await;
    cluster.script(&["down"]);
}
