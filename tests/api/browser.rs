//! The H5 page in a real browser: Debian's Chromium, driven headless by playwright-core from the
//! Node harness in `tests/browser/`, against a real server (and, for the proof page, a real
//! sealed, drawn and published day). The harness asserts on what a person sees and saves
//! screenshots under `target/screenshots/`. Also runs the page modules' unit tests
//! (`tests/js/`, `node --test`) so that `cargo test` covers them.
//!
//! Needs `node` and `/usr/bin/chromium`, and `npm ci` done in `tests/browser/`: `scripts/test.sh`
//! installs all three when they are missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{id_number, spawn_app};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn screenshots() -> PathBuf {
    root().join("target/screenshots")
}

/// Runs `node --test <files>` in `dir` with `env`, bounded in time; panics with its output when
/// it fails. Returns its stdout.
async fn node_test(dir: &Path, files: &[&str], env: &[(&str, String)]) -> String {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("--test")
        .args(files)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output())
        .await
        .expect("node --test finishes within 240 s")
        .expect("node runs (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "node --test {files:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The harness's `node_modules`, or a panic saying how to get it.
fn harness() -> PathBuf {
    let dir = root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run scripts/test.sh (or `npm ci` in tests/browser)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/test.sh (or `apt-get install chromium`)"
    );
    dir
}

#[tokio::test]
async fn the_page_modules_pass_their_known_answer_and_tamper_tests_in_node() {
    let out = node_test(&root().join("tests/js"), &[], &[]).await;
    assert!(out.contains("# fail 0"), "{out}");
}

#[tokio::test]
async fn a_person_reserves_through_the_page_and_sees_the_ticket_within_360_px() {
    let app = spawn_app().await;
    let out = node_test(
        &harness(),
        &["reserve.test.mjs"],
        &[
            ("MASKDRAW_URL", app.address.clone()),
            ("ID_NUMBER", id_number()),
            ("SCREENSHOT_DIR", screenshots().display().to_string()),
        ],
    )
    .await;
    // The ticket the page showed is the server's.
    let ticket = out
        .lines()
        .find_map(|l| l.trim_start_matches(['#', ' ']).strip_prefix("TICKET="))
        .expect("the harness prints the ticket it saw")
        .to_string();
    let status = app.get(&format!("/api/v1/reservations/{ticket}")).await;
    assert_eq!(status.status(), 200);
    app.teardown().await;
}
