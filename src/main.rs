//! The `maskdraw` command: one function per subcommand.

use anyhow::Context;
use clap::{Parser, Subcommand};
use maskdraw::config::Settings;
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
        /// Run the persister in this process too.
        #[arg(long)]
        with_persister: bool,
    },
    /// Consume reservations and write them to PostgreSQL.
    Persist,
    /// Apply database migrations.
    Migrate,
    /// Inspect or replay the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
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
    match cli.command {
        Command::Serve {
            bind,
            with_persister,
        } => serve(settings, bind, with_persister).await,
        Command::Persist => persist(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Dlq { action } => dlq(settings, action).await,
    }
}

async fn serve(
    mut settings: Settings,
    bind: Option<String>,
    with_persister: bool,
) -> anyhow::Result<()> {
    if let Some(b) = bind {
        settings.bind = b;
    }
    let app = Application::build(settings, with_persister)
        .await
        .context("starting the server")?;
    tracing::info!(port = app.port(), with_persister, "serving");
    app.run_until_stopped().await.context("serving")
}

async fn persist(settings: Settings) -> anyhow::Result<()> {
    let db = startup::connect_db(&settings.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    startup::migrate(&db).await.context("migrating")?;
    let redis = RedisStore::connect(&settings.redis_url, &settings.key_prefix)?;
    let p = startup::persister(&settings, db, redis, maskdraw::metrics::Metrics::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = startup::spawn_persister(&settings, p, rx);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    let _ = tx.send(true);
    task.await.context("stopping the persister")?;
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
    let (uri, q, dead) = (
        settings.amqp_url.clone(),
        settings.queue_name(),
        settings.dead_queue_name(),
    );
    match action {
        DlqAction::List => {
            let letters = dlq::list(&uri, &q, &dead)
                .await
                .context("reading the dead-letter queue")?;
            for (i, l) in letters.iter().enumerate() {
                println!("{i:>5}  {:>7} bytes  {}  {}", l.bytes, l.content, l.preview);
            }
            println!("{} dead letter(s) in {dead}", letters.len());
        }
        DlqAction::Replay => {
            let n = dlq::replay(&uri, &q, &dead)
                .await
                .context("replaying the dead-letter queue")?;
            println!("moved {n} dead letter(s) from {dead} back to {q}");
        }
    }
    Ok(())
}
