//! Redis: one active ticket per person (Lua, atomic), idempotency keys, cooldowns, the ticket
//! status hash and the fallback stream.
//!
//! Every key a person owns carries the person tag as a hash tag (`md:{tag}:active`), every key a
//! ticket owns carries the ticket id (`md:{ticket}:t`), so one Lua script only ever touches keys
//! of one slot and Redis Cluster works.

use deadpool_redis::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use deadpool_redis::redis::{self, AsyncCommands, Script};
use deadpool_redis::Pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis pool")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis command")]
    Redis(#[from] redis::RedisError),
    #[error("redis script answered {0:?}")]
    Script(Vec<String>),
    #[error("redis would not keep a fallback entry: {0}")]
    NotDurable(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// What the reserve script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// The lock is ours, for the new ticket: publish the reservation.
    Granted,
    /// The person's ticket `ticket` is in doubt (its last attempt failed, or the request that
    /// made it died): the lock is ours now, and `event` is that ticket's reservation, to be
    /// published again. Publishing twice is harmless (the persister stores a ticket once); a
    /// new ticket would be refused by the database if the first one arrived after all.
    Resend { ticket: String, event: Vec<u8> },
    /// This idempotency key already made `ticket`, which is durable: answer as before.
    Replay { ticket: String },
    /// Another request is publishing the person's ticket right now.
    InProgress,
    /// The person holds another active ticket.
    Active { ticket: String },
    /// The person won recently and may enter again after this date.
    CoolingDown { until: String },
}

/// The lock value is `ticket|p|since` while a request is publishing the ticket, `ticket|f|since`
/// when its last attempt failed (the person was told 503: the message may or may not have
/// reached the broker), and `ticket|d` once it is durable. The reservation itself waits in
/// `KEYS[4]` until it is durable, so that whoever takes a `f` lock, or a `p` lock older than
/// `ARGV[4]` seconds (its request died), publishes that same ticket again instead of a new one:
/// a person whose first attempt ended in doubt ends with that one ticket. Time is Redis's own
/// (`TIME`), so servers with different clocks agree on what is stale.
const RESERVE_LUA: &str = r#"
local function parse(v)
  local t, st, ts = string.match(v, "^([^|]+)|(%a)|?(%d*)$")
  return t, st, tonumber(ts)
end
local now = tonumber(redis.call('TIME')[1])
local stale = tonumber(ARGV[4])
-- The lock of ticket `t` in state `st` since `ts`: resend it, or say it is busy.
local function take_over(t, st, ts)
  if st == 'p' and ts and now - ts <= stale then return {'busy'} end
  local event = redis.call('GET', KEYS[4])
  if not event then return nil end
  redis.call('SET', KEYS[1], t .. '|p|' .. now, 'KEEPTTL')
  if ARGV[5] == '1' then redis.call('SET', KEYS[3], t, 'EX', ARGV[3]) end
  return {'resend', t, event}
end
if ARGV[5] == '1' then
  local t = redis.call('GET', KEYS[3])
  if t then
    local a = redis.call('GET', KEYS[1])
    if a then
      local at, ast, ats = parse(a)
      if at == t and ast ~= 'd' then
        local r = take_over(at, ast, ats)
        if r then return r end
      end
    end
    -- Durable (and perhaps settled since): the same answer as the first time.
    return {'replay', t}
  end
end
local c = redis.call('GET', KEYS[2])
if c then
  -- `until|visible_from`: before the results are published a winner is told only that they
  -- hold a reservation, as a loser would be; the cooldown shows from publication on.
  local u, vis = string.match(c, "^([^|]*)|?(%d*)$")
  if vis and vis ~= '' and now < tonumber(vis) then return {'active', ''} end
  return {'cooling', u or c}
end
local a = redis.call('GET', KEYS[1])
if a then
  local at, ast, ats = parse(a)
  if ast == 'd' then return {'active', at} end
  local r = take_over(at, ast, ats)
  if r then return r end
  -- A lock in doubt without its reservation (written before reservations were kept with
  -- their lock): nothing to resend, so the new ticket takes its place.
end
redis.call('SET', KEYS[1], ARGV[1] .. '|p|' .. now, 'EX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[6], 'EX', ARGV[2])
if ARGV[5] == '1' then redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3]) end
return {'granted'}
"#;

/// Marks the person's lock durable, keeping its time to live, and drops the kept reservation.
const CONFIRM_LUA: &str = r#"
local a = redis.call('GET', KEYS[1])
if a and string.sub(a, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
  redis.call('SET', KEYS[1], ARGV[1] .. '|d', 'KEEPTTL')
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"#;

/// After an attempt to make a ticket durable failed: the lock (if it still names the ticket
/// and is not durable) is in doubt, so the person's next request publishes the ticket again.
const FAIL_LUA: &str = r#"
local a = redis.call('GET', KEYS[1])
if a and string.sub(a, 1, #ARGV[1] + 3) == ARGV[1] .. '|p|' then
  redis.call('SET', KEYS[1], ARGV[1] .. '|f|' .. redis.call('TIME')[1], 'KEEPTTL')
  return 1
end
return 0
"#;

/// Drops the person's lock and idempotency key if they still name this ticket.
const RELEASE_LUA: &str = r#"
local a = redis.call('GET', KEYS[1])
if a and string.sub(a, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"#;

/// After a draw or an expiry: frees the person's lock if it still names this ticket, and
/// starts a cooldown when one is given.
const SETTLE_LUA: &str = r#"
local a = redis.call('GET', KEYS[1])
if a and string.sub(a, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return 1
"#;

/// What a draw or an expiry does to one person and ticket in Redis.
#[derive(Debug, Clone)]
pub struct Settle {
    pub person_tag: String,
    pub ticket: String,
    /// New status of the ticket (`won`, `expired`).
    pub status: &'static str,
    /// (`until|visible_from_unix`, seconds to keep it) for a winner's cooldown: `until` is the
    /// date shown to the person, from `visible_from` (the draw's publication) on.
    pub cooldown: Option<(String, u64)>,
    /// (`draw:<date>`, outcome) recorded on the ticket.
    pub draw_field: Option<(String, String)>,
}

/// The Redis side of maskdraw, bound to one key prefix.
///
/// The intake's per-request commands (reserve, confirm, release, statuses) share a
/// multiplexed connection (one per copy made by [`RedisStore::with_own_connection`], one per
/// HTTP worker): concurrent requests are pipelined on it, and nothing is checked out of a pool. (A deadpool checkout pings the connection first: one more round trip per
/// command.) Bulk and occasional work (the draw's settlement, the fallback stream, cleanup)
/// uses the pool.
#[derive(Clone)]
pub struct RedisStore {
    backend: Backend,
    prefix: String,
    /// Bound on each command (and on connecting): a stalled Redis gives an error, never a hang.
    timeout: std::time::Duration,
    reserve: Script,
    release: Script,
    fail: Script,
    settle: Script,
}

/// Ticket fields kept in the status hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketStatus {
    pub status: String,
    pub pharmacy_id: String,
    pub product_id: String,
    pub flexible: bool,
    pub accepted_at: String,
    pub valid_until: String,
    /// (`YYYY-MM-DD`, outcome) of each draw recorded on the ticket: `lost`, or
    /// `won|pharmacy|product|pickup code|roll`.
    pub draws: Vec<(String, String)>,
}

impl TicketStatus {
    /// A ticket's status hash from an `HGETALL` reply; `None` when the hash does not exist.
    /// Fields not named here are ignored; a value that is not a string reads as empty.
    fn from_hash_reply(reply: redis::Value) -> Option<Self> {
        let items = match reply {
            redis::Value::Array(items) => items,
            redis::Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => return None,
        };
        if items.is_empty() {
            return None;
        }
        let text = |v: redis::Value| match v {
            redis::Value::BulkString(b) => String::from_utf8(b).unwrap_or_default(),
            redis::Value::SimpleString(s) => s,
            _ => String::new(),
        };
        let mut st = Self {
            status: String::new(),
            pharmacy_id: String::new(),
            product_id: String::new(),
            flexible: false,
            accepted_at: String::new(),
            valid_until: String::new(),
            draws: Vec::new(),
        };
        let mut it = items.into_iter();
        while let (Some(field), Some(value)) = (it.next(), it.next()) {
            let field = text(field);
            match field.as_str() {
                "status" => st.status = text(value),
                "pharmacy_id" => st.pharmacy_id = text(value),
                "product_id" => st.product_id = text(value),
                "flexible" => st.flexible = text(value) == "1",
                "accepted_at" => st.accepted_at = text(value),
                "valid_until" => st.valid_until = text(value),
                f => {
                    if let Some(date) = f.strip_prefix("draw:") {
                        st.draws.push((date.to_string(), text(value)));
                    }
                }
            }
        }
        st.draws.sort();
        Some(st)
    }
}

/// One chunk of what `cache warm` writes (see [`RedisStore::write_warm`]).
#[derive(Debug, Default, Clone)]
pub struct Warm {
    /// (ticket, status, seconds to keep it)
    pub statuses: Vec<(String, TicketStatus, u64)>,
    /// (ticket, `draw:<date>`, outcome as the draw writes it)
    pub outcomes: Vec<(String, String, String)>,
    /// (person tag, active ticket, seconds)
    pub locks: Vec<(String, String, u64)>,
    /// (person tag, `until|visible_from`, seconds)
    pub cooldowns: Vec<(String, String, u64)>,
}

impl Warm {
    pub fn len(&self) -> usize {
        self.statuses.len() + self.outcomes.len() + self.locks.len() + self.cooldowns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One Redis server, or a Redis Cluster.
#[derive(Clone)]
enum Backend {
    /// A pool for bulk and occasional work, and one multiplexed connection per copy of the
    /// store for the intake's commands.
    Single {
        pool: Pool,
        client: redis::Client,
        hot: std::sync::Arc<Hot>,
    },
    /// The cluster client's connection: multiplexed, one connection per node, following
    /// `MOVED`/`ASK` and refreshing its slot map after a failover. It is shared by every copy
    /// of the store: a pool of such connections would only add connections to every node.
    Cluster {
        client: redis::cluster::ClusterClient,
        conn: std::sync::Arc<tokio::sync::OnceCell<redis::cluster_async::ClusterConnection>>,
    },
}

/// A connection to one Redis server or to a cluster; commands and pipelines run on it alike
/// (a pipeline must then stay within one hash slot: see [`Pipes`]).
pub enum Conn {
    Pooled(deadpool_redis::Connection),
    /// The intake's multiplexed connection ([`Hot`]), with the bound on each command; a
    /// command that finds the connection broken has it dropped, so the next one reconnects.
    Hot(
        redis::aio::MultiplexedConnection,
        u64,
        std::sync::Arc<Hot>,
        std::time::Duration,
    ),
    /// With the bound on each command: the cluster client's own response timeout is per
    /// attempt, and it retries while the cluster is down.
    Cluster(redis::cluster_async::ClusterConnection, std::time::Duration),
}

/// How often the intake's connection may try to reconnect while Redis is unreachable: a
/// command that finds a reconnection tried less than this long ago fails at once (503), so a
/// cut costs fast refusals, and the connection is back within this long of Redis being back.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The intake's shared multiplexed connection, reconnected by us rather than by redis-rs'
/// `ConnectionManager`: its backoff (a first delay fixed at 1 s in 0.27, then further retries,
/// then a new cycle only when a later command fails) kept a worker's connection down for
/// seconds after Redis was back, each worker on its own schedule. Here a broken connection is
/// dropped by the command that finds it broken (an I/O error that needs a reconnection, not a
/// timeout: a slow Redis keeps its connection), and the next command reconnects, at most one at
/// a time and at most once per [`RECONNECT_EVERY`].
#[derive(Default)]
pub struct Hot {
    current: std::sync::RwLock<Option<(u64, redis::aio::MultiplexedConnection)>>,
    /// Single flight for reconnecting: the generation and the last attempt's start.
    connecting: tokio::sync::Mutex<(u64, Option<std::time::Instant>)>,
}

impl Hot {
    fn current(&self) -> Option<(u64, redis::aio::MultiplexedConnection)> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, value: Option<(u64, redis::aio::MultiplexedConnection)>) {
        match self.current.write() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }

    /// Forgets generation `generation` if it is still the current connection.
    fn drop_broken(&self, generation: u64) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if g.as_ref().is_some_and(|(n, _)| *n == generation) {
            *g = None;
        }
    }

    /// The connection, reconnecting if there is none (bounded by `timeout`).
    async fn get(
        &self,
        client: &redis::Client,
        timeout: std::time::Duration,
    ) -> Result<(u64, redis::aio::MultiplexedConnection), StoreError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let mut connecting = tokio::time::timeout(timeout, self.connecting.lock())
            .await
            .map_err(|_| StoreError::Timeout(timeout))?;
        // Another command may have reconnected while this one waited.
        if let Some(c) = self.current() {
            return Ok(c);
        }
        if connecting.1.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
            return Err(StoreError::Redis(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "redis is unreachable",
                "reconnecting".to_string(),
            ))));
        }
        connecting.1 = Some(std::time::Instant::now());
        let config = redis::AsyncConnectionConfig::new().set_connection_timeout(timeout);
        let conn = tokio::time::timeout(
            timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| StoreError::Timeout(timeout))??;
        connecting.0 += 1;
        let c = (connecting.0, conn);
        self.set(Some(c.clone()));
        Ok(c)
    }
}

/// `fut` on the hot connection, bounded; a broken connection is dropped for the next command
/// to replace.
fn on_hot<'a, T: Send + 'a>(
    hot: &std::sync::Arc<Hot>,
    generation: u64,
    timeout: std::time::Duration,
    fut: redis::RedisFuture<'a, T>,
) -> redis::RedisFuture<'a, T> {
    let hot = hot.clone();
    Box::pin(async move {
        let r = bounded(timeout, fut).await;
        if let Err(e) = &r {
            if e.is_unrecoverable_error() || e.is_connection_dropped() {
                hot.drop_broken(generation);
            }
        }
        r
    })
}

/// `fut`, or an error after `timeout`.
fn bounded<'a, T: Send + 'a>(
    timeout: std::time::Duration,
    fut: redis::RedisFuture<'a, T>,
) -> redis::RedisFuture<'a, T> {
    Box::pin(async move {
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| timed_out(timeout))?
    })
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Pooled(c) => c.req_packed_command(cmd),
            Self::Hot(c, n, hot, t) => on_hot(hot, *n, *t, c.req_packed_command(cmd)),
            Self::Cluster(c, t) => bounded(*t, c.req_packed_command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Pooled(c) => c.req_packed_commands(cmd, offset, count),
            Self::Hot(c, n, hot, t) => {
                on_hot(hot, *n, *t, c.req_packed_commands(cmd, offset, count))
            }
            Self::Cluster(c, t) => bounded(*t, c.req_packed_commands(cmd, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Pooled(c) => c.get_db(),
            Self::Hot(c, ..) => c.get_db(),
            Self::Cluster(c, _) => c.get_db(),
        }
    }
}

/// Commands grouped so that each group can go to one node as one pipeline: everything in one
/// pipeline on a single Redis, one pipeline per hash slot on a cluster (a pipeline is sent to
/// the node of its first key, and a key of another node would be answered `MOVED`).
pub struct Pipes {
    cluster: bool,
    groups: std::collections::BTreeMap<u16, redis::Pipeline>,
}

/// Pipelines of one slot sent at once on a cluster connection.
const CLUSTER_PIPELINES_IN_FLIGHT: usize = 64;

impl Pipes {
    /// The pipeline that commands on `key` go into.
    pub fn on(&mut self, key: &str) -> &mut redis::Pipeline {
        let slot = if self.cluster {
            redis::cluster_routing::get_slot(key.as_bytes())
        } else {
            0
        };
        self.groups.entry(slot).or_insert_with(redis::pipe)
    }

    /// Sends every pipeline (concurrently on a cluster), all within `timeout`.
    ///
    /// # Errors
    /// The first error of any pipeline, or a timeout.
    pub async fn run(
        self,
        conn: &mut Conn,
        timeout: std::time::Duration,
    ) -> Result<(), StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        let work = async {
            if let Conn::Cluster(c, t) = conn {
                futures_util::stream::iter(self.groups.into_values())
                    .map(|p| {
                        let mut c = Conn::Cluster(c.clone(), *t);
                        async move { p.query_async::<()>(&mut c).await }
                    })
                    .buffer_unordered(CLUSTER_PIPELINES_IN_FLIGHT)
                    .try_collect::<Vec<()>>()
                    .await?;
            } else {
                for p in self.groups.into_values() {
                    p.query_async::<()>(conn).await?;
                }
            }
            Ok::<(), StoreError>(())
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| StoreError::Timeout(timeout))?
    }
}

/// A connection with a bound on every command.
pub struct Timed {
    conn: Conn,
    timeout: std::time::Duration,
}

impl Timed {
    /// Sends `pipes`, all within this connection's bound.
    ///
    /// # Errors
    /// See [`Pipes::run`].
    pub async fn run(&mut self, pipes: Pipes) -> Result<(), StoreError> {
        pipes.run(&mut self.conn, self.timeout).await
    }
}

impl redis::aio::ConnectionLike for Timed {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let timeout = self.timeout;
        let fut = self.conn.req_packed_command(cmd);
        Box::pin(async move {
            tokio::time::timeout(timeout, fut)
                .await
                .map_err(|_| timed_out(timeout))?
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        let timeout = self.timeout;
        let fut = self.conn.req_packed_commands(cmd, offset, count);
        Box::pin(async move {
            tokio::time::timeout(timeout, fut)
                .await
                .map_err(|_| timed_out(timeout))?
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

fn timed_out(after: std::time::Duration) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::IoError,
        "redis did not answer in time",
        format!("after {after:?}"),
    ))
}

/// How [`RedisStore::connect`] is told that its URLs are a cluster's nodes.
pub const CLUSTER_SCHEME: &str = "cluster:";

/// Seconds after which a lock whose request is still publishing is considered abandoned (its
/// request died): far longer than a publish with its confirm timeout and the fallback take.
const STALE_PENDING_SECS: u64 = 30;
/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;
/// How long a 202's signed receipt is kept for a retry: as long as the idempotency key that
/// such a retry carries (the ~900 bytes per ticket would otherwise stay for the ticket's
/// validity and 30 days, most of Redis's memory at a city's intake).
pub const RECEIPT_TTL_SECS: u64 = IDEMPOTENCY_TTL_SECS;

impl RedisStore {
    /// A store whose commands each wait at most a second.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, deadpool_redis::CreatePoolError> {
        Self::connect_with_timeout(url, prefix, std::time::Duration::from_secs(1))
    }

    /// `url` is one server's URL, or `cluster:` followed by a comma-separated list of a Redis
    /// Cluster's node URLs (any of its nodes: the client learns the rest); see
    /// [`crate::config::Settings::redis_endpoint`].
    ///
    /// # Errors
    /// When a URL does not parse.
    pub fn connect_with_timeout(
        url: &str,
        prefix: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, deadpool_redis::CreatePoolError> {
        let config_error = |e: redis::RedisError| {
            deadpool_redis::CreatePoolError::Config(deadpool_redis::ConfigError::Redis(e))
        };
        let backend = if let Some(nodes) = url.strip_prefix(CLUSTER_SCHEME) {
            let nodes: Vec<&str> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            let client = redis::cluster::ClusterClient::builder(nodes)
                .retries(3)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()
                .map_err(config_error)?;
            Backend::Cluster {
                client,
                conn: std::sync::Arc::default(),
            }
        } else {
            let mut cfg = deadpool_redis::Config::from_url(url);
            let mut pool = deadpool_redis::PoolConfig::new(64);
            pool.timeouts = deadpool_redis::Timeouts {
                wait: Some(timeout),
                create: Some(timeout),
                recycle: Some(timeout),
            };
            cfg.pool = Some(pool);
            let pool = cfg.create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
            let client = redis::Client::open(url).map_err(config_error)?;
            Backend::Single {
                pool,
                client,
                hot: std::sync::Arc::default(),
            }
        };
        Ok(Self {
            backend,
            prefix: prefix.to_string(),
            timeout,
            reserve: Script::new(RESERVE_LUA),
            release: Script::new(RELEASE_LUA),
            fail: Script::new(FAIL_LUA),
            settle: Script::new(SETTLE_LUA),
        })
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster { .. })
    }

    /// An empty set of pipelines for this store's Redis.
    pub fn pipes(&self) -> Pipes {
        Pipes {
            cluster: self.is_cluster(),
            groups: std::collections::BTreeMap::new(),
        }
    }

    /// A connection whose commands each wait at most this store's bound (tests, tools and
    /// occasional work; the intake uses its own multiplexed connection).
    ///
    /// # Errors
    /// When no connection can be had within the bound.
    pub async fn connection(&self) -> Result<Timed, StoreError> {
        self.pooled(self.timeout).await
    }

    /// The same store with a multiplexed connection of its own, opened (and its driver task
    /// spawned) by the first command, on the thread and runtime that sends it. (A cluster
    /// connection is shared: it already keeps one multiplexed connection per node.)
    #[must_use]
    pub fn with_own_connection(&self) -> Self {
        let backend = match &self.backend {
            Backend::Single { pool, client, .. } => Backend::Single {
                pool: pool.clone(),
                client: client.clone(),
                hot: std::sync::Arc::default(),
            },
            cluster @ Backend::Cluster { .. } => cluster.clone(),
        };
        Self {
            backend,
            ..self.clone()
        }
    }

    /// The cluster connection, opened on first use.
    async fn cluster(
        &self,
        client: &redis::cluster::ClusterClient,
        conn: &tokio::sync::OnceCell<redis::cluster_async::ClusterConnection>,
    ) -> Result<redis::cluster_async::ClusterConnection, StoreError> {
        Ok(conn
            .get_or_try_init(|| async {
                tokio::time::timeout(self.timeout, client.get_async_connection())
                    .await
                    .map_err(|_| StoreError::Timeout(self.timeout))?
                    .map_err(StoreError::from)
            })
            .await?
            .clone())
    }

    /// The shared multiplexed connection, opened on first use and reopened by [`Hot`] when a
    /// command found it broken; each command on it waits at most `timeout`.
    async fn hot(&self) -> Result<Conn, StoreError> {
        let (client, hot) = match &self.backend {
            Backend::Single { client, hot, .. } => (client, hot),
            Backend::Cluster { client, conn } => {
                return Ok(Conn::Cluster(
                    self.cluster(client, conn).await?,
                    self.timeout,
                ))
            }
        };
        let (generation, conn) = hot.get(client, self.timeout).await?;
        Ok(Conn::Hot(conn, generation, hot.clone(), self.timeout))
    }

    /// A pooled connection (the cluster's shared one on a cluster) whose commands each wait
    /// at most `timeout` (deadpool's connections have no response timeout of their own).
    async fn pooled(&self, timeout: std::time::Duration) -> Result<Timed, StoreError> {
        let conn = match &self.backend {
            Backend::Single { pool, .. } => Conn::Pooled(pool.get().await?),
            Backend::Cluster { client, conn } => {
                Conn::Cluster(self.cluster(client, conn).await?, timeout)
            }
        };
        Ok(Timed { conn, timeout })
    }

    /// Bulk pipelines (the draw's settlement, `cache warm`) are long; each still has a bound.
    fn bulk_timeout(&self) -> std::time::Duration {
        (self.timeout * 30).max(std::time::Duration::from_secs(30))
    }

    fn active_key(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:active", self.prefix)
    }
    fn cooldown_key(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:cool", self.prefix)
    }
    fn pending_key(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:pending", self.prefix)
    }
    fn idem_key(&self, tag: &str, key: Option<&str>) -> String {
        format!("{}:{{{tag}}}:idem:{}", self.prefix, key.unwrap_or("-"))
    }
    pub fn ticket_key(&self, ticket: &str) -> String {
        format!("{}:{{{ticket}}}:t", self.prefix)
    }
    fn receipt_key(&self, ticket: &str) -> String {
        format!("{}:{{{ticket}}}:r", self.prefix)
    }
    pub fn fallback_stream(&self) -> String {
        format!("{}:fallback", self.prefix)
    }

    /// Takes the person's lock for `ticket` (whose reservation is `event`, kept with the lock
    /// until it is durable) unless they hold one, are cooling down, this idempotency key
    /// already made a ticket, or a ticket of theirs is in doubt (see [`Reserve`]).
    ///
    /// # Errors
    /// When Redis cannot be reached or the script answers something unknown.
    pub async fn reserve(
        &self,
        tag: &str,
        ticket: &str,
        event: &[u8],
        lock_ttl_secs: u64,
        idempotency_key: Option<&str>,
    ) -> Result<Reserve, StoreError> {
        let mut conn = self.hot().await?;
        let answer: Vec<redis::Value> = self
            .reserve
            .key(self.active_key(tag))
            .key(self.cooldown_key(tag))
            .key(self.idem_key(tag, idempotency_key))
            .key(self.pending_key(tag))
            .arg(ticket)
            .arg(lock_ttl_secs.max(1))
            .arg(IDEMPOTENCY_TTL_SECS)
            .arg(STALE_PENDING_SECS)
            .arg(if idempotency_key.is_some() { "1" } else { "0" })
            .arg(event)
            .invoke_async(&mut conn)
            .await?;
        let text = |v: &redis::Value| redis::from_redis_value::<String>(v).ok();
        let words: Vec<String> = answer.iter().take(2).filter_map(text).collect();
        let decided = match (words.first().map(String::as_str), words.get(1)) {
            (Some("granted"), _) => Some(Reserve::Granted),
            (Some("busy"), _) => Some(Reserve::InProgress),
            (Some("replay"), Some(t)) => Some(Reserve::Replay { ticket: t.clone() }),
            (Some("active"), Some(t)) => Some(Reserve::Active { ticket: t.clone() }),
            (Some("cooling"), Some(u)) => Some(Reserve::CoolingDown { until: u.clone() }),
            (Some("resend"), Some(t)) => answer
                .get(2)
                .and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok())
                .map(|event| Reserve::Resend {
                    ticket: t.clone(),
                    event,
                }),
            _ => None,
        };
        decided.ok_or(StoreError::Script(words))
    }

    /// The ticket this idempotency key already made for the person, if Redis remembers it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn idempotent_ticket(
        &self,
        tag: &str,
        idempotency_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.hot().await?;
        Ok(conn.get(self.idem_key(tag, Some(idempotency_key))).await?)
    }

    /// After an attempt to make `ticket` durable failed: the person's lock stays, in doubt, so
    /// that their next request publishes the same ticket again (it may have reached the broker).
    ///
    /// # Errors
    /// When Redis cannot be reached (the lock then goes stale and is taken over anyway).
    pub async fn fail(&self, tag: &str, ticket: &str) -> Result<(), StoreError> {
        let mut conn = self.hot().await?;
        let _: i64 = self
            .fail
            .key(self.active_key(tag))
            .arg(ticket)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// After a batch became durable: marks each person's lock durable and writes each ticket's
    /// status hash (status `accepted` unless the persister already wrote a later one) with its
    /// signed receipt (`receipts[i]` for `events[i]`, kept so that a retry with the same
    /// idempotency key gets the same receipt back), in one round trip for the whole batch. EVAL (not EVALSHA) inside the pipeline, so a script cache
    /// flushed by a Redis restart cannot fail it; Redis compiles the body once and caches it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn confirm_many(
        &self,
        events: &[crate::queue::ReservationEvent],
        receipts: &[Option<std::sync::Arc<[u8]>>],
    ) -> Result<(), StoreError> {
        let mut conn = self.hot().await?;
        let mut pipes = self.pipes();
        let now = chrono::Utc::now();
        for (i, e) in events.iter().enumerate() {
            let key = self.ticket_key(&e.ticket_id);
            let ttl = (e.valid_until - now).num_seconds().max(0) + 30 * 86_400;
            let st = TicketStatus {
                status: "accepted".into(),
                pharmacy_id: e.pharmacy_id.clone(),
                product_id: e.product_id.clone(),
                flexible: e.flexible,
                accepted_at: e.accepted_at.to_rfc3339(),
                valid_until: e.valid_until.to_rfc3339(),
                draws: Vec::new(),
            };
            let active = self.active_key(&e.person_tag);
            pipes
                .on(&active)
                .cmd("EVAL")
                .arg(CONFIRM_LUA)
                .arg(2)
                .arg(&active)
                .arg(self.pending_key(&e.person_tag))
                .arg(&e.ticket_id)
                .ignore();
            pipes
                .on(&key)
                .hset_nx(&key, "status", "accepted")
                .ignore()
                .hset_multiple(&key, &status_fields(&st))
                .ignore()
                .expire(&key, ttl)
                .ignore();
            if let Some(Some(r)) = receipts.get(i) {
                // A key of its own (same slot): the status reads of the publication peak do
                // not carry it. It serves a retry with the same idempotency key, so it lives
                // as long as that key; a retry after it is gone gets the same statement signed
                // again from the ticket's row (`receipt_again`).
                let receipt = self.receipt_key(&e.ticket_id);
                pipes
                    .on(&receipt)
                    .set_ex(&receipt, r.as_ref(), RECEIPT_TTL_SECS)
                    .ignore();
            }
        }
        pipes.run(&mut conn, self.timeout).await
    }

    /// The signed receipt kept with a ticket's status, if Redis still has it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn receipt(&self, ticket: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.hot().await?;
        Ok(conn.get(self.receipt_key(ticket)).await?)
    }

    /// Gives the person's lock back after a reservation could not be made durable, or after the
    /// database rejected the ticket.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn release(
        &self,
        tag: &str,
        ticket: &str,
        idempotency_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.hot().await?;
        let _: i64 = self
            .release
            .key(self.active_key(tag))
            .key(self.idem_key(tag, idempotency_key))
            .arg(ticket)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Sets the status of many tickets at once (the persister after a commit).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn set_statuses(
        &self,
        statuses: &[(String, TicketStatus)],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        if statuses.is_empty() {
            return Ok(());
        }
        let mut conn = self.hot().await?;
        let mut pipes = self.pipes();
        for (ticket, st) in statuses {
            let key = self.ticket_key(ticket);
            let mut fields = status_fields(st);
            fields.push(("status", st.status.clone()));
            pipes
                .on(&key)
                .hset_multiple(&key, &fields)
                .ignore()
                .expire(&key, ttl_secs as i64)
                .ignore();
        }
        pipes.run(&mut conn, self.timeout).await
    }

    /// The status hash of a ticket, if Redis still has it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn ticket_status(&self, ticket: &str) -> Result<Option<TicketStatus>, StoreError> {
        let mut conn = self.hot().await?;
        // The reply as Redis sent it (field, value, field, value…), each string moved into its
        // place (an A/B against a `HashMap<String, String>` showed no measurable CPU difference:
        // the cost of this read is the round trip and the RESP parser, BENCHMARKS.md).
        let reply: redis::Value = conn.hgetall(self.ticket_key(ticket)).await?;
        Ok(TicketStatus::from_hash_reply(reply))
    }

    /// Applies a draw's or an expiry's consequences, pipelined in chunks.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn settle(&self, items: &[Settle], ticket_ttl_secs: u64) -> Result<(), StoreError> {
        let mut conn = self.pooled(self.bulk_timeout()).await?;
        // Pipelines send EVALSHA, so the script must be loaded first.
        let _: String = self.settle.prepare_invoke().load_async(&mut conn).await?;
        for chunk in items.chunks(1_000) {
            let mut pipes = self.pipes();
            for it in chunk {
                let (until, ttl) = it.cooldown.clone().unwrap_or_default();
                let active = self.active_key(&it.person_tag);
                let mut inv = self.settle.key(&active);
                inv.key(self.cooldown_key(&it.person_tag))
                    .arg(&it.ticket)
                    .arg(until)
                    .arg(ttl.max(1));
                pipes.on(&active).invoke_script(&inv).ignore();
                let key = self.ticket_key(&it.ticket);
                let pipe = pipes.on(&key);
                pipe.hset(&key, "status", it.status).ignore();
                if let Some((field, value)) = &it.draw_field {
                    pipe.hset(&key, field, value).ignore();
                }
                pipe.expire(&key, ticket_ttl_secs as i64).ignore();
            }
            conn.run(pipes).await?;
        }
        Ok(())
    }

    /// Records one outcome on many tickets (the losers of a draw), pipelined. One HSET each and
    /// no EXPIRE: the status hash already lives past the ticket's validity (set at acceptance),
    /// and a hash Redis has lost stays lost (the status API reads PostgreSQL then).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn record_outcome(
        &self,
        tickets: &[String],
        field: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pooled(self.bulk_timeout()).await?;
        for chunk in tickets.chunks(10_000) {
            let mut pipes = self.pipes();
            for t in chunk {
                let key = self.ticket_key(t);
                pipes.on(&key).hset(&key, field, value).ignore();
            }
            conn.run(pipes).await?;
        }
        Ok(())
    }

    /// Up to `count` of the oldest fallback entries, as (entry id, body).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn read_fallback(&self, count: usize) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut conn = self.pooled(self.timeout).await?;
        let reply: redis::streams::StreamRangeReply = conn
            .xrange_count(self.fallback_stream(), "-", "+", count)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|e| {
                let body = e
                    .map
                    .get("body")
                    .and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok())?;
                Some((e.id, body))
            })
            .collect())
    }

    /// Removes relayed entries from the fallback stream.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn delete_fallback(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.pooled(self.timeout).await?;
        let _: i64 = conn.xdel(self.fallback_stream(), ids).await?;
        Ok(())
    }

    /// How many entries wait in the fallback stream.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn fallback_len(&self) -> Result<u64, StoreError> {
        let mut conn = self.pooled(self.timeout).await?;
        Ok(conn.xlen(self.fallback_stream()).await?)
    }

    /// Deletes every key under this prefix (tests and the demo clean up after themselves).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn delete_all(&self) -> Result<u64, StoreError> {
        let mut conn = self.pooled(self.bulk_timeout()).await?;
        let pattern = format!("{}:*", self.prefix);
        // SCAN walks one server's keys: on a cluster, each master's in turn.
        let servers = match &mut conn.conn {
            Conn::Cluster(c, t) => cluster_masters(c, *t)
                .await?
                .into_iter()
                .map(Some)
                .collect(),
            _ => vec![None],
        };
        let mut deleted = 0;
        for server in servers {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, keys): (u64, Vec<String>) = match (&server, &mut conn.conn) {
                    (Some((host, port)), Conn::Cluster(c, t)) => {
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        });
                        let value = tokio::time::timeout(*t, c.route_command(&scan, routing))
                            .await
                            .map_err(|_| StoreError::Timeout(*t))??;
                        redis::from_redis_value(&value)?
                    }
                    _ => scan.query_async(&mut conn).await?,
                };
                // One DEL per key: on a cluster, keys of different slots cannot share one.
                let mut pipes = self.pipes();
                for k in &keys {
                    pipes.on(k).del(k).ignore();
                }
                conn.run(pipes).await?;
                deleted += keys.len() as u64;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(deleted)
    }

    // One hash tag for both: `finish_warm` touches them in one script.
    fn warm_key(&self) -> String {
        format!("{}:{{cache}}:complete", self.prefix)
    }
    fn warming_key(&self) -> String {
        format!("{}:{{cache}}:warming", self.prefix)
    }

    /// Whether a `cache warm` finished since Redis last lost its data (the marker is lost with
    /// the data, so a restart without persistence or a flush clears it).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn is_warm(&self) -> Result<bool, StoreError> {
        let mut conn = self.hot().await?;
        Ok(conn.exists(self.warm_key()).await?)
    }

    /// Takes (or, with the same token, extends) the one warming lease, for `ttl_secs`. `false`
    /// when another warm holds it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn lease_warm(&self, token: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        let mut conn = self.pooled(self.timeout).await?;
        let got: i64 = Script::new(
            r#"
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"#,
        )
        .key(self.warming_key())
        .arg(token)
        .arg(ttl_secs.max(1))
        .invoke_async(&mut conn)
        .await?;
        Ok(got == 1)
    }

    /// Ends a warm: sets the marker only if this warm's lease survived (a flush while warming
    /// took the lease with it, and what was written before it is gone too).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn finish_warm(&self, token: &str) -> Result<bool, StoreError> {
        let mut conn = self.pooled(self.timeout).await?;
        let done: i64 = Script::new(
            r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1')
return 1
"#,
        )
        .key(self.warming_key())
        .key(self.warm_key())
        .arg(token)
        .invoke_async(&mut conn)
        .await?;
        Ok(done == 1)
    }

    /// Writes what `cache warm` rebuilt from PostgreSQL, in one pipeline: ticket status
    /// hashes (each with its time to live), draw outcomes on tickets, the persons' locks of
    /// their active tickets, and winners' cooldowns.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn write_warm(&self, w: &Warm) -> Result<(), StoreError> {
        let mut conn = self.pooled(self.bulk_timeout()).await?;
        let mut pipes = self.pipes();
        for (ticket, st, ttl) in &w.statuses {
            let key = self.ticket_key(ticket);
            let mut fields = status_fields(st);
            fields.push(("status", st.status.clone()));
            pipes
                .on(&key)
                .hset_multiple(&key, &fields)
                .ignore()
                .expire(&key, (*ttl).max(1) as i64)
                .ignore();
        }
        for (ticket, field, value) in &w.outcomes {
            let key = self.ticket_key(ticket);
            pipes.on(&key).hset(&key, field, value).ignore();
        }
        for (tag, ticket, ttl) in &w.locks {
            let key = self.active_key(tag);
            pipes
                .on(&key)
                .set_ex(&key, format!("{ticket}|d"), (*ttl).max(1))
                .ignore();
        }
        for (tag, value, ttl) in &w.cooldowns {
            let key = self.cooldown_key(tag);
            pipes.on(&key).set_ex(&key, value, (*ttl).max(1)).ignore();
        }
        conn.run(pipes).await
    }

    /// # Errors
    /// When Redis does not answer PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pooled(self.timeout).await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// The masters of a cluster, as (host, port), from `CLUSTER NODES` (failed ones left out).
async fn cluster_masters(
    conn: &mut redis::cluster_async::ClusterConnection,
    timeout: std::time::Duration,
) -> Result<Vec<(String, u16)>, StoreError> {
    let nodes: String = tokio::time::timeout(
        timeout,
        redis::cmd("CLUSTER").arg("NODES").query_async(conn),
    )
    .await
    .map_err(|_| StoreError::Timeout(timeout))??;
    Ok(parse_cluster_masters(&nodes))
}

/// `<id> <ip:port@cport[,hostname]> <flags> ...` lines; a master's flags include `master` and
/// not `fail`.
fn parse_cluster_masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let addr = f.nth(1)?;
            let flags: Vec<&str> = f.next()?.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|x| x.starts_with("fail")) {
                return None;
            }
            let (host, port) = addr.split(['@', ',']).next()?.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

fn status_fields(st: &TicketStatus) -> Vec<(&'static str, String)> {
    vec![
        ("pharmacy_id", st.pharmacy_id.clone()),
        ("product_id", st.product_id.clone()),
        ("flexible", if st.flexible { "1" } else { "0" }.to_string()),
        ("accepted_at", st.accepted_at.clone()),
        ("valid_until", st.valid_until.clone()),
    ]
}

/// What Redis must do with a fallback entry before the reservations in it may be answered 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackDemand {
    /// Nothing: any Redis (a restart of one that keeps nothing loses the entry).
    Nothing,
    /// AOF on and its last write ok, read on the connection that appends.
    Aof,
    /// `WAIT count timeout_ms` after the append must report at least `count` replicas.
    Replicas { count: u32, timeout_ms: u64 },
}

/// What `INFO persistence` and `INFO replication` say about keeping writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Persistence {
    /// `aof_enabled:1`.
    pub aof_enabled: bool,
    /// `aof_last_write_status:ok` (a full disk makes it `err`).
    pub aof_write_ok: bool,
    /// Replicas in state `online` (`slaveN:...,state=online,...`); one still in its first
    /// sync is connected but cannot confirm a `WAIT`.
    pub replicas: u32,
}

impl Persistence {
    /// Parses the text of `INFO persistence` and/or `INFO replication`.
    pub fn parse(info: &str) -> Self {
        let mut p = Self::default();
        for line in info.lines() {
            match line.trim_end().split_once(':') {
                Some(("aof_enabled", v)) => p.aof_enabled = v == "1",
                Some(("aof_last_write_status", v)) => p.aof_write_ok = v == "ok",
                Some((k, v))
                    if k.strip_prefix("slave").is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    }) && v.split(',').any(|f| f == "state=online") =>
                {
                    p.replicas += 1;
                }
                _ => {}
            }
        }
        p
    }

    /// Whether a write acknowledged now survives a restart of this Redis: AOF only. RDB
    /// snapshots alone lose every write since the last one (minutes), so they do not count.
    pub fn persists(&self) -> bool {
        self.aof_enabled && self.aof_write_ok
    }
}

/// The fallback stream's durability checks (issue 9): kept apart from the intake's commands.
impl RedisStore {
    /// Reads `INFO persistence` and `INFO replication`.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn persistence(&self) -> Result<Persistence, StoreError> {
        let mut conn = self.pooled(self.timeout).await?;
        let p: String = self
            .on_fallback_node(&mut conn, redis::cmd("INFO").arg("persistence"))
            .await?;
        let r: String = self
            .on_fallback_node(&mut conn, redis::cmd("INFO").arg("replication"))
            .await?;
        Ok(Persistence::parse(&format!("{p}\n{r}")))
    }

    /// Runs `cmd` on the server that holds the fallback stream: on a cluster, the master of
    /// its slot (a keyless command would otherwise go to any node, or to all of them).
    async fn on_fallback_node<T: redis::FromRedisValue>(
        &self,
        conn: &mut Timed,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        match &mut conn.conn {
            Conn::Cluster(c, _) => {
                let slot = redis::cluster_routing::get_slot(self.fallback_stream().as_bytes());
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    redis::cluster_routing::Route::new(
                        slot,
                        redis::cluster_routing::SlotAddr::Master,
                    ),
                ));
                let timeout = conn.timeout;
                let value = tokio::time::timeout(timeout, c.route_command(cmd, routing))
                    .await
                    .map_err(|_| StoreError::Timeout(timeout))??;
                Ok(redis::from_redis_value(&value)?)
            }
            _ => Ok(cmd.query_async(conn).await?),
        }
    }

    /// Appends one message body to the fallback stream once Redis meets `demand`; the caller's
    /// reservations are durable once this returns `Ok`.
    ///
    /// `Aof` reads `INFO persistence` on the very connection that then appends: a Redis
    /// restarted in between breaks that connection, so the check and the append always reach
    /// the same server process. `Replicas` appends, then `WAIT`s; an entry too few replicas
    /// confirmed is deleted again, so the relay does not deliver a reservation that was
    /// answered 503 (if Redis fails between the two, the entry may still arrive: then the
    /// person holds a ticket they were told failed, never the reverse).
    ///
    /// # Errors
    /// `NotDurable` when Redis does not meet `demand`; other errors when it cannot be reached.
    pub async fn append_fallback_durable(
        &self,
        body: &[u8],
        demand: FallbackDemand,
    ) -> Result<String, StoreError> {
        // WAIT may take its own bound on top of the usual one for the round trip.
        let bound = match demand {
            FallbackDemand::Replicas { timeout_ms, .. } => {
                self.timeout + std::time::Duration::from_millis(timeout_ms)
            }
            _ => self.timeout,
        };
        let mut conn = self.pooled(bound).await?;
        if demand == FallbackDemand::Aof {
            let info: String = self
                .on_fallback_node(&mut conn, redis::cmd("INFO").arg("persistence"))
                .await?;
            let p = Persistence::parse(&info);
            if !p.persists() {
                return Err(StoreError::NotDurable(if p.aof_enabled {
                    "its last AOF write failed".into()
                } else {
                    "AOF is off".into()
                }));
            }
        }
        let id: String = conn
            .xadd(self.fallback_stream(), "*", &[("body", body)])
            .await?;
        if let FallbackDemand::Replicas { count, timeout_ms } = demand {
            let acked: u32 = self
                .on_fallback_node(&mut conn, redis::cmd("WAIT").arg(count).arg(timeout_ms))
                .await?;
            if acked < count {
                let _: i64 = conn.xdel(self.fallback_stream(), &[&id]).await?;
                return Err(StoreError::NotDurable(format!(
                    "{acked} of {count} replicas confirmed within {timeout_ms} ms"
                )));
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::parse_cluster_masters;

    #[test]
    fn masters_are_read_from_cluster_nodes_leaving_out_replicas_and_failed_ones() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,node-b master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 1426238316232 0 3 disconnected 10923-16383
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            parse_cluster_masters(nodes),
            vec![("127.0.0.1".into(), 30002), ("127.0.0.1".into(), 30001)]
        );
    }
}

#[cfg(test)]
mod persistence_tests {
    use super::Persistence;

    #[test]
    fn aof_on_with_a_good_last_write_persists_and_rdb_alone_does_not() {
        let aof = "# Persistence\r\nloading:0\r\nrdb_saves:3\r\naof_enabled:1\r\naof_last_write_status:ok\r\n";
        assert!(Persistence::parse(aof).persists());
        let rdb = "# Persistence\r\nrdb_saves:12\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_last_write_status:ok\r\n";
        assert!(!Persistence::parse(rdb).persists());
        let failing = "aof_enabled:1\r\naof_last_write_status:err\r\n";
        assert!(!Persistence::parse(failing).persists());
        assert!(!Persistence::parse("").persists());
    }

    #[test]
    fn only_online_replicas_are_counted_from_info_replication() {
        let p = Persistence::parse(
            "# Replication\r\nrole:master\r\nconnected_slaves:3\r\n\
             slave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\n\
             slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=0\r\n\
             slave2:ip=127.0.0.1,port=7003,state=online,offset=42,lag=1\r\n",
        );
        assert_eq!(p.replicas, 2);
        assert!(!p.persists());
    }
}

#[cfg(test)]
mod status_reply_tests {
    use super::TicketStatus;
    use redis::Value;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_status_hash_is_read_in_any_field_order_with_its_draws_sorted() {
        let reply = Value::Array(
            [
                "draw:2026-03-02",
                "won|P0001|KN95|123456|0.001",
                "status",
                "won",
                "flexible",
                "1",
                "pharmacy_id",
                "P0001",
                "draw:2026-03-01",
                "lost",
                "product_id",
                "KN95",
                "accepted_at",
                "2026-02-28T10:00:00+00:00",
                "valid_until",
                "2026-03-10T10:00:00+00:00",
                "receipt",
                "ignored",
            ]
            .into_iter()
            .map(bulk)
            .collect(),
        );
        let st = TicketStatus::from_hash_reply(reply).expect("a hash");
        assert_eq!(st.status, "won");
        assert_eq!(
            (st.pharmacy_id.as_str(), st.product_id.as_str()),
            ("P0001", "KN95")
        );
        assert!(st.flexible);
        assert_eq!(st.accepted_at, "2026-02-28T10:00:00+00:00");
        assert_eq!(st.valid_until, "2026-03-10T10:00:00+00:00");
        assert_eq!(
            st.draws,
            vec![
                ("2026-03-01".to_string(), "lost".to_string()),
                (
                    "2026-03-02".to_string(),
                    "won|P0001|KN95|123456|0.001".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_missing_hash_is_none_and_a_rigid_ticket_reads_not_flexible() {
        assert!(TicketStatus::from_hash_reply(Value::Array(Vec::new())).is_none());
        assert!(TicketStatus::from_hash_reply(Value::Nil).is_none());
        let st = TicketStatus::from_hash_reply(Value::Map(vec![
            (bulk("status"), bulk("registered")),
            (bulk("flexible"), bulk("0")),
        ]))
        .expect("a hash");
        assert_eq!(st.status, "registered");
        assert!(!st.flexible);
        assert!(st.draws.is_empty());
    }
}
