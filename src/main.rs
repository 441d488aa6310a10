//! The `maskdraw` command: one function per subcommand.

use std::path::PathBuf;

// The service allocates and frees many small buffers per request across threads; glibc's malloc
// was ~10% of the server's profile under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use maskdraw::config::Settings;
use maskdraw::day::{self, DayContext};
use maskdraw::startup::{self, Application};
use maskdraw::store::redis::RedisStore;

#[derive(Parser)]
#[command(
    name = "maskdraw",
    version,
    about = "A city's fair mask lottery: intake, persister, seal, draw"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and pages (and the fallback relay).
    Serve {
        /// Address to listen on (overrides MASKDRAW_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Address of the operator listener, /metrics and /readyz details (overrides
        /// MASKDRAW_ADMIN_BIND).
        #[arg(long)]
        admin_bind: Option<String>,
        /// Run the persister in this process too.
        #[arg(long)]
        with_persister: bool,
    },
    /// Consume reservations and write them to PostgreSQL.
    Persist {
        /// Serve this persister's /metrics and /healthz on this address (e.g. 127.0.0.1:9091).
        #[arg(long)]
        metrics_bind: Option<String>,
    },
    /// Apply database migrations.
    Migrate,
    /// Inspect or replay the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Make the authority's Ed25519 key pair (authority.key, mode 0600, and authority.pub).
    Keygen {
        /// Directory for the key pair (default: the keys_dir setting, `keys`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import or show a day's stock.
    Stock {
        #[command(subcommand)]
        action: StockAction,
    },
    /// Seal the entrants of a draw date into snapshots/<date>/.
    Seal {
        #[arg(long)]
        date: NaiveDate,
        /// Directory holding authority.key (default: the keys_dir setting, `keys`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// A party's commitment, PARTY=SHA256HEX of its secret (repeat, in order). At least
        /// one, unless --no-commitments.
        #[arg(long = "commit")]
        commits: Vec<String>,
        /// Seal without any commitment: the seed will be the draw's material alone, which
        /// whoever types it can grind.
        #[arg(long, conflicts_with = "commits")]
        no_commitments: bool,
        /// Where snapshots/<date>/ goes (default: the snapshots_dir setting, `snapshots`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Finish the recorded seal of --date that was interrupted (its directory checked,
        /// synced and moved into place).
        #[arg(long, conflicts_with_all = ["commits", "no_commitments", "out"])]
        resume: bool,
    },
    /// Run the draw of a sealed date, live.
    Draw {
        #[arg(long)]
        date: NaiveDate,
        /// Directory holding authority.key (default: the keys_dir setting, `keys`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Live material typed on camera (dice, balls, a beacon value), one line.
        #[arg(long, required_unless_present = "resume")]
        material: Option<String>,
        /// A party's revealed secret, PARTY=SECRETHEX (one per commitment).
        #[arg(long = "reveal")]
        reveals: Vec<String>,
        /// Where exports/<date>/ goes (default: the exports_dir setting, `exports`).
        #[arg(long)]
        exports: Option<PathBuf>,
        /// Finish the interrupted draw of --date from what PostgreSQL recorded (its draw, or
        /// the seed it started with): files, Redis, exports.
        #[arg(long, conflicts_with_all = ["material", "reveals"])]
        resume: bool,
    },
    /// Issue a pharmacy's bearer token for the pickup API (recorded with a serial), or revoke.
    Token {
        #[arg(long)]
        pharmacy: String,
        /// Revoke instead: the token --serial N, or every token of the pharmacy.
        #[arg(long)]
        revoke: bool,
        /// With --revoke: the serial of the one token to revoke (the middle part of the token).
        #[arg(long, requires = "revoke")]
        serial: Option<i64>,
    },
    /// Redis's copy of the live tickets.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Forget on time: drop the partitions, snapshot and export directories of the days older
    /// than N days, and erase the personal data of the tickets accepted before them (never a
    /// day not yet drawn or being sealed or drawn). Idempotent; prints what it removed.
    Retention {
        /// Days to keep, counted back from today in the city's zone (at least validity_days +
        /// cooldown_days + 3).
        #[arg(long)]
        keep_days: u32,
    },
    /// Run a whole simulated day against the real services, in a database of its own.
    Demo {
        #[arg(long, default_value_t = 2000)]
        citizens: usize,
        /// The draw date (default: tomorrow; a past date is filled with reservations accepted
        /// before its cutoff on a simulated clock).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Draw yesterday, so the results are already published.
        #[arg(long, conflicts_with = "date")]
        published: bool,
        /// Where the snapshot, exports and a throwaway key pair go (default: demo/<timestamp>).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Keep the demo's data and write here the MASKDRAW_* settings that serve its day.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StockAction {
    /// Import FILE (pharmacy_id,product_id,packs per line) as the stock of --date.
    Import {
        file: PathBuf,
        #[arg(long)]
        date: NaiveDate,
    },
    /// Show the stock of --date.
    Show {
        #[arg(long)]
        date: NaiveDate,
    },
}

#[derive(Subcommand)]
enum CacheAction {
    /// Rebuild Redis from PostgreSQL (statuses, outcomes, locks, cooldowns) after it lost its data.
    Warm,
}

#[derive(Subcommand)]
enum DlqAction {
    /// Show every dead letter without removing it.
    List,
    /// Move every dead letter back to the reservations queue.
    Replay,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    maskdraw::telemetry::init();
    let cli = Cli::parse();
    let settings = Settings::load().context("loading settings")?;
    // The commands that hold the secrets refuse the built-in ones outside development, before
    // they touch anything.
    if matches!(
        cli.command,
        Command::Serve { .. }
            | Command::Persist { .. }
            | Command::Seal { .. }
            | Command::Draw { .. }
            | Command::Token { .. }
    ) {
        settings.refuse_development_secrets()?;
    }
    match cli.command {
        Command::Serve {
            bind,
            admin_bind,
            with_persister,
        } => serve(settings, bind, admin_bind, with_persister).await,
        Command::Persist { metrics_bind } => persist(settings, metrics_bind).await,
        Command::Migrate => migrate(settings).await,
        Command::Dlq { action } => dlq(settings, action).await,
        Command::Keygen { out } => {
            let (secret, public) = day::keys::keygen(&out.unwrap_or(settings.keys_dir))?;
            println!(
                "wrote {} (keep it secret, mode 0600) and {} (publish it)",
                secret.display(),
                public.display()
            );
            Ok(())
        }
        Command::Stock { action } => stock(settings, action).await,
        Command::Seal {
            date,
            key,
            commits,
            no_commitments,
            out,
            resume,
        } => {
            let key = day::keys::load(&key.unwrap_or_else(|| settings.keys_dir.clone()))?;
            let ctx = context(settings).await?;
            if resume {
                let done = day::seal::resume_seal(&ctx, date, &key.verifying_key()).await?;
                println!("{done}");
                return Ok(());
            }
            let out = out.unwrap_or_else(|| ctx.settings.snapshots_dir.clone());
            let opts = day::seal::SealOptions {
                commits: day::seal::parse_commits(&commits)?,
                no_commitments,
                ..day::seal::SealOptions::default()
            };
            let report = day::seal::seal_with(&ctx, date, &key, &opts, &out).await?;
            println!("{report}");
            Ok(())
        }
        Command::Draw {
            date,
            key,
            material,
            reveals,
            exports,
            resume,
        } => {
            let key = day::keys::load(&key.unwrap_or_else(|| settings.keys_dir.clone()))?;
            let exports = exports.unwrap_or_else(|| settings.exports_dir.clone());
            let ctx = context(settings).await?;
            let input = match (resume, material) {
                (false, Some(material)) => day::draw::DrawInput::Live {
                    reveals: day::draw::parse_reveals(&reveals)?,
                    material,
                },
                _ => day::draw::DrawInput::Resume,
            };
            let report = day::draw::draw_with(
                &ctx,
                date,
                &key,
                input,
                &exports,
                &day::draw::DrawOptions::default(),
            )
            .await?;
            println!("{report}");
            Ok(())
        }
        Command::Token {
            pharmacy,
            revoke,
            serial,
        } => token(settings, &pharmacy, revoke, serial).await,
        Command::Cache {
            action: CacheAction::Warm,
        } => {
            let ctx = context(settings).await?;
            let report = maskdraw::cache::warm::warm(&ctx.settings, &ctx.db, &ctx.redis)
                .await
                .context("warming Redis")?;
            println!("{report}");
            Ok(())
        }
        Command::Retention { keep_days } => retention(settings, keep_days).await,
        Command::Demo {
            citizens,
            date,
            published,
            root,
            env_file,
        } => {
            let root = root.unwrap_or_else(|| {
                PathBuf::from("demo").join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string())
            });
            let opts = day::demo::DemoOptions {
                citizens,
                date,
                published,
                root,
                env_file,
                progress: true,
            };
            print!("{}", day::demo::run(settings, opts).await?);
            Ok(())
        }
    }
}

/// The database (migrated), Redis and the catalog, for the officials' commands.
async fn context(settings: Settings) -> anyhow::Result<DayContext> {
    let db = startup::connect_db(&settings.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    startup::migrate(&db).await.context("migrating")?;
    let redis = RedisStore::connect(&settings.redis_endpoint(), &settings.key_prefix)?;
    let catalog = maskdraw::catalog::Catalog::load(&settings.static_dir)?;
    Ok(DayContext {
        settings,
        db,
        redis,
        catalog,
        progress: true,
    })
}

/// `maskdraw retention`: the summary on stdout, progress on stderr.
async fn retention(settings: Settings, keep_days: u32) -> anyhow::Result<()> {
    let db = startup::connect_db(&settings.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    startup::migrate(&db).await.context("migrating")?;
    let today = chrono::Utc::now()
        .with_timezone(&settings.tz()?)
        .date_naive();
    let opts = maskdraw::retention::RetentionOptions {
        keep_days,
        today,
        progress: true,
    };
    let report = maskdraw::retention::run(&settings, &db, &opts)
        .await
        .context("retention")?;
    print!("{report}");
    Ok(())
}

/// `maskdraw token`: issues a token (printed alone on stdout) or revokes.
async fn token(
    settings: Settings,
    pharmacy: &str,
    revoke: bool,
    serial: Option<i64>,
) -> anyhow::Result<()> {
    let catalog = maskdraw::catalog::Catalog::load(&settings.static_dir)?;
    anyhow::ensure!(
        catalog.pharmacy(pharmacy).is_some(),
        "no pharmacy {pharmacy} in the catalog"
    );
    let db = startup::connect_db(&settings.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    startup::migrate(&db).await.context("migrating")?;
    if revoke {
        let n = maskdraw::store::tokens::revoke(&db, pharmacy, serial).await?;
        match serial {
            Some(s) => anyhow::ensure!(n == 1, "{pharmacy} has no live token with serial {s}"),
            None => eprintln!("revoked {n} token(s) of {pharmacy}"),
        }
        if let Some(s) = serial {
            eprintln!("revoked token {s} of {pharmacy}");
        }
        return Ok(());
    }
    let token = maskdraw::api::pickups::issue_token(
        &db,
        settings.token_secret.expose().as_bytes(),
        pharmacy,
    )
    .await?;
    println!("{token}");
    Ok(())
}

async fn stock(settings: Settings, action: StockAction) -> anyhow::Result<()> {
    let ctx = context(settings).await?;
    match action {
        StockAction::Import { file, date } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rows = day::stock::import(&ctx, date, &text).await?;
            print!("{}", day::stock::render(date, &rows));
        }
        StockAction::Show { date } => {
            let rows = maskdraw::store::day::stock(&ctx.db, date).await?;
            print!("{}", day::stock::render(date, &rows));
        }
    }
    Ok(())
}

async fn serve(
    mut settings: Settings,
    bind: Option<String>,
    admin_bind: Option<String>,
    with_persister: bool,
) -> anyhow::Result<()> {
    if let Some(b) = bind {
        settings.bind = b;
    }
    if let Some(b) = admin_bind {
        settings.admin_bind = b;
    }
    let (environment, codes) = (settings.environment, settings.phone_code_required());
    let app = Application::build(settings, with_persister)
        .await
        .context("starting the server")?;
    tracing::info!(
        port = app.port(),
        admin_port = app.admin_port(),
        ?environment,
        phone_codes_required = codes,
        with_persister,
        "serving"
    );
    app.run_until_stopped().await.context("serving")
}

async fn persist(settings: Settings, metrics_bind: Option<String>) -> anyhow::Result<()> {
    startup::migrate_url(&settings.database_url)
        .await
        .context("migrating")?;
    let db = startup::connect_service_db(&settings)
        .await
        .context("connecting to PostgreSQL")?;
    let redis = RedisStore::connect_with_timeout(
        &settings.redis_endpoint(),
        &settings.key_prefix,
        settings.redis_timeout(),
    )?;
    let metrics = maskdraw::metrics::Metrics::new();
    let p = startup::persister(&settings, db, redis, metrics.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = startup::spawn_persister(&settings, p, rx);
    if let Some(bind) = metrics_bind {
        let server =
            startup::metrics_server(&bind, metrics).with_context(|| format!("binding {bind}"))?;
        tokio::spawn(server);
    }
    shutdown_signal().await?;
    let _ = tx.send(true);
    task.await.context("stopping the persister")?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let db = startup::connect_db(&settings.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    startup::migrate(&db).await.context("migrating")?;
    println!("migrations applied");
    Ok(())
}

async fn dlq(settings: Settings, action: DlqAction) -> anyhow::Result<()> {
    use maskdraw::queue::dlq;
    let (uris, q, dead) = (
        settings.broker_urls(),
        settings.queue_name(),
        settings.dead_queue_name(),
    );
    match action {
        DlqAction::List => {
            let letters = dlq::list(&uris, &q, &dead)
                .await
                .context("reading the dead-letter queue")?;
            for (i, l) in letters.iter().enumerate() {
                println!("{i:>5}  {:>7} bytes  {}  {}", l.bytes, l.content, l.preview);
            }
            println!("{} dead letter(s) in {dead}", letters.len());
        }
        DlqAction::Replay => {
            let n = dlq::replay(&uris, &q, &dead)
                .await
                .context("replaying the dead-letter queue")?;
            println!("moved {n} dead letter(s) from {dead} back to {q}");
        }
    }
    Ok(())
}
