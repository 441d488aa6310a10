//! `spawn_app()`: a fresh, isolated maskdraw on port 0 (zero-to-production's test helpers).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use maskdraw::config::{Environment, Secret, Settings};
use maskdraw::domain::IdNumber;
use maskdraw::startup::{Application, Running};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::{json, Value};

/// The proxy that cuts a service (shared with the benches' fault machinery).
pub use crate::common::faults::TcpProxy;

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const AMQP: &str = "127.0.0.1:5672";

pub struct TestApp {
    pub address: String,
    /// The operator listener (`admin_bind`): `/metrics` and the readiness details.
    pub admin_address: String,
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    pub proxy: TcpProxy,
    /// The server and its background tasks, stopped (and waited for) by `teardown`.
    pub running: Running,
    pub db_name: String,
}

#[derive(Clone, Copy)]
pub struct Options {
    pub with_persister: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            with_persister: true,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default(), |_| {}).await
}

/// Settings for an isolated test: own database, key prefix and queue names.
pub async fn isolated_settings(proxy_port: u16) -> (Settings, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("md_test_{}", &id[..16]);
    let admin = Database::connect(PG_ADMIN)
        .await
        .expect("postgres on 127.0.0.1:5432");
    admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("CREATE DATABASE {db_name}"),
        ))
        .await
        .expect("create the test database");
    let root = std::env::temp_dir().join(format!("md-test-{}", &id[..16]));
    let settings = Settings {
        snapshots_dir: root.join("snapshots"),
        exports_dir: root.join("exports"),
        keys_dir: root.join("keys"),
        database_url: format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
        amqp_url: format!("amqp://guest:guest@127.0.0.1:{proxy_port}/%2f"),
        bind: "127.0.0.1:0".into(),
        admin_bind: "127.0.0.1:0".into(),
        // The tests run in development mode (phone codes not required); the production rules
        // have tests of their own that say so.
        environment: Environment::Development,
        hmac_secret: Secret::new(format!("test-secret-{id}")),
        token_secret: Secret::new(format!("test-token-secret-{id}")),
        key_prefix: format!("t{}", &id[..12]),
        queue_prefix: format!("t{}.", &id[..12]),
        static_dir: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static"),
        ip_rate_per_sec: 100_000,
        status_rate_per_sec: 100_000,
        proof_rate_per_sec: 100_000,
        lookup_rate_per_min: 100_000,
        pickup_rate_per_sec: 100_000,
        person_rate_per_min: 1_000,
        publish_timeout_ms: 1_000,
        ..Settings::default()
    };
    (settings, db_name)
}

pub async fn spawn_app_with(opts: Options, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    // Logs only when asked for: TEST_LOG=1 cargo test -- --nocapture
    if std::env::var_os("TEST_LOG").is_some() {
        maskdraw::telemetry::init();
    }
    let proxy = TcpProxy::start(AMQP).await;
    let (mut settings, db_name) = isolated_settings(proxy.port).await;
    tweak(&mut settings);
    let app = Application::build(settings.clone(), opts.with_persister)
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = format!("http://127.0.0.1:{}", app.admin_port());
    let running = app.spawn();
    let db = Database::connect(&settings.database_url)
        .await
        .expect("the test database");
    TestApp {
        address,
        admin_address,
        settings,
        db,
        client: reqwest::Client::new(),
        proxy,
        running,
        db_name,
    }
}

impl TestApp {
    pub async fn reserve(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/reservations", self.address))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn reserve_with_key(&self, body: &Value, key: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/reservations", self.address))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// A GET on the operator listener (`/metrics`, `/readyz` with its details).
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("request")
    }

    /// A metric's value from the operator's `/metrics` (a series without labels).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.admin_get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} not exported"))
            .parse()
            .unwrap()
    }

    /// `POST /api/v1/reservations/lookup` with this identity number and phone.
    pub async fn lookup(&self, id_number: &serde_json::Value, phone: &str) -> serde_json::Value {
        self.client
            .post(format!("{}/api/v1/reservations/lookup", self.address))
            .json(&serde_json::json!({"id_number": id_number, "phone": phone}))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn count_tickets(&self, status: Option<&str>) -> i64 {
        let sql = match status {
            Some(s) => format!("SELECT count(*) AS n FROM tickets WHERE status = '{s}'"),
            None => "SELECT count(*) AS n FROM tickets".into(),
        };
        let row = self
            .db
            .query_one(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .expect("count")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("n")
    }

    /// Polls (never a fixed sleep) until `n` tickets have `status`, or panics after `limit`.
    pub async fn wait_for_tickets(&self, status: &str, n: i64, limit: Duration) {
        let start = Instant::now();
        loop {
            let have = self.count_tickets(Some(status)).await;
            if have >= n {
                assert_eq!(have, n, "more {status} tickets than expected");
                return;
            }
            assert!(
                start.elapsed() < limit,
                "only {have} of {n} tickets became {status} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/readyz` until Redis is (or is not) known to hold every live ticket.
    pub async fn wait_for_cache(&self, complete: bool) {
        let start = Instant::now();
        loop {
            let ready: Value = self.admin_get("/readyz").await.json().await.expect("json");
            if ready["redis_cache_complete"] == complete {
                return;
            }
            // A liveness bound, generous for a busy machine.
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the cache never became complete={complete}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops background tasks, deletes the queues and drops the database.
    pub async fn teardown(self) {
        // Everything that could declare the queues again stops first: the server, the relay,
        // the broker keeper and the persister (waited for), then the queues go.
        drop(self.client);
        self.running.stop().await;
        if let Ok(conn) =
            maskdraw::queue::broker::connect(&format!("amqp://guest:guest@{AMQP}/%2f")).await
        {
            if let Ok(ch) = conn.create_channel().await {
                for q in [self.settings.queue_name(), self.settings.dead_queue_name()] {
                    let _ = ch
                        .queue_delete(&q, lapin::options::QueueDeleteOptions::default())
                        .await;
                }
            }
            let _ = conn.close(200, "teardown").await;
        }
        if let Ok(redis) = maskdraw::store::redis::RedisStore::connect(
            &self.settings.redis_endpoint(),
            &self.settings.key_prefix,
        ) {
            let _ = redis.delete_all().await;
        }
        drop(self.db);
        remove_isolated(&self.settings, &self.db_name).await;
    }
}

/// Removes what [`isolated_settings`] made: the test's directories and its database.
pub async fn remove_isolated(settings: &Settings, db_name: &str) {
    if let Some(root) = settings.keys_dir.parent() {
        let _ = std::fs::remove_dir_all(root);
    }
    if let Ok(admin) = Database::connect(PG_ADMIN).await {
        let _ = admin
            .execute(Statement::from_string(
                DbBackend::Postgres,
                format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
            ))
            .await;
    }
}

/// A valid identity number, different on every call in this process.
///
/// There are 60 × 12 × 28 × 1000 = 20,160,000 of them here; drawn at random, two of a test's
/// 600 reservations would share one about once in a hundred runs (and the second would be
/// `already_reserved`), so they are taken in turn from a random start instead.
pub fn id_number() -> String {
    const DISTINCT: u64 = 60 * 12 * 28 * 1000;
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let next =
        NEXT.get_or_init(|| std::sync::atomic::AtomicU64::new(rand::random::<u64>() % DISTINCT));
    let n = next.fetch_add(1, Ordering::Relaxed) % DISTINCT;
    let first = format!(
        "440106{:04}{:02}{:02}{:03}",
        1950 + n % 60,
        1 + (n / 60) % 12,
        1 + (n / 720) % 28,
        (n / 20160) % 1000
    );
    format!("{first}{}", IdNumber::check_char(&first))
}

pub fn reservation() -> Value {
    json!({
        "id_number": id_number(),
        "name": "陈小明",
        "phone": "13800138000",
        "pharmacy_id": first_pharmacy(),
        "product_id": "KN95",
        "flexible": true
    })
}

pub fn first_pharmacy() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/config/pharmacies.json");
    let list: Vec<Value> =
        serde_json::from_slice(&std::fs::read(path).expect("catalog")).expect("json");
    list[0]["id"].as_str().expect("id").to_string()
}
/// The `notary` binary of the `lottery` crate, built once for this test process (another
/// package's binary has no `CARGO_BIN_EXE_` here).
pub fn notary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .current_dir(root)
                .args(["build", "--quiet", "-p", "lottery", "--bin", "notary"])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building notary failed");
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), PathBuf::from)
                .join("debug/notary")
        })
        .clone()
}
