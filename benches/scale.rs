//! Scale benchmark (issue 11 item 6): the same open-model intake load against
//! 1. the single-node set-up: one `serve` and one `persist` on the machine's PostgreSQL, Redis
//!    and RabbitMQ;
//! 2. the cluster topology of `scripts/cluster.sh`: nginx over 2 × serve, 2 × persist, a Redis
//!    Cluster of 3 masters and 3 replicas, 3 RabbitMQ nodes (quorum queue on all three), the
//!    same PostgreSQL;
//!
//! in one run, side by side: accepted/s, p99, lost (202s missing from PostgreSQL, ticket by
//! ticket), and each component's CPU microseconds per accepted reservation (from
//! /proc/<pid>/stat, over the measured load and the drain until every 202 is a row).
//!
//!   cargo bench --bench scale                    # 2,000/s for 30 s on each
//!   RATE=1000 SECONDS=10 cargo bench --bench scale
//!
//! Exits non-zero if an accepted reservation is missing from PostgreSQL.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::intake::{self, cpu_us, missing, pids_named, pids_with};
use common::load::{self, LoadRun};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

#[path = "common/mod.rs"]
mod common;

use common::env_u64;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const CONNECTIONS: usize = 1024;

/// The processes of one component, by name.
type Components = BTreeMap<&'static str, Vec<u32>>;

struct Measured {
    setup: &'static str,
    run: LoadRun,
    lost: usize,
    drained_s: Option<f64>,
    /// µs of CPU per accepted reservation, by component.
    cpu: BTreeMap<&'static str, f64>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("scale: bench");
        return;
    }
    let rate = env_u64("RATE", 2_000);
    let seconds = env_u64("SECONDS", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(run(rate, seconds));
    if !ok {
        std::process::exit(1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn rows(db: &DatabaseConnection) -> i64 {
    db.query_one(Statement::from_string(
        DbBackend::Postgres,
        "SELECT count(*) AS n FROM tickets",
    ))
    .await
    .ok()
    .flatten()
    .and_then(|r| r.try_get::<i64>("", "n").ok())
    .unwrap_or(0)
}

async fn wait_http(url: &str) {
    let start = Instant::now();
    while !reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().as_u16() == 200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{url} did not answer"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// CPU so far of each process of each component.
fn cpu_of(components: &Components) -> BTreeMap<(&'static str, u32), u64> {
    components
        .iter()
        .flat_map(|(name, pids)| pids.iter().map(move |p| ((*name, *p), cpu_us(*p))))
        .collect()
}

/// PostgreSQL starts a backend per new connection: list them again when the load is over.
fn with_new_backends(components: &Components) -> Components {
    let mut now = components.clone();
    now.insert("postgresql", pids_named("postgres"));
    now
}

/// Offers the load at `addr`, waits until every 202 is a row, and measures.
async fn measure(
    setup: &'static str,
    addr: std::net::SocketAddr,
    db: &DatabaseConnection,
    components: &Components,
    rate: u64,
    seconds: u64,
) -> Measured {
    let pharmacies = intake::pharmacies(&reqwest::Client::new(), &format!("http://{addr}")).await;
    // Warm-up: connections, caches, pools; identities apart from the measured ones.
    let warm = load::open_model(
        addr,
        CONNECTIONS,
        (rate * 2).max(200),
        rate,
        |i| intake::reservation_request(addr, &pharmacies, 800_000_000 + i, i),
        &[202],
        intake::ticket_of,
    )
    .await;
    let warm_rows = warm.count(&[202]) as i64;
    while rows(db).await < warm_rows {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = cpu_of(components);
    let run = load::open_model(
        addr,
        CONNECTIONS,
        rate * seconds,
        rate,
        |i| intake::reservation_request(addr, &pharmacies, i, i),
        &[202],
        intake::ticket_of,
    )
    .await;
    let accepted = run.count(&[202]);
    let waited = Instant::now();
    let mut drained_s = None;
    while waited.elapsed() < Duration::from_secs(300) {
        if rows(db).await >= warm_rows + accepted as i64 {
            drained_s = Some(waited.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = cpu_of(&with_new_backends(components));
    let lost = missing(db, &run.kept).await;
    // A process that started during the load counts from zero.
    let mut cpu: BTreeMap<&'static str, f64> = BTreeMap::new();
    for ((name, pid), us) in &after {
        let used = us.saturating_sub(before.get(&(*name, *pid)).copied().unwrap_or(0));
        *cpu.entry(name).or_default() += used as f64 / accepted.max(1) as f64;
    }
    println!("{setup}: {}", run.summary());
    Measured {
        setup,
        run,
        lost,
        drained_s,
        cpu,
    }
}

fn spawn(cmd: &[&str], env: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_maskdraw"))
        .args(cmd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start maskdraw")
}

/// Processes of the machine's own services (what the single-node set-up runs on).
fn machine_services(components: &mut Components) {
    components.insert("redis", pids_with("redis-server 127.0.0.1:6379"));
    // Before the cluster's nodes start, every Erlang VM here is the machine's broker.
    components.insert("rabbitmq", pids_named("beam.smp"));
    components.insert("postgresql", pids_named("postgres"));
}

async fn single(rate: u64, seconds: u64) -> Measured {
    let (admin, db_name, id) = intake::create_database().await;
    let db = Database::connect(format!("postgres://postgres@127.0.0.1:5432/{db_name}"))
        .await
        .expect("bench db");
    let port = free_port();
    let admin_port = free_port();
    let env: Vec<(String, String)> = [
        (
            "MASKDRAW_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
        ),
        ("MASKDRAW_BIND", format!("127.0.0.1:{port}")),
        ("MASKDRAW_ADMIN_BIND", format!("127.0.0.1:{admin_port}")),
        ("MASKDRAW_ENVIRONMENT", "development".into()),
        ("MASKDRAW_REQUIRE_PHONE_CODE", "false".into()),
        ("MASKDRAW_KEY_PREFIX", format!("s{}", &id[..12])),
        ("MASKDRAW_QUEUE_PREFIX", format!("s{}.", &id[..12])),
        (
            "MASKDRAW_STATIC_DIR",
            format!("{}/static", env!("CARGO_MANIFEST_DIR")),
        ),
        ("MASKDRAW_IP_RATE_PER_SEC", "1000000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut serve = spawn(&["serve"], &env);
    wait_http(&format!("http://127.0.0.1:{port}/healthz")).await;
    let persist_metrics = free_port();
    let mut persist = spawn(
        &[
            "persist",
            "--metrics-bind",
            &format!("127.0.0.1:{persist_metrics}"),
        ],
        &env,
    );
    let mut components = Components::new();
    components.insert("serve", vec![serve.id()]);
    components.insert("persist", vec![persist.id()]);
    machine_services(&mut components);
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let m = measure("single node", addr, &db, &components, rate, seconds).await;
    let _ = serve.kill();
    let _ = persist.kill();
    let _ = serve.wait();
    let _ = persist.wait();
    drop(db);
    intake::clean_up(&admin, &db_name, &[format!("s{}", &id[..12])]).await;
    m
}

fn pid_file(path: std::path::PathBuf) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn cluster(rate: u64, seconds: u64) -> Measured {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("md_scale_{}", &id[..12]);
    let state = std::env::temp_dir().join(format!("maskdraw-scale-{}", &id[..12]));
    let script = |command: &str| {
        Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh"))
            .arg(command)
            .env("MASKDRAW_CLUSTER_DIR", &state)
            .env("MASKDRAW_BIN", env!("CARGO_BIN_EXE_maskdraw"))
            .env("MASKDRAW_CLUSTER_DB_NAME", &db_name)
            .env("MASKDRAW_ENVIRONMENT", "development")
            .env("MASKDRAW_REQUIRE_PHONE_CODE", "false")
            .env("MASKDRAW_IP_RATE_PER_SEC", "1000000")
            .status()
            .expect("bash runs")
    };
    assert!(script("up").success(), "cluster.sh up failed");
    let db = Database::connect(format!("postgres://postgres@127.0.0.1:5432/{db_name}"))
        .await
        .expect("cluster db");
    let mut components = Components::new();
    let apps = state.join("apps");
    let by_prefix = |dir: &std::path::Path, prefix: &str| -> Vec<u32> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .filter_map(|e| pid_file(e.path()))
            .collect()
    };
    components.insert("serve", by_prefix(&apps, "serve-"));
    components.insert("persist", by_prefix(&apps, "persist-"));
    let redis: Vec<u32> = std::fs::read_dir(state.join("redis"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| pid_file(e.path().join("redis.pid")))
        .collect();
    components.insert("redis", redis);
    components.insert(
        "rabbitmq",
        (1..=3)
            .filter_map(|i| pid_file(state.join(format!("rabbitmq/md{i}/rabbit.pid"))))
            .collect(),
    );
    let nginx_master = pid_file(state.join("nginx/nginx.pid"));
    let mut nginx: Vec<u32> = nginx_master.into_iter().collect();
    if let Some(m) = nginx_master {
        nginx.extend(pids_named("nginx").into_iter().filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ").and_then(|(_, r)| {
                        r.split_whitespace().nth(1).map(|pp| pp == m.to_string())
                    })
                })
                .unwrap_or(false)
        }));
    }
    components.insert("nginx", nginx);
    components.insert("postgresql", pids_named("postgres"));
    let lb: std::net::SocketAddr = format!(
        "127.0.0.1:{}",
        std::env::var("MASKDRAW_CLUSTER_NGINX_PORT").unwrap_or_else(|_| "8180".into())
    )
    .parse()
    .expect("address");
    let m = measure(
        "cluster (nginx, 2 serve, 2 persist)",
        lb,
        &db,
        &components,
        rate,
        seconds,
    )
    .await;
    drop(db);
    script("clean");
    if let Ok(admin) = Database::connect(PG_ADMIN).await {
        intake::clean_up(&admin, &db_name, &[]).await;
    }
    m
}

async fn run(rate: u64, seconds: u64) -> bool {
    println!("== {rate} reservations/s for {seconds} s on each set-up (open model, {CONNECTIONS} connections)");
    let single = single(rate, seconds).await;
    let cluster = cluster(rate, seconds).await;
    println!();
    println!(
        "| | {} | {} | ratio cluster/single |",
        single.setup, cluster.setup
    );
    println!("|---|---:|---:|---:|");
    let row = |name: &str, a: f64, b: f64, digits: usize| {
        println!(
            "| {name} | {a:.digits$} | {b:.digits$} | {:.2} |",
            if a > 0.0 { b / a } else { f64::NAN }
        );
    };
    row(
        "offered",
        single.run.offered as f64,
        cluster.run.offered as f64,
        0,
    );
    row(
        "202",
        single.run.count(&[202]) as f64,
        cluster.run.count(&[202]) as f64,
        0,
    );
    row(
        "503/429",
        single.run.count(&[503, 429]) as f64,
        cluster.run.count(&[503, 429]) as f64,
        0,
    );
    row("accepted/s", single.run.rate(), cluster.run.rate(), 0);
    row("p50 ms", single.run.ms(0.5), cluster.run.ms(0.5), 1);
    row("p99 ms", single.run.ms(0.99), cluster.run.ms(0.99), 1);
    row("lost", single.lost as f64, cluster.lost as f64, 0);
    row(
        "drain after load, s",
        single.drained_s.unwrap_or(f64::NAN),
        cluster.drained_s.unwrap_or(f64::NAN),
        2,
    );
    let mut names: Vec<&str> = single
        .cpu
        .keys()
        .chain(cluster.cpu.keys())
        .copied()
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut total = (0.0, 0.0);
    for n in names {
        let a = single.cpu.get(n).copied().unwrap_or(0.0);
        let b = cluster.cpu.get(n).copied().unwrap_or(0.0);
        total.0 += a;
        total.1 += b;
        row(&format!("CPU µs/reservation: {n}"), a, b, 0);
    }
    row("CPU µs/reservation: all", total.0, total.1, 0);
    single.lost == 0 && cluster.lost == 0
}
