//! Files far larger than any valid day (issue 9, item 14): `notary` must fail
//! with a clear message naming the file, never abort on an allocation sized
//! from a file's length. The files are sparse (`File::set_len`), so they cost
//! no disk; every `notary` runs under `ulimit -v` so that a regression aborts
//! the child instead of exhausting the machine's memory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::vector_dir;

/// 64 GiB: far beyond the machine's memory, and beyond any valid file here.
const HUGE: u64 = 64 << 30;
/// The child's address-space limit, in KiB (4 GiB).
const LIMIT_KIB: u64 = 4 << 20;

const DAY_FILES: [&str; 10] = [
    "entrants.csv",
    "stock.csv",
    "seal.txt",
    "seal.sig",
    "authority.pub",
    "draw.txt",
    "draw.sig",
    "result.csv",
    "pools.csv",
    "spill.csv",
];

/// v1-small with `file` replaced by a sparse file of [`HUGE`] zero bytes.
fn day_with_huge(file: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in DAY_FILES {
        std::fs::copy(vector_dir("v1-small").join(f), tmp.path().join(f)).unwrap();
    }
    let huge = std::fs::File::create(tmp.path().join(file)).unwrap();
    huge.set_len(HUGE).unwrap();
    tmp
}

/// Runs `notary` with its address space limited to [`LIMIT_KIB`].
fn notary_limited(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_notary"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The process ended by itself (no signal, so no abort) with `code`, and said
/// something naming `file` on stdout or stderr.
fn assert_clean_failure(out: &Output, code: i32, file: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("memory allocation") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        stdout.contains(file) || stderr.contains(file),
        "no mention of {file}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn verify_of_a_64_gib_sparse_entrants_csv_fails_its_checks_without_aborting() {
    let day = day_with_huge("entrants.csv");
    let key = vector_dir("v1-small").join("authority.pub");
    let out = notary_limited(&["verify", s(day.path()), "--key", s(&key)]);
    assert_clean_failure(&out, 1, "entrants.csv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL entrants.csv grammar, order, unique person_tag, listed pools"),
        "{stdout}"
    );
}

#[test]
fn replay_of_a_64_gib_sparse_entrants_csv_fails_with_a_message_naming_the_file() {
    let day = day_with_huge("entrants.csv");
    let out_dir = tempfile::tempdir().unwrap();
    let out = notary_limited(&["replay", s(day.path()), "--out", s(out_dir.path())]);
    assert_clean_failure(&out, 2, "entrants.csv");
}

#[test]
fn proof_over_a_64_gib_sparse_entrants_csv_fails_with_a_message_naming_the_file() {
    let day = day_with_huge("entrants.csv");
    let out = notary_limited(&["proof", s(day.path()), "01KARDKCX650GXHDPXBDD1JSYG"]);
    assert_clean_failure(&out, 2, "entrants.csv");
}

#[test]
fn tiles_over_a_64_gib_sparse_entrants_csv_fails_with_a_message_naming_the_file() {
    let day = day_with_huge("entrants.csv");
    let out = notary_limited(&["tiles", s(day.path())]);
    assert_clean_failure(&out, 2, "entrants.csv");
    assert!(!day.path().join("entrants.tiles").exists());
}

#[test]
fn verify_of_a_day_with_any_other_64_gib_sparse_file_fails_without_aborting() {
    let key = vector_dir("v1-small").join("authority.pub");
    for file in [
        "seal.txt",
        "seal.sig",
        "stock.csv",
        "draw.txt",
        "result.csv",
        "pools.csv",
        "spill.csv",
        "authority.pub",
    ] {
        let day = day_with_huge(file);
        let out = notary_limited(&["verify", s(day.path()), "--key", s(&key)]);
        assert_clean_failure(&out, 1, file);
    }
}

#[test]
fn a_64_gib_sparse_key_file_is_refused_without_aborting() {
    let day = day_with_huge("entrants.csv");
    let key = day.path().join("huge.pub");
    std::fs::File::create(&key).unwrap().set_len(HUGE).unwrap();
    let out = notary_limited(&["verify", s(&vector_dir("v1-small")), "--key", s(&key)]);
    assert_clean_failure(&out, 2, "huge.pub");
}

#[test]
fn replay_and_proof_of_a_day_with_a_64_gib_sparse_small_file_fail_without_aborting() {
    for file in ["seal.txt", "stock.csv", "draw.txt"] {
        let day = day_with_huge(file);
        let out_dir = tempfile::tempdir().unwrap();
        let out = notary_limited(&["replay", s(day.path()), "--out", s(out_dir.path())]);
        assert_clean_failure(&out, 2, file);
    }
    for file in [
        "seal.txt",
        "stock.csv",
        "draw.txt",
        "pools.csv",
        "spill.csv",
    ] {
        let day = day_with_huge(file);
        let out = notary_limited(&["proof", s(day.path()), "01KARDKCX650GXHDPXBDD1JSYG"]);
        assert_clean_failure(&out, 2, file);
    }
}
