//! Faults under load, shared by `benches/faults.rs` (the campaign, the overload and the soak)
//! and the test suite (`tests/api/faults.rs`, `tests/api/two_of_each.rs`, and the proxies and
//! own Redis of the older durability tests).
//!
//! A [`Stack`] is a whole deployment of its own: a database, a Redis with AOF (its own
//! `redis-server`), the shared RabbitMQ or a private node, and `maskdraw serve` / `maskdraw
//! persist` as real processes (the test build's binary). Every service is reached through a
//! [`TcpProxy`] that can cut it, so the faults never touch the machine's shared services.
//! [`run_scenario`] offers an open-model load of unique valid people with one [`Fault`] in the
//! middle, retries the people who got no final answer, waits for PostgreSQL, and checks ticket by
//! ticket that every 202 is stored and that no person holds two registered tickets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::intake::{missing, ticket_array};
use super::load::{self, LoadRun};

pub const PG: &str = "127.0.0.1:5432";
pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const SHARED_AMQP: &str = "127.0.0.1:5672";
const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The pharmacy ids of the catalog the servers load.
pub fn pharmacies() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/config/pharmacies.json");
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(path).expect("the catalog")).expect("json");
    super::intake::pharmacy_ids(&list)
}

/// The body of person `i`'s reservation.
pub fn reservation_body(i: u64, pharmacies: &[String]) -> Vec<u8> {
    super::intake::reservation_body(i, i, pharmacies)
}

// ------------------------------------------------------------------------------- the proxy

/// A TCP proxy in front of a service that a test can cut (every connection closed, new ones
/// refused) and restore, or stall (what the server sends is held back, what the client sends
/// still goes through: a lost confirm), without touching the service itself.
pub struct TcpProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
}

impl TcpProxy {
    pub async fn start(target: impl Into<String>) -> Self {
        let target: String = target.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cut_rx) = watch::channel(0u64);
        let (stalled, stalled_rx) = watch::channel(false);
        let up2 = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = cut_rx.clone();
                // Only a cut after this connection was accepted ends it.
                cut_rx.borrow_and_update();
                let stalled_rx = stalled_rx.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = relay(inbound, outbound, stalled_rx) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            cut,
            stalled,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Holds back everything the server sends until [`TcpProxy::unstall`].
    pub fn stall(&self) {
        let _ = self.stalled.send(true);
    }

    pub fn unstall(&self) {
        let _ = self.stalled.send(false);
    }
}

/// Copies both ways; bytes from the server wait while `stalled` is true.
async fn relay(inbound: TcpStream, outbound: TcpStream, mut stalled: watch::Receiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let up = tokio::io::copy(&mut client_read, &mut server_write);
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while *stalled.borrow_and_update() {
                if stalled.changed().await.is_err() {
                    return;
                }
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

// ------------------------------------------------------------------------------- own Redis

/// A redis-server of our own: killed (SIGKILL) and its directory removed on drop.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    aof: bool,
    replica_of: Option<u16>,
    child: Option<Child>,
}

impl OwnRedis {
    /// With `aof`, every write is fsynced to the append-only file before Redis answers
    /// (`appendfsync always`); without, Redis keeps nothing (no AOF, no RDB).
    pub async fn start(aof: bool) -> Self {
        Self::start_with(aof, None).await
    }

    /// `replica_of`: the port of a Redis on 127.0.0.1 to replicate.
    pub async fn start_with(aof: bool, replica_of: Option<u16>) -> Self {
        let dir = std::env::temp_dir().join(format!("maskdraw-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("the Redis directory");
        let mut redis = Self {
            port: free_port(),
            dir,
            aof,
            replica_of,
            child: None,
        };
        redis.launch().await;
        redis
    }

    async fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(primary) = self.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        self.child = Some(
            cmd.spawn()
                .expect("redis-server (apt-get install redis-server)"),
        );
        // Ready once PING answers PONG (a Redis still loading its AOF answers LOADING).
        let client = deadpool_redis::redis::Client::open(self.url()).expect("url");
        let start = Instant::now();
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let pong: Result<String, _> =
                    deadpool_redis::redis::cmd("PING").query_async(&mut c).await;
                if pong.is_ok() {
                    return;
                }
            }
            // A restart under load replays an AOF of millions of keys while the machine is
            // busy: a minute was not always enough (the soak at 5,000/s, minute five).
            assert!(
                start.elapsed() < Duration::from_secs(240),
                "redis-server on port {} did not start within 240 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The redis-server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown save, no AOF rewrite; what was not on disk is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9, then the same server again on the same port and directory.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------- own RabbitMQ

/// A RabbitMQ node of our own (its own node name, ports, Mnesia directory and Erlang cookie),
/// so a test can kill and restart a broker without touching the shared `rabbit@localhost`
/// (the same environment `scripts/cluster.sh` gives its nodes). Killed on drop.
pub struct OwnRabbit {
    pub port: u16,
    dist_port: u16,
    node: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRabbit {
    pub async fn start() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("maskdraw-rabbit-{}", &id[..12]));
        for sub in ["mnesia", "log", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the RabbitMQ directory");
        }
        let port = free_port();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{port}\ndisk_free_limit.absolute = 50MB\n\
                 vm_memory_high_watermark.relative = 0.2\n"
            ),
        )
        .expect("rabbitmq.conf");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        std::fs::write(dir.join("advanced.config"), "[].\n").expect("advanced.config");
        std::fs::write(dir.join("rabbitmq-env.conf"), "").expect("rabbitmq-env.conf");
        let cookie = dir.join("home/.erlang.cookie");
        std::fs::write(&cookie, &id).expect("the cookie");
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400));
        }
        let mut rabbit = Self {
            port,
            dist_port: free_port(),
            node: format!("mdfault{}@localhost", &id[..12]),
            dir,
            child: None,
        };
        rabbit.launch().await;
        rabbit
    }

    async fn launch(&mut self) {
        use std::os::unix::process::CommandExt;
        let d = &self.dir;
        let log = std::fs::File::create(d.join("log/stdout.log")).expect("the node's log");
        let child = Command::new(format!("{RABBIT_BIN}/rabbitmq-server"))
            .env("HOME", d.join("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("rabbit.pid"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d.join("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // Its own process group: a kill takes the Erlang VM and its helpers.
            .process_group(0)
            .spawn()
            .expect("rabbitmq-server (apt-get install rabbitmq-server)");
        self.child = Some(child);
        let url = self.url();
        let start = Instant::now();
        loop {
            if let Ok(Ok(conn)) = tokio::time::timeout(
                Duration::from_secs(5),
                maskdraw::queue::broker::connect(&url),
            )
            .await
            {
                let _ = conn.close(200, "ready").await;
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the RabbitMQ node {} did not start (log in {})",
                self.node,
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The address the proxy in front of it forwards to.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The node's process group leader, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL to the whole process group: the node dies as in a power cut.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9, then the same node again on its directory: the quorum queue recovers its
    /// confirmed messages from its log.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for OwnRabbit {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------- stack

/// What a [`Stack`] runs.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub serves: usize,
    pub persisters: usize,
    /// A RabbitMQ node of its own (to restart it) instead of the shared one.
    pub own_rabbit: bool,
    /// More `MASKDRAW_*` settings for every process (they come after the stack's own).
    pub env: Vec<(String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            serves: 1,
            persisters: 1,
            own_rabbit: false,
            env: Vec::new(),
        }
    }
}

/// One `maskdraw serve` process.
pub struct Serve {
    pub addr: SocketAddr,
    pub admin: String,
    child: Option<Child>,
}

impl Serve {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A whole isolated deployment; see the module's documentation.
pub struct Stack {
    pub db_name: String,
    /// The test's own connection, straight to PostgreSQL (not through the proxy).
    pub db: DatabaseConnection,
    pub redis: OwnRedis,
    pub rabbit: Option<OwnRabbit>,
    pub redis_proxy: TcpProxy,
    pub amqp_proxy: TcpProxy,
    pub pg_proxy: TcpProxy,
    pub serves: Vec<Serve>,
    pub persisters: Vec<Option<Child>>,
    pub queue_prefix: String,
    env: Vec<(String, String)>,
}

impl Stack {
    pub async fn start(opts: StackOptions) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("md_fault_{}", &id[..12]);
        let admin = Database::connect(PG_ADMIN)
            .await
            .expect("postgres on 127.0.0.1:5432");
        admin
            .execute(Statement::from_string(
                DbBackend::Postgres,
                format!("CREATE DATABASE {db_name}"),
            ))
            .await
            .expect("create the database");
        let _ = admin.close().await;
        let redis = OwnRedis::start(true).await;
        let rabbit = if opts.own_rabbit {
            Some(OwnRabbit::start().await)
        } else {
            None
        };
        let amqp_target = rabbit
            .as_ref()
            .map_or_else(|| SHARED_AMQP.to_string(), OwnRabbit::addr);
        let redis_proxy = TcpProxy::start(format!("127.0.0.1:{}", redis.port)).await;
        let amqp_proxy = TcpProxy::start(amqp_target).await;
        let pg_proxy = TcpProxy::start(PG).await;
        let queue_prefix = format!("f{}.", &id[..12]);
        let mut env: Vec<(String, String)> = [
            (
                "MASKDRAW_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{}/{db_name}", pg_proxy.port),
            ),
            (
                "MASKDRAW_REDIS_URL",
                format!("redis://127.0.0.1:{}/0", redis_proxy.port),
            ),
            (
                "MASKDRAW_AMQP_URL",
                format!("amqp://guest:guest@127.0.0.1:{}/%2f", amqp_proxy.port),
            ),
            // A development deployment (built-in secrets) without phone codes: the simulated
            // people have no phones.
            ("MASKDRAW_ENVIRONMENT", "development".into()),
            ("MASKDRAW_REQUIRE_PHONE_CODE", "false".into()),
            ("MASKDRAW_KEY_PREFIX", format!("f{}", &id[..12])),
            ("MASKDRAW_QUEUE_PREFIX", queue_prefix.clone()),
            (
                "MASKDRAW_STATIC_DIR",
                format!("{}/static", env!("CARGO_MANIFEST_DIR")),
            ),
            // Every simulated person comes from 127.0.0.1.
            ("MASKDRAW_IP_RATE_PER_SEC", "1000000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(opts.env.iter().cloned());
        let db = Database::connect(format!("postgres://postgres@{PG}/{db_name}"))
            .await
            .expect("the stack's database");
        let mut stack = Self {
            db_name,
            db,
            redis,
            rabbit,
            redis_proxy,
            amqp_proxy,
            pg_proxy,
            serves: Vec::new(),
            persisters: Vec::new(),
            queue_prefix,
            env,
        };
        // One at a time: the first migrates the database.
        for _ in 0..opts.serves {
            stack.add_serve().await;
        }
        for _ in 0..opts.persisters {
            let p = stack.spawn("persist", &[]);
            stack.persisters.push(Some(p));
        }
        stack
    }

    fn spawn(&self, cmd: &str, args: &[String]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_maskdraw"))
            .arg(cmd)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // Quiet unless asked: the faults make every process log its lost connections.
            .env(
                "RUST_LOG",
                std::env::var("FAULTS_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stderr(if std::env::var_os("FAULTS_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .spawn()
            .expect("start maskdraw")
    }

    /// Starts one more `serve` and waits until it is ready.
    pub async fn add_serve(&mut self) -> &Serve {
        let (port, admin_port) = (free_port(), free_port());
        let child = self.spawn(
            "serve",
            &[
                "--bind".into(),
                format!("127.0.0.1:{port}"),
                "--admin-bind".into(),
                format!("127.0.0.1:{admin_port}"),
            ],
        );
        let serve = Serve {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            admin: format!("http://127.0.0.1:{admin_port}"),
            child: Some(child),
        };
        super::intake::wait_ready(&reqwest::Client::new(), &serve.admin).await;
        self.serves.push(serve);
        self.serves.last().expect("just pushed")
    }

    /// The addresses of the serve processes still running.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.serves
            .iter()
            .filter(|s| s.child.is_some())
            .map(|s| s.addr)
            .collect()
    }

    /// SIGKILL serve `i` (it is not restarted).
    pub fn kill_serve(&mut self, i: usize) {
        if let Some(mut c) = self.serves[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILL persister `i`.
    pub fn kill_persister(&mut self, i: usize) {
        if let Some(mut c) = self.persisters[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new persister in slot `i` (after [`Stack::kill_persister`]).
    pub fn restart_persister(&mut self, i: usize) {
        let p = self.spawn("persist", &[]);
        self.persisters[i] = Some(p);
    }

    /// Every process of the deployment that runs now, by name: the serves, the persisters,
    /// the own Redis and RabbitMQ (for sampling their memory and descriptors).
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for (i, s) in self.serves.iter().enumerate() {
            if let Some(pid) = s.pid() {
                out.push((format!("serve{i}"), pid));
            }
        }
        for (i, p) in self.persisters.iter().enumerate() {
            if let Some(p) = p {
                out.push((format!("persist{i}"), p.id()));
            }
        }
        if let Some(pid) = self.redis.pid() {
            out.push(("redis".into(), pid));
        }
        if let Some(pid) = self.rabbit.as_ref().and_then(OwnRabbit::pid) {
            out.push(("rabbitmq".into(), pid));
        }
        out
    }

    /// How many of `tickets` are missing from PostgreSQL.
    pub async fn missing(&self, tickets: &[String]) -> usize {
        missing(&self.db, tickets).await
    }

    /// How many of `tickets` PostgreSQL stored as `rejected`.
    pub async fn rejected(&self, tickets: &[String]) -> usize {
        let mut n = 0;
        for chunk in tickets.chunks(50_000) {
            let arr = ticket_array(chunk);
            let row = self
                .db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT count(*) AS n FROM tickets WHERE ticket_id = ANY($1::bpchar[]) \
                     AND status = 'rejected'",
                    vec![arr],
                ))
                .await
                .expect("count")
                .expect("row");
            n += row.try_get::<i64>("", "n").expect("n") as usize;
        }
        n
    }

    /// People with more than one registered ticket.
    pub async fn duplicates(&self) -> i64 {
        scalar(
            &self.db,
            "SELECT count(*) AS n FROM (SELECT person_tag FROM tickets WHERE status = 'registered' \
             GROUP BY person_tag HAVING count(*) > 1) d",
        )
        .await
    }

    pub async fn count_tickets(&self) -> i64 {
        scalar(&self.db, "SELECT count(*) AS n FROM tickets").await
    }

    /// Polls until every one of `tickets` is in PostgreSQL and the row count has not moved for
    /// `quiet` (a late duplicate would still arrive), or `limit` passes. How many are missing.
    pub async fn settle(&self, tickets: &[String], quiet: Duration, limit: Duration) -> usize {
        let start = Instant::now();
        let mut last = (-1i64, Instant::now());
        let mut said = Instant::now();
        loop {
            let n = self.count_tickets().await;
            if n != last.0 {
                last = (n, Instant::now());
            }
            if n >= tickets.len() as i64 && last.1.elapsed() >= quiet {
                let lost = self.missing(tickets).await;
                if lost == 0 {
                    return 0;
                }
            }
            // `limit` bounds a wait without progress: a persister still working through a
            // backlog (after a long run with faults) is not a loss, and is waited for (up to
            // half an hour in all).
            if last.1.elapsed() > limit || start.elapsed() > Duration::from_secs(1800) {
                return self.missing(tickets).await;
            }
            if said.elapsed() > Duration::from_secs(30) {
                said = Instant::now();
                println!(
                    "    settling: {n} of {} tickets in PostgreSQL after {:.0} s",
                    tickets.len(),
                    start.elapsed().as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops every process, deletes the queues (on the shared broker) and drops the database.
    pub async fn teardown(mut self) {
        for i in 0..self.serves.len() {
            self.kill_serve(i);
        }
        for i in 0..self.persisters.len() {
            self.kill_persister(i);
        }
        if self.rabbit.is_none() {
            if let Ok(conn) =
                maskdraw::queue::broker::connect(&format!("amqp://guest:guest@{SHARED_AMQP}/%2f"))
                    .await
            {
                if let Ok(ch) = conn.create_channel().await {
                    for q in ["reservations", "reservations.dead"] {
                        let _ = ch
                            .queue_delete(
                                &format!("{}{q}", self.queue_prefix),
                                lapin::options::QueueDeleteOptions::default(),
                            )
                            .await;
                    }
                }
                let _ = conn.close(200, "teardown").await;
            }
        }
        let db_name = self.db_name.clone();
        let db = std::mem::replace(&mut self.db, DatabaseConnection::Disconnected);
        let _ = db.close().await;
        if let Ok(admin) = Database::connect(PG_ADMIN).await {
            let _ = admin
                .execute(Statement::from_string(
                    DbBackend::Postgres,
                    format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
                ))
                .await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for s in &mut self.serves {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for p in self.persisters.iter_mut().flatten() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one(Statement::from_string(DbBackend::Postgres, sql.to_string()))
        .await
        .expect("query")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n")
}

// ------------------------------------------------------------------------------- scenarios

/// One fault, injected in the middle of the load.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The broker unreachable for this long (the proxy refuses and drops connections).
    BrokerCut(Duration),
    /// Redis unreachable for this long.
    RedisCut(Duration),
    /// PostgreSQL unreachable for this long.
    PostgresCut(Duration),
    /// The persister SIGKILLed this many times while it works, `gap` apart, restarted at once.
    PersisterKills { times: u32, gap: Duration },
    /// One of two serve processes SIGKILLed (not restarted; the load moves to the other).
    ServeKill,
    /// The (own, AOF) Redis SIGKILLed and started again on its files.
    RedisRestart,
    /// The (own) RabbitMQ node SIGKILLed and started again on its files.
    BrokerRestart,
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::BrokerCut(d) => format!("broker cut {} s", d.as_secs_f64()),
            Fault::RedisCut(d) => format!("Redis cut {} s", d.as_secs_f64()),
            Fault::PostgresCut(d) => format!("PostgreSQL cut {} s", d.as_secs_f64()),
            Fault::PersisterKills { times, .. } => format!("persister SIGKILL ×{times}"),
            Fault::ServeKill => "1 of 2 serve SIGKILL".into(),
            Fault::RedisRestart => "Redis kill -9 + restart (AOF)".into(),
            Fault::BrokerRestart => "RabbitMQ kill -9 + restart".into(),
        }
    }

    /// The whole campaign of the issue, with its durations scaled by `scale` (1.0 = the
    /// issue's: broker 10 s, Redis 5 s, PostgreSQL 20 s).
    pub fn campaign(scale: f64) -> Vec<Fault> {
        let s = |secs: f64| Duration::from_secs_f64((secs * scale).max(0.5));
        vec![
            Fault::BrokerCut(s(10.0)),
            Fault::RedisCut(s(5.0)),
            Fault::PostgresCut(s(20.0)),
            Fault::PersisterKills {
                times: 3,
                gap: s(4.0),
            },
            Fault::ServeKill,
            Fault::RedisRestart,
            Fault::BrokerRestart,
        ]
    }

    pub fn stack_options(&self) -> StackOptions {
        StackOptions {
            serves: if matches!(self, Fault::ServeKill) {
                2
            } else {
                1
            },
            own_rabbit: matches!(self, Fault::BrokerRestart),
            ..StackOptions::default()
        }
    }

    /// How long the fault lasts (for placing it in the middle).
    fn span(&self) -> Duration {
        match self {
            Fault::BrokerCut(d) | Fault::RedisCut(d) | Fault::PostgresCut(d) => *d,
            Fault::PersisterKills { times, gap } => *gap * times.saturating_sub(1),
            _ => Duration::ZERO,
        }
    }

    /// Injects the fault; returns when it is over (the service back, the last kill done).
    pub async fn inject(&self, stack: &mut Stack) {
        match *self {
            Fault::BrokerCut(d) => {
                stack.amqp_proxy.cut();
                tokio::time::sleep(d).await;
                stack.amqp_proxy.restore();
            }
            Fault::RedisCut(d) => {
                stack.redis_proxy.cut();
                tokio::time::sleep(d).await;
                stack.redis_proxy.restore();
            }
            Fault::PostgresCut(d) => {
                stack.pg_proxy.cut();
                tokio::time::sleep(d).await;
                stack.pg_proxy.restore();
            }
            Fault::PersisterKills { times, gap } => {
                for k in 0..times {
                    if k > 0 {
                        tokio::time::sleep(gap).await;
                    }
                    // Mid-batch: only once it has stored something since it started.
                    let before = stack.count_tickets().await;
                    let start = Instant::now();
                    while stack.count_tickets().await == before
                        && start.elapsed() < Duration::from_secs(10)
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    stack.kill_persister(0);
                    stack.restart_persister(0);
                }
            }
            Fault::ServeKill => stack.kill_serve(1),
            Fault::RedisRestart => stack.redis.kill_and_restart().await,
            Fault::BrokerRestart => {
                if let Some(r) = stack.rabbit.as_mut() {
                    r.kill_and_restart().await;
                }
            }
        }
    }
}

/// What one scenario saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub name: String,
    pub rate: u64,
    pub seconds: u64,
    pub offered: u64,
    pub accepted: u64,
    pub unavailable: u64,
    /// Any other status, and requests with no answer.
    pub other: u64,
    /// People asked again after a 503, 429, 409 `request_in_progress` or no answer.
    pub retried: u64,
    /// Of them, answered 202 in the end.
    pub retried_accepted: u64,
    /// 202s (first answers and retries) whose ticket is not in PostgreSQL.
    pub lost: usize,
    /// People with two registered tickets.
    pub duplicates: i64,
    /// 202s stored as `rejected`.
    pub rejected: usize,
    /// Seconds from the fault's end until 202s come back at ≥ 90% of the offered rate for
    /// three seconds in a row (by the time the answers came); `None`: not within the run.
    pub recovery_secs: Option<f64>,
    /// 202s per second in the ten seconds before the fault (below `rate` when the machine
    /// does not hold the offered rate even without a fault).
    pub held_before: u64,
    /// Seconds from the fault's end until 202s come back at ≥ 90% of `held_before` for three
    /// seconds in a row.
    pub recovery_to_before_secs: Option<f64>,
    /// When the fault started and ended, seconds into the load.
    pub fault_at: (f64, f64),
    /// 202 latency from the due time: p50, p99, max (ms).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// 202s/503s finished per second around the fault ([`timeline`]).
    pub timeline: String,
}

impl Outcome {
    pub fn header() -> String {
        "| scenario | offered | 202 | 503 | other | retried → 202 | lost | duplicates | 202 stored rejected | fault (s into load) | back at full rate after | 202/s before the fault | back at that rate after | 202 p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            .to_string()
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} → {} | {} | {} | {} | {:.1}–{:.1} | {} | {} | {} | {:.0} ms |",
            self.name,
            self.offered,
            self.accepted,
            self.unavailable,
            self.other,
            self.retried,
            self.retried_accepted,
            self.lost,
            self.duplicates,
            self.rejected,
            self.fault_at.0,
            self.fault_at.1,
            self.recovery_secs
                .map_or_else(|| "not within the run".into(), |s| format!("{s:.1} s")),
            self.held_before,
            self.recovery_to_before_secs
                .map_or_else(|| "not within the run".into(), |s| format!("{s:.1} s")),
            self.p99_ms,
        )
    }
}

/// Whether person `i`'s answer was not final: they would try again.
fn retryable(status: u16, body_in_progress: bool) -> bool {
    status == 0 || status == 429 || status >= 500 || (status == 409 && body_in_progress)
}

/// How many answers with `status` finished in each second of the run.
fn finished_per_second(run: &LoadRun, status: u16) -> Vec<u64> {
    let seconds = (run.elapsed.as_secs_f64()).floor() as usize;
    let mut per_second = vec![0u64; seconds + 2];
    for (i, &st) in run.status_of.iter().enumerate() {
        if st == status {
            let s = run.finish_ms[i] as usize / 1000;
            if s < per_second.len() {
                per_second[s] += 1;
            }
        }
    }
    per_second
}

/// 202s and 503s finished per second from two seconds before the fault until twelve after
/// its end (`TIMELINE=all`: the whole run): where the time to full rate goes.
pub fn timeline(run: &LoadRun, fault_at: (f64, f64)) -> String {
    let (ok, shed) = (finished_per_second(run, 202), finished_per_second(run, 503));
    // `TIMELINE=all`: the whole run.
    let all = std::env::var("TIMELINE").is_ok_and(|v| v == "all");
    let from = if all {
        0
    } else {
        (fault_at.0.floor() as usize).saturating_sub(2)
    };
    let to = if all {
        ok.len()
    } else {
        (fault_at.1.ceil() as usize + 12).min(ok.len())
    };
    (from..to)
        .map(|s| format!("{s}s {}/{}", ok[s], shed[s]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds from `end` (into the run) until 202s finish at ≥ 90% of `rate` for three whole
/// seconds in a row.
pub fn recovery(run: &LoadRun, rate: u64, end: f64) -> Option<f64> {
    recovery_to(run, rate, rate, end)
}

/// 202s finished per second over the ten seconds before `start` (the rate the deployment
/// held before the fault, which on a saturated machine is below the offered rate).
pub fn rate_before(run: &LoadRun, start: f64) -> u64 {
    let per_second = finished_per_second(run, 202);
    let to = (start.floor() as usize).min(per_second.len());
    let from = to.saturating_sub(10).max(2);
    if to <= from {
        return 0;
    }
    per_second[from..to].iter().sum::<u64>() / (to - from) as u64
}

/// [`recovery`] against the rate held before the fault instead of the offered one.
pub fn recovery_to_before(run: &LoadRun, offered: u64, fault_at: (f64, f64)) -> Option<f64> {
    recovery_to(run, rate_before(run, fault_at.0), offered, fault_at.1)
}

/// Seconds from `end` until 202s finish at ≥ 90% of `target` per second for three seconds in
/// a row, within the seconds that had arrivals at `offered` per second.
fn recovery_to(run: &LoadRun, target: u64, offered: u64, end: f64) -> Option<f64> {
    let per_second = finished_per_second(run, 202);
    let full = (target as f64 * 0.9).ceil() as u64;
    let last_full = ((run.offered / offered.max(1)) as usize).min(per_second.len()); // seconds with arrivals
    let first = end.floor() as usize;
    (first..last_full.saturating_sub(2))
        .find(|&s| (s..s + 3).all(|k| per_second[k] >= full))
        .map(|s| (s as f64 - end).max(0.0))
}

/// The generator's connections for `rate`: enough for a second of stalled requests.
pub fn connections_for(rate: u64) -> usize {
    (rate as usize).clamp(64, 2048)
}

/// Runs one scenario: a stack for it, `rate` reservations/s of new people for `seconds` with
/// the fault in the middle, the retries, the checks; the stack is torn down.
pub async fn run_scenario(fault: Fault, rate: u64, seconds: u64) -> Outcome {
    let mut stack = Stack::start(fault.stack_options()).await;
    let out = scenario_on(&mut stack, fault, rate, seconds, 0).await;
    stack.teardown().await;
    out
}

/// [`run_scenario`] on a running stack, for people `first..`; the fault starts at the middle
/// of the load less half its span.
pub async fn scenario_on(
    stack: &mut Stack,
    fault: Fault,
    rate: u64,
    seconds: u64,
    first: u64,
) -> Outcome {
    let total = rate * seconds;
    let addrs = stack.addrs();
    let fault_start = (seconds as f64 / 2.0 - fault.span().as_secs_f64() / 2.0).max(0.5);
    let t0 = Instant::now();
    let load = offer(&addrs, rate, |i| first + i, total);
    let inject = async {
        tokio::time::sleep(Duration::from_secs_f64(fault_start)).await;
        let begun = t0.elapsed().as_secs_f64();
        fault.inject(stack).await;
        (begun, t0.elapsed().as_secs_f64())
    };
    let (run, fault_at) = tokio::join!(load, inject);
    let fault_end = fault_at.1;

    let mut out = Outcome {
        name: fault.name(),
        rate,
        seconds,
        offered: run.offered,
        accepted: run.count(&[202]),
        unavailable: run.count(&[503]),
        fault_at,
        recovery_secs: recovery(&run, rate, fault_end),
        held_before: rate_before(&run, fault_at.0),
        recovery_to_before_secs: recovery_to_before(&run, rate, fault_at),
        timeline: timeline(&run, fault_at),
        ..Outcome::default()
    };
    out.other = run.offered - out.accepted - out.unavailable;
    out.p50_ms = run.ms(0.5);
    out.p99_ms = run.ms(0.99);
    out.max_ms = run.ms(1.0);
    let check = retry_and_check(stack, &run, rate, first).await;
    out.retried = check.retried;
    out.retried_accepted = check.retried_accepted;
    out.lost = check.lost;
    out.duplicates = check.duplicates;
    out.rejected = check.rejected;
    out
}

/// What [`retry_and_check`] found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Check {
    pub retried: u64,
    pub retried_accepted: u64,
    pub accepted_total: u64,
    pub lost: usize,
    pub duplicates: i64,
    /// 202s stored as `rejected` (the database refused a second active ticket of the person).
    pub rejected: usize,
}

/// What to keep from an answer: the ticket of a 202, a marker for 409 `request_in_progress`.
fn keep_answer(status: u16, body: &[u8]) -> Option<String> {
    match status {
        202 => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["ticket_id"].as_str().map(str::to_string)),
        409 if body.windows(19).any(|w| w == b"request_in_progress") => Some("in_progress".into()),
        _ => None,
    }
}

/// The tickets of a run's 202s, and the request indexes whose answer was not final.
fn tickets_and_pending(run: &LoadRun) -> (Vec<String>, Vec<u64>) {
    let mut tickets = Vec::new();
    let mut in_progress = std::collections::HashSet::new();
    for (k, i) in run.kept.iter().zip(&run.kept_index) {
        if k == "in_progress" {
            in_progress.insert(*i);
        } else {
            tickets.push(k.clone());
        }
    }
    let pending = run
        .status_of
        .iter()
        .enumerate()
        .filter(|(i, &st)| retryable(st, in_progress.contains(&(*i as u64))))
        .map(|(i, _)| i as u64)
        .collect();
    (tickets, pending)
}

/// Offers people `first + i` (their own reservation each) at `rate`.
pub async fn offer(
    addrs: &[SocketAddr],
    rate: u64,
    people: impl Fn(u64) -> u64,
    total: u64,
) -> LoadRun {
    let pharmacies = pharmacies();
    let host = addrs[0];
    load::open_model_on(
        addrs,
        connections_for(rate),
        total,
        rate,
        |i| {
            load::post_json(
                host,
                "/api/v1/reservations",
                &reservation_body(people(i), &pharmacies),
            )
        },
        &[202, 409],
        keep_answer,
    )
    .await
}

/// After a run of people `first..`: asks again every person whose answer was not final (503,
/// 429, 409 `request_in_progress`, no answer) until each has one, for at most a minute (a
/// request that died with its server holds the person's lock for 30 s); then waits for
/// PostgreSQL and checks every 202 ticket by ticket, and that no person holds two tickets.
pub async fn retry_and_check(stack: &Stack, run: &LoadRun, rate: u64, first: u64) -> Check {
    let (mut tickets, mut pending) = tickets_and_pending(run);
    let mut check = Check {
        retried: pending.len() as u64,
        ..Check::default()
    };
    let retry_start = Instant::now();
    let addrs = stack.addrs();
    while !pending.is_empty() && retry_start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let people = pending.clone();
        let again = offer(
            &addrs,
            rate,
            |j| first + people[j as usize],
            people.len() as u64,
        )
        .await;
        let (more, still) = tickets_and_pending(&again);
        check.retried_accepted += more.len() as u64;
        tickets.extend(more);
        pending = still.into_iter().map(|j| people[j as usize]).collect();
    }
    check.accepted_total = tickets.len() as u64;
    // Long enough for a PostgreSQL outage's backlog; quiet long enough for a late duplicate.
    check.lost = stack
        .settle(&tickets, Duration::from_secs(3), Duration::from_secs(180))
        .await;
    check.duplicates = stack.duplicates().await;
    check.rejected = stack.rejected(&tickets).await;
    check
}

/// Resident memory (KiB) and open descriptors of a process, from /proc.
pub fn rss_and_fds(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// The resident memory and descriptors of a process tree's root and children summed (an
/// Erlang VM runs under its start script), by name.
pub fn sample(processes: &[(String, u32)]) -> HashMap<String, (u64, u64)> {
    let mut out = HashMap::new();
    for (name, pid) in processes {
        let mut total = (0, 0);
        for p in std::iter::once(*pid).chain(children(*pid)) {
            if let Some((rss, fds)) = rss_and_fds(p) {
                total.0 += rss;
                total.1 += fds;
            }
        }
        out.insert(name.clone(), total);
    }
    out
}

/// Every descendant of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let path = format!("/proc/{p}/task/{p}/children");
        if let Ok(s) = std::fs::read_to_string(path) {
            for c in s.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                stack.push(c);
            }
        }
    }
    out
}
