//! Faults, overload and soak under an open-model load (issue 10, items 1, 5 and 6).
//!
//! Every run starts a deployment of its own (`common::faults::Stack`): a database, a Redis with
//! AOF of its own, the shared RabbitMQ (or, to restart it, a private node), and `maskdraw serve`
//! / `maskdraw persist` as processes, each service behind a proxy that can cut it.
//!
//!   cargo bench --bench faults                         # the campaign: 5,000/s for 60 s per scenario
//!   RATE=1000 SECONDS=20 SCALE=0.3 cargo bench --bench faults   # shorter (fault durations × SCALE)
//!   ONLY=0,2 cargo bench --bench faults                # scenarios 0 and 2 only
//!   MODE=overload MAX=3500 cargo bench --bench faults  # 2 × MAX for 30 s, then MAX/2 (MAX: the
//!                                                      # stack's measured maximum, default 10,000)
//!   MODE=soak RATE=1750 cargo bench --bench faults     # RATE (default MAX/2) for 10 min, a fault a minute
//!   TIMELINE=all cargo bench --bench faults            # 202s/503s per second of the whole run
//!
//! It exits non-zero if an accepted reservation is missing from PostgreSQL or a person holds
//! two registered tickets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::faults::{
    offer, rate_before, recovery, recovery_to_before, retry_and_check, run_scenario, sample, Fault,
    Outcome, Stack, StackOptions,
};
use common::load::percentile;

#[path = "common/mod.rs"]
mod common;

use common::env_u64;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("faults: bench");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mode = std::env::var("MODE").unwrap_or_else(|_| "campaign".into());
    println!("== faults bench, mode {mode}; machine: {}", machine());
    let ok = rt.block_on(async {
        match mode.as_str() {
            "overload" => overload().await,
            "soak" => soak().await,
            _ => campaign().await,
        }
    });
    println!("== done; machine now: {}", machine());
    if !ok {
        std::process::exit(1);
    }
}

async fn campaign() -> bool {
    let rate = env_u64("RATE", 5_000);
    let seconds = env_u64("SECONDS", 60);
    let scale = env_f64("SCALE", 1.0);
    let only: Option<Vec<usize>> = std::env::var("ONLY")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    println!("== campaign: {rate}/s of new people for {seconds} s per scenario, fault durations × {scale}");
    let mut rows: Vec<Outcome> = Vec::new();
    for (k, fault) in Fault::campaign(scale).into_iter().enumerate() {
        if only.as_ref().is_some_and(|o| !o.contains(&k)) {
            continue;
        }
        let started = Instant::now();
        let out = run_scenario(fault, rate, seconds).await;
        println!(
            "[{k}] {} ({:.0} s with set-up, retries and checks)\n    {:?}",
            out.row(),
            started.elapsed().as_secs_f64(),
            out
        );
        rows.push(out);
    }
    println!("\n{}", Outcome::header());
    for r in &rows {
        println!("{}", r.row());
    }
    rows.iter().all(|r| r.lost == 0 && r.duplicates == 0)
}

/// Twice the measured maximum for `SECONDS`, then half of it for 10 s.
async fn overload() -> bool {
    let max = env_u64("MAX", 10_000);
    let seconds = env_u64("SECONDS", 30);
    let in_flight = env_u64("MAX_IN_FLIGHT", 1_000);
    println!(
        "== overload: {} /s (2 × MAX {max}) for {seconds} s, then {} /s for 10 s; \
         MASKDRAW_MAX_IN_FLIGHT={in_flight}",
        2 * max,
        max / 2
    );
    let stack = Stack::start(StackOptions {
        env: vec![("MASKDRAW_MAX_IN_FLIGHT".into(), in_flight.to_string())],
        ..StackOptions::default()
    })
    .await;
    let addrs = stack.addrs();
    // Warm-up: connections, pools.
    let _ = offer(&addrs, max / 4, |i| 900_000_000 + i, max / 2).await;
    let hot = offer(&addrs, 2 * max, |i| i, 2 * max * seconds).await;
    let calm = offer(&addrs, max / 2, |i| 500_000_000 + i, max / 2 * 10).await;
    let report = |name: &str, run: &common::load::LoadRun| {
        let shed = run.count(&[503, 429]);
        println!(
            "{name}: offered {} in {:.1} s; 202 {} ({:.0}/s); shed 503/429 {shed}; other {:?} / no answer {:?}",
            run.offered,
            run.elapsed.as_secs_f64(),
            run.count(&[202]),
            run.count(&[202]) as f64 / run.elapsed.as_secs_f64(),
            run.by_status,
            run.transport_errors
        );
        println!(
            "    accepted latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; shed latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; shed without Retry-After {}",
            run.ms(0.5),
            run.ms(0.99),
            run.ms(1.0),
            percentile(&run.shed_latencies_us, 0.5),
            percentile(&run.shed_latencies_us, 0.99),
            percentile(&run.shed_latencies_us, 1.0),
            run.shed_without_retry_after
        );
    };
    report("hot (2 × MAX)", &hot);
    report("calm (MAX / 2)", &calm);
    // Nothing accepted lost: every 202 of both phases, ticket by ticket.
    let mut tickets: Vec<String> = Vec::new();
    for run in [&hot, &calm] {
        tickets.extend(run.kept.iter().filter(|k| *k != "in_progress").cloned());
    }
    let lost = stack
        .settle(&tickets, Duration::from_secs(3), Duration::from_secs(300))
        .await;
    let duplicates = stack.duplicates().await;
    println!(
        "202s {}, missing from PostgreSQL {lost}, duplicates {duplicates}",
        tickets.len()
    );
    let calm_ok = calm.count(&[202]) >= calm.offered * 99 / 100;
    println!(
        "goals: shed within 100 ms (p99 {:.1} ms): {}; every shed answer with Retry-After: {}; accepted p99 ≤ 200 ms ({:.1} ms): {}; lost 0: {}; recovered (≥ 99% of the calm phase accepted, p99 {:.1} ms): {}",
        percentile(&hot.shed_latencies_us, 0.99),
        met(percentile(&hot.shed_latencies_us, 0.99) <= 100.0),
        met(hot.shed_without_retry_after == 0),
        hot.ms(0.99),
        met(hot.ms(0.99) <= 200.0),
        met(lost == 0),
        calm.ms(0.99),
        met(calm_ok)
    );
    stack.teardown().await;
    lost == 0 && duplicates == 0
}

/// RSS (KiB) and open descriptors by process name.
type Sample = BTreeMap<String, (u64, u64)>;

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// Half the maximum for `SECONDS` (600) with one fault a minute, every process's memory and
/// descriptors sampled every 10 s.
async fn soak() -> bool {
    let rate = env_u64("RATE", env_u64("MAX", 10_000) / 2);
    let seconds = env_u64("SECONDS", 600);
    let every = Duration::from_secs(env_u64("SAMPLE_SECONDS", 10));
    println!("== soak: {rate}/s of new people for {seconds} s, one fault a minute (20 s into it), samples every {every:?}");
    let mut stack = Stack::start(StackOptions {
        serves: 2,
        persisters: 1,
        own_rabbit: true,
        env: Vec::new(),
    })
    .await;
    let addrs = stack.addrs();
    // The campaign's faults but the serve kill (the soak keeps both servers).
    let faults: Vec<Fault> = Fault::campaign(1.0)
        .into_iter()
        .filter(|f| !matches!(f, Fault::ServeKill))
        .collect();
    let (procs_tx, procs_rx) = tokio::sync::watch::channel(stack.processes());
    let t0 = Instant::now();
    let load = offer(&addrs, rate, |i| i, rate * seconds);
    let injector = async {
        let mut windows = Vec::new();
        let mut minute = 0u64;
        while (minute + 1) * 60 <= seconds {
            let at = Duration::from_secs(minute * 60 + 20);
            tokio::time::sleep(at.saturating_sub(t0.elapsed())).await;
            let fault = faults[minute as usize % faults.len()];
            let begun = t0.elapsed().as_secs_f64();
            fault.inject(&mut stack).await;
            windows.push((fault.name(), begun, t0.elapsed().as_secs_f64()));
            let _ = procs_tx.send(stack.processes());
            minute += 1;
        }
        windows
    };
    let sampler = async {
        let mut samples: Vec<(f64, Sample)> = Vec::new();
        while t0.elapsed() < Duration::from_secs(seconds) {
            let procs = procs_rx.borrow().clone();
            let s = sample(&procs);
            samples.push((t0.elapsed().as_secs_f64(), s.into_iter().collect()));
            tokio::time::sleep(every).await;
        }
        samples
    };
    let (run, windows, samples) = tokio::join!(load, injector, sampler);
    println!("{}", run.summary());
    for (name, a, b) in &windows {
        let secs = |r: Option<f64>| r.map_or_else(|| "—".into(), |s| format!("{s:.1} s"));
        println!(
            "fault {name} at {a:.1}–{b:.1} s: back at full rate after {}; {} 202/s held before it, back at that after {}",
            secs(recovery(&run, rate, *b)),
            rate_before(&run, *a),
            secs(recovery_to_before(&run, rate, (*a, *b))),
        );
    }
    let names: Vec<String> = samples
        .iter()
        .flat_map(|(_, s)| s.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!(
        "| t (s) | {} |",
        names
            .iter()
            .map(|n| format!("{n} RSS MiB / fds"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for (t, s) in &samples {
        println!(
            "| {t:.0} | {} |",
            names
                .iter()
                .map(|n| s.get(n).map_or_else(
                    || "—".into(),
                    |(rss, fds)| format!("{:.1} / {fds}", *rss as f64 / 1024.0)
                ))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    // Growth after the first minute: the largest later sample against the first at ≥ 60 s.
    let mut bounded = true;
    for n in &names {
        let series: Vec<(f64, u64, u64)> = samples
            .iter()
            .filter_map(|(t, s)| s.get(n).map(|(r, f)| (*t, *r, *f)))
            .filter(|(_, r, _)| *r > 0)
            .collect();
        let Some(base) = series.iter().find(|(t, _, _)| *t >= 60.0) else {
            continue;
        };
        let rss_max = series
            .iter()
            .filter(|(t, _, _)| *t >= base.0)
            .map(|s| s.1)
            .max()
            .unwrap_or(0);
        let fds_max = series
            .iter()
            .filter(|(t, _, _)| *t >= base.0)
            .map(|s| s.2)
            .max()
            .unwrap_or(0);
        let rss_growth = rss_max as f64 / base.1.max(1) as f64 - 1.0;
        let fds_growth = fds_max as f64 / base.2.max(1) as f64 - 1.0;
        let ok = rss_growth <= 0.10 && fds_growth <= 0.10;
        bounded &= ok;
        println!(
            "{n}: RSS {:.1} MiB at {:.0} s, at most {:.1} MiB after (+{:.1}%); fds {} at {:.0} s, at most {} after (+{:.1}%): {}",
            base.1 as f64 / 1024.0,
            base.0,
            rss_max as f64 / 1024.0,
            100.0 * rss_growth,
            base.2,
            base.0,
            fds_max,
            100.0 * fds_growth,
            met(ok)
        );
    }
    let check = retry_and_check(&stack, &run, rate, 0).await;
    // What Redis's growth is made of: the data it keeps per accepted reservation, or a leak.
    if let Ok(client) =
        deadpool_redis::redis::Client::open(format!("redis://127.0.0.1:{}/0", stack.redis.port))
    {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await {
            let info: String = deadpool_redis::redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            let keys: u64 = deadpool_redis::redis::cmd("DBSIZE")
                .query_async(&mut c)
                .await
                .unwrap_or(0);
            let used: u64 = info
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let accepted = run.count(&[202]) + check.retried_accepted;
            println!(
                "redis at the end: used_memory {:.1} MiB, {keys} keys, {:.0} bytes per accepted reservation ({accepted})",
                used as f64 / 1048576.0,
                used as f64 / accepted.max(1) as f64
            );
        }
    }
    println!(
        "202 {} (+{} on retry of {} people), lost {}, duplicates {}; growth ≤ 10% after minute one: {}; lost = 0: {}",
        run.count(&[202]),
        check.retried_accepted,
        check.retried,
        check.lost,
        check.duplicates,
        met(bounded),
        met(check.lost == 0)
    );
    stack.teardown().await;
    check.lost == 0 && check.duplicates == 0
}
