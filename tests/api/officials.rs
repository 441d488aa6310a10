//! The officials' seal and draw under races, crashes and hostile inputs (issue 9, items 6, 11,
//! 13 and 14): two officers at once, a process that dies between two steps, a Redis or an
//! exports directory that fails, a catalog whose names a spreadsheet would run, settings that
//! overflow the calendar.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use maskdraw::day::{self, DayContext};
use maskdraw::store::redis::RedisStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::day::{backdate, days, district_pharmacies, reserve, today, Day};
use crate::helpers::{spawn_app, spawn_app_with, Options, TestApp};
use day::Crash;
use maskdraw::store::day::{DayLock, Step};

/// A second officer's context on the same database, Redis, catalog and key.
fn twin(d: &Day) -> Day {
    Day {
        ctx: DayContext {
            settings: d.ctx.settings.clone(),
            db: d.ctx.db.clone(),
            redis: d.ctx.redis.clone(),
            catalog: d.ctx.catalog.clone(),
            progress: false,
        },
        root: d.root.clone(),
        key: d.key.clone(),
    }
}

fn commits() -> Vec<lottery::text::Commit> {
    day::seal::parse_commits(&[format!(
        "notary={}",
        hex::encode(lottery::text::commitment(&[7u8; 16]))
    )])
    .unwrap()
}

async fn seal_crashing(d: &Day, date: NaiveDate, crash: Crash) -> day::DayError {
    let opts = day::seal::SealOptions {
        commits: commits(),
        crash: Some(crash),
        ..day::seal::SealOptions::default()
    };
    day::seal::seal_with(&d.ctx, date, &d.key, &opts, &d.snapshots())
        .await
        .err()
        .expect("the seal stops where it was told to")
}

async fn draw_crashing(d: &Day, date: NaiveDate, material: &str, crash: Crash) -> day::DayError {
    let input = day::draw::DrawInput::Live {
        reveals: reveals(),
        material: material.into(),
    };
    let opts = day::draw::DrawOptions { crash: Some(crash) };
    day::draw::draw_with(
        &d.ctx,
        date,
        &d.key,
        input,
        &d.ctx.settings.exports_dir,
        &opts,
    )
    .await
    .err()
    .expect("the draw stops where it was told to")
}

async fn resume_draw(d: &Day, date: NaiveDate) -> Result<day::draw::DrawReport, day::DayError> {
    day::draw::resume_draw(&d.ctx, date, &d.key, &d.ctx.settings.exports_dir).await
}

async fn resume_seal(d: &Day, date: NaiveDate) -> Result<day::seal::SealResumed, day::DayError> {
    day::seal::resume_seal(&d.ctx, date, &d.key.verifying_key()).await
}

async fn seal_row(d: &Day, date: NaiveDate) -> Option<maskdraw::store::day::SealRow> {
    maskdraw::store::day::seal(&d.ctx.db, date).await.unwrap()
}

fn refused<T: std::fmt::Display>(r: Result<T, day::DayError>, says: &str) {
    match r {
        Err(day::DayError::Refused(why)) => assert!(why.contains(says), "{why}"),
        Err(other) => panic!("expected a refusal saying {says:?}, got {other:?}"),
        Ok(done) => panic!("expected a refusal saying {says:?}, got: {done}"),
    }
}

fn reveals() -> Vec<lottery::text::Reveal> {
    day::draw::parse_reveals(&[format!("notary={}", hex::encode([7u8; 16]))]).unwrap()
}

async fn draw_with(
    d: &Day,
    date: NaiveDate,
    material: &str,
) -> Result<day::draw::DrawReport, day::DayError> {
    day::draw::draw(
        &d.ctx,
        date,
        &d.key,
        reveals(),
        material.into(),
        &d.ctx.settings.exports_dir,
    )
    .await
}

/// `tickets` registered tickets spread over two pharmacies of one district, the day `date`
/// stocked with a few packs for each.
async fn stocked_day(app: &TestApp, tickets: usize, date: NaiveDate) -> (Day, Vec<String>) {
    let d = Day::new(app).await;
    let ph = district_pharmacies(app, 2);
    let mut ids = Vec::new();
    for i in 0..tickets {
        let (t, _) = reserve(app, &ph[i % 2], "KN95", i % 3 == 0).await;
        ids.push(t);
    }
    app.wait_for_tickets("registered", tickets as i64, Duration::from_secs(30))
        .await;
    d.stock(date, &[(&ph[0], "KN95", 2), (&ph[1], "KN95", 2)])
        .await;
    (d, ids)
}

async fn recorded_seal_txt(d: &Day, date: NaiveDate) -> String {
    maskdraw::store::day::seal(&d.ctx.db, date)
        .await
        .unwrap()
        .unwrap()
        .seal_txt
}

async fn recorded_draw_txt(d: &Day, date: NaiveDate) -> Option<String> {
    d.ctx
        .db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT draw_txt FROM draws WHERE draw_date = $1",
            vec![date.into()],
        ))
        .await
        .unwrap()
        .map(|r| r.try_get::<String>("", "draw_txt").unwrap())
}

/// (ticket, pharmacy, product, roll) of every recorded winner, in ticket order.
async fn recorded_winners(d: &Day, date: NaiveDate) -> Vec<String> {
    d.ctx
        .db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT ticket_id, pharmacy_id, product_id, roll FROM draw_winners WHERE draw_date = $1 \
             ORDER BY ticket_id",
            vec![date.into()],
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{},{},{},{}",
                r.try_get::<String>("", "ticket_id").unwrap(),
                r.try_get::<String>("", "pharmacy_id").unwrap(),
                r.try_get::<String>("", "product_id").unwrap(),
                r.try_get::<i16>("", "roll").unwrap()
            )
        })
        .collect()
}

/// `result.csv`'s lines in ticket order.
fn result_lines(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(dir.join("result.csv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The directory, its files and PostgreSQL tell the same drawn day, and the notary agrees.
async fn assert_drawn_day_agrees(d: &Day, date: NaiveDate) {
    let dir = day::day_dir(&d.snapshots(), date);
    let report = d.verify(&dir, None);
    assert!(report.all_passed(), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.join("seal.txt")).unwrap(),
        recorded_seal_txt(d, date).await
    );
    assert_eq!(
        Some(std::fs::read_to_string(dir.join("draw.txt")).unwrap()),
        recorded_draw_txt(d, date).await
    );
    assert_eq!(result_lines(&dir), recorded_winners(d, date).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_seals_of_one_date_at_once_leave_one_seal_whose_directory_is_the_recorded_one() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 30, date).await;
    let (a, b) = (twin(&d), twin(&d));
    // The seal's writer thread keeps its future on one task; the two seals interleave at every
    // await (each streams, hashes and writes on threads of its own).
    let (ra, rb) = tokio::join!(async { a.seal(date).await.map(|r| r.seal_id) }, async {
        b.seal(date).await.map(|r| r.seal_id)
    });
    let (ok, refused): (Vec<_>, Vec<_>) = [ra, rb].into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 1, "exactly one seal succeeds: {ok:?} {refused:?}");
    let why = refused[0].as_ref().unwrap_err().to_string();
    assert!(
        why.contains("another seal of") || why.contains("sealed already"),
        "{why}"
    );
    let dir = day::day_dir(&d.snapshots(), date);
    let report = d.verify(&dir, None);
    assert!(report.all_passed(), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.join("seal.txt")).unwrap(),
        recorded_seal_txt(&d, date).await
    );
    // Nothing is left under the temporary name.
    assert!(!d.snapshots().join(format!(".{date}.partial")).exists());
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_draws_of_one_date_with_different_material_at_once_leave_files_and_database_agreeing() {
    let app = spawn_app().await;
    let first = today() + days(2);
    let (d, _) = stocked_day(&app, 40, first).await;
    let ph = district_pharmacies(&app, 2);
    // Three days, each drawn by two officers at once with different dice: a race the old code
    // lost about half the time per day.
    let dates = [first, first + days(1), first + days(2)];
    for date in &dates[1..] {
        d.stock(*date, &[(&ph[0], "KN95", 2), (&ph[1], "KN95", 2)])
            .await;
    }
    for date in dates {
        d.seal(date).await.unwrap();
        let (a, b) = (twin(&d), twin(&d));
        let ta =
            tokio::spawn(async move { draw_with(&a, date, "dice 1 1 1").await.map(|r| r.seed) });
        let tb =
            tokio::spawn(async move { draw_with(&b, date, "dice 6 6 6").await.map(|r| r.seed) });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        let (ok, refused): (Vec<_>, Vec<_>) = [ra, rb].into_iter().partition(Result::is_ok);
        assert_eq!(
            ok.len(),
            1,
            "{date}: exactly one draw succeeds: {ok:?} {refused:?}"
        );
        let why = refused[0].as_ref().unwrap_err().to_string();
        assert!(
            why.contains("another draw of")
                || why.contains("drawn already")
                || why.contains("another seed"),
            "{why}"
        );
        assert_drawn_day_agrees(&d, date).await;
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_seal_without_any_commitment_is_refused_unless_the_officials_say_so_and_its_summary_says_so(
) {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 2, date).await;
    let Err(err) = day::seal::seal(&d.ctx, date, &d.key, Vec::new(), &d.snapshots()).await else {
        panic!("a seal without commitments went through");
    };
    let err = err.to_string();
    assert!(err.contains("--no-commitments"), "{err}");
    assert!(!day::day_dir(&d.snapshots(), date).exists());
    assert!(seal_row(&d, date).await.is_none());
    // Asked for by name, it seals, and the summary read aloud says what it means.
    let opts = day::seal::SealOptions {
        no_commitments: true,
        ..day::seal::SealOptions::default()
    };
    let sealed = day::seal::seal_with(&d.ctx, date, &d.key, &opts, &d.snapshots())
        .await
        .unwrap();
    let summary = sealed.to_string();
    assert!(summary.contains("commits   NONE"), "{summary}");
    assert!(summary.contains("whoever types"), "{summary}");
    // Both at once is a contradiction.
    let both = day::seal::SealOptions {
        commits: commits(),
        no_commitments: true,
        ..day::seal::SealOptions::default()
    };
    refused(
        day::seal::seal_with(&d.ctx, date + days(1), &d.key, &both, &d.snapshots()).await,
        "contradicts",
    );
    // With commitments the summary names the parties.
    let ph = district_pharmacies(&app, 1);
    d.stock(date + days(1), &[(&ph[0], "KN95", 1)]).await;
    let next = d.seal(date + days(1)).await.unwrap().to_string();
    assert!(next.contains("commits   1 (notary)"), "{next}");
    app.teardown().await;
}

/// A product name that breaks naive CSV (comma, quote, line break) and one a spreadsheet would
/// run as a formula.
const HOSTILE_NAMES: [(&str, &str); 2] = [
    ("KN95", "KN95, \"boxed\"\nsecond line"),
    ("MED-SURG", "=HYPERLINK(\"http://x.invalid\",\"click\")"),
];

#[tokio::test]
async fn exports_are_real_csv_with_inert_names_and_are_readable_by_the_officials_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let mut d = Day::new(&app).await;
    for (id, name) in HOSTILE_NAMES {
        d.ctx.catalog.products.get_mut(id).unwrap().name = name.into();
    }
    let ph = district_pharmacies(&app, 1);
    reserve(&app, &ph[0], "KN95", false).await;
    reserve(&app, &ph[0], "MED-SURG", false).await;
    app.wait_for_tickets("registered", 2, Duration::from_secs(30))
        .await;
    let date = today() + days(2);
    d.stock(date, &[(&ph[0], "KN95", 1), (&ph[0], "MED-SURG", 1)])
        .await;
    d.seal(date).await.unwrap();
    let drawn = d.draw(date).await.unwrap();
    let dir_mode = std::fs::metadata(&drawn.exports)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o750, "{dir_mode:o}");
    let path = drawn.exports.join(format!("{}.csv", ph[0]));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "{mode:o}");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "ticket_id",
            "masked_id",
            "product_id",
            "product_name",
            "pickup_code"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.len(), 5, "{row:?}");
        let name = &row[3];
        match &row[2] {
            "KN95" => assert_eq!(name, HOSTILE_NAMES[0].1),
            // Inert: a spreadsheet shows it as text instead of running it.
            "MED-SURG" => assert_eq!(name, format!("'{}", HOSTILE_NAMES[1].1)),
            other => panic!("product {other}"),
        }
        let code = &row[4];
        assert_eq!(code.len(), 10, "{code}");
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_draw_refuses_a_recorded_directory_whose_seal_is_for_another_date() {
    let app = spawn_app().await;
    let first = today() + days(2);
    let (d, _) = stocked_day(&app, 4, first).await;
    let ph = district_pharmacies(&app, 2);
    let second = first + days(1);
    d.stock(second, &[(&ph[0], "KN95", 1), (&ph[1], "KN95", 1)])
        .await;
    let sealed = d.seal(first).await.unwrap();
    d.seal(second).await.unwrap();
    // The second date's record points at a copy of the first date's directory (under a name
    // that is not a date, so only the seal's own draw_date can tell).
    let copy = d.root.join("snapshots").join("copied-day");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&sealed.dir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let first_row = maskdraw::store::day::seal(&d.ctx.db, first)
        .await
        .unwrap()
        .unwrap();
    d.ctx
        .db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE seals SET dir = $2, seal_txt = $3, entrants_sha256 = $4 WHERE draw_date = $1",
            vec![
                second.into(),
                copy.display().to_string().into(),
                first_row.seal_txt.into(),
                first_row.entrants_sha256.into(),
            ],
        ))
        .await
        .unwrap();
    let Err(err) = d.draw(second).await else {
        panic!("the first date's entrants were drawn for the second date");
    };
    let err = err.to_string();
    assert!(err.contains(&format!("draw_date {first}")), "{err}");
    assert!(!copy.join("draw.txt").exists());
    app.teardown().await;
}

#[tokio::test]
async fn a_seal_and_a_draw_under_unchecked_huge_day_counts_fail_with_an_error_not_a_panic() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (mut d, _) = stocked_day(&app, 2, date).await;
    d.ctx.settings.cooldown_days = u32::MAX;
    let err = d.seal(date).await.err().expect("refused").to_string();
    assert!(err.contains("cooldown_days"), "{err}");
    d.ctx.settings.cooldown_days = 3;
    d.ctx.settings.validity_days = u32::MAX;
    let err = d.seal(date).await.err().expect("refused").to_string();
    assert!(err.contains("validity_days"), "{err}");
    d.ctx.settings.validity_days = 10;
    d.seal(date).await.unwrap();
    d.ctx.settings.cooldown_days = u32::MAX;
    let err = d.draw(date).await.err().expect("refused").to_string();
    assert!(err.contains("cooldown_days"), "{err}");
    assert!(!day::day_dir(&d.snapshots(), date).join("draw.txt").exists());
    app.teardown().await;
}

/// A Redis nobody listens on: every command fails at once.
fn dead_redis(d: &Day) -> RedisStore {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    RedisStore::connect(
        &format!("redis://127.0.0.1:{port}/0"),
        &d.ctx.settings.key_prefix,
    )
    .unwrap()
}

/// A drawn day's tickets, as Redis tells them: (status, the day's draw field).
async fn redis_outcomes(d: &Day, tickets: &[String], date: NaiveDate) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in tickets {
        let st = d.ctx.redis.ticket_status(t).await.unwrap().unwrap();
        let field = st
            .draws
            .iter()
            .find(|(day, _)| *day == date.to_string())
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        out.push((st.status, field));
    }
    out
}

#[tokio::test]
async fn a_draw_whose_redis_step_failed_is_finished_by_running_it_again() {
    // No warm of its own: it would copy the recorded outcomes into Redis, which this test
    // must see the draw leave empty.
    let app = spawn_app_with(Options::default(), |s| s.auto_warm = false).await;
    let date = today() - days(1);
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let mut tickets = Vec::new();
    for _ in 0..4 {
        let (t, _) = reserve(&app, &ph[0], "KN95", false).await;
        tickets.push(t);
    }
    app.wait_for_tickets("registered", 4, Duration::from_secs(30))
        .await;
    for t in &tickets {
        backdate(&app, t, 3).await;
    }
    d.stock(date, &[(&ph[0], "KN95", 2)]).await;
    d.seal(date).await.unwrap();
    let mut broken = twin(&d);
    broken.ctx.redis = dead_redis(&d);
    assert!(broken.draw(date).await.is_err());
    // PostgreSQL has the draw; Redis was told nothing.
    assert!(recorded_draw_txt(&d, date).await.is_some());
    assert!(redis_outcomes(&d, &tickets, date)
        .await
        .iter()
        .all(|(_, f)| f.is_empty()));
    // The same draw again (same reveals and material) finishes it.
    let finished = d.draw(date).await.unwrap();
    assert_eq!(finished.outcome.winners.len(), 2);
    let told = redis_outcomes(&d, &tickets, date).await;
    assert_eq!(
        told.iter()
            .filter(|(s, f)| s == "won" && f.starts_with("won|"))
            .count(),
        2,
        "{told:?}"
    );
    assert_eq!(
        told.iter().filter(|(_, f)| f == "lost").count(),
        2,
        "{told:?}"
    );
    assert_drawn_day_agrees(&d, date).await;
    // What the counter staff get: one line per winner.
    let exported: usize = std::fs::read_dir(&finished.exports)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
                - 1
        })
        .sum();
    assert_eq!(exported, 2);
    // Finishing again is harmless: the same winners, the same codes.
    let codes = recorded_winners(&d, date).await;
    let again = resume_draw(&d, date).await.unwrap();
    assert_eq!(again.seed, finished.seed);
    assert_eq!(recorded_winners(&d, date).await, codes);
    assert_drawn_day_agrees(&d, date).await;
    app.teardown().await;
}

#[tokio::test]
async fn a_draw_whose_exports_failed_is_finished_by_running_it_again() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 6, date).await;
    d.seal(date).await.unwrap();
    // The exports directory cannot be made: a file stands where it should be.
    let blocked = d.root.join("blocked-exports");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let err = day::draw::draw(
        &d.ctx,
        date,
        &d.key,
        reveals(),
        "dice 1 2 3".into(),
        &blocked,
    )
    .await
    .err()
    .expect("the exports cannot be written");
    assert!(err.to_string().contains("blocked-exports"), "{err}");
    let finished = d.draw(date).await.unwrap();
    let exported: usize = std::fs::read_dir(&finished.exports)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
                - 1
        })
        .sum();
    assert_eq!(exported, finished.outcome.winners.len());
    assert_drawn_day_agrees(&d, date).await;
    app.teardown().await;
}

#[tokio::test]
async fn a_seal_or_a_draw_is_refused_at_once_while_another_officer_holds_the_dates_lock() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 4, date).await;
    // Another officer's seal of the date is under way: its lock is held and its temporary
    // directory is being written.
    let held = DayLock::try_acquire(&d.ctx.db, Step::Seal, date)
        .await
        .unwrap()
        .unwrap();
    let partial = d.snapshots().join(format!(".{date}.partial"));
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("entrants.csv"), b"being written").unwrap();
    refused(
        d.seal(date).await,
        &format!("another seal of {date} is running"),
    );
    assert_eq!(
        std::fs::read(partial.join("entrants.csv")).unwrap(),
        b"being written"
    );
    assert!(seal_row(&d, date).await.is_none());
    assert!(!day::day_dir(&d.snapshots(), date).exists());
    // A lock is per step and date: the next date's seal is not held up by it.
    assert!(DayLock::try_acquire(&d.ctx.db, Step::Seal, date + days(1))
        .await
        .unwrap()
        .is_some());
    held.release().await;
    // Once it is gone, the date seals (and what the dead writer left is cleared).
    d.seal(date).await.unwrap();

    let held = DayLock::try_acquire(&d.ctx.db, Step::Draw, date)
        .await
        .unwrap()
        .unwrap();
    refused(
        d.draw(date).await,
        &format!("another draw of {date} is running"),
    );
    refused(
        resume_draw(&d, date).await,
        &format!("another draw of {date} is running"),
    );
    let dir = day::day_dir(&d.snapshots(), date);
    assert!(!dir.join("draw.txt").exists());
    assert!(recorded_draw_txt(&d, date).await.is_none());
    assert!(maskdraw::store::day::draw_seed(&d.ctx.db, date)
        .await
        .unwrap()
        .is_none());
    held.release().await;
    d.draw(date).await.unwrap();
    assert_drawn_day_agrees(&d, date).await;
    app.teardown().await;
}

#[tokio::test]
async fn a_seal_that_died_after_its_commit_is_finished_by_seal_resume_and_then_draws() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 6, date).await;
    let ph = district_pharmacies(&app, 2);
    assert!(matches!(
        seal_crashing(&d, date, Crash::SealAfterCommit).await,
        day::DayError::Crashed(Crash::SealAfterCommit)
    ));
    let dir = day::day_dir(&d.snapshots(), date);
    let partial = d.snapshots().join(format!(".{date}.partial"));
    assert!(!seal_row(&d, date).await.unwrap().completed);
    assert!(!dir.exists() && partial.is_dir());
    // Everything that needs the seal says how to finish it.
    refused(d.seal(date).await, "seal --resume");
    refused(d.draw(date).await, "seal --resume");
    d.stock(date + days(1), &[(&ph[0], "KN95", 1)]).await;
    refused(d.seal(date + days(1)).await, "seal --resume");

    let done = resume_seal(&d, date).await.unwrap();
    assert_eq!(done, day::seal::SealResumed::Finished(dir.clone()));
    assert!(dir.is_dir() && !partial.exists());
    assert!(seal_row(&d, date).await.unwrap().completed);
    let report = d.verify(&dir, None);
    assert!(report.all_passed(), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.join("seal.txt")).unwrap(),
        recorded_seal_txt(&d, date).await
    );
    // Again: nothing left to do.
    assert_eq!(
        resume_seal(&d, date).await.unwrap(),
        day::seal::SealResumed::Complete(dir.clone())
    );
    d.draw(date).await.unwrap();
    assert_drawn_day_agrees(&d, date).await;
    // And the chain goes on from it.
    let next = d.seal(date + days(1)).await.unwrap();
    let report = d.verify(&next.dir, Some(&dir));
    assert!(report.all_passed(), "{report}");
    app.teardown().await;
}

#[tokio::test]
async fn an_unfinished_seal_whose_files_are_lost_is_rolled_back_by_seal_resume_and_sealed_again() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 3, date).await;
    refused(resume_seal(&d, date).await, "nothing to resume");
    seal_crashing(&d, date, Crash::SealAfterCommit).await;
    std::fs::remove_dir_all(d.snapshots().join(format!(".{date}.partial"))).unwrap();
    assert_eq!(
        resume_seal(&d, date).await.unwrap(),
        day::seal::SealResumed::Forgotten(date)
    );
    assert!(seal_row(&d, date).await.is_none());
    let sealed = d.seal(date).await.unwrap();
    assert_eq!(sealed.entrants, 3);
    let report = d.verify(&sealed.dir, None);
    assert!(report.all_passed(), "{report}");
    app.teardown().await;
}

#[tokio::test]
async fn a_seal_is_the_previous_of_at_most_one_seal() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 2, date).await;
    let ph = district_pharmacies(&app, 1);
    d.stock(date + days(1), &[(&ph[0], "KN95", 1)]).await;
    let first = d.seal(date).await.unwrap();
    d.seal(date + days(1)).await.unwrap();
    // A second seal linking to the first: a fork the next seal of two racing ones would make.
    let forked = d
        .ctx
        .db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO seals (draw_date, seal_id, previous, cutoff, entrants, entrants_root, \
             stock_sha256, seal_txt, dir) VALUES ($1, $2, $3, now(), 0, '', '', '', '')",
            vec![
                (date + days(5)).into(),
                "f".repeat(64).into(),
                first.seal_id.clone().into(),
            ],
        ))
        .await
        .map(|_| ());
    let err = forked.unwrap_err().to_string();
    assert!(err.contains("seals_one_successor"), "{err}");
    app.teardown().await;
}

#[tokio::test]
async fn a_draw_that_died_after_pinning_its_seed_can_only_be_finished_with_that_seed() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 12, date).await;
    d.seal(date).await.unwrap();
    let dir = day::day_dir(&d.snapshots(), date);
    refused(resume_draw(&d, date).await, "nothing to resume");

    // Died before writing any file: the seed is pinned all the same.
    draw_crashing(&d, date, "dice 1 2 3", Crash::DrawAfterSeed).await;
    let pinned = maskdraw::store::day::draw_seed(&d.ctx.db, date)
        .await
        .unwrap()
        .unwrap();
    assert!(
        pinned.seed_txt.contains("material:dice 1 2 3"),
        "{}",
        pinned.seed_txt
    );
    assert!(!dir.join("draw.txt").exists());
    refused(draw_with(&d, date, "dice 6 6 6").await, "another seed");

    // Died after writing and syncing its files, before recording them.
    draw_crashing(&d, date, "dice 1 2 3", Crash::DrawAfterFiles).await;
    assert!(dir.join("draw.sig").exists());
    assert!(recorded_draw_txt(&d, date).await.is_none());
    // Removing the unrecorded files does not buy a second roll.
    for f in lottery::verify::DRAW_FILES {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    refused(draw_with(&d, date, "dice 6 6 6").await, "another seed");
    assert!(!dir.join("draw.txt").exists());

    let finished = resume_draw(&d, date).await.unwrap();
    assert_eq!(finished.seed, pinned.seed);
    assert!(
        finished
            .to_string()
            .contains("resumed       finished an interrupted draw"),
        "{finished}"
    );
    assert!(std::fs::read_to_string(dir.join("draw.txt"))
        .unwrap()
        .contains("material:dice 1 2 3"));
    assert_drawn_day_agrees(&d, date).await;
    refused(d.draw(date).await, "drawn already");
    app.teardown().await;
}

#[tokio::test]
async fn a_draw_that_died_after_its_record_is_finished_by_draw_resume() {
    // No warm of its own: it would copy the recorded outcomes into Redis, which this test
    // must see the draw leave empty.
    let app = spawn_app_with(Options::default(), |s| s.auto_warm = false).await;
    // Drawn yesterday: Redis's outcomes are what citizens read at once.
    let date = today() - days(1);
    let d = Day::new(&app).await;
    let ph = district_pharmacies(&app, 1);
    let mut tickets = Vec::new();
    for _ in 0..5 {
        let (t, _) = reserve(&app, &ph[0], "KN95", false).await;
        tickets.push(t);
    }
    app.wait_for_tickets("registered", 5, Duration::from_secs(30))
        .await;
    for t in &tickets {
        backdate(&app, t, 3).await;
    }
    d.stock(date, &[(&ph[0], "KN95", 2)]).await;
    d.seal(date).await.unwrap();
    draw_crashing(&d, date, "dice 4 4", Crash::DrawAfterRecord).await;
    assert!(recorded_draw_txt(&d, date).await.is_some());
    let told = redis_outcomes(&d, &tickets, date).await;
    assert_eq!(
        told.iter().filter(|(s, _)| s == "won").count(),
        0,
        "{told:?}"
    );
    assert!(!d.ctx.settings.exports_dir.join(date.to_string()).exists());
    // A plain draw with other dice is refused; with the same dice, or --resume, it finishes.
    refused(draw_with(&d, date, "dice 5 5").await, "another seed");
    let finished = resume_draw(&d, date).await.unwrap();
    assert!(
        finished.to_string().contains("finished the draw recorded"),
        "{finished}"
    );
    let told = redis_outcomes(&d, &tickets, date).await;
    assert_eq!(
        told.iter()
            .filter(|(s, f)| s == "won" && f.starts_with("won|"))
            .count(),
        2,
        "{told:?}"
    );
    assert_eq!(
        told.iter().filter(|(_, f)| f == "lost").count(),
        3,
        "{told:?}"
    );
    // The codes in Redis and in the exports are the recorded ones.
    let codes: Vec<String> = d
        .ctx
        .db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pickup_code FROM draw_winners WHERE draw_date = $1",
            vec![date.into()],
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "pickup_code").unwrap())
        .collect();
    let exported =
        std::fs::read_to_string(finished.exports.join(format!("{}.csv", ph[0]))).unwrap();
    for c in &codes {
        assert!(exported.contains(c.as_str()), "{c} {exported}");
        assert!(
            told.iter().any(|(_, f)| f.contains(c.as_str())),
            "{c} {told:?}"
        );
    }
    assert_drawn_day_agrees(&d, date).await;
    refused(d.draw(date).await, "drawn already");
    app.teardown().await;
}

#[tokio::test]
async fn missing_or_damaged_draw_files_of_a_recorded_draw_are_rewritten_by_draw_resume_byte_for_byte(
) {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 10, date).await;
    d.seal(date).await.unwrap();
    d.draw(date).await.unwrap();
    let dir = day::day_dir(&d.snapshots(), date);
    let before: Vec<Vec<u8>> = lottery::verify::DRAW_FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let audit = std::fs::read(dir.join("audit.txt")).unwrap();
    std::fs::remove_file(dir.join("result.csv")).unwrap();
    std::fs::remove_file(dir.join("draw.sig")).unwrap();
    std::fs::write(dir.join("audit.txt"), b"damaged\n").unwrap();
    std::fs::write(dir.join("pools.csv"), b"damaged\n").unwrap();
    assert!(!d.verify(&dir, None).all_passed());
    let resumed = resume_draw(&d, date).await.unwrap();
    assert!(
        resumed.to_string().contains("rewrote the draw files"),
        "{resumed}"
    );
    for (f, bytes) in lottery::verify::DRAW_FILES.iter().zip(&before) {
        assert_eq!(&std::fs::read(dir.join(f)).unwrap(), bytes, "{f}");
    }
    assert_eq!(std::fs::read(dir.join("audit.txt")).unwrap(), audit);
    assert_drawn_day_agrees(&d, date).await;
    // A damaged seal is not papered over: the draw files are left as they were.
    let entrants = std::fs::read_to_string(dir.join("entrants.csv")).unwrap();
    std::fs::write(
        dir.join("entrants.csv"),
        entrants.replacen(",KN95,", ",KN95,,", 1),
    )
    .unwrap();
    std::fs::remove_file(dir.join("draw.sig")).unwrap();
    refused(resume_draw(&d, date).await, "fails verification");
    assert_eq!(std::fs::read(dir.join("result.csv")).unwrap(), before[2]);
    assert!(!dir.join("draw.sig").exists());
    app.teardown().await;
}

/// Runs LibreOffice Calc headless: opens `csv` as an operator's spreadsheet does (comma, double
/// quote, UTF-8, every column "Standard", so numbers and dates are recognised) and saves it as
/// flat ODS XML, whose cells say their type. Returns the XML.
async fn calc_reads(csv: &Path) -> String {
    let soffice = ["/usr/bin/soffice", "/usr/bin/libreoffice"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect(
            "soffice not found: apt-get install libreoffice-calc-nogui (scripts/tools.sh does)",
        );
    let work = csv.parent().unwrap().join("calc");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = tokio::process::Command::new(soffice);
    cmd.arg(format!(
        "-env:UserInstallation=file://{}",
        work.join("profile").display()
    ))
    .args([
        "--headless",
        "--infilter=CSV:44,34,76,1",
        "--convert-to",
        "fods",
        "--outdir",
    ])
    .arg(&work)
    .arg(csv)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("LibreOffice converts within 180 s")
        .expect("soffice runs");
    assert!(out.status.success(), "{out:?}");
    let name = csv.file_stem().unwrap().to_str().unwrap();
    std::fs::read_to_string(work.join(format!("{name}.fods"))).unwrap()
}

#[tokio::test]
async fn exports_open_in_libreoffice_calc_with_every_cell_text_and_every_code_intact() {
    let app = spawn_app().await;
    let date = today() + days(2);
    let (mut d, _) = stocked_day(&app, 40, date).await;
    // A name that starts a formula and breaks naive CSV, all at once.
    d.ctx.catalog.products.get_mut("KN95").unwrap().name = "=1+2, \"KN95\"\n口罩".into();
    let ph = district_pharmacies(&app, 2);
    d.stock(date, &[(&ph[0], "KN95", 30), (&ph[1], "KN95", 30)])
        .await;
    d.seal(date).await.unwrap();
    let drawn = d.draw(date).await.unwrap();
    assert_eq!(drawn.outcome.winners.len(), 40);
    let mut cells = 0;
    for e in std::fs::read_dir(&drawn.exports).unwrap() {
        let path = e.unwrap().path();
        let fods = calc_reads(&path).await;
        // Nothing ran and nothing became a number, a date, a time or a boolean.
        assert!(!fods.contains("table:formula"), "{fods}");
        for t in ["float", "date", "time", "boolean", "percentage", "currency"] {
            assert!(
                !fods.contains(&format!("office:value-type=\"{t}\"")),
                "a {t} cell in {}",
                path.display()
            );
        }
        let mut reader = csv::Reader::from_path(&path).unwrap();
        for row in reader.records() {
            let row = row.unwrap();
            for field in row.iter().filter(|f| !f.contains('\n')) {
                let escaped = field
                    .replace('&', "&amp;")
                    .replace('"', "&quot;")
                    .replace('\'', "&apos;");
                assert!(
                    fods.contains(&format!("<text:p>{escaped}</text:p>")),
                    "{field} is not a cell of its own in {}",
                    path.display()
                );
            }
            assert_eq!(&row[3], "'=1+2, \"KN95\"\n口罩");
            cells += row.len();
        }
        assert_eq!(
            fods.matches("office:value-type=\"string\"").count(),
            5 + cells_in(&path),
            "{}",
            path.display()
        );
    }
    assert_eq!(cells, 40 * 5);
    app.teardown().await;
}

/// The data cells of an export (its records times their fields).
fn cells_in(path: &Path) -> usize {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|r| r.unwrap().len())
        .sum()
}

/// Runs `notary ARGS`, answering (success, stdout and stderr).
fn run_notary(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new(crate::helpers::notary())
        .args(args)
        .output()
        .expect("notary runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn the_draw_waits_for_every_configured_witness_and_proceeds_once_each_has_cosigned() {
    let witnesses = std::env::temp_dir().join(format!("md-witnesses-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&witnesses).unwrap();
    let pubs: Vec<(String, std::path::PathBuf)> = ["notary", "pharma-group"]
        .iter()
        .map(|p| (p.to_string(), witnesses.join(format!("{p}.pub"))))
        .collect();
    let app = crate::helpers::spawn_app_with(crate::helpers::Options::default(), |s| {
        s.witnesses = pubs.iter().cloned().collect();
    })
    .await;
    for (party, _) in &pubs {
        let key = witnesses.join(format!("{party}.key"));
        let (ok, said) = run_notary(&["keygen".as_ref(), key.as_os_str()]);
        assert!(ok, "{said}");
    }
    let date = today() + days(2);
    let (d, _) = stocked_day(&app, 3, date).await;
    let sealed = d.seal(date).await.unwrap();
    let authority = d.ctx.settings.keys_dir.join("authority.pub");
    let cosign = |party: &str| {
        run_notary(&[
            "cosign".as_ref(),
            sealed.dir.as_os_str(),
            "--key".as_ref(),
            witnesses.join(format!("{party}.key")).as_os_str(),
            "--party".as_ref(),
            party.as_ref(),
            "--state".as_ref(),
            witnesses.join(format!("{party}.state")).as_os_str(),
            "--authority".as_ref(),
            authority.as_os_str(),
        ])
    };
    let nothing_drawn = || {
        for f in [
            "draw.txt",
            "draw.sig",
            "result.csv",
            "pools.csv",
            "spill.csv",
        ] {
            assert!(
                !sealed.dir.join(f).exists(),
                "{f} written by a refused draw"
            );
        }
    };

    // No cosignature: refused, naming both witnesses, nothing written, no seed pinned.
    let refusal = draw_with(&d, date, "dice 1 2 3").await;
    refused(refusal, "pharma-group (seal.cosig.pharma-group");
    let why = draw_with(&d, date, "dice 1 2 3")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(why.contains("notary (seal.cosig.notary"), "{why}");
    nothing_drawn();
    assert!(maskdraw::store::day::draw_seed(&d.ctx.db, date)
        .await
        .unwrap()
        .is_none());
    assert!(recorded_draw_txt(&d, date).await.is_none());

    // The notary cosigns: still refused, now naming only the pharma group.
    let (ok, said) = cosign("notary");
    assert!(ok, "{said}");
    let why = draw_with(&d, date, "dice 1 2 3")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(why.contains("pharma-group"), "{why}");
    assert!(!why.contains("notary (seal.cosig.notary"), "{why}");
    nothing_drawn();

    // A cosignature by a key other than the configured one does not count.
    let stranger = witnesses.join("stranger.key");
    let (ok, said) = run_notary(&["keygen".as_ref(), stranger.as_os_str()]);
    assert!(ok, "{said}");
    let (ok, said) = run_notary(&[
        "cosign".as_ref(),
        sealed.dir.as_os_str(),
        "--key".as_ref(),
        stranger.as_os_str(),
        "--party".as_ref(),
        "pharma-group".as_ref(),
        "--state".as_ref(),
        witnesses.join("stranger.state").as_os_str(),
        "--authority".as_ref(),
        authority.as_os_str(),
    ]);
    assert!(ok, "{said}");
    refused(draw_with(&d, date, "dice 1 2 3").await, "pharma-group");
    nothing_drawn();

    // The pharma group's own cosignature: the draw proceeds, and the day verifies with both.
    let (ok, said) = cosign("pharma-group");
    assert!(ok, "{said}");
    draw_with(&d, date, "dice 1 2 3").await.unwrap();
    assert!(sealed.dir.join("result.csv").exists());
    let keys: Vec<(String, ed25519_dalek::VerifyingKey)> = app.settings.witness_keys().unwrap();
    lottery::cosign::check_cosignatures(&sealed.dir, &keys).unwrap();
    assert_drawn_day_agrees(&d, date).await;
    app.teardown().await;
    std::fs::remove_dir_all(witnesses).unwrap();
}
