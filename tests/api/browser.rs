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

use chrono::NaiveDate;
use maskdraw::config::Settings;
use serde_json::Value;

use crate::day::{backdate, days, reserve, today, Day};
use crate::helpers::{id_number, spawn_app, spawn_app_with, Options, TestApp};

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

/// The value of a `KEY=value` line the harness printed (node --test shows it as `# KEY=value`).
fn printed(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.trim_start_matches(['#', ' '])
                .strip_prefix(&format!("{key}="))
        })
        .unwrap_or_else(|| panic!("the harness printed no {key}=: {out}"))
        .to_string()
}

/// Reserves through the page (`reserve.test.mjs`) and returns (ticket, pharmacy, harness output).
async fn reserve_in_page(app: &TestApp, state_file: Option<&Path>) -> (String, String) {
    let mut env = vec![
        ("MASKDRAW_URL", app.address.clone()),
        ("ID_NUMBER", id_number()),
        ("SCREENSHOT_DIR", screenshots().display().to_string()),
    ];
    if let Some(f) = state_file {
        env.push(("STATE_FILE", f.display().to_string()));
    }
    let out = node_test(&harness(), &["reserve.test.mjs"], &env).await;
    (printed(&out, "TICKET"), printed(&out, "PHARMACY"))
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
    let (ticket, _) = reserve_in_page(&app, None).await;
    // The ticket the page showed is the server's.
    let status = app.get(&format!("/api/v1/reservations/{ticket}")).await;
    assert_eq!(status.status(), 200);
    app.teardown().await;
}

/// A day drawn yesterday (so published at 18:00 yesterday) at `pharmacy`, in the app's own
/// snapshot and key directories (so its server serves it): the ticket already made in the page
/// (KN95, the only one, 1 pack: it wins) and three more for one pack of MED-SURG, none flexible:
/// one wins under the pool's cutoff, two lose. Returns the date, a MED-SURG winner and a loser.
async fn published_day(
    app: &TestApp,
    pharmacy: &str,
    page_ticket: &str,
) -> (NaiveDate, String, String) {
    let d = Day::new(app).await;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        tickets.push(reserve(app, pharmacy, "MED-SURG", false).await.0);
    }
    app.wait_for_tickets("registered", 4, Duration::from_secs(30))
        .await;
    for t in tickets.iter().map(String::as_str).chain([page_ticket]) {
        backdate(app, t, 3).await;
    }
    let date = today() - days(1);
    d.stock(date, &[(pharmacy, "KN95", 1), (pharmacy, "MED-SURG", 1)])
        .await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    // The server learns of a new draw within a second (its publication cache); until then the
    // tickets show no draw, so this polls, bounded.
    let (mut winner, mut loser) = (None, None);
    let start = std::time::Instant::now();
    for t in tickets {
        let outcome = loop {
            let st: Value = app
                .get(&format!("/api/v1/reservations/{t}"))
                .await
                .json()
                .await
                .unwrap();
            if let Some(o) = st["draws"][0]["outcome"].as_str() {
                break o.to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "ticket {t} shows no draw: {st}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        match outcome.as_str() {
            "won" => winner = Some(t),
            "lost" => loser = Some(t),
            other => panic!("ticket {t} has outcome {other}"),
        }
    }
    (date, winner.expect("a winner"), loser.expect("a loser"))
}

#[tokio::test]
async fn a_day_drawn_after_reserving_in_the_page_checks_out_in_the_page_and_tampering_shows() {
    // The production limit on proofs and published files per client (the page asks for nine
    // things at once, so it must pace itself when told to wait).
    let app = spawn_app_with(Options::default(), |s| {
        s.proof_rate_per_sec = Settings::default().proof_rate_per_sec;
    })
    .await;
    let state = std::env::temp_dir().join(format!(
        "md-page-state-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let (holder_ticket, pharmacy) = reserve_in_page(&app, Some(&state)).await;
    let (date, winner, loser) = published_day(&app, &pharmacy, &holder_ticket).await;
    node_test(
        &harness(),
        &["proof.test.mjs"],
        &[
            ("MASKDRAW_URL", app.address.clone()),
            ("DATE", date.to_string()),
            ("WINNER", winner),
            ("LOSER", loser),
            ("HOLDER_TICKET", holder_ticket),
            ("STATE_FILE", state.display().to_string()),
            ("SCREENSHOT_DIR", screenshots().display().to_string()),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&state);
    app.teardown().await;
}
