//! `maskdraw demo --citizens N`: a whole simulated day against the real services, in a
//! database of its own so it never touches real data: citizens reserve through the HTTP API,
//! the persister drains, stock is imported, the day is sealed and drawn, and the notary's
//! verification runs on the result.
//!
//! For a draw date in the past (`--date`, or `--published` for yesterday, whose results are
//! already public) the intake's clock is set back to two hours before that day's cutoff, so the
//! reservations are accepted in time and the day is full. With `--env-file` the demo leaves
//! its database, Redis keys and queues in place and writes the settings a server needs to show
//! the day (`scripts/run.sh --demo` serves it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::json;

use super::{draw, keys, seal, stock, DayContext, DayError};
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::domain::IdNumber;
use crate::startup::{self, Application};
use crate::store::redis::RedisStore;

pub struct DemoOptions {
    pub citizens: usize,
    pub date: Option<NaiveDate>,
    /// Draw yesterday (in the city), so the results are published when the demo ends.
    pub published: bool,
    /// Where `snapshots/`, `exports/` and `keys/` go.
    pub root: PathBuf,
    /// Write the `MASKDRAW_*` settings of the demo's day here and leave its data in place.
    pub env_file: Option<PathBuf>,
    pub progress: bool,
}

fn admin_url(database_url: &str) -> Result<(String, String), DayError> {
    let (base, name) = database_url.rsplit_once('/').ok_or_else(|| {
        DayError::Refused(format!("cannot read a database name from {database_url:?}"))
    })?;
    Ok((format!("{base}/postgres"), name.to_string()))
}

fn refused(e: impl std::fmt::Display) -> DayError {
    DayError::Refused(e.to_string())
}

/// A valid, random identity number.
fn identity(rng: &mut impl Rng) -> String {
    const REGIONS: [u32; 11] = [
        440103, 440104, 440105, 440106, 440111, 440112, 440113, 440114, 440115, 440117, 440118,
    ];
    let first = format!(
        "{}{:04}{:02}{:02}{:03}",
        REGIONS[rng.gen_range(0..REGIONS.len())],
        rng.gen_range(1940..2006),
        rng.gen_range(1..13),
        rng.gen_range(1..29),
        rng.gen_range(0..1000)
    );
    format!("{first}{}", IdNumber::check_char(&first))
}

/// Runs the demo and returns the text to print.
///
/// # Errors
/// When a service is unreachable or any step of the day fails.
pub async fn run(base: Settings, opts: DemoOptions) -> Result<String, DayError> {
    let mut out = String::new();
    let t0 = Instant::now();
    // Two demos in the same second (tests) must not share a database, keys or queues.
    let stamp = format!(
        "{}{:04x}",
        Utc::now().format("%Y%m%d%H%M%S"),
        rand::random::<u16>()
    );
    let (admin, _) = admin_url(&base.database_url)?;
    let db_name = format!("maskdraw_demo_{stamp}");
    let admin_db = Database::connect(&admin).await?;
    admin_db
        .execute(Statement::from_string(
            DbBackend::Postgres,
            format!("CREATE DATABASE {db_name}"),
        ))
        .await?;
    let mut settings = base.clone();
    settings.database_url = format!(
        "{}/{db_name}",
        admin.rsplit_once('/').map(|x| x.0).unwrap_or_default()
    );
    settings.key_prefix = format!("demo{stamp}");
    settings.queue_prefix = format!("demo{stamp}.");
    settings.bind = "127.0.0.1:0".into();
    settings.admin_bind = "127.0.0.1:0".into();
    settings.ip_rate_per_sec = 1_000_000;
    // The demo's citizens are simulated: no phone receives their codes (the printout says so).
    settings.require_phone_code = Some(false);
    settings.snapshots_dir = opts.root.join("snapshots");
    settings.exports_dir = opts.root.join("exports");
    settings.keys_dir = opts.root.join("keys");

    // The day: the one asked for, yesterday, or tomorrow in the city.
    let tz = settings.tz()?;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let date = match (opts.date, opts.published) {
        (Some(d), _) => d,
        (None, true) => today - chrono::Duration::days(1),
        (None, false) => today + chrono::Duration::days(1),
    };
    if super::day_dir(&settings.snapshots_dir, date).exists() {
        return Err(DayError::Refused(format!(
            "{} exists already; pick another --date or --root",
            super::day_dir(&settings.snapshots_dir, date).display()
        )));
    }
    // A day whose entries closed already: reservations are accepted two hours before its
    // cutoff, on the intake's simulated clock.
    let cut = super::cutoff(&settings, date)?;
    if cut <= Utc::now() {
        settings.simulated_clock_offset_secs =
            (cut - chrono::Duration::hours(2) - Utc::now()).num_seconds();
        settings.check()?;
    }

    let app = Application::build(settings.clone(), true)
        .await
        .map_err(refused)?;
    let running = app.spawn();
    let port = running.port;
    let catalog = Catalog::load(&settings.static_dir).map_err(refused)?;
    let db = startup::connect_db(&settings.database_url).await?;
    let redis =
        RedisStore::connect(&settings.redis_endpoint(), &settings.key_prefix).map_err(refused)?;
    let ctx = DayContext {
        settings: settings.clone(),
        db,
        redis,
        catalog,
        progress: opts.progress,
    };

    // Keys: the demo's own, unless its root has some already.
    let key_dir = settings.keys_dir.clone();
    if !key_dir.join(keys::SECRET_FILE).exists() {
        keys::keygen(&key_dir)?;
    }
    let key = keys::load(&key_dir)?;
    let snapshots = settings.snapshots_dir.clone();

    // Citizens reserve through the HTTP API, 64 at a time, with a skewed choice of pharmacy.
    let t = Instant::now();
    let pharmacies: Vec<String> = ctx.catalog.pharmacies.keys().cloned().collect();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/reservations");
    let bar = super::Bar::new(opts.progress);
    bar.step("citizens reserving");
    let mut rng = rand::rngs::StdRng::from_entropy();
    let bodies: Vec<serde_json::Value> = (0..opts.citizens)
        .map(|_| {
            let u: f64 = rng.gen();
            let pharmacy = &pharmacies[((u * u) * pharmacies.len() as f64) as usize % pharmacies.len()];
            let product = match rng.gen_range(0..20) {
                0..=9 => "KN95",
                10..=15 => "MED-SURG",
                16..=18 => "MED-CARE",
                _ => "PLAIN",
            };
            json!({"id_number": identity(&mut rng), "name": "市民", "phone": format!("13{:09}", rng.gen_range(0..1_000_000_000u64)),
                   "pharmacy_id": pharmacy, "product_id": product, "flexible": rng.gen_bool(0.5)})
        })
        .collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(bodies.len());
    for body in bodies {
        let (client, url, sem) = (client.clone(), url.clone(), sem.clone());
        let permit = sem.acquire_owned().await.map_err(refused)?;
        bar.inc(1);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let answer = match client.post(&url).json(&body).send().await {
                Ok(r) if r.status().as_u16() == 202 => match r.json::<serde_json::Value>().await {
                    Ok(v) => Answer::Accepted(v["ticket_id"].as_str().unwrap_or("").to_string()),
                    Err(_) => Answer::Refused("unreadable 202".into()),
                },
                Ok(r) => {
                    let status = r.status().as_u16();
                    let code = r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    Answer::Refused(format!("{status} {code}"))
                }
                Err(e) => Answer::Refused(format!("no answer: {e}")),
            };
            (body, answer)
        }));
    }
    let mut people: std::collections::HashMap<String, serde_json::Value> = Default::default();
    let mut refusals: std::collections::BTreeMap<String, usize> = Default::default();
    for task in tasks {
        match task.await {
            Ok((body, Answer::Accepted(ticket))) => {
                people.insert(ticket, body);
            }
            Ok((_, Answer::Refused(why))) => *refusals.entry(why).or_default() += 1,
            Err(e) => *refusals.entry(format!("task failed: {e}")).or_default() += 1,
        }
    }
    bar.done();
    let accepted = people.len();
    let reserve_secs = t.elapsed().as_secs_f64();

    // The persister drains into PostgreSQL.
    let t = Instant::now();
    loop {
        let n = crate::store::tickets::count(&ctx.db).await?;
        if n as usize >= accepted {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err(DayError::Refused(format!(
                "only {n} of {accepted} reservations reached PostgreSQL in 300 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_secs = t.elapsed().as_secs_f64();

    // Stock: about a third of the demand per pool, some pools generous, some empty, so both
    // rolls have work.
    let demand = ctx
        .db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pharmacy_id, product_id, count(*) AS n FROM tickets GROUP BY 1, 2",
        ))
        .await?;
    let mut stock_text = String::from("pharmacy_id,product_id,packs\n");
    for r in &demand {
        let (ph, pr, n): (String, String, i64) = (
            r.try_get("", "pharmacy_id")?,
            r.try_get("", "product_id")?,
            r.try_get("", "n")?,
        );
        let packs = match rng.gen_range(0..10) {
            0 => 0,
            1 | 2 => n + rng.gen_range(1..5),
            _ => (n as f64 * rng.gen_range(0.1..0.6)).round() as i64,
        };
        stock_text.push_str(&format!("{ph},{pr},{packs}\n"));
    }
    let stock_rows = stock::import(&ctx, date, &stock_text).await?;

    // Commit, seal, reveal, draw.
    let secrets: Vec<(String, Vec<u8>)> = ["notary", "officials"]
        .iter()
        .map(|p| (p.to_string(), (0..32).map(|_| rng.gen()).collect()))
        .collect();
    let commits: Vec<String> = secrets
        .iter()
        .map(|(p, s)| format!("{p}={}", hex::encode(lottery::text::commitment(s))))
        .collect();
    let reveals: Vec<String> = secrets
        .iter()
        .map(|(p, s)| format!("{p}={}", hex::encode(s)))
        .collect();
    let sealed = seal::seal(&ctx, date, &key, seal::parse_commits(&commits)?, &snapshots).await?;
    let dice: Vec<String> = (0..8).map(|_| rng.gen_range(1..7).to_string()).collect();
    let material = format!("dice {}", dice.join(" "));
    let drawn = draw::draw(
        &ctx,
        date,
        &key,
        draw::parse_reveals(&reveals)?,
        material.clone(),
        &settings.exports_dir,
    )
    .await?;

    // The notary's check, with nothing but the directory and the public key.
    let t = Instant::now();
    let report = lottery::verify::verify_dir(&sealed.dir, &key.verifying_key(), None);
    let verify_secs = t.elapsed().as_secs_f64();

    running.stop().await;
    match &opts.env_file {
        Some(path) => write_env(path, &settings)?,
        None => {
            delete_queues(&settings).await;
            if let Err(e) = ctx.redis.delete_all().await {
                tracing::warn!(error = ?e, "removing the demo's Redis keys");
            }
        }
    }
    out.push_str(&format!(
        "maskdraw demo: {} citizens, draw date {date}\n\
         (phone codes off for the demo's simulated citizens: require_phone_code = false)\n\n",
        opts.citizens
    ));
    if !refusals.is_empty() {
        out.push_str("refused reservations\n");
        for (why, n) in &refusals {
            out.push_str(&format!("  {n:>6}  {why}\n"));
        }
        out.push('\n');
    }
    out.push_str("timings\n");
    out.push_str(&format!(
        "  reserve via HTTP     {reserve_secs:>8.2} s  ({accepted} accepted, {:.0}/s)\n",
        accepted as f64 / reserve_secs.max(1e-9)
    ));
    out.push_str(&format!("  persister drain      {drain_secs:>8.2} s\n"));
    out.push_str(&format!(
        "  seal                 {:>8.2} s\n",
        sealed.seconds
    ));
    out.push_str(&format!(
        "  draw                 {:>8.2} s\n",
        drawn.seconds
    ));
    out.push_str(&format!("  notary verify        {verify_secs:>8.2} s\n"));
    out.push_str(&format!(
        "  total                {:>8.2} s\n\n",
        t0.elapsed().as_secs_f64()
    ));
    out.push_str(&format!("{}\n\n", stock::render(date, &stock_rows)));
    out.push_str(&format!("{sealed}\n\n{drawn}\n\n"));
    out.push_str(&format!(
        "reveals (what the parties disclosed at the draw)\n  {}\n  material: {material}\n\n",
        reveals.join("\n  ")
    ));
    out.push_str(&format!("notary verify ({} checks)\n", report.checks.len()));
    out.push_str(&format!("{report}\n"));
    out.push_str(&format!(
        "paths\n  snapshot   {}\n  exports    {}\n  keys       {} (authority.key, authority.pub)\n  database   {db_name} (drop it with: dropdb -h 127.0.0.1 -U postgres {db_name})\n\n",
        sealed.dir.display(),
        drawn.exports.display(),
        key_dir.display()
    ));
    out.push_str(&format!(
        "check it yourself:\n  notary verify {} --key {}\n",
        sealed.dir.display(),
        key_dir.join(keys::PUBLIC_FILE).display()
    ));
    out.push_str(&try_it(
        &drawn,
        &sealed.dir,
        &people,
        date,
        &settings,
        &base.bind,
    ));
    if !report.all_passed() {
        return Err(DayError::Refused(format!(
            "{out}\nthe notary's verification FAILED"
        )));
    }
    Ok(out)
}

/// What a reservation got.
enum Answer {
    Accepted(String),
    /// The status and error code.
    Refused(String),
}

/// A winning and a losing ticket to look at, with the identity that finds them.
fn try_it(
    drawn: &draw::DrawReport,
    dir: &std::path::Path,
    people: &std::collections::HashMap<String, serde_json::Value>,
    date: NaiveDate,
    settings: &Settings,
    bind: &str,
) -> String {
    let won: std::collections::HashSet<String> = drawn
        .outcome
        .winners
        .iter()
        .map(|w| w.ticket_id.to_string())
        .collect();
    let entrants = std::fs::read_to_string(dir.join("entrants.csv")).unwrap_or_default();
    let loser = entrants
        .lines()
        .filter_map(|l| l.split(',').next())
        .find(|t| !won.contains(*t));
    let winner = drawn
        .outcome
        .winners
        .first()
        .map(|w| w.ticket_id.to_string());
    let public = crate::day::publish_at(settings, date)
        .map(|t| t <= Utc::now())
        .unwrap_or(false);
    let mut out = format!(
        "\ntry it (the page: http://{bind}/ once the server runs)\n  draw date  {date}{}\n",
        if public {
            ", results published"
        } else {
            ", results hidden until publish_at"
        }
    );
    for (what, ticket) in [("winning", winner), ("losing", loser.map(str::to_string))] {
        let Some(t) = ticket else { continue };
        let who = people
            .get(&t)
            .map(|b| {
                format!(
                    " (id number {}, phone {})",
                    b["id_number"].as_str().unwrap_or(""),
                    b["phone"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        out.push_str(&format!("  {what:<8} ticket {t}{who}\n"));
    }
    out
}

/// The settings a server needs to show the demo's day, as `MASKDRAW_*` lines for a shell.
fn write_env(path: &std::path::Path, settings: &Settings) -> Result<(), DayError> {
    let abs = |p: &std::path::Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let text = format!(
        "MASKDRAW_DATABASE_URL={}\nMASKDRAW_KEY_PREFIX={}\nMASKDRAW_QUEUE_PREFIX={}\n\
         MASKDRAW_SNAPSHOTS_DIR={}\nMASKDRAW_EXPORTS_DIR={}\nMASKDRAW_KEYS_DIR={}\n",
        settings.database_url,
        settings.key_prefix,
        settings.queue_prefix,
        abs(&settings.snapshots_dir),
        abs(&settings.exports_dir),
        abs(&settings.keys_dir),
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(super::io(dir.display()))?;
    }
    std::fs::write(path, text).map_err(super::io(path.display()))
}

/// The demo's queues are empty by now; it leaves nothing behind in the broker.
async fn delete_queues(settings: &Settings) {
    if let Ok(conn) = crate::queue::broker::connect(&settings.amqp_url).await {
        if let Ok(ch) = conn.create_channel().await {
            for q in [settings.queue_name(), settings.dead_queue_name()] {
                let _ = ch
                    .queue_delete(&q, lapin::options::QueueDeleteOptions::default())
                    .await;
            }
        }
        let _ = conn.close(200, "demo done").await;
    }
}
