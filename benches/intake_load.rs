//! Intake load benchmark (issue 3): an open-model generator against the real services.
//!
//! Starts `maskdraw serve` and `maskdraw persist` as separate processes on an isolated
//! database, key prefix and queue names, then:
//! 1. runs `redis-benchmark -t set` for the side-by-side baseline;
//! 2. offers reservations at a fixed arrival rate (each scheduled at `start + i/rate`, latency
//!    measured from the scheduled time, so a slow server cannot slow the generator down and
//!    hide its own queueing) with unique valid identities; reports accepted/s, p50/p99/max and
//!    the time until every 202 is a row in PostgreSQL, and checks 202s == rows;
//! 3. stops the persister, builds a backlog, restarts it and measures the drain rate.
//!
//!   cargo bench --bench intake_load                       # 10,000/s for 60 s, 200,000 backlog
//!   RATE=2000 SECONDS=10 BACKLOG=20000 cargo bench --bench intake_load
//!
//! It exits non-zero if a single accepted reservation is missing from PostgreSQL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::load::{self, LoadRun};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

#[path = "common/mod.rs"]
mod common;

use common::env_u64;

struct Services {
    serve: Child,
    persist: Option<Child>,
    env: Vec<(String, String)>,
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        if let Some(p) = self.persist.as_mut() {
            let _ = p.kill();
        }
    }
}

fn spawn(cmd: &str, env: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_maskdraw"))
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start maskdraw")
}

async fn count(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM tickets",
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

/// Offers `total` reservations at `rate` per second starting with identity `first`; keeps the
/// ticket id of every 202.
async fn open_model(
    addr: std::net::SocketAddr,
    pharmacies: &[String],
    first: u64,
    total: u64,
    rate: u64,
) -> LoadRun {
    load::open_model(
        addr,
        CONNECTIONS,
        total,
        rate,
        |i| {
            let body = common::faults::reservation_body(first + i, pharmacies);
            load::post_json(addr, "/api/v1/reservations", &body)
        },
        &[202],
        |_, body| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["ticket_id"].as_str().map(str::to_string))
        },
    )
    .await
}

/// Connections of the generator: a reservation holds its connection for the whole
/// group-commit round trip (20–50 ms for a quorum-queue confirm here), and by Little's law 256
/// connections would cap the offered load near 7,000/s.
const CONNECTIONS: usize = 2048;

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                if v["rabbitmq"] == true && v["postgres"] == true {
                    return;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

use common::faults::missing;

async fn wait_rows(db: &DatabaseConnection, n: i64, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while count(db).await < n {
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(start.elapsed())
}

fn redis_baseline() -> String {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-t",
            "set",
            "-n",
            "200000",
            "-c",
            "50",
            "-q",
        ])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .replace('\r', "\n")
            .lines()
            .rfind(|l| l.contains("requests per second"))
            .unwrap_or("")
            .trim()
            .to_string(),
        Err(e) => format!("redis-benchmark not available: {e}"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("intake_load: bench");
        return;
    }
    let rate = env_u64("RATE", 10_000);
    let seconds = env_u64("SECONDS", 60);
    let backlog = env_u64("BACKLOG", 200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(run(rate, seconds, backlog));
    if !ok {
        std::process::exit(1);
    }
}

async fn run(rate: u64, seconds: u64, backlog: u64) -> bool {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("md_bench_{}", &id[..12]);
    let admin = Database::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("postgres");
    admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("CREATE DATABASE {db_name}"),
        ))
        .await
        .expect("create db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let env: Vec<(String, String)> = [
        (
            "MASKDRAW_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
        ),
        ("MASKDRAW_BIND", format!("127.0.0.1:{port}")),
        ("MASKDRAW_ADMIN_BIND", format!("127.0.0.1:{admin_port}")),
        // A development deployment (built-in secrets), and without phone codes: this measures
        // intake, not an SMS gateway, and its simulated citizens have no phones.
        ("MASKDRAW_ENVIRONMENT", "development".to_string()),
        ("MASKDRAW_REQUIRE_PHONE_CODE", "false".to_string()),
        ("MASKDRAW_KEY_PREFIX", format!("b{}", &id[..12])),
        ("MASKDRAW_QUEUE_PREFIX", format!("b{}.", &id[..12])),
        (
            "MASKDRAW_STATIC_DIR",
            format!("{}/static", env!("CARGO_MANIFEST_DIR")),
        ),
        ("MASKDRAW_IP_RATE_PER_SEC", "1000000".into()),
        ("MASKDRAW_MAX_BACKLOG", "100000000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    println!("(phone codes off: MASKDRAW_REQUIRE_PHONE_CODE=false, development mode)");
    println!("== baseline: redis-benchmark -t set -n 200000 -c 50");
    let baseline = redis_baseline();
    println!("{baseline}");

    let mut services = Services {
        serve: spawn("serve", &env),
        persist: None,
        env,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{port}");
    // Readiness details are on the operator listener.
    wait_ready(&client, &format!("http://127.0.0.1:{admin_port}")).await;
    let db = Database::connect(format!("postgres://postgres@127.0.0.1:5432/{db_name}"))
        .await
        .expect("bench db");
    services.persist = Some(spawn("persist", &services.env));
    let pharmacies: Vec<String> = {
        let v: Vec<serde_json::Value> = client
            .get(format!("{base}/static/config/pharmacies.json"))
            .send()
            .await
            .expect("catalog")
            .json()
            .await
            .expect("json");
        v.iter()
            .filter_map(|p| p["id"].as_str().map(String::from))
            .collect()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");

    // Warm-up: connections, JIT-free but caches and pools.
    let _ = open_model(addr, &pharmacies, 900_000_000, (rate / 2).max(100), rate).await;

    println!("== open model: {rate}/s for {seconds} s");
    let total = rate * seconds;
    let run = open_model(addr, &pharmacies, 0, total, rate).await;
    let warm_rows = count(&db).await.min((rate / 2).max(100) as i64);
    let drain = wait_rows(
        &db,
        run.count(&[202]) as i64 + warm_rows,
        Duration::from_secs(600),
    )
    .await;
    let rows = count(&db).await;
    let lost = missing(&db, &run.kept).await;
    let accepted_rate = run.rate();
    println!("{}", run.summary());
    println!(
        "latency of 202s (from scheduled send): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        run.ms(0.50),
        run.ms(0.99),
        run.ms(1.0)
    );
    match drain {
        Some(d) => println!(
            "every accepted reservation in PostgreSQL {:.2} s after the last response",
            d.as_secs_f64()
        ),
        None => println!("NOT every accepted reservation reached PostgreSQL within 600 s"),
    }
    let all_there = lost == 0;
    println!("202s {}, of them missing from PostgreSQL: {lost} ({}); rows in all (with warm-up and requests whose answer the client gave up on) {rows}",
        run.count(&[202]), if all_there { "none lost" } else { "LOST" });

    println!("== backlog drain: {backlog} reservations queued with the persister stopped");
    if let Some(mut p) = services.persist.take() {
        let _ = p.kill();
        let _ = p.wait();
    }
    let before = count(&db).await;
    let fill = open_model(addr, &pharmacies, 500_000_000, backlog, rate.max(5_000)).await;
    let target = before + fill.count(&[202]) as i64;
    let started = Instant::now();
    services.persist = Some(spawn("persist", &services.env));
    let drained = wait_rows(&db, target, Duration::from_secs(900)).await;
    match drained {
        Some(_) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "drained {} rows in {:.2} s (including persister start-up): {:.0} rows/s",
                fill.count(&[202]),
                secs,
                fill.count(&[202]) as f64 / secs
            );
        }
        None => println!("backlog NOT drained within 900 s"),
    }
    let lost_fill = missing(&db, &fill.kept).await;
    let none_lost = lost_fill == 0;
    println!(
        "backlog 202s {}, missing from PostgreSQL: {lost_fill} ({})",
        fill.count(&[202]),
        if none_lost { "none lost" } else { "LOST" }
    );
    println!(
        "== summary: accepted {:.0}/s vs redis SET baseline [{}]",
        accepted_rate, baseline
    );

    drop(services);
    drop(db);
    let _ = admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
        ))
        .await;
    let prefix = format!("b{}", &id[..12]);
    if let Ok(redis) =
        maskdraw::store::redis::RedisStore::connect("redis://127.0.0.1:6379/0", &prefix)
    {
        let _ = redis.delete_all().await;
    }
    if let Ok(conn) =
        maskdraw::queue::broker::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await
    {
        if let Ok(ch) = conn.create_channel().await {
            for q in ["reservations", "reservations.dead"] {
                let _ = ch
                    .queue_delete(
                        &format!("b{}.{q}", &id[..12]),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await;
            }
        }
    }
    all_there && none_lost
}
