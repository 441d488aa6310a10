//! Publication at 18:00 (issue 8, item 8): the read path when every entrant looks at once.
//!
//! Sets up TICKETS (2,000,000) drawn tickets whose results are published (loaded the fast way,
//! accepted before yesterday's cutoff, sealed, drawn yesterday), starts `maskdraw serve` as a
//! separate release process on an isolated database and key prefix, and then, in one run:
//!
//! 0. the baseline `redis-benchmark -t get`;
//! 1. status reads of random entrants with 10% well-formed unknown ids (open model);
//! 2. proofs of random entrants (open model);
//! 3. status reads right after this deployment's Redis keys are flushed (the server's
//!    `auto_warm` is off, so every read goes to PostgreSQL);
//! 4. `maskdraw cache warm`, timed, then status reads again.
//!
//! Each load reports reads/s, p50 and p99 (from each request's due time), PostgreSQL statements
//! per read (the server's `maskdraw_status_database_statements_total`, and the database's own
//! transaction count), and at the end the server's peak RSS and the proof data per entrant.
//!
//!   cargo bench --bench publication
//!   TICKETS=200000 SECONDS=10 cargo bench --bench publication
//!   PHASES=flushed,after cargo bench --bench publication   # some of the loads only
//!
//! Goals on a 2-core machine: status ≥ 30,000 reads/s at p99 ≤ 50 ms with at most 0.01
//! statements per read; proofs ≥ 5,000/s at p99 ≤ 50 ms; status with Redis flushed ≥ 5,000
//! reads/s, and after `cache warm` back at the warm figure; proof data ≤ 64 bytes per entrant.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use maskdraw::catalog::Catalog;
use maskdraw::config::Settings;
use maskdraw::day::{self, DayContext};
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

#[path = "common/mod.rs"]
mod common;
use common::day_setup::{self, exec};
use common::env_u64;
use common::load::{self, LoadRun};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident set size of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn redis_get_baseline() -> String {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-t",
            "get",
            "-n",
            "400000",
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

/// The server's counter of PostgreSQL statements run for status reads (reads that missed
/// Redis at the same moment share one).
async fn database_statements(client: &reqwest::Client, metrics: &str) -> u64 {
    let text = match client.get(metrics).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .find_map(|l| l.strip_prefix("maskdraw_status_database_statements_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Committed transactions of the bench's database so far (every statement the server runs is
/// its own transaction).
async fn transactions(admin: &DatabaseConnection, db_name: &str) -> i64 {
    admin
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT xact_commit AS n FROM pg_stat_database WHERE datname = '{db_name}'"),
        ))
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
}

async fn cache_complete(client: &reqwest::Client, readyz: &str) -> Option<bool> {
    let v: serde_json::Value = client.get(readyz).send().await.ok()?.json().await.ok()?;
    v["redis_cache_complete"].as_bool()
}

async fn wait_cache(client: &reqwest::Client, readyz: &str, complete: bool) {
    let start = Instant::now();
    while cache_complete(client, readyz).await != Some(complete) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server never saw the cache complete={complete}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cheap, fixed pseudo-random sequence (SplitMix64), so every run asks for the same tickets.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Connections of the generator: enough that a few slow answers do not hold the others up.
const CONNECTIONS: usize = 512;

struct Measured {
    name: &'static str,
    run: LoadRun,
    /// PostgreSQL statements per read: the server's own count, and the database's.
    server_per_read: f64,
    db_per_read: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("publication: bench");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("md_bench_pub_{}", &id[..12]);
    let root = std::env::temp_dir().join(format!("md-bench-pub-{}", &id[..12]));
    let settings = Settings {
        database_url: format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
        key_prefix: format!("mdbpub{}", &id[..12]),
        queue_prefix: format!("mdbpub{}.", &id[..12]),
        static_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
        snapshots_dir: root.join("snapshots"),
        exports_dir: root.join("exports"),
        keys_dir: root.join("keys"),
        ..Settings::default()
    };
    let admin = rt.block_on(async {
        let admin = Database::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("postgres");
        exec(&admin, &format!("CREATE DATABASE {db_name}"))
            .await
            .expect("create database");
        admin
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run(&settings, &db_name, &admin))
    }));
    rt.block_on(async {
        let _ = exec(
            &admin,
            &format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
        )
        .await;
        if let Ok(redis) = RedisStore::connect(&settings.redis_url, &settings.key_prefix) {
            let _ = redis.delete_all().await;
        }
        if let Ok(conn) = maskdraw::queue::broker::connect(&settings.amqp_url).await {
            if let Ok(ch) = conn.create_channel().await {
                for q in [settings.queue_name(), settings.dead_queue_name()] {
                    let _ = ch
                        .queue_delete(&q, lapin::options::QueueDeleteOptions::default())
                        .await;
                }
            }
        }
    });
    let _ = std::fs::remove_dir_all(&root);
    match outcome {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => std::process::exit(1),
        Ok(Err(e)) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
        Err(_) => std::process::exit(1),
    }
}

#[allow(clippy::too_many_lines)]
async fn run(
    settings: &Settings,
    db_name: &str,
    admin: &DatabaseConnection,
) -> Result<bool, String> {
    let n = env_u64("TICKETS", 2_000_000);
    let seconds = env_u64("SECONDS", 60);
    let status_rate = env_u64("STATUS_RATE", 30_000);
    let proof_rate = env_u64("PROOF_RATE", 5_000);
    let flushed_rate = env_u64("FLUSHED_RATE", 5_000);

    // ---------------------------------------------------------------- the published day
    maskdraw::startup::migrate_url(&settings.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let db = maskdraw::startup::connect_db(&settings.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let redis = RedisStore::connect(&settings.redis_url, &settings.key_prefix)
        .map_err(|e| e.to_string())?;
    let ctx = DayContext {
        settings: settings.clone(),
        db: db.clone(),
        redis: redis.clone(),
        catalog: Catalog::load(&settings.static_dir).map_err(|e| e.to_string())?,
        progress: false,
    };
    let tz = settings.tz().map_err(|e| e.to_string())?;
    // Drawn yesterday: published at 18:00 yesterday.
    let date = Utc::now().with_timezone(&tz).date_naive() - chrono::Duration::days(1);
    let cutoff = day::cutoff(settings, date).map_err(|e| e.to_string())?;
    println!(
        "== publication bench: {n} tickets drawn on {date} (cutoff {cutoff}), database {db_name}"
    );
    let t = Instant::now();
    let (inserted, _, _) =
        day_setup::load_tickets(&ctx, n, cutoff - chrono::Duration::hours(4)).await?;
    println!(
        "   loaded {inserted} tickets in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    println!(
        "   stock: {}",
        day_setup::import_stock(&ctx, date, n).await?
    );
    day::keys::keygen(&settings.keys_dir).map_err(|e| e.to_string())?;
    let key = day::keys::load(&settings.keys_dir).map_err(|e| e.to_string())?;
    let secret = [7u8; 16];
    let commits = day::seal::parse_commits(&[format!(
        "notary={}",
        hex::encode(lottery::text::commitment(&secret))
    )])
    .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let sealed = day::seal::seal(&ctx, date, &key, commits, &settings.snapshots_dir)
        .await
        .map_err(|e| format!("seal: {e:?}"))?;
    println!("   sealed in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let drawn = day::draw::draw(
        &ctx,
        date,
        &key,
        day::draw::parse_reveals(&[format!("notary={}", hex::encode(secret))])
            .map_err(|e| e.to_string())?,
        "dice 3 1 4 1 5 9 2 6".into(),
        &settings.exports_dir,
    )
    .await
    .map_err(|e| format!("draw: {e:?}"))?;
    println!(
        "   drawn in {:.1} s: {} winners, published at {}",
        t.elapsed().as_secs_f64(),
        drawn.outcome.winners.len(),
        drawn.publish_at
    );
    let entrants: Vec<String> = std::fs::read_to_string(sealed.dir.join("entrants.csv"))
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| l[..26].to_string())
        .collect();
    let tiles_bytes = std::fs::metadata(sealed.dir.join("entrants.tiles"))
        .map(|m| m.len())
        .unwrap_or(0);

    // ---------------------------------------------------------------- the server
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())
    };
    let (port, admin_port) = (free_port()?, free_port()?);
    let abs = |p: &std::path::Path| p.display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("MASKDRAW_DATABASE_URL", settings.database_url.clone()),
        ("MASKDRAW_BIND", format!("127.0.0.1:{port}")),
        ("MASKDRAW_ADMIN_BIND", format!("127.0.0.1:{admin_port}")),
        ("MASKDRAW_KEY_PREFIX", settings.key_prefix.clone()),
        ("MASKDRAW_QUEUE_PREFIX", settings.queue_prefix.clone()),
        ("MASKDRAW_STATIC_DIR", abs(&settings.static_dir)),
        ("MASKDRAW_SNAPSHOTS_DIR", abs(&settings.snapshots_dir)),
        ("MASKDRAW_KEYS_DIR", abs(&settings.keys_dir)),
        // One generator address asks for everything: the per-client limits would be the
        // bottleneck, not the read path.
        ("MASKDRAW_STATUS_RATE_PER_SEC", "1000000".into()),
        ("MASKDRAW_PROOF_RATE_PER_SEC", "1000000".into()),
        // The flushed run must measure PostgreSQL, not a warm the server starts by itself.
        ("MASKDRAW_AUTO_WARM", "false".into()),
        ("MASKDRAW_ENVIRONMENT", "development".into()),
    ];
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_maskdraw"))
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting maskdraw serve: {e}"))?,
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    // Readiness details and metrics are on the operator listener.
    let admin_base = format!("http://127.0.0.1:{admin_port}");
    let (readyz, metrics) = (
        format!("{admin_base}/readyz"),
        format!("{admin_base}/metrics"),
    );
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(&readyz).send().await.is_err() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .map_err(|e| format!("{e}"))?;

    // The draw wrote outcomes into Redis but the tickets themselves were loaded straight into
    // PostgreSQL: one warm gives Redis every status, as intake and the persister would have.
    let t = Instant::now();
    let first_warm = maskdraw::cache::warm::warm(settings, &db, &redis)
        .await
        .map_err(|e| format!("warm: {e:?}"))?;
    println!(
        "   first cache warm: {:.1} s ({} statuses)",
        t.elapsed().as_secs_f64(),
        first_warm.tickets
    );
    wait_cache(&client, &readyz, true).await;

    // PAUSE=<seconds>: leave the set-up running for a look with other tools.
    let pause = env_u64("PAUSE", 0);
    if pause > 0 {
        println!(
            "   pausing {pause} s: {base}/api/v1/reservations/{}/proof?date={date}",
            entrants[entrants.len() / 2]
        );
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }

    println!("== baseline: redis-benchmark -t get -n 400000 -c 50");
    let baseline = redis_get_baseline();
    println!("   {baseline}");

    let unknown = |i: u64| {
        // Well formed, accepted within the last ten days, and never issued.
        let ms = Utc::now().timestamp_millis() as u64 - mix(i) % (10 * 86_400_000);
        ulid::Ulid::from_parts(ms, u128::from(mix(i ^ 0xDEAD)) << 16).to_string()
    };
    let status_request = |i: u64| {
        let ticket = if i % 10 == 0 {
            unknown(i)
        } else {
            entrants[(mix(i) % entrants.len() as u64) as usize].clone()
        };
        load::get(addr, &format!("/api/v1/reservations/{ticket}"), "")
    };
    let proof_request = |i: u64| {
        let ticket = &entrants[(mix(i + 7) % entrants.len() as u64) as usize];
        load::get(
            addr,
            &format!("/api/v1/reservations/{ticket}/proof?date={date}"),
            "",
        )
    };
    let measure = |name: &'static str, rate: u64, proofs: bool| {
        let client = client.clone();
        let metrics = metrics.clone();
        async move {
            // Warm-up with the same kind of request: connections, caches, the day's proofs.
            let _ = if proofs {
                load::open_model(
                    addr,
                    CONNECTIONS,
                    rate.max(100),
                    rate,
                    |i| proof_request(i + 1_000_000_000),
                    &[200],
                    |_, _| None,
                )
                .await
            } else {
                load::open_model(
                    addr,
                    CONNECTIONS,
                    rate.max(100),
                    rate,
                    |i| status_request(i + 1_000_000_000),
                    &[200, 404],
                    |_, _| None,
                )
                .await
            };
            let reads0 = database_statements(&client, &metrics).await;
            let tx0 = transactions(admin, db_name).await;
            let total = rate * seconds;
            let run = if proofs {
                load::open_model(
                    addr,
                    CONNECTIONS,
                    total,
                    rate,
                    proof_request,
                    &[200],
                    |_, _| None,
                )
                .await
            } else {
                load::open_model(
                    addr,
                    CONNECTIONS,
                    total,
                    rate,
                    status_request,
                    &[200, 404],
                    |_, _| None,
                )
                .await
            };
            let reads = database_statements(&client, &metrics).await - reads0;
            let tx = transactions(admin, db_name).await - tx0;
            let answered = run.latencies_us.len().max(1) as f64;
            println!("   {}", run.summary());
            Measured {
                name,
                server_per_read: reads as f64 / answered,
                db_per_read: tx as f64 / answered,
                run,
            }
        }
    };

    // PHASES picks some of the loads (all by default), e.g. `PHASES=flushed,after` after a
    // change to the read path, without the others' four minutes.
    let phases = std::env::var("PHASES").unwrap_or_else(|_| "proofs,warm,flushed,after".into());
    let wanted = |p: &str| phases.split(',').any(|x| x.trim() == p);
    let mut proofs = None;
    let mut warm = None;
    let mut flushed = None;
    let mut after = None;
    let mut warm_secs = None;
    if wanted("proofs") {
        println!("== 2. proofs: {proof_rate}/s for {seconds} s");
        proofs = Some(measure("proofs", proof_rate, true).await);
    }
    if wanted("warm") {
        println!("== 1. status, Redis warm: {status_rate}/s for {seconds} s (10% unknown ids)");
        warm = Some(measure("status, Redis warm", status_rate, false).await);
    }
    if wanted("flushed") {
        println!(
            "== 3. status right after this deployment's Redis keys are flushed: {flushed_rate}/s"
        );
        redis.delete_all().await.map_err(|e| e.to_string())?;
        wait_cache(&client, &readyz, false).await;
        flushed = Some(measure("status, Redis flushed", flushed_rate, false).await);
    }
    if wanted("after") {
        println!("== 4. cache warm, then status again at {status_rate}/s");
        let t = Instant::now();
        let rewarm = maskdraw::cache::warm::warm(settings, &db, &redis)
            .await
            .map_err(|e| format!("warm: {e:?}"))?;
        warm_secs = Some((t.elapsed().as_secs_f64(), rewarm.tickets));
        println!("   {rewarm}");
        wait_cache(&client, &readyz, true).await;
        after = Some(measure("status, after cache warm", status_rate, false).await);
    }

    let rss = peak_rss_mib(pid);
    drop(server);

    // ---------------------------------------------------------------- report
    println!(
        "== summary ({n} entrants, {seconds} s per load, machine: {} cores)",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("   baseline redis-benchmark -t get: {baseline}");
    println!(
        "   | load | offered/s | answered/s | p50 ms | p99 ms | PG statements/read (server) | PG transactions/read (database) |"
    );
    let ran: Vec<&Measured> = [&warm, &proofs, &flushed, &after]
        .into_iter()
        .flatten()
        .collect();
    for m in &ran {
        println!(
            "   | {} | {} | {:.0} | {:.1} | {:.1} | {:.4} | {:.4} |",
            m.name,
            m.run.offered / seconds,
            m.run.rate(),
            m.run.ms(0.5),
            m.run.ms(0.99),
            m.server_per_read,
            m.db_per_read
        );
    }
    if let Some((secs, tickets)) = warm_secs {
        println!("   cache warm of {tickets} statuses: {secs:.1} s");
    }
    println!("   peak RSS of the server: {rss:.0} MiB");
    let per_entrant = tiles_bytes as f64 / n as f64;
    println!(
        "   proof data (entrants.tiles): {tiles_bytes} bytes, {per_entrant:.2} bytes per entrant"
    );

    // A rate is sustained when at least that much was offered and every request answered
    // (answered/s over the run's wall time is a little lower: it includes the last answers'
    // way back).
    let sustained = |m: &Measured, rate: f64| {
        m.run.offered as f64 / seconds as f64 >= rate
            && m.run.latencies_us.len() as u64 == m.run.offered
    };
    let mut goals: Vec<(&str, bool)> = Vec::new();
    if let Some(w) = &warm {
        goals.push((
            "status ≥ 30,000 reads/s at p99 ≤ 50 ms, ≤ 0.01 statements per read",
            sustained(w, 30_000.0) && w.run.ms(0.99) <= 50.0 && w.db_per_read <= 0.01,
        ));
    }
    if let Some(p) = &proofs {
        goals.push((
            "proofs ≥ 5,000/s at p99 ≤ 50 ms",
            sustained(p, 5_000.0) && p.run.ms(0.99) <= 50.0,
        ));
    }
    if let Some(f) = &flushed {
        goals.push((
            "status with Redis flushed ≥ 5,000 reads/s",
            sustained(f, 5_000.0),
        ));
    }
    if let Some(a) = &after {
        goals.push((
            "after cache warm back at the warm figure",
            sustained(a, status_rate as f64) && a.run.ms(0.99) <= 50.0,
        ));
    }
    goals.push(("proof data ≤ 64 bytes per entrant", per_entrant <= 64.0));
    for (what, ok) in goals {
        println!("   goal: {what}: {}", if ok { "met" } else { "MISSED" });
    }
    // Every answer was a 200 or a 404 (a 5xx or a transport error is a failure of the run).
    let clean = ran.iter().all(|m| {
        m.run.transport_errors.is_empty() && m.run.by_status.keys().all(|s| *s == 200 || *s == 404)
    });
    if !clean {
        println!("   some answers were neither 200 nor 404 (see the statuses above)");
    }
    Ok(clean)
}
