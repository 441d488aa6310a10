//! What the intake benches share: unique identities, the reservation request, readiness, and
//! the clean-up of an isolated database, key prefixes and queues.

use std::time::{Duration, Instant};

use maskdraw::domain::IdNumber;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The i-th unique, valid identity number (distinct for i < 10^9).
pub fn identity(i: u64) -> String {
    let seq = i % 1000;
    let day = (i / 1000) % 28 + 1;
    let month = (i / 28_000) % 12 + 1;
    let year = 1930 + (i / 336_000) % 80;
    let region = 110_000 + (i / 26_880_000) % 500_000;
    let first = format!("{region:06}{year:04}{month:02}{day:02}{seq:03}");
    format!("{first}{}", IdNumber::check_char(&first))
}

/// The body of the reservation of identity `n` (the `i`-th request of a run), spread over the
/// pharmacies, both products and both choices of flexible.
pub fn reservation_body(n: u64, i: u64, pharmacies: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id_number": identity(n),
        "name": "压测",
        "phone": format!("138{:08}", n % 100_000_000),
        "pharmacy_id": pharmacies[(i as usize * 7919) % pharmacies.len()],
        "product_id": if i % 3 == 0 { "MED-SURG" } else { "KN95" },
        "flexible": i % 2 == 0,
    }))
    .unwrap_or_default()
}

/// The request bytes of [`reservation_body`].
pub fn reservation_request(
    addr: std::net::SocketAddr,
    pharmacies: &[String],
    n: u64,
    i: u64,
) -> Vec<u8> {
    super::load::post_json(
        addr,
        "/api/v1/reservations",
        &reservation_body(n, i, pharmacies),
    )
}

/// Polls the operator listener's `/readyz` at `base` until RabbitMQ and PostgreSQL are up and
/// Redis is known warm.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                // And Redis warmed (a new deployment's first warm takes a moment): until
                // then every reservation is checked in PostgreSQL, which is the cold path,
                // not what these benches measure.
                if v["rabbitmq"] == true
                    && v["postgres"] == true
                    && v["redis_cache_complete"] == true
                {
                    return;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the server at {base} did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Drops the bench's database and, for each prefix, its Redis keys and its two queues.
pub async fn clean_up(admin: &DatabaseConnection, db_name: &str, prefixes: &[String]) {
    let _ = admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
        ))
        .await;
    for prefix in prefixes {
        if let Ok(redis) =
            maskdraw::store::redis::RedisStore::connect("redis://127.0.0.1:6379/0", prefix)
        {
            let _ = redis.delete_all().await;
        }
    }
    if let Ok(conn) =
        maskdraw::queue::broker::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await
    {
        if let Ok(ch) = conn.create_channel().await {
            for prefix in prefixes {
                for q in ["reservations", "reservations.dead"] {
                    let _ = ch
                        .queue_delete(
                            &format!("{prefix}.{q}"),
                            lapin::options::QueueDeleteOptions::default(),
                        )
                        .await;
                }
            }
        }
    }
}

/// A fresh database for one run: (the admin connection, its name, the run's random id).
pub async fn create_database() -> (DatabaseConnection, String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("md_bench_{}", &id[..12]);
    let admin = sea_orm::Database::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("postgres");
    admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("CREATE DATABASE {db_name}"),
        ))
        .await
        .expect("create db");
    (admin, db_name, id)
}

/// The catalog's pharmacy ids, as the server at `base` serves them.
pub async fn pharmacies(client: &reqwest::Client, base: &str) -> Vec<String> {
    let v: Vec<serde_json::Value> = client
        .get(format!("{base}/static/config/pharmacies.json"))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("json");
    pharmacy_ids(&v)
}

/// The ids of a pharmacy catalog (`static/config/pharmacies.json`).
pub fn pharmacy_ids(catalog: &[serde_json::Value]) -> Vec<String> {
    catalog
        .iter()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect()
}

/// The ticket id of a 202's body.
pub fn ticket_of(_status: u16, body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["ticket_id"].as_str().map(str::to_string))
}

/// Ticket ids as one `bpchar[]` parameter.
pub fn ticket_array(chunk: &[String]) -> sea_orm::Value {
    sea_orm::Value::Array(
        sea_orm::sea_query::ArrayType::String,
        Some(Box::new(
            chunk
                .iter()
                .map(|t| sea_orm::Value::String(Some(Box::new(t.clone()))))
                .collect(),
        )),
    )
}

/// How many of `tickets` are missing from PostgreSQL's `tickets`.
pub async fn missing(db: &DatabaseConnection, tickets: &[String]) -> usize {
    let mut present = 0usize;
    for chunk in tickets.chunks(50_000) {
        let row = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM tickets WHERE ticket_id = ANY($1::bpchar[])",
                vec![ticket_array(chunk)],
            ))
            .await
            .expect("count")
            .expect("row");
        present += row.try_get::<i64>("", "n").expect("n") as usize;
    }
    tickets.len() - present
}

/// User + system CPU a process has used so far (all its threads; `/proc/<pid>/stat` fields
/// 14 and 15), in microseconds; 0 once it is gone.
pub fn cpu_us(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks * 1_000_000 / clock_ticks()
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Processes whose command name is `comm` (e.g. every `postgres` backend).
pub fn pids_named(comm: &str) -> Vec<u32> {
    pids_where(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    })
}

/// Processes whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<u32> {
    pids_where(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .contains(needle)
        })
    })
}

fn pids_where(keep: impl Fn(u32) -> bool) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| keep(*pid))
        .collect()
}
