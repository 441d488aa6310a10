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

use chrono::{NaiveDate, Utc};
use maskdraw::day::{self, DayContext};
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};

use crate::helpers::{id_number, spawn_app, TestApp};

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

/// A day drawn yesterday (so published at 18:00 yesterday) at `pharmacy`: the ticket already
/// made in the page (KN95, the only one, 1 pack: it wins) and three more for one pack of
/// MED-SURG, none flexible: one wins under the pool's cutoff, two lose. Returns the temporary
/// root (keys, snapshots, exports), the date, a MED-SURG winner and a loser.
async fn published_day(app: &TestApp, pharmacy: &str, root: &Path) -> (NaiveDate, String, String) {
    day::keys::keygen(&root.join("keys")).unwrap();
    let key = day::keys::load(&root.join("keys")).unwrap();
    let ctx = DayContext {
        settings: app.settings.clone(),
        db: app.db.clone(),
        redis: RedisStore::connect(&app.settings.redis_url, &app.settings.key_prefix).unwrap(),
        catalog: maskdraw::catalog::Catalog::load(&app.settings.static_dir).unwrap(),
        progress: false,
    };
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let body = json!({"id_number": id_number(), "name": "测试", "phone": "13800138000",
                          "pharmacy_id": pharmacy, "product_id": "MED-SURG", "flexible": false});
        let resp = app.reserve(&body).await;
        assert_eq!(resp.status(), 202);
        let v: Value = resp.json().await.unwrap();
        tickets.push(v["ticket_id"].as_str().unwrap().to_string());
    }
    app.wait_for_tickets("registered", 4, Duration::from_secs(30))
        .await;
    // Made three days ago, so they are in yesterday's draw.
    app.db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            "UPDATE tickets SET accepted_at = accepted_at - interval '3 days', \
             valid_until = valid_until - interval '3 days'"
                .to_string(),
        ))
        .await
        .unwrap();
    let date = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        - chrono::Duration::days(1);
    day::stock::import(
        &ctx,
        date,
        &format!("{pharmacy},KN95,1\n{pharmacy},MED-SURG,1\n"),
    )
    .await
    .unwrap();
    let commits = vec![format!(
        "notary={}",
        hex::encode(lottery::text::commitment(&[7u8; 16]))
    )];
    day::seal::seal(
        &ctx,
        date,
        &key,
        day::seal::parse_commits(&commits).unwrap(),
        &root.join("snapshots"),
    )
    .await
    .unwrap();
    let reveals =
        day::draw::parse_reveals(&[format!("notary={}", hex::encode([7u8; 16]))]).unwrap();
    day::draw::draw(
        &ctx,
        date,
        &key,
        reveals,
        "dice 4 2 6 browser".into(),
        &root.join("exports"),
    )
    .await
    .unwrap();
    let (mut winner, mut loser) = (None, None);
    for t in tickets {
        let st: Value = app
            .get(&format!("/api/v1/reservations/{t}"))
            .await
            .json()
            .await
            .unwrap();
        match st["draws"][0]["outcome"].as_str() {
            Some("won") => winner = Some(t),
            Some("lost") => loser = Some(t),
            other => panic!("ticket {t} has outcome {other:?}: {st}"),
        }
    }
    (date, winner.expect("a winner"), loser.expect("a loser"))
}

#[tokio::test]
async fn a_day_drawn_after_reserving_in_the_page_checks_out_in_the_page_and_tampering_shows() {
    let app = spawn_app().await;
    let root = std::env::temp_dir().join(format!("md-browser-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root).unwrap();
    let state = root.join("page-state.json");
    let (holder_ticket, pharmacy) = reserve_in_page(&app, Some(&state)).await;
    let (date, winner, loser) = published_day(&app, &pharmacy, &root).await;
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
    let _ = std::fs::remove_dir_all(&root);
    app.teardown().await;
}
