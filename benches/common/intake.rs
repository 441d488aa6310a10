//! Reservations as the intake benches offer them, and what they check afterwards.

use maskdraw::domain::IdNumber;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::load;

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

/// The request bytes of reservation `i` (identity `first + i`).
pub fn request(addr: std::net::SocketAddr, pharmacies: &[String], first: u64, i: u64) -> Vec<u8> {
    let body = serde_json::to_vec(&serde_json::json!({
        "id_number": identity(first + i),
        "name": "压测",
        "phone": format!("138{:08}", (first + i) % 100_000_000),
        "pharmacy_id": pharmacies[(i as usize * 7919) % pharmacies.len()],
        "product_id": if i % 3 == 0 { "MED-SURG" } else { "KN95" },
        "flexible": i % 2 == 0,
    }))
    .unwrap_or_default();
    load::post_json(addr, "/api/v1/reservations", &body)
}

/// The ticket id of a 202's body.
pub fn ticket_of(_status: u16, body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["ticket_id"].as_str().map(str::to_string))
}

/// How many of `tickets` are missing from PostgreSQL.
pub async fn missing(db: &DatabaseConnection, tickets: &[String]) -> usize {
    let mut present = 0usize;
    for chunk in tickets.chunks(50_000) {
        let arr = sea_orm::Value::Array(
            sea_orm::sea_query::ArrayType::String,
            Some(Box::new(
                chunk
                    .iter()
                    .map(|t| sea_orm::Value::String(Some(Box::new(t.clone()))))
                    .collect(),
            )),
        );
        let row = db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM tickets WHERE ticket_id = ANY($1::bpchar[])",
                vec![arr],
            ))
            .await
            .expect("count")
            .expect("row");
        present += row.try_get::<i64>("", "n").expect("n") as usize;
    }
    tickets.len() - present
}

/// CPU time (user + system) a process has used so far, in microseconds; 0 once it is gone.
pub fn cpu_us(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
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
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm) {
            out.push(pid);
        }
    }
    out
}

/// Processes whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .contains(needle)
        }) {
            out.push(pid);
        }
    }
    out
}
