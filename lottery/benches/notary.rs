//! The 10-million-entrant benchmark (issue 2, item 6): time and peak memory of
//! computing the root, of the draw and of a full `notary verify`, each beside
//! `sha256sum entrants.csv` on the same file in the same run.
//!
//! ```text
//! cargo bench -p lottery --bench notary
//! LOTTERY_BENCH_DIR=/tmp/x LOTTERY_BENCH_ENTRANTS=1000000 cargo bench -p lottery --bench notary
//! ```
//!
//! The sample (2,000 pharmacies × 2 products, seed 1) is generated once into
//! `LOTTERY_BENCH_DIR` (default `/tmp/maskdraw-bench-10m`, about 780 MB) and
//! reused. Each measured step is a separate process run under
//! `/usr/bin/time -f "%e %M"` (wall seconds, max RSS in KiB), three times; the
//! median is reported. The root and draw steps re-run this binary in a child
//! mode so that their peak memory is their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const NOTARY: &str = env!("CARGO_BIN_EXE_notary");
const RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(&args[pos + 1], Path::new(&args[pos + 2]));
        return;
    }
    let dir = PathBuf::from(
        std::env::var("LOTTERY_BENCH_DIR").unwrap_or_else(|_| "/tmp/maskdraw-bench-10m".into()),
    );
    let entrants: u64 = std::env::var("LOTTERY_BENCH_ENTRANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let entrants_arg = entrants.to_string();
    let dir_arg = dir.to_string_lossy().into_owned();
    let sample_args = [
        "sample",
        dir_arg.as_str(),
        "--entrants",
        entrants_arg.as_str(),
        "--pharmacies",
        "2000",
        "--seed",
        "1",
    ];
    let expected_seal = dir.join("seal.txt");
    let have = std::fs::read_to_string(&expected_seal)
        .map(|s| s.contains(&format!("entrants:{entrants}\n")))
        .unwrap_or(false);
    if !have {
        eprintln!("generating the sample: notary {}", sample_args.join(" "));
        let _ = std::fs::remove_dir_all(&dir);
        let (secs, kib) = measure(NOTARY, &sample_args.map(String::from));
        eprintln!("sample: {secs:.2} s, {:.0} MiB", kib as f64 / 1024.0);
    }
    let entrants_csv = dir.join("entrants.csv").to_string_lossy().into_owned();
    let key = dir.join("authority.pub").to_string_lossy().into_owned();
    let me = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let replay_out = std::env::temp_dir()
        .join("maskdraw-bench-replay")
        .to_string_lossy()
        .into_owned();

    let steps: Vec<(&str, String, Vec<String>)> = vec![
        (
            "sha256sum entrants.csv",
            "sha256sum".into(),
            vec![entrants_csv.clone()],
        ),
        (
            "root (scan + RFC 6962 head)",
            me.clone(),
            vec!["--child".into(), "root".into(), dir_arg.clone()],
        ),
        (
            "draw (both rolls + outputs, entrants loaded)",
            me.clone(),
            vec!["--child".into(), "draw".into(), dir_arg.clone()],
        ),
        (
            "notary replay (load + draw)",
            NOTARY.into(),
            vec!["replay".into(), dir_arg.clone(), "--out".into(), replay_out],
        ),
        (
            "notary verify (every check)",
            NOTARY.into(),
            vec!["verify".into(), dir_arg.clone(), "--key".into(), key],
        ),
    ];
    let size = std::fs::metadata(&entrants_csv)
        .map(|m| m.len())
        .unwrap_or(0);
    println!("entrants.csv: {entrants} lines, {size} bytes; {RUNS} runs per step, median shown");
    let mut results = Vec::new();
    for (name, program, args) in &steps {
        let mut runs: Vec<(f64, u64)> = (0..RUNS).map(|_| measure(program, args)).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (secs, _) = runs[RUNS / 2];
        let kib = runs.iter().map(|r| r.1).max().unwrap_or(0);
        eprintln!("{name}: {:?}", runs);
        results.push((*name, secs, kib));
    }
    let base = results[0].1;
    println!();
    println!("| step | wall time (s) | × sha256sum | peak RSS (MiB) |");
    println!("|---|---:|---:|---:|");
    for (name, secs, kib) in &results {
        println!(
            "| {name} | {secs:.2} | {:.2} | {:.0} |",
            secs / base,
            *kib as f64 / 1024.0
        );
    }
    let verify = results[results.len() - 1];
    println!();
    println!(
        "goal: verify ≤ 4× sha256sum: {} ({:.2}×); peak memory < 1.5 GiB: {} ({:.0} MiB)",
        if verify.1 <= 4.0 * base {
            "met"
        } else {
            "MISSED"
        },
        verify.1 / base,
        if verify.2 < 1536 * 1024 {
            "met"
        } else {
            "MISSED"
        },
        verify.2 as f64 / 1024.0
    );
}

/// Runs a program under /usr/bin/time; (wall seconds, max RSS KiB). Without
/// /usr/bin/time, wall time from this process and RSS 0.
fn measure(program: &str, args: &[String]) -> (f64, u64) {
    let report = std::env::temp_dir().join(format!("maskdraw-bench-time-{}", std::process::id()));
    let started = Instant::now();
    let status = if Path::new("/usr/bin/time").exists() {
        Command::new("/usr/bin/time")
            .args(["-f", "%e %M", "-o"])
            .arg(&report)
            .arg(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    } else {
        Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    };
    let wall = started.elapsed().as_secs_f64();
    match status {
        Ok(s) if s.success() => {}
        other => panic!("{program} {args:?} failed: {other:?}"),
    }
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let mut fields = text.split_whitespace();
    let secs = fields.next().and_then(|v| v.parse().ok()).unwrap_or(wall);
    let kib = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (secs, kib)
}

fn child(mode: &str, dir: &Path) {
    use lottery::snapshot::{parse_stock, PoolIndex};
    let noop = |_| {};
    match mode {
        "root" => {
            let scan = lottery::scan::scan_entrants_file(&dir.join("entrants.csv"), None, &noop)
                .expect("entrants.csv");
            let seal = lottery::text::SealText::parse(
                &std::fs::read(dir.join("seal.txt")).expect("seal.txt"),
            )
            .expect("seal");
            assert_eq!(
                scan.root,
                Some(seal.entrants_root),
                "root differs from seal.txt"
            );
            println!("{}", hex::encode(seal.entrants_root));
        }
        "draw" => {
            let stock = parse_stock(&std::fs::read(dir.join("stock.csv")).expect("stock.csv"))
                .expect("stock");
            let index = PoolIndex::new(&stock);
            let scan =
                lottery::scan::scan_entrants_file(&dir.join("entrants.csv"), Some(&index), &noop)
                    .expect("entrants.csv");
            let drawn = lottery::text::DrawText::parse(
                &std::fs::read(dir.join("draw.txt")).expect("draw.txt"),
            )
            .expect("draw");
            let started = Instant::now();
            let out = lottery::verify::draw_from_scan(&scan, &stock, &drawn.seed).expect("draw");
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(
                out.result_csv,
                std::fs::read(dir.join("result.csv")).expect("result.csv")
            );
            eprintln!(
                "draw alone (after loading): {secs:.2} s, {} winners",
                out.winners
            );
        }
        other => panic!("unknown child mode {other}"),
    }
}
