//! Issue 10 item 4: every fuzz target of fuzz/ (the snapshot and text parsers, `verify_dir` on a
//! changed day, the reservation body, the broker envelope) runs for five seconds on a corpus
//! seeded from the repository's vectors, and none crashes or breaks its property.
//! `scripts/fuzz.sh` builds them with cargo-fuzz (scripts/tools.sh installs it) and runs them;
//! `scripts/fuzz.sh 600` is the longer run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The `[[bin]]` names of fuzz/Cargo.toml: every target there must have run.
fn targets(repo: &Path) -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(repo.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut names = BTreeSet::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let (true, Some(name)) = (in_bin, line.strip_prefix("name = ")) {
            names.insert(name.trim_matches('"').to_string());
        }
    }
    names
}

#[test]
fn every_fuzz_target_runs_five_seconds_without_a_crash() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = targets(repo);
    for t in [
        "entrants_csv",
        "stock_csv",
        "seal_txt",
        "draw_txt",
        "verify_dir",
        "reservation_body",
        "envelope",
    ] {
        assert!(want.contains(t), "fuzz/Cargo.toml has no target {t}");
    }

    let out = Command::new("bash")
        .arg("scripts/fuzz.sh")
        .arg("5")
        .current_dir(repo)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/fuzz.sh 5 failed ({}):\n{stdout}\n{}",
        out.status,
        // The build's output can be long; the failures are at the end.
        stderr
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // One line per target: "fuzz.sh: TARGET ok: RUNS runs in 5 s, ...", with inputs executed.
    let ran: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("fuzz.sh: "))
        .filter_map(|l| {
            let (target, rest) = l.split_once(" ok: ")?;
            let runs: u64 = rest.split(' ').next()?.parse().ok()?;
            (runs > 0).then(|| target.to_string())
        })
        .collect();
    assert_eq!(ran, want, "targets that ran inputs:\n{stdout}");
}
