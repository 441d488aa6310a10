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

/// The bytes of the reservation of identity `n` (the `i`-th request of a run), spread over the
/// pharmacies, both products and both choices of flexible.
pub fn reservation_request(
    addr: std::net::SocketAddr,
    pharmacies: &[String],
    n: u64,
    i: u64,
) -> Vec<u8> {
    let body = serde_json::to_vec(&serde_json::json!({
        "id_number": identity(n),
        "name": "压测",
        "phone": format!("138{:08}", n % 100_000_000),
        "pharmacy_id": pharmacies[(i as usize * 7919) % pharmacies.len()],
        "product_id": if i % 3 == 0 { "MED-SURG" } else { "KN95" },
        "flexible": i % 2 == 0,
    }))
    .unwrap_or_default();
    super::load::post_json(addr, "/api/v1/reservations", &body)
}

/// Polls the operator listener's `/readyz` at `base` until RabbitMQ and PostgreSQL are up.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
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
    v.iter()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect()
}
