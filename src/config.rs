//! Layered settings: built-in defaults that work on a developer machine with the services on
//! loopback, then `maskdraw.toml` (or the file named by `MASKDRAW_CONFIG`), then `MASKDRAW_*`
//! environment variables (STYLE.md "Configuration").

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A value that must never reach a log line or a terminal.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where this process runs. Production is the default, so a deployment that forgot to say is
/// held to production's rules: its own secrets, phone codes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer's machine, the demo, the tests: the built-in secrets and the console sender
    /// of phone codes are allowed, and phone codes are not required unless asked for.
    Development,
    Production,
}

/// The built-in `hmac_secret`: known to everyone who read this file, so refused outside
/// development (with it anyone could reverse person tags by trying every id number).
pub const DEVELOPMENT_HMAC_SECRET: &str = "maskdraw-development-secret-do-not-use";
/// The built-in `token_secret`: with it anyone could mint any pharmacy's token.
pub const DEVELOPMENT_TOKEN_SECRET: &str = "maskdraw-development-token-secret-do-not-use";

/// What the fallback stream demands of Redis before a reservation it holds is answered 202
/// (the fallback is used only while the broker is away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FallbackDurability {
    /// Only a Redis with AOF on (`aof_enabled:1`, last write ok), checked on the connection that
    /// appends. RDB snapshots alone lose minutes of writes, so they do not count. The default.
    Persistent,
    /// Each append must reach `fallback_replicas` replicas (`WAIT`) within `fallback_wait_ms`.
    Replica,
    /// Any Redis: a restart of a Redis that keeps nothing loses every fallback 202.
    Unsafe,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL, e.g. `postgres://postgres@127.0.0.1:5432/maskdraw`.
    pub database_url: String,
    pub redis_url: String,
    /// Nodes of a Redis Cluster (any of them; the client learns the rest); when set, used
    /// instead of `redis_url`. Every key carries a hash tag, so each script touches one slot.
    pub redis_cluster_urls: Vec<String>,
    pub amqp_url: String,
    /// The nodes of a RabbitMQ cluster; when set, used instead of `amqp_url` (the publisher,
    /// the relay and the persisters move to the next node when they lose theirs).
    pub amqp_urls: Vec<String>,
    /// Address the API listens on.
    pub bind: String,
    /// Address of the operator listener: `/metrics` and the readiness details, kept off the
    /// public one.
    pub admin_bind: String,
    /// `development` or `production` (the default); `MASKDRAW_ENVIRONMENT`.
    pub environment: Environment,
    /// Key of `person_tag = HMAC-SHA256(secret, id)`, the phone tag and the holder secret. The
    /// default is for development only.
    pub hmac_secret: Secret,
    /// Key of the pharmacies' bearer tokens, apart from `hmac_secret` so that it can be rotated
    /// (every token changes) without changing a single person tag. Development default only.
    pub token_secret: Secret,
    /// Whether a reservation must carry a one-time code sent to its phone. Unset: on, except in
    /// development.
    pub require_phone_code: Option<bool>,
    /// The city's SMS gateway: phone codes are POSTed here as JSON. Empty: the console sender,
    /// which prints codes to the log (development only).
    pub sms_webhook_url: String,
    /// Bearer token sent to the SMS gateway (empty: none).
    pub sms_webhook_token: Secret,
    /// How long the gateway may take to accept a code before the request is answered 503.
    pub sms_webhook_timeout_ms: u64,
    /// How long a phone code is valid.
    pub phone_code_ttl_secs: u64,
    /// Wrong codes tried against one code before it is void.
    pub phone_code_max_attempts: u32,
    /// At most one code per phone in this many seconds.
    pub phone_code_resend_secs: u64,
    /// At most this many codes per phone in 24 hours.
    pub phone_codes_per_phone_per_day: u32,
    /// Per client address: phone codes asked for per minute.
    pub phone_code_rate_per_min: u32,
    /// Prefix of every Redis key this deployment writes (tests give each its own).
    pub key_prefix: String,
    /// Prefix of the RabbitMQ exchange and queue names (tests give each its own).
    pub queue_prefix: String,
    /// Where `static/` (pages and catalog) lives.
    pub static_dir: PathBuf,
    pub validity_days: u32,
    pub cooldown_days: u32,
    /// The city's time zone (IANA name).
    pub timezone: String,
    /// Local time on D−1 after which entrants for D are sealed.
    pub cutoff_time: String,
    /// Local time on D from which results are shown.
    pub publish_at: String,
    /// Requests per second per client IP (burst of the same size).
    pub ip_rate_per_sec: u32,
    /// Submissions per minute per person.
    pub person_rate_per_min: u32,
    /// Shed load (503) above this many requests in flight.
    pub max_in_flight: usize,
    /// Shed load (503) when the broker queue holds more messages than this.
    pub max_backlog: u64,
    /// While Redis is not known to hold every live ticket, reservations are checked in
    /// PostgreSQL, 8 at a time; this many more may wait for a check, and past it 503 at once.
    pub cold_check_queue: usize,
    /// Group commit: at most this many reservations share one confirmed message.
    pub publish_batch: usize,
    /// Group commit: how long the first reservation of a batch waits for company.
    pub publish_linger_us: u64,
    /// How long to wait for a publisher confirm before turning to the fallback stream.
    pub publish_timeout_ms: u64,
    /// Messages the persister may hold unacknowledged.
    pub persist_prefetch: u16,
    /// Reservations per INSERT statement in the persister.
    pub persist_batch: usize,
    /// Competing consumers in one persister process.
    pub persist_consumers: usize,
    /// HTTP worker threads of `serve` (each runs its own event loop).
    pub http_workers: usize,
    /// Where the seal writes `snapshots/<date>/` and the server finds the published days.
    pub snapshots_dir: PathBuf,
    /// Where the draw writes the per-pharmacy exports.
    pub exports_dir: PathBuf,
    /// Where `authority.key` and `authority.pub` live (`authority.pub` is served publicly).
    pub keys_dir: PathBuf,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-For` names the client: the load
    /// balancers. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Per client address: status reads per second (burst of the same size).
    pub status_rate_per_sec: u32,
    /// Per client address: proofs and published-file downloads per second.
    pub proof_rate_per_sec: u32,
    /// Per client address: lookups by id number and phone per minute.
    pub lookup_rate_per_min: u32,
    /// Per client address: pickup calls per second (a pharmacy counter).
    pub pickup_rate_per_sec: u32,
    /// How long a well-formed but unknown ticket id is remembered as unknown.
    pub negative_cache_secs: u64,
    /// Rebuild Redis from PostgreSQL by itself when it finds Redis has lost its data
    /// (`maskdraw cache warm`, one server at a time).
    pub auto_warm: bool,
    /// Intake's clock runs this many seconds off the real one: the demo uses it to simulate a
    /// day whose entries closed in the past. Development only.
    pub simulated_clock_offset_secs: i64,
    /// Bound on each Redis command of the service (and on connecting to Redis).
    pub redis_timeout_ms: u64,
    /// Bound on each PostgreSQL statement of `serve` and `persist` (`statement_timeout`, and
    /// on the client side for a database that stops answering); the officials' commands have
    /// none.
    pub db_timeout_ms: u64,
    /// Bound on each RabbitMQ operation (connecting, declaring, acking).
    pub amqp_timeout_ms: u64,
    /// Bound on reading a request's body (408 `request_timeout` after it).
    pub body_timeout_ms: u64,
    /// Connections the kernel holds for `serve` before it accepts them (capped by
    /// `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// When the broker is away, whether Redis must persist (or replicate) a reservation before
    /// the fallback may answer 202; refused otherwise (503, lock released).
    pub fallback_durability: FallbackDurability,
    /// Replicas `WAIT` must hear from in `replica` mode.
    pub fallback_replicas: u32,
    /// How long `WAIT` may take in `replica` mode.
    pub fallback_wait_ms: u64,
    /// The intake's Ed25519 secret key (64 hex + LF, as `notary keygen intake.key` writes it):
    /// it signs the receipt of every 202 (lottery/SPEC.md §16); its public key is served at
    /// `/snapshots/intake.pub`. Required outside development; in development, unset, a key is
    /// derived from `hmac_secret` (see [`Settings::intake_key`]).
    pub intake_key_file: Option<PathBuf>,
    /// The longest a 202'd reservation may take to reach PostgreSQL (the broker, the fallback
    /// relay, the persister): a receipt promises the first draw whose cutoff is after its
    /// acceptance plus this.
    pub max_merge_delay_secs: u64,
    /// Whether each 202 carries a signed receipt. Off only in development (the intake bench
    /// measures the intake both ways).
    pub receipts: bool,
    /// The witnesses whose cosignature (`seal.cosig.<party>`, lottery/SPEC.md §15) the draw
    /// waits for: party name → their public key file (64 hex + LF).
    pub witnesses: std::collections::BTreeMap<String, PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "postgres://postgres@127.0.0.1:5432/maskdraw".into(),
            redis_url: "redis://127.0.0.1:6379/0".into(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            amqp_urls: Vec::new(),
            redis_cluster_urls: Vec::new(),
            bind: "127.0.0.1:8080".into(),
            admin_bind: "127.0.0.1:18080".into(),
            environment: Environment::Production,
            hmac_secret: Secret::new(DEVELOPMENT_HMAC_SECRET),
            token_secret: Secret::new(DEVELOPMENT_TOKEN_SECRET),
            require_phone_code: None,
            sms_webhook_url: String::new(),
            sms_webhook_token: Secret::new(""),
            sms_webhook_timeout_ms: 3_000,
            phone_code_ttl_secs: 300,
            phone_code_max_attempts: 5,
            phone_code_resend_secs: 60,
            phone_codes_per_phone_per_day: 10,
            phone_code_rate_per_min: 10,
            key_prefix: "md".into(),
            queue_prefix: String::new(),
            static_dir: PathBuf::from("static"),
            validity_days: 10,
            cooldown_days: 3,
            timezone: "Asia/Shanghai".into(),
            cutoff_time: "22:00".into(),
            publish_at: "18:00".into(),
            ip_rate_per_sec: 50,
            person_rate_per_min: 20,
            max_in_flight: 2_000,
            max_backlog: 2_000_000,
            cold_check_queue: 256,
            publish_batch: 256,
            publish_linger_us: 1_000,
            publish_timeout_ms: 5_000,
            persist_prefetch: 64,
            persist_batch: 4_000,
            persist_consumers: 3,
            http_workers: 2,
            snapshots_dir: PathBuf::from("snapshots"),
            exports_dir: PathBuf::from("exports"),
            keys_dir: PathBuf::from("keys"),
            trusted_proxies: Vec::new(),
            status_rate_per_sec: 20,
            proof_rate_per_sec: 20,
            lookup_rate_per_min: 20,
            pickup_rate_per_sec: 10,
            negative_cache_secs: 30,
            auto_warm: true,
            simulated_clock_offset_secs: 0,
            redis_timeout_ms: 1_000,
            db_timeout_ms: 5_000,
            amqp_timeout_ms: 5_000,
            body_timeout_ms: 5_000,
            listen_backlog: 4_096,
            fallback_durability: FallbackDurability::Persistent,
            fallback_replicas: 1,
            fallback_wait_ms: 1_000,
            intake_key_file: None,
            max_merge_delay_secs: 3_600,
            receipts: true,
            witnesses: std::collections::BTreeMap::new(),
        }
    }
}

/// The longest validity or cooldown, in days (the envelope's check uses the same bound).
pub use maskdraw_wire::domain::MAX_DAYS;

/// The highest rate limit (per second or per minute). governor's replenish interval is a
/// second divided by the rate: beyond a million it loses its precision, and no client needs it.
pub const MAX_RATE: u64 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the configuration")]
    Figment(#[from] Box<figment::Error>),
    #[error("setting {0}: {1}")]
    Invalid(&'static str, String),
}

impl Settings {
    /// Defaults, then the TOML file, then the environment.
    ///
    /// # Errors
    /// When the file or a variable does not parse, or a value is out of range.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("MASKDRAW_CONFIG").unwrap_or_else(|_| "maskdraw.toml".into());
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("MASKDRAW_").ignore(&["config"]))
            .extract()
            .map_err(Box::new)?;
        settings.check()?;
        Ok(settings)
    }

    /// # Errors
    /// When a value is out of range or does not parse with the domain parsers.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.hmac_secret.expose().len() < 16 {
            return Err(ConfigError::Invalid(
                "hmac_secret",
                "must be at least 16 bytes".into(),
            ));
        }
        if self.token_secret.expose().len() < 16 {
            return Err(ConfigError::Invalid(
                "token_secret",
                "must be at least 16 bytes".into(),
            ));
        }
        if !self.sms_webhook_url.is_empty() {
            let url = reqwest::Url::parse(&self.sms_webhook_url)
                .map_err(|e| ConfigError::Invalid("sms_webhook_url", e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid(
                    "sms_webhook_url",
                    "must be an http or https URL".into(),
                ));
            }
        }
        self.tz()?;
        self.cutoff()?;
        self.publish_time()?;
        self.check_day_counts()?;
        // Every number that reaches a timer, a rate limiter, an allocation or a thread count
        // has a range: past it, the arithmetic behind overflows or panics (tokio's deadlines,
        // governor's replenish interval, moka's time to live, a channel of `batch * 64`), or
        // the process asks the system for absurd resources.
        let bounded = [
            ("redis_timeout_ms", self.redis_timeout_ms, 1, 600_000, "ms"),
            ("db_timeout_ms", self.db_timeout_ms, 1, 600_000, "ms"),
            ("amqp_timeout_ms", self.amqp_timeout_ms, 1, 600_000, "ms"),
            ("body_timeout_ms", self.body_timeout_ms, 1, 600_000, "ms"),
            (
                "publish_timeout_ms",
                self.publish_timeout_ms,
                1,
                600_000,
                "ms",
            ),
            ("fallback_wait_ms", self.fallback_wait_ms, 1, 600_000, "ms"),
            (
                "publish_linger_us",
                self.publish_linger_us,
                0,
                1_000_000,
                "µs",
            ),
            (
                "negative_cache_secs",
                self.negative_cache_secs,
                0,
                86_400,
                "s",
            ),
            (
                "publish_batch",
                self.publish_batch as u64,
                1,
                10_000,
                "reservations",
            ),
            (
                "persist_batch",
                self.persist_batch as u64,
                1,
                100_000,
                "rows",
            ),
            (
                "persist_prefetch",
                u64::from(self.persist_prefetch),
                1,
                65_535,
                "messages",
            ),
            (
                "persist_consumers",
                self.persist_consumers as u64,
                1,
                64,
                "consumers",
            ),
            ("http_workers", self.http_workers as u64, 1, 256, "threads"),
            (
                "cold_check_queue",
                self.cold_check_queue as u64,
                0,
                1_000_000,
                "reservations",
            ),
            (
                "fallback_replicas",
                u64::from(self.fallback_replicas),
                1,
                100,
                "replicas",
            ),
            (
                "ip_rate_per_sec",
                u64::from(self.ip_rate_per_sec),
                1,
                MAX_RATE,
                "per second",
            ),
            (
                "status_rate_per_sec",
                u64::from(self.status_rate_per_sec),
                1,
                MAX_RATE,
                "per second",
            ),
            (
                "proof_rate_per_sec",
                u64::from(self.proof_rate_per_sec),
                1,
                MAX_RATE,
                "per second",
            ),
            (
                "pickup_rate_per_sec",
                u64::from(self.pickup_rate_per_sec),
                1,
                MAX_RATE,
                "per second",
            ),
            (
                "person_rate_per_min",
                u64::from(self.person_rate_per_min),
                1,
                MAX_RATE,
                "per minute",
            ),
            (
                "lookup_rate_per_min",
                u64::from(self.lookup_rate_per_min),
                1,
                MAX_RATE,
                "per minute",
            ),
            (
                "phone_code_ttl_secs",
                self.phone_code_ttl_secs,
                1,
                86_400,
                "s",
            ),
            (
                "phone_code_max_attempts",
                u64::from(self.phone_code_max_attempts),
                1,
                100,
                "attempts",
            ),
            (
                "phone_codes_per_phone_per_day",
                u64::from(self.phone_codes_per_phone_per_day),
                1,
                10_000,
                "codes",
            ),
            (
                "phone_code_rate_per_min",
                u64::from(self.phone_code_rate_per_min),
                1,
                MAX_RATE,
                "per minute",
            ),
            (
                "sms_webhook_timeout_ms",
                self.sms_webhook_timeout_ms,
                1,
                600_000,
                "ms",
            ),
            (
                "max_merge_delay_secs",
                self.max_merge_delay_secs,
                0,
                7 * 86_400,
                "s",
            ),
        ];
        for (name, value, min, max, unit) in bounded {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::Invalid(
                    name,
                    format!("must be {min} to {max} ({unit}), not {value}"),
                ));
            }
        }
        self.proxies()?;
        for party in self.witnesses.keys() {
            if !lottery::text::check_party(party) {
                return Err(ConfigError::Invalid(
                    "witnesses",
                    format!("{party:?} is not a party name ([a-z0-9-]{{1,32}})"),
                ));
            }
        }
        if self.simulated_clock_offset_secs.abs() > 400 * 86_400 {
            return Err(ConfigError::Invalid(
                "simulated_clock_offset_secs",
                "must be within 400 days".into(),
            ));
        }
        Ok(())
    }

    /// `validity_days` (1 to 3650) and `cooldown_days` (0 to 3650): what date arithmetic
    /// needs to stay in the calendar and in integer range. The seal and the draw check it
    /// again, since a library caller may hand them settings that never went through
    /// [`Settings::check`].
    ///
    /// # Errors
    /// Naming the setting that is out of range.
    pub fn check_day_counts(&self) -> Result<(), ConfigError> {
        for (name, value, min) in [
            ("validity_days", self.validity_days, 1),
            ("cooldown_days", self.cooldown_days, 0),
        ] {
            if !(min..=MAX_DAYS).contains(&value) {
                return Err(ConfigError::Invalid(
                    name,
                    format!("must be {min} to {MAX_DAYS} (days), not {value}"),
                ));
            }
        }
        Ok(())
    }

    /// Whether this deployment runs in development mode (`environment = "development"`).
    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }

    /// Whether a reservation must carry a phone code: as set, or on outside development.
    pub fn phone_code_required(&self) -> bool {
        self.require_phone_code.unwrap_or(!self.is_development())
    }

    /// Phone codes that are required must have a way to reach the phone: outside development
    /// that is the SMS gateway (the console sender only writes codes to the log).
    ///
    /// # Errors
    /// When codes are required outside development and `sms_webhook_url` is not set.
    pub fn check_phone_codes(&self) -> Result<(), ConfigError> {
        if self.phone_code_required() && !self.is_development() && self.sms_webhook_url.is_empty() {
            return Err(ConfigError::Invalid(
                "sms_webhook_url",
                "phone codes are required outside development: set the city's SMS gateway \
                 (sms_webhook_url), or switch codes off with require_phone_code = false"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Outside development, refuses the built-in secrets and a `token_secret` equal to
    /// `hmac_secret` (then rotating one would rotate the other). `serve`, `persist`, `seal`,
    /// `draw` and `token` call this before they touch anything.
    ///
    /// # Errors
    /// Naming the setting to change.
    pub fn refuse_development_secrets(&self) -> Result<(), ConfigError> {
        if self.is_development() {
            return Ok(());
        }
        let why = "is the built-in development secret; outside development (environment = \
                   \"development\", MASKDRAW_ENVIRONMENT) set a secret of your own";
        if self.hmac_secret.expose() == DEVELOPMENT_HMAC_SECRET {
            return Err(ConfigError::Invalid("hmac_secret", why.into()));
        }
        if self.token_secret.expose() == DEVELOPMENT_TOKEN_SECRET {
            return Err(ConfigError::Invalid("token_secret", why.into()));
        }
        if self.token_secret == self.hmac_secret {
            return Err(ConfigError::Invalid(
                "token_secret",
                "must differ from hmac_secret outside development: rotating the tokens' key \
                 must not change a person tag"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Outside development the intake signs with a key of its own (`intake_key_file`), and
    /// every 202 carries a receipt. `serve` calls this before it starts.
    ///
    /// # Errors
    /// Naming `intake_key_file` or `receipts`.
    pub fn refuse_missing_intake_key(&self) -> Result<(), ConfigError> {
        if self.is_development() {
            return Ok(());
        }
        if self.intake_key_file.is_none() {
            return Err(ConfigError::Invalid(
                "intake_key_file",
                "outside development (environment = \"development\") the intake signs \
                 receipts with a key of its own: make one with `notary keygen intake.key` and \
                 name it here"
                    .into(),
            ));
        }
        if !self.receipts {
            return Err(ConfigError::Invalid(
                "receipts",
                "every 202 carries a receipt outside development".into(),
            ));
        }
        Ok(())
    }

    /// The intake's signing key: `intake_key_file`, or, in development without one, a key
    /// derived from `hmac_secret` (SHA-256 of a fixed label and the secret), so that every
    /// development server of one deployment signs alike and the tests need no key file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or no file is named outside development.
    pub fn intake_key(&self) -> Result<ed25519_dalek::SigningKey, ConfigError> {
        use sha2::Digest;
        match &self.intake_key_file {
            Some(path) => {
                let bytes = lottery::limits::read_at_most(path, 4096).map_err(|e| {
                    ConfigError::Invalid("intake_key_file", format!("{}: {e}", path.display()))
                })?;
                lottery::sign::parse_secret_key_file(&bytes).map_err(|e| {
                    ConfigError::Invalid("intake_key_file", format!("{}: {e}", path.display()))
                })
            }
            None if self.is_development() => {
                let mut h = sha2::Sha256::new();
                h.update(b"maskdraw-development-intake-key\n");
                h.update(self.hmac_secret.expose().as_bytes());
                Ok(ed25519_dalek::SigningKey::from_bytes(&h.finalize().into()))
            }
            None => Err(ConfigError::Invalid(
                "intake_key_file",
                "required outside development".into(),
            )),
        }
    }

    /// `witnesses`, their public keys read: (party, key) in party order.
    ///
    /// # Errors
    /// Naming the witness whose key file cannot be read or parsed.
    pub fn witness_keys(&self) -> Result<Vec<(String, ed25519_dalek::VerifyingKey)>, ConfigError> {
        self.witnesses
            .iter()
            .map(|(party, path)| {
                let bytes = lottery::limits::read_at_most(path, 4096)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                lottery::sign::parse_public_key_file(&bytes)
                    .map(|k| (party.clone(), k))
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect::<Result<_, String>>()
            .map_err(|why| ConfigError::Invalid("witnesses", why))
    }

    /// `trusted_proxies`, parsed: a bare address is a one-address range.
    ///
    /// # Errors
    /// When an entry is neither an IP address nor a CIDR range.
    pub fn proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::Invalid("trusted_proxies", p.clone()))
            })
            .collect()
    }

    /// # Errors
    /// When `timezone` is not an IANA zone name.
    pub fn tz(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.timezone
            .parse()
            .map_err(|_| ConfigError::Invalid("timezone", self.timezone.clone()))
    }

    /// # Errors
    /// When `cutoff_time` is not `HH:MM`.
    pub fn cutoff(&self) -> Result<chrono::NaiveTime, ConfigError> {
        chrono::NaiveTime::parse_from_str(&self.cutoff_time, "%H:%M")
            .map_err(|_| ConfigError::Invalid("cutoff_time", self.cutoff_time.clone()))
    }

    /// # Errors
    /// When `publish_at` is not `HH:MM`.
    pub fn publish_time(&self) -> Result<chrono::NaiveTime, ConfigError> {
        chrono::NaiveTime::parse_from_str(&self.publish_at, "%H:%M")
            .map_err(|_| ConfigError::Invalid("publish_at", self.publish_at.clone()))
    }

    pub fn redis_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn db_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.db_timeout_ms)
    }

    pub fn amqp_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.amqp_timeout_ms)
    }

    /// What [`crate::store::redis::RedisStore::connect`] takes: `redis_url`, or the
    /// cluster's nodes when `redis_cluster_urls` is set.
    pub fn redis_endpoint(&self) -> String {
        if self.redis_cluster_urls.is_empty() {
            self.redis_url.clone()
        } else {
            format!(
                "{}{}",
                crate::store::redis::CLUSTER_SCHEME,
                self.redis_cluster_urls.join(",")
            )
        }
    }

    /// The broker's nodes: `amqp_urls`, or `amqp_url` alone.
    pub fn broker_urls(&self) -> Vec<String> {
        if self.amqp_urls.is_empty() {
            vec![self.amqp_url.clone()]
        } else {
            self.amqp_urls.clone()
        }
    }

    /// The name of the reservations queue (and the exchange that feeds it).
    pub fn queue_name(&self) -> String {
        format!("{}reservations", self.queue_prefix)
    }

    pub fn dead_queue_name(&self) -> String {
        format!("{}reservations.dead", self.queue_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_not_printed_by_debug() {
        let s = Settings::default();
        let text = format!("{s:?}");
        assert!(!text.contains(s.hmac_secret.expose()));
        assert!(!text.contains(s.token_secret.expose()));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn the_defaults_pass_their_own_checks() {
        Settings::default().check().unwrap();
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test API returns its error by value
    fn environment_variables_override_the_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "maskdraw.toml",
                "bind = \"127.0.0.1:9000\"\ncooldown_days = 5\n",
            )?;
            jail.set_env("MASKDRAW_BIND", "127.0.0.1:9999");
            jail.set_env("MASKDRAW_HMAC_SECRET", "0123456789abcdef0123");
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.bind, "127.0.0.1:9999");
            assert_eq!(s.cooldown_days, 5);
            assert_eq!(s.hmac_secret.expose(), "0123456789abcdef0123");
            assert_eq!(s.validity_days, 10);
            Ok(())
        });
    }

    #[test]
    fn a_zero_batch_or_consumer_count_is_refused_by_name() {
        let s = Settings {
            persist_consumers: 0,
            ..Settings::default()
        };
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("persist_consumers"));
        let s = Settings {
            persist_prefetch: 0,
            ..Settings::default()
        };
        assert!(s
            .check()
            .unwrap_err()
            .to_string()
            .contains("persist_prefetch"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_and_refuse_the_rest() {
        let s = Settings {
            trusted_proxies: vec!["10.0.0.0/8".into(), "127.0.0.1".into(), "::1".into()],
            ..Settings::default()
        };
        let nets = s.proxies().unwrap();
        assert!(nets[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(nets[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(!nets[1].contains(&"127.0.0.2".parse::<std::net::IpAddr>().unwrap()));
        let bad = Settings {
            trusted_proxies: vec!["nginx".into()],
            ..Settings::default()
        };
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("trusted_proxies"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test API returns its error by value
    fn the_fallback_durability_is_persistent_by_default_and_read_by_name() {
        assert_eq!(
            Settings::default().fallback_durability,
            FallbackDurability::Persistent
        );
        figment::Jail::expect_with(|jail| {
            jail.create_file("maskdraw.toml", "fallback_durability = \"replica\"\n")?;
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.fallback_durability, FallbackDurability::Replica);
            jail.set_env("MASKDRAW_FALLBACK_DURABILITY", "unsafe");
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.fallback_durability, FallbackDurability::Unsafe);
            jail.set_env("MASKDRAW_FALLBACK_DURABILITY", "sometimes");
            assert!(Settings::load().is_err());
            Ok(())
        });
    }

    #[test]
    fn settings_that_would_overflow_the_calendar_a_counter_or_a_timer_are_refused_by_name() {
        type Tweak = fn(&mut Settings);
        let cases: Vec<(&str, Tweak)> = vec![
            ("validity_days", |s| s.validity_days = u32::MAX),
            ("cooldown_days", |s| s.cooldown_days = u32::MAX),
            ("ip_rate_per_sec", |s| s.ip_rate_per_sec = u32::MAX),
            ("ip_rate_per_sec", |s| s.ip_rate_per_sec = 0),
            ("person_rate_per_min", |s| s.person_rate_per_min = u32::MAX),
            ("status_rate_per_sec", |s| s.status_rate_per_sec = u32::MAX),
            ("proof_rate_per_sec", |s| s.proof_rate_per_sec = 0),
            ("lookup_rate_per_min", |s| s.lookup_rate_per_min = u32::MAX),
            ("pickup_rate_per_sec", |s| s.pickup_rate_per_sec = u32::MAX),
            ("publish_batch", |s| s.publish_batch = usize::MAX),
            ("persist_batch", |s| s.persist_batch = usize::MAX),
            ("persist_consumers", |s| s.persist_consumers = usize::MAX),
            ("http_workers", |s| s.http_workers = usize::MAX),
            ("cold_check_queue", |s| s.cold_check_queue = usize::MAX),
            ("publish_linger_us", |s| s.publish_linger_us = u64::MAX),
            ("publish_timeout_ms", |s| s.publish_timeout_ms = u64::MAX),
            ("publish_timeout_ms", |s| s.publish_timeout_ms = 0),
            ("negative_cache_secs", |s| s.negative_cache_secs = u64::MAX),
            ("fallback_wait_ms", |s| s.fallback_wait_ms = u64::MAX),
            ("fallback_wait_ms", |s| s.fallback_wait_ms = 0),
            ("fallback_replicas", |s| s.fallback_replicas = u32::MAX),
        ];
        for (name, tweak) in cases {
            let mut s = Settings::default();
            tweak(&mut s);
            let err = s.check().expect_err(name).to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        // The largest accepted values still leave every date computation in range.
        let s = Settings {
            validity_days: 3_650,
            cooldown_days: 3_650,
            ..Settings::default()
        };
        s.check().unwrap();
    }

    #[test]
    fn outside_development_the_built_in_secrets_and_a_shared_one_are_refused_by_name() {
        let prod = Settings::default();
        assert_eq!(prod.environment, Environment::Production);
        let err = prod.refuse_development_secrets().unwrap_err().to_string();
        assert!(
            err.contains("hmac_secret") && err.contains("development"),
            "{err}"
        );
        let own_hmac = Settings {
            hmac_secret: Secret::new("an-hmac-secret-of-our-own-0001"),
            ..Settings::default()
        };
        let err = own_hmac
            .refuse_development_secrets()
            .unwrap_err()
            .to_string();
        assert!(err.contains("token_secret"), "{err}");
        let shared = Settings {
            token_secret: own_hmac.hmac_secret.clone(),
            ..own_hmac.clone()
        };
        let err = shared.refuse_development_secrets().unwrap_err().to_string();
        assert!(err.contains("must differ from hmac_secret"), "{err}");
        let own = Settings {
            token_secret: Secret::new("a-token-secret-of-our-own-0001"),
            ..own_hmac
        };
        own.refuse_development_secrets().unwrap();
        let dev = Settings {
            environment: Environment::Development,
            ..Settings::default()
        };
        dev.refuse_development_secrets().unwrap();
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test API returns its error by value
    fn the_environment_and_phone_codes_are_read_by_name_and_codes_follow_the_environment() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.environment, Environment::Production);
            assert!(s.phone_code_required());
            jail.set_env("MASKDRAW_ENVIRONMENT", "development");
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.environment, Environment::Development);
            assert!(!s.phone_code_required());
            jail.set_env("MASKDRAW_REQUIRE_PHONE_CODE", "true");
            assert!(Settings::load()
                .map_err(|e| e.to_string())?
                .phone_code_required());
            jail.set_env("MASKDRAW_ENVIRONMENT", "production");
            jail.set_env("MASKDRAW_REQUIRE_PHONE_CODE", "false");
            assert!(!Settings::load()
                .map_err(|e| e.to_string())?
                .phone_code_required());
            jail.set_env("MASKDRAW_ENVIRONMENT", "staging");
            assert!(Settings::load().is_err());
            jail.set_env("MASKDRAW_ENVIRONMENT", "production");
            jail.set_env("MASKDRAW_SMS_WEBHOOK_URL", "ftp://gateway/sms");
            assert!(Settings::load().is_err());
            Ok(())
        });
    }

    #[test]
    fn outside_development_a_missing_intake_key_or_receipts_off_is_refused_by_name() {
        let prod = Settings::default();
        let err = prod.refuse_missing_intake_key().unwrap_err().to_string();
        assert!(err.contains("intake_key_file"), "{err}");
        assert!(prod.intake_key().is_err());
        let dir = std::env::temp_dir().join(format!("md-intake-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("intake.key");
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        std::fs::write(&file, lottery::sign::secret_key_file(&key)).unwrap();
        let own = Settings {
            intake_key_file: Some(file.clone()),
            ..Settings::default()
        };
        own.refuse_missing_intake_key().unwrap();
        assert_eq!(own.intake_key().unwrap().to_bytes(), key.to_bytes());
        let off = Settings {
            receipts: false,
            ..own
        };
        assert!(off
            .refuse_missing_intake_key()
            .unwrap_err()
            .to_string()
            .contains("receipts"));
        std::fs::write(&file, "not a key\n").unwrap();
        assert!(Settings {
            intake_key_file: Some(file),
            ..Settings::default()
        }
        .intake_key()
        .unwrap_err()
        .to_string()
        .contains("intake_key_file"));
        std::fs::remove_dir_all(dir).unwrap();
        // Development derives one from hmac_secret: the same secret, the same key.
        let dev = Settings {
            environment: Environment::Development,
            ..Settings::default()
        };
        dev.refuse_missing_intake_key().unwrap();
        assert_eq!(
            dev.intake_key().unwrap().to_bytes(),
            dev.clone().intake_key().unwrap().to_bytes()
        );
        let other = Settings {
            hmac_secret: Secret::new("another-development-secret"),
            ..dev.clone()
        };
        assert_ne!(
            other.intake_key().unwrap().to_bytes(),
            dev.intake_key().unwrap().to_bytes()
        );
    }

    #[test]
    fn a_witness_with_a_bad_party_name_is_refused() {
        let s = Settings {
            witnesses: [("Notary".to_string(), PathBuf::from("notary.pub"))].into(),
            ..Settings::default()
        };
        assert!(s.check().unwrap_err().to_string().contains("witnesses"));
    }

    #[test]
    fn a_short_secret_is_refused() {
        let s = Settings {
            hmac_secret: Secret::new("short"),
            ..Settings::default()
        };
        assert!(s.check().is_err());
    }
}
