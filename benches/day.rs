//! The officials' day at scale (issue 4, point 9): seal and draw with TICKETS registered
//! tickets in PostgreSQL, side by side with
//! (a) `COPY (SELECT ...) TO STDOUT` of the same rows into a file: the floor for reading them
//!     out in seal order, and
//! (c) the draw done in SQL with `row_number() OVER (PARTITION BY pharmacy_id, product_id
//!     ORDER BY random())`: what most teams would write (roll one only).
//!
//! Goals: seal within 2× the COPY; the lottery on the sealed directory at least 10× faster
//! than the SQL draw.
//!
//!   cargo bench --bench day                  # 2,000,000 tickets
//!   TICKETS=100000 cargo bench --bench day
//!
//! Everything runs on an isolated database `md_bench_day_<rand>` and Redis key prefix, which
//! are removed at the end (also after a failure). It exits non-zero when a check fails.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Utc;
use futures_util::TryStreamExt;
use maskdraw::catalog::Catalog;
use maskdraw::config::Settings;
use maskdraw::day::{self, DayContext};
use maskdraw::store::redis::{RedisStore, Settle};
use sea_orm::sqlx::{self, postgres::PgPoolCopyExt};
use sea_orm::{Database, DatabaseConnection};
use sha2::{Digest, Sha256};

#[path = "common/mod.rs"]
mod common;
use common::day_setup::{self, exec};
use common::env_u64;

/// The largest VmHWM seen before a reset, in KiB.
static PEAK_KIB: AtomicU64 = AtomicU64::new(0);

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// Peak resident set size of this process since the last [`reset_peak`], in MiB.
fn peak_rss_mib() -> f64 {
    vm_hwm_kib() as f64 / 1024.0
}

/// Peak resident set size over the whole run, in MiB.
fn overall_peak_mib() -> f64 {
    PEAK_KIB.load(Ordering::Relaxed).max(vm_hwm_kib()) as f64 / 1024.0
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so the next reading is one step's peak;
/// the peak so far is kept for [`overall_peak_mib`].
fn reset_peak() {
    PEAK_KIB.fetch_max(vm_hwm_kib(), Ordering::Relaxed);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One measured step for the summary.
struct Step {
    name: String,
    secs: f64,
    peak_mib: f64,
}

#[derive(Default)]
struct Figures {
    steps: Vec<Step>,
    notes: Vec<String>,
    ok: bool,
}

impl Figures {
    fn add(&mut self, name: &str, secs: f64, peak_mib: f64) {
        if peak_mib > 0.0 {
            println!("   {name}: {secs:.2} s (peak RSS of this process {peak_mib:.0} MiB)");
        } else {
            println!("   {name}: {secs:.2} s (runs in the server)");
        }
        self.steps.push(Step {
            name: name.to_string(),
            secs,
            peak_mib,
        });
    }
}

struct Env {
    db_name: String,
    settings: Settings,
    root: PathBuf,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("day: bench");
        return;
    }
    let tickets = env_u64("TICKETS", 2_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("md_bench_day_{}", &id[..12]);
    let settings = Settings {
        database_url: format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
        key_prefix: format!("mdbday{}", &id[..12]),
        queue_prefix: format!("mdbday{}.", &id[..12]),
        static_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
        ..Settings::default()
    };
    let env = Env {
        db_name,
        settings,
        root: std::env::temp_dir().join(format!("md-bench-day-{}", &id[..12])),
    };
    let admin = rt.block_on(async {
        let admin = Database::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("postgres");
        exec(&admin, &format!("CREATE DATABASE {}", env.db_name))
            .await
            .expect("create database");
        admin
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run(&env, tickets))
    }));
    rt.block_on(cleanup(&env, &admin));
    match outcome {
        Ok(Ok(f)) if f.ok => {}
        Ok(Ok(_)) => {
            eprintln!("a check FAILED (see above)");
            std::process::exit(1);
        }
        Ok(Err(e)) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
        Err(_) => std::process::exit(1),
    }
}

async fn cleanup(env: &Env, admin: &DatabaseConnection) {
    println!("== cleanup");
    let _ = exec(
        admin,
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", env.db_name),
    )
    .await;
    println!("   dropped database {}", env.db_name);
    let mut deleted = 0u64;
    if let Ok(store) = RedisStore::connect(&env.settings.redis_url, &env.settings.key_prefix) {
        if let Ok(mut conn) = store.connection().await {
            let pattern = format!("{}*", env.settings.key_prefix);
            let mut cursor: u64 = 0;
            loop {
                let Ok((next, keys)): Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(10_000)
                    .query_async(&mut conn)
                    .await
                else {
                    break;
                };
                if !keys.is_empty() {
                    deleted += keys.len() as u64;
                    let _: Result<u64, _> =
                        redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
    }
    println!(
        "   deleted {deleted} Redis key(s) under {}* (no RabbitMQ queue was declared: the seal and the draw do not use the broker)",
        env.settings.key_prefix
    );
    let _ = std::fs::remove_dir_all(&env.root);
    println!("   removed {}", env.root.display());
}

#[allow(clippy::too_many_lines)]
async fn run(env: &Env, n: u64) -> Result<Figures, String> {
    let mut fig = Figures {
        ok: true,
        ..Figures::default()
    };
    let settings = &env.settings;
    let root = &env.root;
    std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
    let db = maskdraw::startup::connect_db(&settings.database_url)
        .await
        .map_err(|e| e.to_string())?;
    maskdraw::startup::migrate(&db)
        .await
        .map_err(|e| e.to_string())?;
    let pg = db.get_postgres_connection_pool().clone();
    let ctx = DayContext {
        settings: settings.clone(),
        db: db.clone(),
        redis: RedisStore::connect(&settings.redis_url, &settings.key_prefix)
            .map_err(|e| e.to_string())?,
        catalog: Catalog::load(&settings.static_dir).map_err(|e| e.to_string())?,
        progress: false,
    };
    let tz = settings.tz().map_err(|e| e.to_string())?;
    let today = Utc::now().with_timezone(&tz).date_naive();
    // Tomorrow + 1: its cutoff (22:00 tomorrow) is ahead of now, so every ticket is in.
    let date = today + chrono::Duration::days(2);
    let cutoff = day::cutoff(settings, date).map_err(|e| e.to_string())?;
    let cooling_from = date - chrono::Duration::days(i64::from(settings.cooldown_days));
    let ttl = u64::from(settings.validity_days + settings.cooldown_days + 30) * 86_400;

    println!(
        "== maskdraw day bench: {n} tickets, draw date {date}, cutoff {cutoff}, database {}",
        env.db_name
    );
    println!(
        "   machine: {} cores; PostgreSQL {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        pg_setting(&pg, "server_version").await
    );
    println!(
        "   PostgreSQL settings: shared_buffers {}, work_mem {}, max_parallel_workers_per_gather {}",
        pg_setting(&pg, "shared_buffers").await,
        pg_setting(&pg, "work_mem").await,
        pg_setting(&pg, "max_parallel_workers_per_gather").await
    );

    // ---------------------------------------------------------------- load
    println!("== load: {n} registered tickets with INSERT ... SELECT FROM generate_series");
    let (inserted, insert_secs, vacuum_secs) =
        day_setup::load_tickets(&ctx, n, Utc::now() - chrono::Duration::hours(4)).await?;
    println!(
        "   inserted {inserted} rows in {insert_secs:.2} s ({:.0} rows/s); VACUUM (ANALYZE) tickets {vacuum_secs:.2} s \
         (sets hint bits and the visibility map, so no measured step pays for the bulk load)",
        inserted as f64 / insert_secs
    );
    fig.notes.push(format!(
        "load: {inserted} rows in {insert_secs:.1} s ({:.0} rows/s) + VACUUM ANALYZE {vacuum_secs:.1} s",
        inserted as f64 / insert_secs
    ));
    let table_mib = pg_scalar_i64(&pg, "SELECT pg_total_relation_size('tickets') / 1048576").await;
    println!("   tickets table with its indexes: {table_mib} MiB");

    // ---------------------------------------------------------------- stock
    println!("== stock for {date}: about 5% of tickets in packs, some pools at 0, some generous");
    println!("   {}", day_setup::import_stock(&ctx, date, n).await?);

    let keys = root.join("keys");
    day::keys::keygen(&keys).map_err(|e| e.to_string())?;
    let key = day::keys::load(&keys).map_err(|e| e.to_string())?;
    let snapshots = root.join("snapshots");
    let secret = [7u8; 16];
    let commits = day::seal::parse_commits(&[format!(
        "notary={}",
        hex::encode(lottery::text::commitment(&secret))
    )])
    .map_err(|e| e.to_string())?;
    let reveals = day::draw::parse_reveals(&[format!("notary={}", hex::encode(secret))])
        .map_err(|e| e.to_string())?;
    let material = "dice 3 1 4 1 5 9 2 6".to_string();

    // ---------------------------------------------------------------- (a) COPY
    println!("== (a) COPY (SELECT ... eligible ... ORDER BY ticket_id COLLATE \"C\") TO STDOUT into a file");
    let copy_sql = format!(
        "COPY (SELECT t.ticket_id, t.pharmacy_id, t.product_id, t.flexible, t.person_tag FROM tickets t \
         WHERE {} ORDER BY t.ticket_id COLLATE \"C\") TO STDOUT WITH (FORMAT csv)",
        maskdraw::store::day::eligible(cutoff, cooling_from)
    );
    let copy_path = root.join("copy.csv");
    reset_peak();
    let t = Instant::now();
    let mut copied_lines = 0u64;
    let mut copied_bytes = 0u64;
    {
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&copy_path).map_err(|e| e.to_string())?,
        );
        let mut stream = pg
            .copy_out_raw(copy_sql.as_str())
            .await
            .map_err(|e| e.to_string())?;
        while let Some(chunk) = stream.try_next().await.map_err(|e| e.to_string())? {
            copied_lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            copied_bytes += chunk.len() as u64;
            out.write_all(&chunk).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
        out.get_ref().sync_all().map_err(|e| e.to_string())?;
    }
    let copy_secs = t.elapsed().as_secs_f64();
    fig.add("(a) COPY to a file", copy_secs, peak_rss_mib());
    println!(
        "   {copied_lines} rows, {:.1} MiB (written and fsynced, like entrants.csv)",
        copied_bytes as f64 / 1048576.0
    );
    check(&mut fig, copied_lines == n, "COPY returned every ticket");

    // ---------------------------------------------------------------- (b) seal
    println!("== (b) maskdraw::day::seal::seal (expire, stream, hash, write, sign, record)");
    reset_peak();
    let t = Instant::now();
    let sealed = day::seal::seal(&ctx, date, &key, commits, &snapshots)
        .await
        .map_err(|e| format!("seal: {e} ({e:?})"))?;
    let seal_secs = t.elapsed().as_secs_f64();
    fig.add("(b) seal", seal_secs, peak_rss_mib());
    println!(
        "   {} entrants, {} pools, seal id {}; seal/COPY = {:.2}× (goal ≤ 2×)",
        sealed.entrants,
        sealed.pools,
        sealed.seal_id,
        seal_secs / copy_secs
    );
    check(
        &mut fig,
        sealed.entrants == n,
        &format!("the seal holds every ticket ({} = {n})", sealed.entrants),
    );
    let dir = sealed.dir.clone();
    let entrants_mib =
        std::fs::metadata(dir.join("entrants.csv")).map_or(0, |m| m.len()) as f64 / 1048576.0;
    println!("   entrants.csv {entrants_mib:.1} MiB");

    // ---------------------------------------------------------------- (c) SQL draw
    println!("== (c) the draw in SQL: row_number() OVER (PARTITION BY pharmacy_id, product_id ORDER BY random())");
    println!("   (roll one only: no spill roll, no seed, nothing anybody can re-run; it does less than our draw)");
    let sql_draw = format!(
        "CREATE TEMP TABLE sql_winners AS \
         SELECT r.ticket_id, r.pharmacy_id, r.product_id \
         FROM (SELECT t.ticket_id, t.pharmacy_id, t.product_id, \
                      row_number() OVER (PARTITION BY t.pharmacy_id, t.product_id ORDER BY random()) AS rn \
               FROM tickets t WHERE {}) r \
         JOIN daily_stock s ON s.draw_date = DATE '{date}' AND s.pharmacy_id = r.pharmacy_id \
                           AND s.product_id = r.product_id \
         WHERE r.rn <= s.packs",
        maskdraw::store::day::eligible(cutoff, cooling_from)
    );
    let mut conn = pg.acquire().await.map_err(|e| e.to_string())?;
    let mut sql_runs = Vec::new();
    for (label, work_mem) in [
        ("(c) SQL draw, work_mem default", None),
        ("(c') SQL draw, work_mem 256MB", Some("256MB")),
    ] {
        if let Some(w) = work_mem {
            sqlx::raw_sql(&format!("SET work_mem = '{w}'"))
                .execute(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        let t = Instant::now();
        sqlx::raw_sql(&sql_draw)
            .execute(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        let winners: i64 = sqlx::query_scalar("SELECT count(*) FROM sql_winners")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql("DROP TABLE sql_winners; RESET work_mem")
            .execute(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        fig.add(label, secs, 0.0);
        println!("   {winners} roll-one winners");
        sql_runs.push((secs, winners));
    }
    drop(conn);

    // ---------------------------------------------------------------- (d1) lottery alone
    println!(
        "== (d1) the lottery on the sealed directory, as `maskdraw draw` runs it: verify_dir_scanned (seal.sig \
         with the authority key, stock.csv against seal.txt, entrants.csv's grammar, order, unique tags, pools, \
         count, and its SHA-256 against the one the seal recorded; one parallel pass that is also the draw's \
         input), both rolls (draw_scanned), result.csv, pools.csv, spill.csv, draw.txt and draw.sig written"
    );
    // A copy of the sealed directory (hard links), so that (d2) later finds it undrawn.
    let scratch = root.join("d1");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    for f in ["entrants.csv", "stock.csv", "seal.txt", "seal.sig"] {
        std::fs::hard_link(dir.join(f), scratch.join(f)).map_err(|e| e.to_string())?;
    }
    let read_small = |name: &str| std::fs::read(dir.join(name)).map_err(|e| e.to_string());
    let seed_of = |seal: &lottery::text::SealText| {
        lottery::text::SeedText {
            seal_id: seal.seal_id(),
            reveals: reveals.clone(),
            material: material.clone(),
        }
        .seed()
    };
    // What `maskdraw draw` reads from the seal's row before it starts.
    let recorded_sha256: [u8; 32] = maskdraw::store::day::seal(&db, date)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|s| s.entrants_sha256)
        .and_then(|h| hex::decode(h).ok())
        .and_then(|v| v.try_into().ok())
        .ok_or("the seal recorded no entrants.csv digest")?;
    reset_peak();
    let t = Instant::now();
    // [verify and scan, draw and write]
    let d1_split: [f64; 2];
    let (d1_result, d1_pools) = {
        let seal = lottery::text::SealText::parse(
            &std::fs::read(scratch.join("seal.txt")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let (report, scanned) = lottery::verify::verify_dir_scanned(
            &scratch,
            &key.verifying_key(),
            None,
            &lottery::verify::EntrantsCheck::FileSha256(recorded_sha256),
            &lottery::NoProgress,
        );
        let scanned = match scanned {
            Some(s) if report.all_passed() => s,
            _ => return Err(format!("verify of the sealed directory failed:\n{report}")),
        };
        let t1 = t.elapsed().as_secs_f64();
        let (_, o) = lottery::dir::write_draw_scanned(
            &scratch,
            &scanned.entrants,
            &scanned.stock,
            &seal,
            reveals.clone(),
            material.clone(),
            &key,
        )
        .map_err(|e| e.to_string())?;
        d1_split = [t1, t.elapsed().as_secs_f64() - t1];
        (o.result_csv, o.pools_csv)
    };
    let d1_secs = t.elapsed().as_secs_f64();
    fig.add("(d1) lottery on the directory", d1_secs, peak_rss_mib());
    println!(
        "   verify_dir_scanned (signature, stock, entrants.csv parsed on both cores and hashed on the reader thread, duplicate tags) {:.2} s; \
         both rolls and the five files {:.2} s",
        d1_split[0], d1_split[1]
    );
    let scratch = root.join("d1-parse");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;

    println!("== (d1') for reference, the lottery through parse_entrants (a Vec<Entrant>, one core) + lottery::draw::draw");
    reset_peak();
    let t = Instant::now();
    let parsed_result = {
        let bytes = std::fs::read(dir.join("entrants.csv")).map_err(|e| e.to_string())?;
        let entrants = lottery::snapshot::parse_entrants(&bytes).map_err(|e| e.to_string())?;
        drop(bytes);
        let stock =
            lottery::snapshot::parse_stock(&read_small("stock.csv")?).map_err(|e| e.to_string())?;
        let seal =
            lottery::text::SealText::parse(&read_small("seal.txt")?).map_err(|e| e.to_string())?;
        let o =
            lottery::draw::draw(&entrants, &stock, &seed_of(&seal)).map_err(|e| e.to_string())?;
        for (f, b) in [
            ("result.csv", &o.result_csv),
            ("pools.csv", &o.pools_csv),
            ("spill.csv", &o.spill_csv),
        ] {
            std::fs::write(scratch.join(f), b).map_err(|e| e.to_string())?;
        }
        o.result_csv
    };
    let d1p_secs = t.elapsed().as_secs_f64();
    fig.add(
        "(d1') lottery, parse_entrants path",
        d1p_secs,
        peak_rss_mib(),
    );
    check(
        &mut fig,
        parsed_result == d1_result,
        "both lottery paths give the same result.csv",
    );

    // ---------------------------------------------------------------- (d2) full draw
    println!("== (d2) maskdraw::day::draw::draw (verify, both rolls, record winners in PostgreSQL and Redis, exports)");
    let exports = root.join("exports");
    reset_peak();
    let t = Instant::now();
    let drawn = day::draw::draw(
        &ctx,
        date,
        &key,
        reveals.clone(),
        material.clone(),
        &exports,
    )
    .await
    .map_err(|e| format!("draw: {e} ({e:?})"))?;
    let d2_secs = t.elapsed().as_secs_f64();
    fig.add("(d2) full officials' draw", d2_secs, peak_rss_mib());
    let roll1 = drawn
        .outcome
        .winners
        .iter()
        .filter(|w| w.roll.number() == 1)
        .count();
    let roll2 = drawn.outcome.winners.len() - roll1;
    println!(
        "   {} winners ({roll1} in the pool roll, {roll2} in the spill roll) of {} entrants; {} spill group(s)",
        drawn.outcome.winners.len(),
        drawn.entrants,
        drawn.outcome.spill.len()
    );

    // ---------------------------------------------------------------- checks
    println!("== checks");
    let result = std::fs::read(dir.join("result.csv")).map_err(|e| e.to_string())?;
    let pools_csv = std::fs::read(dir.join("pools.csv")).map_err(|e| e.to_string())?;
    check(
        &mut fig,
        result == d1_result && pools_csv == d1_pools,
        "the full draw wrote the same result.csv and pools.csv as (d1)",
    );
    check(
        &mut fig,
        sql_runs.iter().all(|&(_, w)| w as usize == roll1),
        &format!(
            "the SQL draw picked as many roll-one winners as ours ({roll1}: min(packs, entrants) per pool)"
        ),
    );
    let t = Instant::now();
    let report = lottery::verify::verify_dir(&dir, &key.verifying_key(), None);
    let verify_drawn_secs = t.elapsed().as_secs_f64();
    let failed: Vec<String> = report.failures().map(|c| c.name.to_string()).collect();
    check(
        &mut fig,
        report.all_passed(),
        &format!(
            "lottery::verify::verify_dir on the drawn directory: {} checks, {} failed {failed:?} ({verify_drawn_secs:.2} s)",
            report.checks.len(),
            failed.len()
        ),
    );
    let recorded = pg_scalar_i64(
        &pg,
        &format!("SELECT count(*) FROM draw_winners WHERE draw_date = DATE '{date}'"),
    )
    .await;
    check(
        &mut fig,
        recorded as usize == drawn.outcome.winners.len(),
        &format!("{recorded} winners recorded in PostgreSQL"),
    );
    let entries = pg_scalar_i64(
        &pg,
        &format!("SELECT count(*) FROM draw_entries WHERE draw_date = DATE '{date}'"),
    )
    .await;
    check(
        &mut fig,
        entries as u64 == n,
        &format!("{entries} draw_entries recorded by the draw"),
    );

    // ---------------------------------------------------------------- where the time goes
    println!("== where the time goes (each part re-run on its own after the measured steps)");
    let mut parts: Vec<(String, f64)> = Vec::new();
    let expire_secs;
    let client_cpu_secs;
    // Seal, database side: the expire statement in a transaction that is rolled back. (The
    // seal's row stream is the COPY of (a), which it now is.)
    {
        let mut tx = pg.begin().await.map_err(|e| e.to_string())?;
        sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        sqlx::query("UPDATE tickets SET status = 'expired' WHERE status = 'registered' AND valid_until <= $1 RETURNING ticket_id, person_tag")
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        expire_secs = t.elapsed().as_secs_f64();
        parts.push((
            "seal: expire (UPDATE through the partial index tickets_registered_until, 0 rows)"
                .into(),
            expire_secs,
        ));
        tx.rollback().await.map_err(|e| e.to_string())?;
    }
    // Seal, client side: what the seal's writer thread does per line, minus the file write.
    {
        let bytes = std::fs::read(dir.join("entrants.csv")).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let mut tree = lottery::merkle::MerkleStream::new();
        let mut pools = std::collections::HashSet::new();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let e = lottery::snapshot::Entrant::parse_line(line).map_err(|e| e.to_string())?;
            tree.push(line);
            pools.insert((e.pharmacy_id, e.product_id));
        }
        let _ = tree.root();
        let _ = Sha256::digest(&bytes);
        client_cpu_secs = t.elapsed().as_secs_f64();
        parts.push((
            "seal: the writer thread's CPU (parse_line + leaf and node hashes + pool set + file SHA-256), one core".into(),
            client_cpu_secs,
        ));
    }
    // Draw: its parts.
    let mut draw_parts = 0.0;
    {
        draw_parts += d1_secs;
        parts.push((
            format!(
                "draw: the lottery part (= d1: verify_dir_scanned {:.2}, rolls and files {:.2})",
                d1_split[0], d1_split[1]
            ),
            d1_secs,
        ));
        let winner_ids: Vec<String> = drawn
            .outcome
            .winners
            .iter()
            .map(|w| w.ticket_id.to_string())
            .collect();
        let t = Instant::now();
        let idents = maskdraw::store::day::ticket_identities(&db, &winner_ids)
            .await
            .map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        draw_parts += secs;
        parts.push((
            format!(
                "draw: ticket_identities of the winners ({} rows, = ANY($1) in chunks of 50,000)",
                idents.len()
            ),
            secs,
        ));
        // Redis on a probe prefix (removed with the rest at cleanup).
        let probe = RedisStore::connect(
            &settings.redis_url,
            &format!("{}probe", settings.key_prefix),
        )
        .map_err(|e| e.to_string())?;
        let settle: Vec<Settle> = winner_ids
            .iter()
            .map(|t| Settle {
                person_tag: idents.get(t).map(|v| v.1.clone()).unwrap_or_default(),
                ticket: t.clone(),
                status: "won",
                cooldown: Some(("2099-01-01".into(), 86_400)),
                draw_field: Some((format!("draw:{date}"), "won|X|Y|Z|1".into())),
            })
            .collect();
        let t = Instant::now();
        probe
            .settle(&settle, ttl)
            .await
            .map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        draw_parts += secs;
        parts.push((
            format!(
                "draw: Redis settle of the winners ({} Lua calls + 3 commands each)",
                settle.len()
            ),
            secs,
        ));
        let won: std::collections::HashSet<&str> = winner_ids.iter().map(String::as_str).collect();
        let t = Instant::now();
        let entrants_bytes = std::fs::read(dir.join("entrants.csv")).map_err(|e| e.to_string())?;
        let losers: Vec<String> = entrants_bytes
            .split(|&b| b == b'\n')
            .filter(|l| l.len() >= 26)
            .map(|l| String::from_utf8_lossy(&l[..26]).into_owned())
            .filter(|t| !won.contains(t.as_str()))
            .collect();
        let losers_list_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        probe
            .record_outcome(&losers, &format!("draw:{date}"), "lost")
            .await
            .map_err(|e| e.to_string())?;
        let redis_losers = t.elapsed().as_secs_f64();
        parts.push((
            format!(
                "draw: Redis record_outcome of the losers ({} tickets, one HSET each, one connection: {:.0} commands/s)",
                losers.len(),
                losers.len() as f64 / redis_losers
            ),
            redis_losers,
        ));
        // record_draw for a probe date (its rows are deleted again): the winners by COPY and
        // the UPDATE of their tickets.
        let probe_date = date + chrono::Duration::days(3000);
        sqlx::query("INSERT INTO seals (draw_date, seal_id, previous, cutoff, entrants, entrants_root, stock_sha256, seal_txt, dir) VALUES ($1, 'probe-record', $3, $2, 0, '', '', '', '')")
            .bind(probe_date)
            .bind(cutoff)
            .bind(&sealed.seal_id)
            .execute(&pg)
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<maskdraw::store::day::WinnerRow> = drawn
            .outcome
            .winners
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let t = w.ticket_id.to_string();
                let (masked, tag) = idents.get(&t).cloned().unwrap_or_default();
                maskdraw::store::day::WinnerRow {
                    ticket_id: t,
                    pharmacy_id: w.pharmacy_id.to_string(),
                    product_id: w.product_id.to_string(),
                    roll: i16::from(w.roll.number()),
                    // Unique and unlike the real codes (which are random Crockford base32).
                    pickup_code: format!("U{i:09}"),
                    masked_id: masked,
                    person_tag: tag,
                }
            })
            .collect();
        let entrant_values: Vec<u128> = entrants_bytes
            .split(|&b| b == b'\n')
            .filter(|l| l.len() >= 26)
            .map(|l| lottery::snapshot::TicketId::parse(&l[..26]).map(|t| t.to_u128()))
            .collect::<Result<_, _>>()?;
        let t = Instant::now();
        maskdraw::store::day::record_draw(
            &db,
            probe_date,
            &"0".repeat(64),
            "probe",
            Utc::now(),
            &entrant_values,
            &rows,
        )
        .await
        .map_err(|e| e.to_string())?;
        let secs = t.elapsed().as_secs_f64();
        // The draw runs record_draw and the losers' record_outcome concurrently.
        draw_parts += secs.max(redis_losers);
        parts.push((
            format!(
                "draw: record_draw ({} entries and {} winners by COPY + UPDATE tickets SET status = 'won'; \
                 in the draw it runs beside the losers' record_outcome, so only the longer of the two counts)",
                entrant_values.len(),
                rows.len()
            ),
            secs,
        ));
        sqlx::raw_sql(&format!(
            "DELETE FROM draw_entries WHERE draw_date = DATE '{probe_date}'; \
             DELETE FROM draw_winners WHERE draw_date = DATE '{probe_date}'; \
             DELETE FROM draws WHERE draw_date = DATE '{probe_date}'; \
             DELETE FROM seals WHERE draw_date = DATE '{probe_date}'"
        ))
        .execute(&pg)
        .await
        .map_err(|e| e.to_string())?;
        let rest = d2_secs - draw_parts;
        parts.push((
            format!(
                "draw: the rest (listing the losers, ~{losers_list_secs:.2} s here; pickup codes; exports; reading seal.txt), by difference{}",
                if rest < 0.0 { " (negative: the parts re-run alone took longer than inside the draw; noise of this shared machine)" } else { "" }
            ),
            rest,
        ));
        let t = Instant::now();
        let mut tasks = Vec::new();
        let per = losers.len().div_ceil(4).max(1);
        for chunk in losers.chunks(per) {
            let (store, chunk, field) = (probe.clone(), chunk.to_vec(), format!("draw:{date}"));
            tasks.push(tokio::spawn(async move {
                store.record_outcome(&chunk, &field, "lost").await
            }));
        }
        for task in tasks {
            task.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        let redis_losers_4 = t.elapsed().as_secs_f64();
        parts.push((
            format!(
                "draw what-if: the same record_outcome split over 4 concurrent connections ({:.0} commands/s)",
                losers.len() as f64 / redis_losers_4
            ),
            redis_losers_4,
        ));
    }
    for (what, secs) in &parts {
        println!("   {secs:>8.2} s  {what}");
    }
    let est_now = expire_secs + copy_secs.max(client_cpu_secs);
    println!(
        "   seal estimate from these parts: {est_now:.2} s = {:.2}× COPY (expire + max(COPY, the writer's CPU)), against the {seal_secs:.2} s measured",
        est_now / copy_secs
    );

    // ---------------------------------------------------------------- summary
    let (c_default, c_tuned) = (sql_runs[0].0, sql_runs[1].0);
    let sql_best = c_default.min(c_tuned);
    println!("== summary: {n} tickets");
    println!(
        "   {:<36} {:>9} {:>16} {:>14}",
        "step", "seconds", "ratio", "peak RSS MiB"
    );
    for s in &fig.steps {
        let ratio = match s.name.as_str() {
            "(a) COPY to a file" => "1.00 (floor)".to_string(),
            "(b) seal" => format!("{:.2}× COPY", s.secs / copy_secs),
            "(c) SQL draw, work_mem default" | "(c') SQL draw, work_mem 256MB" => {
                format!("{:.2}× best", s.secs / sql_best)
            }
            _ if s.secs <= sql_best => format!("{:.1}× faster", sql_best / s.secs),
            _ => format!("{:.1}× slower", s.secs / sql_best),
        };
        println!(
            "   {:<36} {:>9.2} {:>16} {:>14}",
            s.name,
            s.secs,
            ratio,
            if s.peak_mib > 0.0 {
                format!("{:.0}", s.peak_mib)
            } else {
                "(server)".into()
            }
        );
    }
    let seal_ratio = seal_secs / copy_secs;
    let d1_speedup = sql_best / d1_secs;
    let d1p_speedup = sql_best / d1p_secs;
    let d2_speedup = sql_best / d2_secs;
    println!(
        "   goal 1, seal ≤ 2× COPY: {seal_ratio:.2}× — {}",
        met(seal_ratio <= 2.0)
    );
    println!(
        "   goal 2, lottery (d1) ≥ 10× faster than the faster SQL draw: {d1_speedup:.1}× — {} \
         (for reference, the parse_entrants path d1': {d1p_speedup:.1}×)",
        met(d1_speedup >= 10.0)
    );
    println!(
        "   the full draw (d2) against the faster SQL draw: {} — it {} the 10× goal",
        if d2_speedup >= 1.0 {
            format!("{d2_speedup:.1}× faster")
        } else {
            format!("{:.1}× slower", 1.0 / d2_speedup)
        },
        if d2_speedup >= 10.0 {
            "meets"
        } else {
            "does NOT meet"
        }
    );
    println!(
        "   peak RSS of the bench process over the whole run (VmHWM): {:.0} MiB",
        overall_peak_mib()
    );
    for note in &fig.notes {
        println!("   note: {note}");
    }
    drop(ctx);
    db.close().await.map_err(|e| e.to_string())?;
    Ok(fig)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

fn check(fig: &mut Figures, ok: bool, what: &str) {
    println!("   [{}] {what}", if ok { "ok" } else { "FAILED" });
    if !ok {
        fig.ok = false;
    }
}

async fn pg_setting(pg: &sqlx::PgPool, name: &str) -> String {
    sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
        .fetch_one(pg)
        .await
        .unwrap_or_default()
}

async fn pg_scalar_i64(pg: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pg)
        .await
        .unwrap_or(-1)
}
