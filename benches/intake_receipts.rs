//! Intake CPU per reservation with signed receipts on and off, in one run (issue 12 item 1's
//! goal: at most 10% more CPU per reservation with receipts).
//!
//! Starts two `maskdraw serve` processes on one isolated database, each with its own Redis key
//! prefix and queue names: one with receipts (`MASKDRAW_RECEIPTS=true`, the default) and one
//! without. Then it offers the same open-model load (the generator of `common/load.rs`) to one
//! and the other in turn, `ROUNDS` times (off, on, off, on, …, so a neighbour's load that comes
//! and goes hits both alike), and reads each server's CPU time (user + system, all threads,
//! `/proc/<pid>/stat`) before and after each phase: CPU per 202 = CPU seconds / 202s. Only the
//! loaded server works during a phase. No persister runs: the intake is what is measured (the
//! queues are deleted at the end).
//!
//!   cargo bench --bench intake_receipts                      # 2,000/s, 10 s per phase, 8 rounds (one round varies ±10% on its own)
//!   RATE=3000 PHASE_SECONDS=15 ROUNDS=3 cargo bench --bench intake_receipts
//!
//! Exits non-zero when a receipts-on 202 lacks its receipt or a receipts-off 202 has one.

use std::process::{Child, Command, Stdio};

use common::intake;
use common::load::{self, LoadRun};

#[path = "common/mod.rs"]
mod common;

use common::env_u64;

/// Connections of the generator (a reservation holds one for its group-commit round trip).
const CONNECTIONS: usize = 512;

struct Server {
    child: Child,
    port: u16,
    admin_port: u16,
    prefix: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn spawn_serve(db_url: &str, prefix: &str, receipts: bool) -> Server {
    let (port, admin_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_maskdraw"))
        .arg("serve")
        .env("MASKDRAW_DATABASE_URL", db_url)
        .env("MASKDRAW_BIND", format!("127.0.0.1:{port}"))
        .env("MASKDRAW_ADMIN_BIND", format!("127.0.0.1:{admin_port}"))
        // Development (built-in secrets, the derived intake key; receipts may be off), no
        // phone codes: this measures the intake.
        .env("MASKDRAW_ENVIRONMENT", "development")
        .env("MASKDRAW_REQUIRE_PHONE_CODE", "false")
        .env("MASKDRAW_RECEIPTS", if receipts { "true" } else { "false" })
        .env("MASKDRAW_KEY_PREFIX", prefix)
        .env("MASKDRAW_QUEUE_PREFIX", format!("{prefix}."))
        .env(
            "MASKDRAW_STATIC_DIR",
            format!("{}/static", env!("CARGO_MANIFEST_DIR")),
        )
        .env("MASKDRAW_IP_RATE_PER_SEC", "1000000")
        .env("MASKDRAW_MAX_BACKLOG", "100000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start maskdraw serve");
    Server {
        child,
        port,
        admin_port,
        prefix: prefix.to_string(),
    }
}

/// Offers `total` reservations at `rate`; keeps, per 202, whether it carried a receipt.
async fn offer(port: u16, pharmacies: &[String], first: u64, total: u64, rate: u64) -> LoadRun {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    load::open_model(
        addr,
        CONNECTIONS,
        total,
        rate,
        |i| intake::reservation_request(addr, pharmacies, first + i, i),
        &[202],
        |_, body| {
            let v = serde_json::from_slice::<serde_json::Value>(body).ok()?;
            Some(if v["receipt"].is_string() { "r" } else { "-" }.to_string())
        },
    )
    .await
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("intake_receipts: bench");
        return;
    }
    let rate = env_u64("RATE", 2_000);
    let phase = env_u64("PHASE_SECONDS", 10);
    let rounds = env_u64("ROUNDS", 8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if !rt.block_on(run(rate, phase, rounds)) {
        std::process::exit(1);
    }
}

async fn run(rate: u64, phase: u64, rounds: u64) -> bool {
    let (admin, db_name, id) = intake::create_database().await;
    let db_url = format!("postgres://postgres@127.0.0.1:5432/{db_name}");
    // One server first, so the two do not race to migrate the new database.
    let off = spawn_serve(&db_url, &format!("bo{}", &id[..12]), false);
    let client = reqwest::Client::new();
    intake::wait_ready(&client, &format!("http://127.0.0.1:{}", off.admin_port)).await;
    let on = spawn_serve(&db_url, &format!("bn{}", &id[..12]), true);
    intake::wait_ready(&client, &format!("http://127.0.0.1:{}", on.admin_port)).await;
    let pharmacies = intake::pharmacies(&client, &format!("http://127.0.0.1:{}", on.port)).await;
    let total = rate * phase;
    let mut next_identity = 0u64;
    // Warm-up of both (connections, pools, caches), not measured.
    for s in [&off, &on] {
        let _ = offer(s.port, &pharmacies, next_identity, rate * 2, rate).await;
        next_identity += rate * 2;
    }
    println!("== intake CPU per reservation, receipts off and on: {rate}/s, {phase} s per phase, {rounds} rounds");
    let mut sums = [(0.0f64, 0u64), (0.0f64, 0u64)]; // (CPU s, 202s) for off, on
    let mut consistent = true;
    for round in 0..rounds {
        for (k, s) in [&off, &on].into_iter().enumerate() {
            let before = cpu_secs_of(s.child.id());
            let run = offer(s.port, &pharmacies, next_identity, total, rate).await;
            let cpu = cpu_secs_of(s.child.id()) - before;
            next_identity += total;
            let accepted = run.count(&[202]);
            let with_receipt = run.kept.iter().filter(|r| *r == "r").count() as u64;
            let want = if k == 1 { accepted } else { 0 };
            consistent &= with_receipt == want;
            sums[k].0 += cpu;
            sums[k].1 += accepted;
            println!(
                "round {} receipts {:>3}: 202s {accepted} ({with_receipt} with a receipt), CPU {cpu:.2} s = {:.1} µs per 202; p50 {:.1} ms, p99 {:.1} ms; statuses {:?}",
                round + 1,
                if k == 1 { "on" } else { "off" },
                cpu * 1e6 / accepted.max(1) as f64,
                run.ms(0.5),
                run.ms(0.99),
                run.by_status
            );
        }
    }
    let per = |(cpu, n): (f64, u64)| cpu * 1e6 / n.max(1) as f64;
    let (off_us, on_us) = (per(sums[0]), per(sums[1]));
    let ratio = on_us / off_us;
    println!(
        "== summary: receipts off {off_us:.1} µs CPU per 202, on {on_us:.1} µs; on/off = {ratio:.3} ({:+.1}%); goal ≤ +10%: {}",
        (ratio - 1.0) * 100.0,
        if ratio <= 1.10 { "met" } else { "MISSED" }
    );
    if !consistent {
        println!(
            "RECEIPTS WRONG: a receipts-on 202 without a receipt, or a receipts-off 202 with one"
        );
    }

    let prefixes = [off.prefix.clone(), on.prefix.clone()];
    drop(off);
    drop(on);
    intake::clean_up(&admin, &db_name, &prefixes).await;
    consistent
}

/// User + system CPU seconds of a process so far.
fn cpu_secs_of(pid: u32) -> f64 {
    intake::cpu_us(pid) as f64 / 1e6
}
