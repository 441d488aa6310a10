//! Building and running the service (zero-to-production's `Application`): `build` binds and
//! wires everything (port 0 in tests), `run_until_stopped` serves until the server stops.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpResponse, HttpServer};
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::sync::watch;

use crate::admission::{Admission, Rates};
use crate::api::{self, AppState};
use crate::cache::ReadCache;
use crate::catalog::{Catalog, CatalogError};
use crate::config::{FallbackDurability, Settings};
use crate::metrics::Metrics;
use crate::persist::Persister;
use crate::queue::broker::{self, Broker};
use crate::queue::publisher::{Publisher, PublisherConfig};
use crate::queue::relay;
use crate::sms::Sender;
use crate::store::phone_codes::{Limits, PhoneCodes};
use crate::store::redis::{FallbackDemand, RedisStore};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("binding {0}")]
    Bind(String, #[source] std::io::Error),
    #[error("connecting to PostgreSQL")]
    Db(#[from] sea_orm::DbErr),
    #[error("configuring Redis")]
    Redis(#[from] deadpool_redis::CreatePoolError),
    #[error("loading the catalog")]
    Catalog(#[from] CatalogError),
    #[error("configuration")]
    Config(#[from] crate::config::ConfigError),
}

/// Binds `addr` with a listen backlog of `backlog` connections. The standard library's
/// `TcpListener::bind` asks for 128: at 18:00, a burst of new connections overflowed it, the
/// kernel dropped their SYNs, and those clients waited a whole second for the retransmission.
///
/// # Errors
/// When the address does not resolve or cannot be bound.
pub fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Opens the PostgreSQL pool.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_db(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(16)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(opts).await
}

/// PostgreSQL statements in flight at once for status reads that missed Redis (the pool has
/// 16 connections; more statements than cores only queue inside PostgreSQL, and reads that
/// wait for a slot share the next statement).
const STATUS_READ_SLOTS: usize = 4;

/// Reservations checked in PostgreSQL at once while Redis is not known warm: half the pool,
/// so that status reads, phone codes and the monitor keep connections. Up to
/// `cold_check_queue` more wait for a check (a burst on a slow database waits its turn); past
/// that, and past `db_timeout_ms` of waiting, a reservation is shed with 503 and `Retry-After`
/// at once instead of queueing on the pool for seconds with its in-flight slot held.
const INTAKE_CHECK_SLOTS: usize = 8;

/// The PostgreSQL pool of `serve` and `persist`: every statement is bounded by
/// `db_timeout_ms` on the server (`statement_timeout`), and so is waiting for a connection.
/// (A database that stops answering altogether is bounded on the client side too: see
/// `api::db`.) Migrations and bulk work (`cache warm`) use [`connect_db`], without the bound.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_service_db(settings: &Settings) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let timeout = settings.db_timeout();
    let statement_timeout = settings.db_timeout_ms.to_string();
    let mut opts = ConnectOptions::new(settings.database_url.clone());
    opts.max_connections(16)
        .min_connections(1)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .acquire_timeout(timeout)
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |o| {
            // Every execution of a prepared statement is planned for its values and the
            // tables as they are now: a generic plan made while a new day's tables were
            // almost empty (a sequential scan) would otherwise be kept by the connection for
            // the rest of the day, scanning the whole table on every call.
            o.options([
                ("statement_timeout", statement_timeout.as_str()),
                ("plan_cache_mode", "force_custom_plan"),
            ])
        });
    Database::connect(opts).await
}

/// Applies every pending migration on a connection of its own (a migration may take longer
/// than the service's statement bound).
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate_url(url: &str) -> Result<(), sea_orm::DbErr> {
    let db = connect_db(url).await?;
    let done = migrate(&db).await;
    let _ = db.close().await;
    done
}

/// Applies every pending migration and makes the partitions around today.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    migration::Migrator::up(db, None).await?;
    // The partitions the next rows will need, before they come (see store::partitions).
    crate::store::partitions::ensure_around(db, chrono::Utc::now().date_naive()).await?;
    Ok(())
}

/// What the fallback stream demands of Redis under these settings.
pub fn fallback_demand(settings: &Settings) -> FallbackDemand {
    match settings.fallback_durability {
        FallbackDurability::Persistent => FallbackDemand::Aof,
        FallbackDurability::Replica => FallbackDemand::Replicas {
            count: settings.fallback_replicas,
            timeout_ms: settings.fallback_wait_ms,
        },
        FallbackDurability::Unsafe => FallbackDemand::Nothing,
    }
}

fn status_ttl(settings: &Settings) -> u64 {
    // In u64: in u32 the sum could wrap for settings that never went through `check`.
    (u64::from(settings.validity_days) + u64::from(settings.cooldown_days) + 30) * 86_400
}

/// Builds the persister for these settings.
pub fn persister(
    settings: &Settings,
    db: DatabaseConnection,
    redis: RedisStore,
    metrics: Metrics,
) -> Arc<Persister> {
    Arc::new(Persister {
        db,
        redis,
        metrics,
        batch_rows: settings.persist_batch,
        status_ttl_secs: status_ttl(settings),
        db_timeout: settings.db_timeout() + Duration::from_millis(500),
        amqp_timeout: settings.amqp_timeout(),
    })
}

/// Spawns the persister loop for these settings.
pub fn spawn_persister(
    settings: &Settings,
    p: Arc<Persister>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    // Several consumers per process, each on its own connection: while one waits for its
    // INSERT to commit, another decodes and inserts the next batch.
    let loops: Vec<_> = (0..settings.persist_consumers.max(1))
        .map(|_| {
            tokio::spawn(p.clone().run(
                settings.broker_urls(),
                settings.queue_name(),
                settings.dead_queue_name(),
                settings.persist_prefetch,
                shutdown.clone(),
            ))
        })
        .collect();
    tokio::spawn(async move {
        for l in loops {
            let _ = l.await;
        }
    })
}

/// A small server with `/metrics` and `/healthz`, for processes without the API (`persist`).
///
/// # Errors
/// When the address cannot be bound.
pub fn metrics_server(bind: &str, metrics: Metrics) -> std::io::Result<Server> {
    let data = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/metrics",
                web::get().to(|m: web::Data<Metrics>| async move {
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4")
                        .body(m.render())
                }),
            )
            .route(
                "/healthz",
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
    })
    .workers(1)
    .bind(bind)?
    .run())
}

pub struct Application {
    port: u16,
    admin_port: u16,
    server: Server,
    /// The operator listener (`admin_bind`): metrics and readiness details.
    admin: Server,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A server running in the background (demo, tests), stoppable in order.
pub struct Running {
    pub port: u16,
    pub admin_port: u16,
    server: actix_web::dev::ServerHandle,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    admin: actix_web::dev::ServerHandle,
    admin_join: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops taking requests, lets the ones in flight finish, then stops the background tasks
    /// (broker keeper, relay, persister, monitor) and waits for them, 10 s at most each.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.join.await;
        self.admin.stop(true).await;
        let _ = self.admin_join.await;
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Application {
    /// Connects to the three services, migrates, and binds `settings.bind`.
    ///
    /// # Errors
    /// When a service cannot be reached, the catalog does not load, or the address is taken.
    pub async fn build(settings: Settings, with_persister: bool) -> Result<Self, StartupError> {
        settings.refuse_development_secrets()?;
        settings.refuse_missing_intake_key()?;
        settings.check_phone_codes()?;
        let intake = Arc::new(crate::receipts::IntakeKey::new(settings.intake_key()?));
        let sms = Sender::from_settings(&settings)?;
        let catalog = Catalog::load(&settings.static_dir)?;
        migrate_url(&settings.database_url).await?;
        let db = connect_service_db(&settings).await?;
        let redis = RedisStore::connect_with_timeout(
            &settings.redis_endpoint(),
            &settings.key_prefix,
            settings.redis_timeout(),
        )?;
        let metrics = Metrics::new();
        let (shutdown, rx) = watch::channel(false);
        let broker = Broker::new(
            &settings.broker_urls(),
            &settings.queue_name(),
            &settings.dead_queue_name(),
        );
        // A first attempt now, so a healthy start does not take its first requests through the
        // fallback; the keeper retries if this fails.
        if let Err(e) = broker.connect_now().await {
            tracing::warn!(error = ?e, "broker unreachable at start; intake uses the fallback stream");
        }
        let mut tasks = vec![
            broker.spawn_keeper(rx.clone()),
            relay::spawn(broker.clone(), redis.clone(), metrics.clone(), rx.clone()),
        ];
        let publisher = Publisher::spawn(
            broker.clone(),
            redis.clone(),
            metrics.clone(),
            PublisherConfig {
                batch: settings.publish_batch,
                linger: Duration::from_micros(settings.publish_linger_us),
                confirm_timeout: Duration::from_millis(settings.publish_timeout_ms),
                fallback: fallback_demand(&settings),
            },
            Arc::new(intake.key.clone()),
        );
        // Known before the first request, for /readyz and the gauge (the appends check anew).
        publisher.fallback().refresh(&redis, &metrics).await;
        if !publisher.fallback().redis_persistent() {
            tracing::warn!(
                mode = ?settings.fallback_durability,
                fallback = publisher.fallback().state(),
                "Redis does not keep fallback entries (no AOF, or too few replicas)"
            );
        }
        if with_persister {
            let p = persister(&settings, db.clone(), redis.clone(), metrics.clone());
            tasks.push(spawn_persister(&settings, p, rx.clone()));
        }
        let admission = Admission::new(
            Rates {
                reserve_per_sec: settings.ip_rate_per_sec,
                status_per_sec: settings.status_rate_per_sec,
                proof_per_sec: settings.proof_rate_per_sec,
                lookup_per_min: settings.lookup_rate_per_min,
                pickup_per_sec: settings.pickup_rate_per_sec,
                phone_code_per_min: settings.phone_code_rate_per_min,
                person_per_min: settings.person_rate_per_min,
            },
            settings.proxies()?,
            settings.max_in_flight,
            settings.max_backlog,
        );
        let cache = ReadCache::new(Duration::from_secs(settings.negative_cache_secs.max(1)));
        let intake_checks =
            crate::admission::Gate::new(INTAKE_CHECK_SLOTS, settings.cold_check_queue);
        if let Err(e) = cache.publications.refresh(&db).await {
            tracing::warn!(error = ?e, "reading the recorded draws at start");
        }
        let listener = listen(&settings.bind, settings.listen_backlog)
            .map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.bind.clone(), e))?
            .port();
        let admin_listener = TcpListener::bind(&settings.admin_bind)
            .map_err(|e| StartupError::Bind(settings.admin_bind.clone(), e))?;
        let admin_port = admin_listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.admin_bind.clone(), e))?
            .port();
        let phone_codes = PhoneCodes::new(
            redis.clone(),
            &settings.key_prefix,
            Limits {
                ttl_secs: settings.phone_code_ttl_secs,
                resend_secs: settings.phone_code_resend_secs,
                per_day: settings.phone_codes_per_phone_per_day,
                max_attempts: settings.phone_code_max_attempts,
            },
        );
        let static_dir = settings.static_dir.clone();
        let http_workers = settings.http_workers;
        let body_timeout_ms = settings.body_timeout_ms;
        let ticket_reads = crate::store::draws::TicketReads::start(
            db.clone(),
            STATUS_READ_SLOTS,
            metrics.status_statements.clone(),
        );
        let state = web::Data::new(AppState {
            settings,
            catalog,
            redis,
            db,
            broker,
            publisher,
            metrics,
            admission,
            cache,
            phone_codes,
            sms,
            intake,
            ticket_reads,
            intake_checks,
        });
        tasks.push(spawn_monitor(state.clone(), rx));
        let data = state.clone();
        let server = HttpServer::new(move || {
            // Called once per worker, on its thread.
            let worker_redis = web::Data::new(api::WorkerRedis(data.redis.with_own_connection()));
            App::new()
                .app_data(data.clone())
                .app_data(worker_redis)
                .wrap_fn(api::record)
                .wrap(api::security_headers())
                .configure(api::configure)
                .route(
                    "/",
                    web::get().to(|| async {
                        HttpResponse::Found()
                            .insert_header(("Location", "/static/index.html"))
                            .finish()
                    }),
                )
                .service(
                    web::scope("/static")
                        .wrap(DefaultHeaders::new().add(("Cache-Control", "public, max-age=300")))
                        .service(
                            actix_files::Files::new("", static_dir.clone())
                                .use_etag(true)
                                .use_last_modified(true),
                        ),
                )
                .default_service(web::to(api::no_such_path))
        })
        .workers(http_workers)
        // The request head too must arrive in time (the body is bounded in `read_body`).
        .client_request_timeout(Duration::from_millis(body_timeout_ms))
        .listen(listener)
        .map_err(|e| StartupError::Bind("listener".into(), e))?
        .run();
        let admin_data = state.clone();
        let admin = HttpServer::new(move || {
            App::new()
                .app_data(admin_data.clone())
                .configure(api::configure_admin)
        })
        .workers(1)
        .listen(admin_listener)
        .map_err(|e| StartupError::Bind("admin listener".into(), e))?
        .run();
        Ok(Self {
            port,
            admin_port,
            server,
            admin,
            shutdown,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The operator listener's port (`admin_bind`).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// A handle that stops the background tasks (broker keeper, relay, persister, monitor).
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }

    /// Serves in the background; [`Running::stop`] ends it.
    pub fn spawn(self) -> Running {
        let server = self.server.handle();
        let join = tokio::spawn(self.server);
        let admin = self.admin.handle();
        let admin_join = tokio::spawn(self.admin);
        Running {
            port: self.port,
            admin_port: self.admin_port,
            server,
            join,
            admin,
            admin_join,
            shutdown: self.shutdown,
            tasks: self.tasks,
        }
    }

    /// Serves until the server is stopped (Ctrl-C or SIGTERM), then stops the background tasks.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let admin = self.admin.handle();
        let admin_join = tokio::spawn(self.admin);
        let result = self.server.await;
        // The public listener stopped (a signal stops both): the operator's goes with it.
        admin.stop(true).await;
        let _ = admin_join.await;
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        result
    }
}

/// Every second: the recorded draws and whether Redis is warm (warming it when it lost its
/// data), the broker backlog (for shedding and metrics), the dead-letter depth, and the rate
/// limiters' housekeeping; every 5 s, whether Redis persists (the fallback's durability).
fn spawn_monitor(
    state: web::Data<AppState>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = 0u64;
        let warming = Arc::new(std::sync::atomic::AtomicBool::new(false));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            match tokio::time::timeout(
                state.settings.db_timeout(),
                state.cache.publications.refresh(&state.db),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = ?e, "refreshing the recorded draws"),
                Err(_) => {
                    tracing::warn!("refreshing the recorded draws: PostgreSQL did not answer")
                }
            }
            watch_warmth(&state, &warming);
            if let Some(link) = state.broker.current() {
                if let Ok(depth) = broker::queue_depth(&link.conn, state.broker.queue()).await {
                    state.admission.set_backlog(u64::from(depth));
                    state.metrics.queue_depth.set(i64::from(depth));
                }
                if let Ok(dead) = broker::queue_depth(&link.conn, state.broker.dead_queue()).await {
                    state.metrics.dead_letters.set(i64::from(dead));
                }
            }
            tick += 1;
            if tick % 5 == 0 {
                state
                    .publisher
                    .fallback()
                    .refresh(&state.redis, &state.metrics)
                    .await;
            }
            if tick % 60 == 0 {
                state.admission.forget_idle();
            }
        }
    })
}

/// Notes whether Redis is warm and, when it is not and `auto_warm` is on, warms it in the
/// background (one warm per process; the lease in Redis keeps it to one per deployment).
fn watch_warmth(state: &web::Data<AppState>, warming: &Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let state = state.clone();
    let warming = warming.clone();
    tokio::spawn(async move {
        let Ok(warm) = state.redis.is_warm().await else {
            // Unreachable is not empty: the next answer tells (see `Warmth`).
            state.cache.warmth.lost_sight();
            state.metrics.cache_complete.set(0);
            return;
        };
        state.cache.warmth.set(warm);
        state.metrics.cache_complete.set(i64::from(warm));
        if warm || !state.settings.auto_warm || warming.swap(true, Ordering::AcqRel) {
            return;
        }
        // Bulk reads: a connection of its own, without the service's statement bound.
        match connect_db(&state.settings.database_url).await {
            Ok(bulk) => {
                match crate::cache::warm::warm(&state.settings, &bulk, &state.redis).await {
                    Ok(report) => tracing::info!(%report, "Redis had lost its data; warmed it"),
                    Err(crate::cache::warm::WarmError::Busy) => {}
                    Err(e) => tracing::warn!(error = ?e, "warming Redis"),
                }
                let _ = bulk.close().await;
            }
            Err(e) => tracing::warn!(error = ?e, "connecting to PostgreSQL to warm Redis"),
        }
        warming.store(false, Ordering::Release);
    });
}
