//! Generated requests (issue 10 item 3): schemathesis reads `/api/openapi.json` and sends
//! thousands of generated requests, valid and invalid, one operation at a time and then in
//! sequences that follow the document's links (the stateful phase), with every check on: no
//! 5xx, and every answer (status, content type, headers, body) what the document says.
//!
//! schemathesis comes from PyPI into a virtualenv under target/ (`scripts/tools.sh` installs
//! it; `SCHEMATHESIS` names another binary).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::helpers::{spawn_app_with, Options};

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/schemathesis");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/tools.sh (it installs schemathesis from PyPI into a venv)",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_generated_requests_find_no_server_error_and_no_departure_from_the_document() {
    let bin = schemathesis();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Development mode (no phone codes) and per-client limits far above what one address sends
    // here (spawn_app's settings).
    let app = spawn_app_with(Options::default(), |_| {}).await;
    // A real pharmacy token, so pickups are tested past their 401 (schemathesis's
    // `ignored_auth` check still sends them without it).
    let token = maskdraw::api::pickups::issue_token(
        &app.db,
        app.settings.token_secret.expose().as_bytes(),
        &crate::helpers::first_pharmacy(),
    )
    .await
    .unwrap();
    // Hypothesis keeps its example database in the working directory: a throwaway one.
    let work =
        std::env::temp_dir().join(format!("md-schemathesis-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).unwrap();
    let start = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new(&bin)
            .current_dir(&work)
            .arg("run")
            .arg(format!("{}/api/openapi.json", app.address))
            .args(["--checks", "all"])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--max-examples", "100"])
            .args(["--seed", "20261203"])
            // One worker: CPython 3.11's AST validation is not thread-safe (hypothesis parses
            // lambdas' sources while describing strategies; two workers race into a
            // SystemError, "AST constructor recursion depth mismatch").
            .args(["--workers", "1"])
            .args(["--request-timeout", "10"])
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"))
            .env(
                "SCHEMATHESIS_HOOKS",
                repo.join("tests/schemathesis/hooks.py"),
            )
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("schemathesis finished within 4 minutes")
    .expect("schemathesis starts");
    let _ = std::fs::remove_dir_all(&work);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis failed after {:?}:\n{text}",
        start.elapsed()
    );
    // Every phase ran (none skipped but the examples, which the document does not give), and
    // at least a thousand cases, from schemathesis's own summary.
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(
            text.contains(&format!("✅ {phase}")),
            "{phase} did not pass:\n{text}"
        );
    }
    let cases: u64 = regex_lite::Regex::new(r"([0-9]+) generated, ([0-9]+) passed")
        .unwrap()
        .captures(&text)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or(0);
    assert!(cases >= 1_000, "only {cases} generated cases:\n{text}");
    app.teardown().await;
}
