//! The officials' day end to end: stock, seal, draw, what citizens see, pickups, cooldowns,
//! expiry, and the notary's verification of what was produced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use maskdraw::day::{self, DayContext};
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};

use crate::helpers::{id_number, spawn_app, TestApp};

pub struct Day {
    pub ctx: DayContext,
    pub root: PathBuf,
    pub key: ed25519_dalek::SigningKey,
}

impl Day {
    /// The day of `app`, in the directories of its settings (so its server serves what the
    /// day writes), with a fresh authority key.
    pub async fn new(app: &TestApp) -> Self {
        let root = app.settings.keys_dir.parent().unwrap().to_path_buf();
        day::keys::keygen(&app.settings.keys_dir).unwrap();
        let key = day::keys::load(&app.settings.keys_dir).unwrap();
        let ctx = DayContext {
            settings: app.settings.clone(),
            db: app.db.clone(),
            redis: RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix)
                .unwrap(),
            catalog: maskdraw::catalog::Catalog::load(&app.settings.static_dir).unwrap(),
            progress: false,
        };
        Self { ctx, root, key }
    }

    pub fn snapshots(&self) -> PathBuf {
        self.ctx.settings.snapshots_dir.clone()
    }

    pub async fn stock(&self, date: NaiveDate, lines: &[(&str, &str, u32)]) {
        let text: String = lines
            .iter()
            .map(|(ph, pr, n)| format!("{ph},{pr},{n}\n"))
            .collect();
        day::stock::import(&self.ctx, date, &text).await.unwrap();
    }

    pub async fn seal(&self, date: NaiveDate) -> Result<day::seal::SealReport, day::DayError> {
        let commits = vec![format!(
            "notary={}",
            hex::encode(lottery::text::commitment(&[7u8; 16]))
        )];
        day::seal::seal(
            &self.ctx,
            date,
            &self.key,
            day::seal::parse_commits(&commits).unwrap(),
            &self.snapshots(),
        )
        .await
    }

    pub async fn draw(&self, date: NaiveDate) -> Result<day::draw::DrawReport, day::DayError> {
        let reveals =
            day::draw::parse_reveals(&[format!("notary={}", hex::encode([7u8; 16]))]).unwrap();
        day::draw::draw(
            &self.ctx,
            date,
            &self.key,
            reveals,
            "dice 1 2 3".into(),
            &self.ctx.settings.exports_dir,
        )
        .await
    }

    pub fn verify(&self, dir: &Path, previous: Option<&Path>) -> lottery::verify::Report {
        lottery::verify::verify_dir(dir, &self.key.verifying_key(), previous)
    }
}

pub fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

pub fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// Pharmacies of one district, so spill between them is possible.
pub fn district_pharmacies(app: &TestApp, n: usize) -> Vec<String> {
    let cat = maskdraw::catalog::Catalog::load(&app.settings.static_dir).unwrap();
    let first = cat.pharmacies.values().next().unwrap().district.clone();
    cat.pharmacies
        .values()
        .filter(|p| p.district == first)
        .take(n)
        .map(|p| p.id.to_string())
        .collect()
}

pub async fn reserve(
    app: &TestApp,
    pharmacy: &str,
    product: &str,
    flexible: bool,
) -> (String, Value) {
    let body = json!({"id_number": id_number(), "name": "测试", "phone": "13800138000",
                      "pharmacy_id": pharmacy, "product_id": product, "flexible": flexible});
    let resp = app.reserve(&body).await;
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    (v["ticket_id"].as_str().unwrap().to_string(), body)
}

/// Moves a ticket's acceptance (and so its validity) `n` days into the past, as if it had
/// been made then.
pub async fn backdate(app: &TestApp, ticket: &str, n: i64) {
    app.db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "UPDATE tickets SET accepted_at = accepted_at - interval '{n} days', \
                 valid_until = valid_until - interval '{n} days' WHERE ticket_id = '{ticket}'"
            ),
        ))
        .await
        .unwrap();
}

/// A day two days ahead with one registered ticket (KN95 at a pharmacy) and `packs` of stock
/// for it.
pub async fn one_ticket_day(app: &TestApp, packs: u32) -> (Day, String, NaiveDate) {
    let d = Day::new(app).await;
    let ph = district_pharmacies(app, 1);
    let (ticket, _) = reserve(app, &ph[0], "KN95", false).await;
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    let date = today() + days(2);
    d.stock(date, &[(&ph[0], "KN95", packs)]).await;
    (d, ticket, date)
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[tokio::test]
async fn a_whole_day_is_sealed_drawn_and_verified_and_cannot_be_redone() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 2);
    let mut tickets = Vec::new();
    let mut bodies = std::collections::HashMap::new();
    for i in 0..12 {
        let (t, body) = reserve(&app, &ph[i % 2], "KN95", i % 3 == 0).await;
        bodies.insert(t.clone(), body);
        tickets.push(t);
    }
    app.wait_for_tickets("registered", 12, Duration::from_secs(30))
        .await;
    // Tomorrow's cutoff is always ahead of now, so these tickets are in.
    let date = today() + days(2);
    d.stock(date, &[(&ph[0], "KN95", 2), (&ph[1], "KN95", 9)])
        .await;

    let sealed = d.seal(date).await.unwrap();
    assert_eq!(sealed.entrants, 12);
    assert_eq!(lines(&sealed.dir.join("entrants.csv")), 12);
    let report = d.verify(&sealed.dir, None);
    assert!(report.all_passed(), "{report}");
    assert!(
        matches!(d.seal(date).await, Err(day::DayError::Refused(m)) if m.contains("sealed already"))
    );

    let drawn = d.draw(date).await.unwrap();
    assert_eq!(drawn.entrants, 12);
    let report = d.verify(&sealed.dir, None);
    assert!(report.all_passed(), "{report}");
    assert!(report.checks.len() > 10);
    // The seal wrote the proof tiles; the notary rebuilt them byte for byte, and proofs come
    // from them.
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name.contains("entrants.tiles is rebuilt")),
        "{report}"
    );
    let proofs = lottery::proof::DayProofs::open(&sealed.dir).unwrap();
    assert_eq!(proofs.source(), lottery::proof::ProofSource::Tiles);
    let winners = lines(&sealed.dir.join("result.csv"));
    assert!(
        (8..=11).contains(&winners),
        "{winners} winners for 11 packs"
    );
    let exported: usize = std::fs::read_dir(&drawn.exports)
        .unwrap()
        .map(|e| lines(&e.unwrap().path()) - 1)
        .sum();
    assert_eq!(exported, winners);
    assert!(
        matches!(d.draw(date).await, Err(day::DayError::Refused(m)) if m.contains("drawn already"))
    );
    let summary = drawn.to_string();
    assert!(summary.contains("entrants      12"), "{summary}");

    // Tampering with any produced file makes the notary's check fail.
    for file in ["entrants.csv", "result.csv", "draw.txt", "seal.sig"] {
        let copy = d.root.join(format!("tampered-{file}"));
        std::fs::create_dir_all(&copy).unwrap();
        for e in std::fs::read_dir(&sealed.dir).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        let mut bytes = std::fs::read(copy.join(file)).unwrap();
        bytes[3] ^= 0x01;
        std::fs::write(copy.join(file), bytes).unwrap();
        assert!(
            !d.verify(&copy, None).all_passed(),
            "tampered {file} still verifies"
        );
    }

    // Results stay hidden until publish_at (18:00 on the draw day, which is ahead).
    for t in &tickets {
        let st: Value = app
            .get(&format!("/api/v1/reservations/{t}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(st["status"], "registered", "{st}");
        assert_eq!(st["draws"], json!([]), "{st}");
    }
    // A winner who tries again before publication learns nothing: they still "hold" a ticket.
    let result = std::fs::read_to_string(sealed.dir.join("result.csv")).unwrap();
    let winner = result.lines().next().unwrap().split(',').next().unwrap();
    let again = app.reserve(&bodies[winner]).await;
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["code"],
        "already_reserved"
    );
    let proof = app
        .get(&format!(
            "/api/v1/reservations/{}/proof?date={date}",
            tickets[0]
        ))
        .await;
    assert_eq!(proof.status(), 404);
    assert_eq!(
        proof.json::<Value>().await.unwrap()["code"],
        "not_published"
    );
    app.teardown().await;
}

#[tokio::test]
async fn published_results_show_outcomes_proofs_and_allow_one_pickup_at_the_right_pharmacy() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 2);
    let (winner, winner_body) = reserve(&app, &ph[0], "KN95", false).await;
    let (loser, loser_body) = reserve(&app, &ph[1], "MED-SURG", false).await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    backdate(&app, &winner, 3).await;
    backdate(&app, &loser, 3).await;
    // Drawn yesterday: published at 18:00 yesterday.
    let date = today() - days(1);
    d.stock(date, &[(&ph[0], "KN95", 1), (&ph[1], "MED-SURG", 0)])
        .await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();

    // The ticket id alone (public from now on, in entrants.csv) shows the outcome; the holder
    // secret given with the 202 also shows the pickup code.
    let st: Value = app
        .get(&format!("/api/v1/reservations/{winner}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "won", "{st}");
    let draw = &st["draws"][0];
    assert_eq!(draw["date"], date.to_string());
    assert_eq!(draw["outcome"], "won");
    assert_eq!(draw["pharmacy_id"], ph[0].as_str());
    assert_eq!(draw["roll"], 1);
    assert!(draw.get("pickup_code").is_none(), "{st}");
    let holder =
        maskdraw::domain::holder_secret(app.settings.hmac_secret.expose().as_bytes(), &winner);
    let st: Value = app
        .client
        .get(format!("{}/api/v1/reservations/{winner}", app.address))
        .header("X-Holder-Secret", &holder)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let draw = &st["draws"][0];
    let code = draw["pickup_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 10);
    let wrong: Value = app
        .client
        .get(format!("{}/api/v1/reservations/{winner}", app.address))
        .header("X-Holder-Secret", "0".repeat(32))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(wrong["draws"][0].get("pickup_code").is_none(), "{wrong}");
    let lost: Value = app
        .get(&format!("/api/v1/reservations/{loser}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        lost["draws"],
        json!([{"date": date.to_string(), "outcome": "lost"}]),
        "{lost}"
    );
    // PostgreSQL holds the same outcomes (lookup reads it, not Redis): the draw recorded every
    // entry and every winner.
    for (body, want) in [
        (&winner_body, draw.clone()),
        (
            &loser_body,
            json!({"date": date.to_string(), "outcome": "lost"}),
        ),
    ] {
        let found = app
            .lookup(&body["id_number"], body["phone"].as_str().unwrap())
            .await;
        assert_eq!(found["tickets"][0]["draws"], json!([want]), "{found}");
    }

    // The proof is the notary's, and it checks out.
    let proof: Value = app
        .get(&format!("/api/v1/reservations/{winner}/proof?date={date}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(proof["ticket_id"], winner.as_str());
    assert_eq!(proof["won"], true, "{proof}");
    assert_eq!(proof["path_verifies"], true, "{proof}");
    assert_eq!(proof["roll_1"].as_str().unwrap().len(), 16);
    assert_eq!(
        app.get(&format!(
            "/api/v1/reservations/{winner}/proof?date=yesterday"
        ))
        .await
        .status(),
        400
    );

    // Pickup: the right pharmacy once; another pharmacy, a second time, an unknown code, no token.
    let url = format!("{}/api/v1/pickups", app.address);
    let secret = app.settings.token_secret.expose().as_bytes().to_vec();
    let post = |token: Option<String>, code: &str| {
        let mut req = app.client.post(&url).json(&json!({ "pickup_code": code }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let right = maskdraw::api::pickups::issue_token(&app.db, &secret, &ph[0])
        .await
        .unwrap();
    let other = maskdraw::api::pickups::issue_token(&app.db, &secret, &ph[1])
        .await
        .unwrap();
    assert_eq!(post(None, &code).await.unwrap().status(), 401);
    assert_eq!(post(Some(other), &code).await.unwrap().status(), 403);
    let ok = post(Some(right.clone()), &code).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap()["ticket_id"],
        winner.as_str()
    );
    let again = post(Some(right.clone()), &code).await.unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.unwrap()["code"],
        "already_picked_up"
    );
    assert_eq!(post(Some(right), "ZZZZZZZZZZ").await.unwrap().status(), 404);

    // The winner is cooling down: out for three days after yesterday's draw.
    let refused = app.reserve(&winner_body).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "cooling_down"
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_winner_may_reserve_again_once_the_cooldown_is_over() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let (winner, body) = reserve(&app, &ph[0], "KN95", false).await;
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    backdate(&app, &winner, 9).await;
    // Drawn six days ago: the three cooldown days are over.
    let date = today() - days(6);
    d.stock(date, &[(&ph[0], "KN95", 1)]).await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    assert_eq!(app.count_tickets(Some("won")).await, 1);
    let again = app.reserve(&body).await;
    assert_eq!(again.status(), 202, "{:?}", again.text().await);
    app.teardown().await;
}

#[tokio::test]
async fn tickets_expire_after_their_validity_and_late_tickets_enter_the_next_draw() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let (old, old_body) = reserve(&app, &ph[0], "KN95", true).await;
    let (fresh, _) = reserve(&app, &ph[0], "KN95", true).await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    backdate(&app, &old, 11).await;
    let first = today() + days(2);
    d.stock(first, &[(&ph[0], "KN95", 0)]).await;
    let sealed = d.seal(first).await.unwrap();
    assert_eq!(sealed.expired, 1);
    assert_eq!(sealed.entrants, 1);
    let entrants = std::fs::read_to_string(sealed.dir.join("entrants.csv")).unwrap();
    assert!(
        entrants.starts_with(&fresh) && !entrants.contains(&old),
        "{entrants}"
    );
    let st: Value = app
        .get(&format!("/api/v1/reservations/{old}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "expired");
    // The expired ticket's person may reserve again.
    assert_eq!(app.reserve(&old_body).await.status(), 202);

    // A ticket persisted after the seal enters the next sealed draw, with the chain linked.
    let (late, _) = reserve(&app, &ph[0], "KN95", false).await;
    app.wait_for_tickets("registered", 3, Duration::from_secs(30))
        .await;
    let second = today() + days(3);
    d.stock(second, &[(&ph[0], "KN95", 5)]).await;
    let next = d.seal(second).await.unwrap();
    let entrants = std::fs::read_to_string(next.dir.join("entrants.csv")).unwrap();
    assert!(
        entrants.contains(&late) && entrants.contains(&fresh),
        "{entrants}"
    );
    let report = d.verify(&next.dir, Some(&sealed.dir));
    assert!(report.all_passed(), "{report}");
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name.contains("chain") || c.name.contains("previous")),
        "{report}"
    );
    // Seals go forward only.
    assert!(matches!(
        d.seal(first - days(1)).await,
        Err(day::DayError::Refused(_))
    ));
    app.teardown().await;
}

#[tokio::test]
async fn a_draw_is_refused_when_a_reveal_does_not_match_its_commitment() {
    let app = spawn_app().await;
    let (d, _, date) = one_ticket_day(&app, 1).await;
    let sealed = d.seal(date).await.unwrap();
    let wrong = day::draw::parse_reveals(&[format!("notary={}", hex::encode([8u8; 16]))]).unwrap();
    let err = day::draw::draw(
        &d.ctx,
        date,
        &d.key,
        wrong,
        "dice 1".into(),
        &d.root.join("exports"),
    )
    .await;
    assert!(err.is_err());
    assert!(!sealed.dir.join("draw.txt").exists());
    assert!(d.draw(date).await.is_ok());
    app.teardown().await;
}

#[tokio::test]
async fn stock_import_reports_bad_lines_and_is_closed_once_sealed() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let date = today() + days(2);
    let err = day::stock::import(&d.ctx, date, &format!("{},KN95,1\nNOPE,KN95,2\n", ph[0]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("line 2: unknown pharmacy"),
        "{err}"
    );
    d.stock(date, &[(&ph[0], "KN95", 3)]).await;
    assert_eq!(
        maskdraw::store::day::stock(&d.ctx.db, date)
            .await
            .unwrap()
            .len(),
        1
    );
    d.seal(date).await.unwrap();
    let closed = day::stock::import(&d.ctx, date, &format!("{},KN95,9\n", ph[0]))
        .await
        .unwrap_err();
    assert!(closed.to_string().contains("sealed already"), "{closed}");
    app.teardown().await;
}

#[tokio::test]
async fn the_demo_runs_a_whole_day_that_the_notary_verifies() {
    let root = std::env::temp_dir().join(format!("md-demo-{}", uuid::Uuid::new_v4().simple()));
    // The demo runs in development mode, as scripts/run.sh runs it on a fresh machine.
    let settings = maskdraw::config::Settings {
        static_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static"),
        environment: maskdraw::config::Environment::Development,
        ..maskdraw::config::Settings::default()
    };
    let opts = day::demo::DemoOptions {
        citizens: 80,
        date: None,
        published: false,
        root: root.clone(),
        env_file: None,
        progress: false,
    };
    let out = day::demo::run(settings, opts).await.unwrap();
    assert!(out.contains("PASS result.csv is reproduced"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("(80 accepted"), "{out}");
    assert!(root.join("keys/authority.pub").exists());
    let snapshot = std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for f in [
        "entrants.csv",
        "stock.csv",
        "seal.txt",
        "seal.sig",
        "result.csv",
        "pools.csv",
        "spill.csv",
        "draw.txt",
        "draw.sig",
    ] {
        assert!(snapshot.join(f).exists(), "{f}");
    }
    let db = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("database"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let admin = sea_orm::Database::connect(crate::helpers::PG_ADMIN)
        .await
        .unwrap();
    admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        ))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_draw_is_refused_when_entrants_csv_changed_after_the_seal() {
    let app = spawn_app().await;
    let (d, ticket, date) = one_ticket_day(&app, 0).await;
    let sealed = d.seal(date).await.unwrap();
    // Still a well-formed file (the flexible flag flipped): only its digest tells.
    let path = sealed.dir.join("entrants.csv");
    let original = std::fs::read_to_string(&path).unwrap();
    assert!(original.starts_with(&ticket), "{original}");
    std::fs::write(&path, original.replacen(",KN95,0,", ",KN95,1,", 1)).unwrap();
    let Err(err) = d.draw(date).await else {
        panic!("a changed entrants.csv was drawn")
    };
    let err = err.to_string();
    assert!(
        err.contains("entrants.csv is the file the seal wrote"),
        "{err}"
    );
    assert!(!sealed.dir.join("draw.txt").exists());
    // A seal recorded before the digest existed is checked by its tree head instead.
    app.db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            "UPDATE seals SET entrants_sha256 = NULL".to_string(),
        ))
        .await
        .unwrap();
    let Err(err) = d.draw(date).await else {
        panic!("a changed entrants.csv was drawn")
    };
    assert!(
        err.to_string()
            .contains("entrants_root matches entrants.csv"),
        "{err}"
    );
    // Put back, the same seal draws.
    std::fs::write(&path, original).unwrap();
    assert!(d.draw(date).await.is_ok());
    app.teardown().await;
}

#[tokio::test]
async fn a_seal_that_meets_a_row_breaking_the_format_records_nothing_and_leaves_no_directory() {
    let app = spawn_app().await;
    let (d, ticket, date) = one_ticket_day(&app, 1).await;
    let ph = district_pharmacies(&app, 1);
    let set_pharmacy = |to: String| {
        let db = app.db.clone();
        let ticket = ticket.clone();
        async move {
            db.execute(Statement::from_string(
                DbBackend::Postgres,
                format!("UPDATE tickets SET pharmacy_id = '{to}' WHERE ticket_id = '{ticket}'"),
            ))
            .await
            .unwrap();
        }
    };
    // Lowercase is outside the identifier grammar: the seal's writer refuses the row.
    set_pharmacy(ph[0].to_lowercase()).await;
    let Err(err) = d.seal(date).await else {
        panic!("a row breaking the format was sealed")
    };
    // What the CLI prints: the error and its causes.
    let err = format!("{:#}", anyhow::Error::from(err));
    assert!(
        err.contains(&ticket) && err.contains("pharmacy_id"),
        "{err}"
    );
    assert!(!day::day_dir(&d.snapshots(), date).exists());
    assert!(maskdraw::store::day::seal(&d.ctx.db, date)
        .await
        .unwrap()
        .is_none());
    set_pharmacy(ph[0].clone()).await;
    assert_eq!(d.seal(date).await.unwrap().entrants, 1);
    app.teardown().await;
}

#[tokio::test]
async fn a_pool_entrants_name_but_the_stock_left_out_is_sealed_with_zero_packs() {
    let app = spawn_app().await;
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 2);
    reserve(&app, &ph[0], "KN95", false).await;
    reserve(&app, &ph[1], "MED-SURG", true).await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    let date = today() + days(2);
    // Only the first pool is imported.
    d.stock(date, &[(&ph[0], "KN95", 1)]).await;
    let sealed = d.seal(date).await.unwrap();
    let stock = std::fs::read_to_string(sealed.dir.join("stock.csv")).unwrap();
    let district = maskdraw::catalog::Catalog::load(&app.settings.static_dir)
        .unwrap()
        .pharmacy(&ph[1])
        .unwrap()
        .district
        .to_string();
    assert!(
        stock
            .lines()
            .any(|l| l == format!("{},{district},MED-SURG,0", ph[1])),
        "{stock}"
    );
    assert_eq!(sealed.pools, 2);
    d.draw(date).await.unwrap();
    let report = d.verify(&sealed.dir, None);
    assert!(report.all_passed(), "{report}");
    app.teardown().await;
}

#[tokio::test]
async fn the_demo_of_yesterday_fills_the_day_publishes_it_and_leaves_a_server_what_it_needs() {
    let root = std::env::temp_dir().join(format!("md-demo-{}", uuid::Uuid::new_v4().simple()));
    let env_file = root.join("demo.env");
    let base = maskdraw::config::Settings {
        static_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static"),
        environment: maskdraw::config::Environment::Development,
        ..maskdraw::config::Settings::default()
    };
    let opts = day::demo::DemoOptions {
        citizens: 60,
        date: None,
        published: true,
        root: root.clone(),
        env_file: Some(env_file.clone()),
        progress: false,
    };
    let out = day::demo::run(base.clone(), opts).await.unwrap();
    let date = today() - days(1);
    assert!(
        out.contains(&format!("draw date  {date}, results published")),
        "{out}"
    );
    // The reservations were accepted before the day's cutoff: the day is full.
    assert!(out.contains("sealed 60 entrant(s)"), "{out}");
    let ticket = |what: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(what))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_string()
    };
    let (winner, loser) = (ticket("winning"), ticket("losing"));

    // A server started with the demo's settings shows the day.
    let mut settings = base.clone();
    for line in std::fs::read_to_string(&env_file).unwrap().lines() {
        let (k, v) = line.split_once('=').unwrap();
        match k {
            "MASKDRAW_DATABASE_URL" => settings.database_url = v.into(),
            "MASKDRAW_KEY_PREFIX" => settings.key_prefix = v.into(),
            "MASKDRAW_QUEUE_PREFIX" => settings.queue_prefix = v.into(),
            "MASKDRAW_SNAPSHOTS_DIR" => settings.snapshots_dir = v.into(),
            "MASKDRAW_EXPORTS_DIR" => settings.exports_dir = v.into(),
            "MASKDRAW_KEYS_DIR" => settings.keys_dir = v.into(),
            other => panic!("unexpected setting {other}"),
        }
    }
    settings.bind = "127.0.0.1:0".into();
    settings.admin_bind = "127.0.0.1:0".into();
    let app = maskdraw::startup::Application::build(settings.clone(), false)
        .await
        .unwrap();
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let running = app.spawn();
    let client = reqwest::Client::new();
    let get = |path: String| client.get(format!("{base_url}{path}")).send();
    let st: Value = get(format!("/api/v1/reservations/{winner}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "won", "{st}");
    let st: Value = get(format!("/api/v1/reservations/{loser}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["draws"][0]["outcome"], "lost", "{st}");
    assert_eq!(
        get(format!("/snapshots/{date}/seal.txt"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get("/snapshots/authority.pub".into())
            .await
            .unwrap()
            .status(),
        200
    );
    running.stop().await;

    let _ = RedisStore::connect(&settings.redis_endpoint(), &settings.key_prefix)
        .unwrap()
        .delete_all()
        .await;
    if let Ok(conn) = maskdraw::queue::broker::connect(&settings.amqp_url).await {
        if let Ok(ch) = conn.create_channel().await {
            for q in [settings.queue_name(), settings.dead_queue_name()] {
                let _ = ch
                    .queue_delete(&q, lapin::options::QueueDeleteOptions::default())
                    .await;
            }
        }
    }
    let db = settings
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let admin = sea_orm::Database::connect(crate::helpers::PG_ADMIN)
        .await
        .unwrap();
    admin
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        ))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
