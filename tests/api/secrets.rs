//! The server's secrets outside development (issue 9 item 8): the built-in development secrets
//! are refused by every command that holds them, pharmacy tokens have a key of their own, carry
//! a serial that can be revoked, and rotating their key leaves person tags alone.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use maskdraw::config::Secret;
use maskdraw::startup::Application;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{first_pharmacy, reservation, spawn_app, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_maskdraw");

/// `maskdraw <args>` with only the given `MASKDRAW_*` variables (none inherited), in a fresh
/// directory with no `maskdraw.toml`, killed if it is still running after 60 s.
fn maskdraw(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("md-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(&dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("MASKDRAW_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("maskdraw starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The settings `maskdraw token` needs to reach this app's database, as variables.
fn app_env(app: &TestApp) -> Vec<(&'static str, String)> {
    let s = &app.settings;
    vec![
        ("MASKDRAW_ENVIRONMENT", "development".to_string()),
        ("MASKDRAW_DATABASE_URL", s.database_url.clone()),
        ("MASKDRAW_HMAC_SECRET", s.hmac_secret.expose().to_string()),
        ("MASKDRAW_TOKEN_SECRET", s.token_secret.expose().to_string()),
        ("MASKDRAW_STATIC_DIR", s.static_dir.display().to_string()),
    ]
}

/// `maskdraw token ARGS` against this app's database (with `token_secret` overridden when
/// given); the token printed on stdout.
fn token_cli(app: &TestApp, args: &[&str], token_secret: Option<&str>) -> Output {
    let mut env = app_env(app);
    if let Some(t) = token_secret {
        env.retain(|(k, _)| *k != "MASKDRAW_TOKEN_SECRET");
        env.push(("MASKDRAW_TOKEN_SECRET", t.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    maskdraw(&all, &env)
}

fn issue(app: &TestApp, pharmacy: &str, token_secret: Option<&str>) -> String {
    let out = token_cli(app, &["--pharmacy", pharmacy], token_secret);
    assert!(out.status.success(), "token: {}", stderr(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        parts.len(),
        3,
        "a token is <pharmacy>.<serial>.<mac>: {token}"
    );
    assert_eq!(parts[0], pharmacy);
    assert!(parts[1].parse::<u64>().is_ok(), "{token}");
    token
}

fn serial(token: &str) -> &str {
    token.split('.').nth(1).unwrap()
}

/// A pickup with `token` for a code nobody won: 404 when the token is accepted, 401 when not.
async fn pickup_status(address: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{address}/api/v1/pickups"))
        .bearer_auth(token)
        .json(&json!({"pickup_code": "ZZZZZZZZZZ"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn serve_persist_seal_draw_and_token_refuse_the_built_in_secrets_outside_development() {
    // Nothing behind these addresses: a command that got past the secrets would fail on them,
    // with another message.
    let base = [
        (
            "MASKDRAW_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/md_never",
        ),
        ("MASKDRAW_REDIS_URL", "redis://127.0.0.1:1/0"),
        ("MASKDRAW_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
        ("MASKDRAW_BIND", "127.0.0.1:0"),
        ("MASKDRAW_ADMIN_BIND", "127.0.0.1:0"),
        (
            "MASKDRAW_STATIC_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        ),
    ];
    let commands: [&[&str]; 5] = [
        &["serve"],
        &["persist"],
        &["seal", "--date", "2026-11-24"],
        &["draw", "--date", "2026-11-24", "--material", "dice 1 2 3"],
        &["token", "--pharmacy", "GZ-TH-0001"],
    ];
    let own_hmac = ("MASKDRAW_HMAC_SECRET", "an-hmac-secret-of-our-own-0001");
    let own_token = ("MASKDRAW_TOKEN_SECRET", "a-token-secret-of-our-own-0001");
    // (extra variables, the setting the refusal must name)
    let cases: [(Vec<(&str, &str)>, &str); 4] = [
        // Production is the default: nothing set means production.
        (vec![], "hmac_secret"),
        (vec![("MASKDRAW_ENVIRONMENT", "production")], "hmac_secret"),
        (vec![own_hmac], "token_secret"),
        (
            vec![
                own_hmac,
                ("MASKDRAW_TOKEN_SECRET", "an-hmac-secret-of-our-own-0001"),
            ],
            "token_secret",
        ),
    ];
    for args in commands {
        for (extra, named) in &cases {
            let env: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
            let out = maskdraw(args, &env);
            let said = stderr(&out);
            assert!(!out.status.success(), "{args:?} with {extra:?} ran: {said}");
            assert!(
                said.contains(named) && said.contains("development"),
                "{args:?} with {extra:?} did not refuse for {named}: {said}"
            );
        }
    }
    // Own secrets, or development mode, pass the check (and then fail on the missing
    // database, which is another message).
    for extra in [
        vec![own_hmac, own_token],
        vec![("MASKDRAW_ENVIRONMENT", "development")],
    ] {
        let env: Vec<(&str, &str)> = base.iter().chain(extra.iter()).copied().collect();
        let out = maskdraw(&["token", "--pharmacy", "GZ-TH-0001"], &env);
        let said = stderr(&out);
        assert!(!said.contains("built-in development secret"), "{said}");
    }
}

#[tokio::test]
async fn a_pharmacy_token_derived_the_old_way_from_hmac_secret_gets_401() {
    let app = spawn_app().await;
    let pharmacy = first_pharmacy();
    // The stateless token of before: <pharmacy>.<HMAC(hmac_secret, "pharmacy:" ‖ id)[..16]>.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(app.settings.hmac_secret.expose().as_bytes())
            .unwrap();
    mac.update(b"pharmacy:");
    mac.update(pharmacy.as_bytes());
    let old = format!(
        "{pharmacy}.{}",
        hex::encode(&mac.finalize().into_bytes()[..16])
    );
    assert_eq!(pickup_status(&app.address, &old).await, 401);
    // A token issued now is accepted (the code is unknown: 404).
    let new = issue(&app, &pharmacy, None);
    assert_eq!(pickup_status(&app.address, &new).await, 404);
    app.teardown().await;
}

#[tokio::test]
async fn a_revoked_pharmacy_token_gets_401_and_the_others_keep_working() {
    let app = spawn_app().await;
    let pharmacy = first_pharmacy();
    let first = issue(&app, &pharmacy, None);
    let second = issue(&app, &pharmacy, None);
    assert_ne!(serial(&first), serial(&second));
    assert_eq!(pickup_status(&app.address, &first).await, 404);
    assert_eq!(pickup_status(&app.address, &second).await, 404);

    let out = token_cli(
        &app,
        &[
            "--pharmacy",
            &pharmacy,
            "--revoke",
            "--serial",
            serial(&first),
        ],
        None,
    );
    assert!(out.status.success(), "revoke: {}", stderr(&out));
    assert_eq!(pickup_status(&app.address, &first).await, 401);
    assert_eq!(pickup_status(&app.address, &second).await, 404);

    // A serial of another pharmacy is not this one's to revoke.
    let other = crate::day::district_pharmacies(&app, 2)[1].clone();
    let theirs = issue(&app, &other, None);
    let out = token_cli(
        &app,
        &[
            "--pharmacy",
            &pharmacy,
            "--revoke",
            "--serial",
            serial(&theirs),
        ],
        None,
    );
    assert!(!out.status.success());
    assert_eq!(pickup_status(&app.address, &theirs).await, 404);

    // Without --serial: every token of the pharmacy.
    let out = token_cli(&app, &["--pharmacy", &pharmacy, "--revoke"], None);
    assert!(out.status.success(), "revoke all: {}", stderr(&out));
    assert_eq!(pickup_status(&app.address, &second).await, 401);
    assert_eq!(pickup_status(&app.address, &theirs).await, 404);
    // A mangled serial is refused, not mistaken for another.
    let forged = second.replacen(
        &format!(".{}.", serial(&second)),
        &format!(".{}.", serial(&theirs)),
        1,
    );
    assert_eq!(pickup_status(&app.address, &forged).await, 401);
    app.teardown().await;
}

#[tokio::test]
async fn rotating_the_token_secret_changes_every_token_but_no_person_tag() {
    let app = spawn_app().await;
    let pharmacy = first_pharmacy();
    let person = reservation();
    assert_eq!(app.reserve(&person).await.status(), 202);
    app.wait_for_tickets("registered", 1, Duration::from_secs(20))
        .await;
    let before = issue(&app, &pharmacy, None);

    // The same deployment after rotating token_secret: same database, Redis and queues.
    let rotated = format!("rotated-{}", app.settings.token_secret.expose());
    let mut settings = app.settings.clone();
    settings.token_secret = Secret::new(rotated.clone());
    let second = Application::build(settings, false).await.unwrap();
    let address = format!("http://127.0.0.1:{}", second.port());
    let second = second.spawn();

    // Every token changes: the old one is refused, one issued with the new key works.
    assert_eq!(pickup_status(&address, &before).await, 401);
    let after = issue(&app, &pharmacy, Some(&rotated));
    assert_eq!(pickup_status(&address, &after).await, 404);
    assert_eq!(pickup_status(&app.address, &after).await, 401);

    // No person tag changes: the person still holds their reservation and finds it.
    let client = reqwest::Client::new();
    let again = client
        .post(format!("{address}/api/v1/reservations"))
        .json(&person)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["code"],
        "already_reserved"
    );
    let found: Value = client
        .post(format!("{address}/api/v1/reservations/lookup"))
        .json(&json!({"id_number": person["id_number"], "phone": person["phone"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["tickets"].as_array().unwrap().len(), 1, "{found}");
    second.stop().await;
    app.teardown().await;
}

#[test]
fn the_deploy_configuration_is_production_and_names_every_secret_it_needs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let text = std::fs::read_to_string(dir.join("maskdraw.toml")).unwrap();
    let mut s: maskdraw::config::Settings = toml::from_str(&text).unwrap();
    assert_eq!(s.environment, maskdraw::config::Environment::Production);
    assert!(s.phone_code_required());
    s.check_phone_codes().unwrap();
    // Without the secrets of maskdraw.env it would not start…
    assert!(s.refuse_development_secrets().is_err());
    // …and maskdraw.env.example names them.
    let env = std::fs::read_to_string(dir.join("maskdraw.env.example")).unwrap();
    for var in [
        "MASKDRAW_HMAC_SECRET",
        "MASKDRAW_TOKEN_SECRET",
        "MASKDRAW_SMS_WEBHOOK_TOKEN",
    ] {
        assert!(env.contains(&format!("\n{var}=")), "{var}");
    }
    s.hmac_secret = Secret::new("0123456789abcdef0123456789abcdef");
    s.token_secret = Secret::new("fedcba9876543210fedcba9876543210");
    s.refuse_development_secrets().unwrap();
    s.check().unwrap();
}
