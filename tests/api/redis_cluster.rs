//! Redis Cluster (issue 11 item 1): a real local cluster of 3 masters and 3 replicas started by
//! scripts/cluster.sh (`MASKDRAW_CLUSTER_ONLY=redis`, free ports, a state directory of the
//! test's own), with the server, the persister, the day's bulk work and `cache warm` on it
//! through `redis_cluster_urls`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::Value;

use crate::cluster_infra::{free_ports, join, redis_cli, repo};
use crate::day::{backdate, days, district_pharmacies, reserve, today, Day};
use crate::helpers::{reservation, spawn_app_with, Options, TestApp};

/// The Redis Cluster of one test, removed (`cluster.sh clean`) on drop.
struct RedisCluster {
    dir: PathBuf,
    ports: Vec<u16>,
}

impl RedisCluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("maskdraw-rc-{}", uuid::Uuid::new_v4()));
        let ports = free_ports(6, 10_000);
        let cluster = Self { dir, ports };
        let out = cluster.script("up");
        assert!(
            out.status.success(),
            "cluster.sh up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn script(&self, command: &str) -> std::process::Output {
        Command::new("bash")
            .arg(repo().join("scripts/cluster.sh"))
            .arg(command)
            .env("MASKDRAW_CLUSTER_DIR", &self.dir)
            .env("MASKDRAW_CLUSTER_ONLY", "redis")
            .env("MASKDRAW_CLUSTER_REDIS_PORTS", join(&self.ports))
            .output()
            .expect("bash runs")
    }

    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Ports of the nodes that are masters now.
    fn masters(&self) -> Vec<u16> {
        self.ports
            .iter()
            .copied()
            .filter(|p| redis_cli(&p.to_string(), &["role"]).starts_with("master"))
            .collect()
    }

    fn keys(&self) -> u64 {
        self.masters()
            .iter()
            .map(|p| {
                redis_cli(&p.to_string(), &["dbsize"])
                    .trim()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    }

    fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(format!("redis/{port}/redis.pid")))
            .expect("the node's pid file");
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn state_ok(&self, via: u16) -> bool {
        redis_cli(&via.to_string(), &["cluster", "info"]).contains("cluster_state:ok")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = self.script("clean");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn on_cluster(cluster: &RedisCluster) -> TestApp {
    let urls = cluster.urls();
    spawn_app_with(Options::default(), move |s| s.redis_cluster_urls = urls).await
}

/// Each person's registered tickets.
pub async fn registered_by_person(db: &DatabaseConnection) -> HashMap<String, Vec<String>> {
    let rows = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT person_tag, ticket_id FROM tickets WHERE status = 'registered'",
        ))
        .await
        .unwrap();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows {
        out.entry(r.try_get::<String>("", "person_tag").unwrap())
            .or_default()
            .push(r.try_get::<String>("", "ticket_id").unwrap());
    }
    out
}

#[tokio::test]
async fn on_a_redis_cluster_intake_a_draw_and_a_cache_warm_work_across_every_slot() {
    let cluster = RedisCluster::start();
    let app = on_cluster(&cluster).await;
    let d = Day::new(&app).await;
    assert!(d.ctx.redis.is_cluster());
    let ph = district_pharmacies(&app, 1);

    // Thirty people, whose keys spread over the three masters' slots.
    let mut tickets = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..30 {
        let (t, body) = reserve(&app, &ph[0], "KN95", false).await;
        tickets.push(t);
        bodies.push(body);
    }
    // A second reservation by the same person is refused by the lock on the cluster.
    let again = app.reserve(&bodies[0]).await;
    assert_eq!(again.status(), 409);
    app.wait_for_tickets("registered", 30, Duration::from_secs(60))
        .await;
    for t in &tickets {
        let st = app.get(&format!("/api/v1/reservations/{t}")).await;
        assert_eq!(st.status(), 200);
        assert_eq!(st.json::<Value>().await.unwrap()["status"], "registered");
    }
    let per_master: Vec<u64> = cluster
        .masters()
        .iter()
        .map(|p| {
            redis_cli(&p.to_string(), &["dbsize"])
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(per_master.len(), 3);
    assert!(per_master.iter().all(|n| *n > 0), "{per_master:?}");

    // The draw settles winners and records the losers' outcome in pipelines split by slot.
    let date = today() - days(1);
    for t in &tickets {
        backdate(&app, t, 3).await;
    }
    d.stock(date, &[(&ph[0], "KN95", 10)]).await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    let outcome = |st: &maskdraw::store::redis::TicketStatus| {
        st.draws
            .iter()
            .find(|(day, _)| *day == date.to_string())
            .map(|(_, v)| v.split('|').next().unwrap().to_string())
    };
    let mut told = HashMap::<String, usize>::new();
    for t in &tickets {
        let st = d.ctx.redis.ticket_status(t).await.unwrap().unwrap();
        *told.entry(outcome(&st).unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(told.get("won"), Some(&10), "{told:?}");
    assert_eq!(told.get("lost"), Some(&20), "{told:?}");

    // Every key of the deployment lost on every master; the warm puts it back.
    for p in cluster.masters() {
        assert_eq!(redis_cli(&p.to_string(), &["flushall"]).trim(), "OK");
    }
    assert!(d
        .ctx
        .redis
        .ticket_status(&tickets[0])
        .await
        .unwrap()
        .is_none());
    let report = maskdraw::cache::warm::warm(&app.settings, &app.db, &d.ctx.redis)
        .await
        .unwrap();
    assert_eq!(report.tickets, 30, "{report:?}");
    let mut warmed = HashMap::<String, usize>::new();
    for t in &tickets {
        let st = d.ctx.redis.ticket_status(t).await.unwrap().unwrap();
        *warmed.entry(outcome(&st).unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(warmed, told);

    // Cleaning up scans every master.
    assert!(cluster.keys() > 0);
    d.ctx.redis.delete_all().await.unwrap();
    assert_eq!(cluster.keys(), 0);
    app.teardown().await;
}

#[tokio::test]
async fn a_master_killed_under_load_fails_over_with_no_202_lost_and_no_second_ticket() {
    let cluster = RedisCluster::start();
    let app = Arc::new(on_cluster(&cluster).await);

    // Load: eight clients, each person reserving once, for 20 s; a master is killed at 4 s.
    let started = Instant::now();
    let load = (0..8).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            let mut answers: Vec<(Value, u16, Option<String>)> = Vec::new();
            while started.elapsed() < Duration::from_secs(20) {
                let body = reservation();
                // A request the server never answers is an answer too: 0, and the test fails.
                let Ok(resp) =
                    tokio::time::timeout(Duration::from_secs(30), app.reserve(&body)).await
                else {
                    answers.push((body, 0, None));
                    continue;
                };
                let status = resp.status().as_u16();
                let json: Value = resp.json().await.unwrap_or_default();
                let ticket = json["ticket_id"].as_str().map(str::to_string);
                answers.push((body, status, ticket));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    });
    let load: Vec<_> = load.collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let victim = cluster.masters()[0];
    cluster.kill(victim);
    let survivor = *cluster.ports.iter().find(|p| **p != victim).unwrap();
    let mut answers = Vec::new();
    for task in load {
        answers.extend(task.await.unwrap());
    }
    // The replica took over (the load ran on for 16 s; the node timeout is 5 s).
    assert!(cluster.state_ok(survivor), "the cluster did not fail over");
    assert_eq!(cluster.masters().len(), 3);

    let accepted: Vec<&(Value, u16, Option<String>)> =
        answers.iter().filter(|(_, s, _)| *s == 202).collect();
    let others: HashSet<u16> = answers
        .iter()
        .map(|(_, s, _)| *s)
        .filter(|s| *s != 202)
        .collect();
    assert!(
        others.iter().all(|s| *s == 503),
        "answers other than 202 and 503: {others:?}"
    );
    assert!(accepted.len() > 100, "{} accepted", accepted.len());

    // After the failover, everyone who was accepted tries again: nobody gets a second ticket.
    for (body, _, _) in &accepted {
        let resp = app.reserve(body).await;
        assert_ne!(resp.status(), 500);
    }
    // Every 202 registered (a 503 may have reached the broker too: its ticket may register,
    // still one per person).
    let want: HashSet<String> = accepted.iter().filter_map(|(_, _, t)| t.clone()).collect();
    let waited = Instant::now();
    let registered = loop {
        let registered = registered_by_person(&app.db).await;
        let all: HashSet<String> = registered.values().flatten().cloned().collect();
        let missing: Vec<&String> = want.difference(&all).collect();
        if missing.is_empty() {
            break registered;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "{} tickets answered 202 were not registered, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Give a late duplicate the time to arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = registered_by_person(&app.db).await;
    assert_eq!(again, registered);
    for (person, held) in &registered {
        assert_eq!(held.len(), 1, "{person} holds {held:?}");
    }
    match Arc::try_unwrap(app) {
        Ok(app) => app.teardown().await,
        Err(_) => panic!("the load still holds the app"),
    }
}
