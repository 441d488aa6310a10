//! Proofs on a large day (issue 8, item 1): the full read every proof used to make against
//! the fast path over `entrants.tiles`, single-threaded, and the size of the tiles.
//!
//! ```text
//! cargo bench -p lottery --bench proofs
//! LOTTERY_PROOF_BENCH_DIR=/tmp/x LOTTERY_PROOF_BENCH_ENTRANTS=1000000 cargo bench -p lottery --bench proofs
//! ```
//!
//! The sample (2,000 pharmacies × 2 products, seed 1) is generated once into
//! `LOTTERY_PROOF_BENCH_DIR` (default `/tmp/maskdraw-bench-proofs-1m`) and reused; delete it
//! afterwards. Tickets are drawn with a fixed seed, so runs ask the same ones.

use std::path::PathBuf;
use std::time::Instant;

use lottery::proof::{full_read, DayProofs, ProofSource};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Full-read proofs timed (each reads and hashes the whole day).
const OLD_PROOFS: usize = 20;
/// Fast proofs timed.
const NEW_PROOFS: usize = 20_000;
/// One-shot proofs (open, then one proof) timed.
const ONE_SHOT: usize = 500;

fn main() {
    let dir = PathBuf::from(
        std::env::var("LOTTERY_PROOF_BENCH_DIR")
            .unwrap_or_else(|_| "/tmp/maskdraw-bench-proofs-1m".into()),
    );
    let entrants: u64 = std::env::var("LOTTERY_PROOF_BENCH_ENTRANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let have = std::fs::read_to_string(dir.join("seal.txt"))
        .map(|s| s.contains(&format!("entrants:{entrants}\n")))
        .unwrap_or(false);
    if !have {
        eprintln!(
            "generating a {entrants}-entrant sample in {}",
            dir.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        lottery::sample::generate(
            &dir,
            &lottery::sample::SampleOptions {
                entrants,
                pharmacies: 2000,
                seed: 1,
            },
            &lottery::NoProgress,
        )
        .expect("sample");
        eprintln!("sample: {:.1} s", started.elapsed().as_secs_f64());
    }
    let csv_bytes = std::fs::metadata(dir.join("entrants.csv"))
        .expect("entrants.csv")
        .len();
    let tiles_bytes = std::fs::metadata(dir.join("entrants.tiles"))
        .expect("entrants.tiles")
        .len();
    let tickets: Vec<String> = std::fs::read_to_string(dir.join("entrants.csv"))
        .expect("entrants.csv")
        .lines()
        .map(|l| l[..26].to_string())
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut pick = |k: usize| -> Vec<String> {
        (0..k)
            .map(|_| tickets[(rng.next_u64() % tickets.len() as u64) as usize].clone())
            .collect()
    };

    // The old path: every proof reads and hashes all of entrants.csv.
    let old_asked = pick(OLD_PROOFS);
    let started = Instant::now();
    let old: Vec<String> = old_asked
        .iter()
        .map(|t| serde_json::to_string(&full_read::ticket_proof(&dir, t).expect("proof")).unwrap())
        .collect();
    let old_secs = started.elapsed().as_secs_f64();

    // The new path: open once, then positioned reads.
    let started = Instant::now();
    let proofs = DayProofs::open(&dir).expect("open");
    let open_secs = started.elapsed().as_secs_f64();
    assert_eq!(proofs.source(), ProofSource::Tiles);
    for (t, want) in old_asked.iter().zip(&old) {
        assert_eq!(
            &serde_json::to_string(&proofs.proof(t).unwrap()).unwrap(),
            want
        );
    }
    let new_asked = pick(NEW_PROOFS);
    let started = Instant::now();
    for t in &new_asked {
        let p = proofs.proof(t).expect("proof");
        assert!(p.path_verifies);
    }
    let new_secs = started.elapsed().as_secs_f64();

    // Unknown tickets (a search and a proven block, then "not sealed").
    let unknown: Vec<String> = new_asked
        .iter()
        .take(ONE_SHOT)
        .map(|t| {
            let v = lottery::snapshot::TicketId::parse(t.as_bytes())
                .unwrap()
                .to_u128();
            lottery::snapshot::TicketId::from_u128(v + 1).to_string()
        })
        .collect();
    let started = Instant::now();
    let misses = unknown.iter().filter(|t| proofs.proof(t).is_err()).count();
    let unknown_secs = started.elapsed().as_secs_f64();

    // One-shot: what the service does today per request (open + proof).
    let started = Instant::now();
    for t in new_asked.iter().take(ONE_SHOT) {
        lottery::proof::ticket_proof(&dir, t).expect("proof");
    }
    let one_shot_secs = started.elapsed().as_secs_f64();

    let n = tickets.len() as f64;
    println!(
        "{} entrants; entrants.csv {csv_bytes} bytes; entrants.tiles {tiles_bytes} bytes = {:.3} bytes per entrant",
        tickets.len(),
        tiles_bytes as f64 / n
    );
    println!();
    println!("| path (single thread) | proofs | total (s) | proofs/s | mean per proof (µs) |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, k: usize, secs: f64| {
        println!(
            "| {name} | {k} | {secs:.3} | {:.0} | {:.1} |",
            k as f64 / secs,
            secs / k as f64 * 1e6
        );
    };
    row("old: full read of entrants.csv", OLD_PROOFS, old_secs);
    row("new: DayProofs::proof (opened once)", NEW_PROOFS, new_secs);
    row(
        &format!("new: never-sealed tickets ({misses} refused)"),
        ONE_SHOT,
        unknown_secs,
    );
    row("new: ticket_proof (open + proof)", ONE_SHOT, one_shot_secs);
    println!();
    println!(
        "DayProofs::open: {:.1} µs; speed-up of an opened day over the full read: {:.0}×",
        open_secs * 1e6,
        (old_secs / OLD_PROOFS as f64) / (new_secs / NEW_PROOFS as f64)
    );
}
