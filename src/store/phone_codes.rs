//! One-time phone codes in Redis: an HMAC of the code (never the code), its wrong attempts, when
//! it was sent, and which request spent it; a per-phone count of codes sent in 24 hours.
//!
//! Both keys of a phone carry its phone tag as the hash tag (`md:{pc:<phone tag>}:code`,
//! `…:sent`), so each script touches one slot and Redis Cluster works. Every decision is one
//! Lua script, with Redis's own clock (`TIME`).

use deadpool_redis::redis::{self, Script};

use super::redis::{RedisStore, StoreError};

/// Sends a new code unless the phone had one less than `ARGV[3]` seconds ago or `ARGV[4]`
/// in the last 24 hours (then `{'wait', seconds}`). A new code replaces the old one, attempts
/// and all.
const ISSUE_LUA: &str = r#"
local now = tonumber(redis.call('TIME')[1])
local at = tonumber(redis.call('HGET', KEYS[1], 'at'))
local resend = tonumber(ARGV[3])
if at and now - at < resend then return {'wait', resend - (now - at)} end
local sent = tonumber(redis.call('GET', KEYS[2]) or '0')
if sent >= tonumber(ARGV[4]) then
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 1 then ttl = 1 end
  return {'wait', ttl}
end
if sent == 0 then redis.call('SET', KEYS[2], 1, 'EX', 86400) else redis.call('INCR', KEYS[2]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'tries', 0, 'at', now)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {'ok'}
"#;

/// The code with this mac could not be sent: it is dropped and not counted, so the person may
/// ask again at once.
const FORGET_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
local sent = tonumber(redis.call('GET', KEYS[2]) or '0')
if sent > 0 then redis.call('DECR', KEYS[2]) end
return 1
"#;

/// Spends the code for the request `ARGV[2]` (`person tag|Idempotency-Key`, or a one-off value
/// without a key) if `ARGV[1]` is its mac. The same request again (a retry, same person, same
/// key, same code) finds it spent by itself and passes: the reservation script then answers it
/// as before. A wrong mac counts an attempt; after `ARGV[3]` the code is void (it stays, so the
/// resend interval still holds).
const CONSUME_LUA: &str = r#"
local v = redis.call('HMGET', KEYS[1], 'mac', 'tries', 'spent')
local mac, tries, spent = v[1], tonumber(v[2]) or 0, v[3]
if not mac then return 'missing' end
if spent then
  if spent == ARGV[2] and mac == ARGV[1] then return 'ok' end
  return 'spent'
end
if tries >= tonumber(ARGV[3]) then return 'void' end
if mac == ARGV[1] then
  redis.call('HSET', KEYS[1], 'spent', ARGV[2])
  return 'ok'
end
redis.call('HINCRBY', KEYS[1], 'tries', 1)
return 'wrong'
"#;

/// The request that spent the code failed on our side (503): the code is unspent again.
const GIVE_BACK_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'spent') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'spent')
return 1
"#;

/// What asking for a code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// Stored: send it now.
    Stored,
    /// Too soon, or too many today: ask again after this many seconds.
    Wait(u64),
}

/// What checking a code came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consume {
    /// Right: spent by this request now (or by this same request before).
    Spent,
    /// No code for this phone (never sent, or expired).
    Missing,
    /// Wrong code (one attempt counted).
    Wrong,
    /// Too many wrong attempts: the code is void.
    Void,
    /// Spent already by another reservation.
    AlreadySpent,
}

/// Limits of the codes (from the settings).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ttl_secs: u64,
    pub resend_secs: u64,
    pub per_day: u32,
    pub max_attempts: u32,
}

#[derive(Clone)]
pub struct PhoneCodes {
    redis: RedisStore,
    prefix: String,
    limits: Limits,
    issue: Script,
    forget: Script,
    consume: Script,
    give_back: Script,
}

impl PhoneCodes {
    /// On the pooled connections of `redis` (codes are rare next to reservations), under `prefix`.
    pub fn new(redis: RedisStore, prefix: &str, limits: Limits) -> Self {
        Self {
            redis,
            prefix: prefix.to_string(),
            limits,
            issue: Script::new(ISSUE_LUA),
            forget: Script::new(FORGET_LUA),
            consume: Script::new(CONSUME_LUA),
            give_back: Script::new(GIVE_BACK_LUA),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn code_key(&self, phone_tag: &str) -> String {
        format!("{}:{{pc:{phone_tag}}}:code", self.prefix)
    }
    fn sent_key(&self, phone_tag: &str) -> String {
        format!("{}:{{pc:{phone_tag}}}:sent", self.prefix)
    }

    /// Stores the mac of a new code for the phone, unless its limits say wait.
    ///
    /// # Errors
    /// When Redis cannot be reached or the script answers something unknown.
    pub async fn issue(&self, phone_tag: &str, mac: &str) -> Result<Issue, StoreError> {
        let mut conn = self.redis.connection().await?;
        let answer: Vec<redis::Value> = self
            .issue
            .key(self.code_key(phone_tag))
            .key(self.sent_key(phone_tag))
            .arg(mac)
            .arg(self.limits.ttl_secs)
            .arg(self.limits.resend_secs)
            .arg(self.limits.per_day)
            .invoke_async(&mut conn)
            .await?;
        let word = answer
            .first()
            .and_then(|v| redis::from_redis_value::<String>(v).ok());
        let secs = answer
            .get(1)
            .and_then(|v| redis::from_redis_value::<i64>(v).ok());
        match (word.as_deref(), secs) {
            (Some("ok"), _) => Ok(Issue::Stored),
            (Some("wait"), Some(s)) => Ok(Issue::Wait(s.max(1) as u64)),
            _ => Err(StoreError::Script(word.into_iter().collect())),
        }
    }

    /// Drops the code with `mac` (it could not be sent) and uncounts it.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn forget(&self, phone_tag: &str, mac: &str) -> Result<(), StoreError> {
        let mut conn = self.redis.connection().await?;
        let _: i64 = self
            .forget
            .key(self.code_key(phone_tag))
            .key(self.sent_key(phone_tag))
            .arg(mac)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Checks `mac` against the phone's code and spends it for `request`.
    ///
    /// # Errors
    /// When Redis cannot be reached or the script answers something unknown.
    pub async fn consume(
        &self,
        phone_tag: &str,
        mac: &str,
        request: &str,
    ) -> Result<Consume, StoreError> {
        let mut conn = self.redis.connection().await?;
        let answer: String = self
            .consume
            .key(self.code_key(phone_tag))
            .arg(mac)
            .arg(request)
            .arg(self.limits.max_attempts)
            .invoke_async(&mut conn)
            .await?;
        match answer.as_str() {
            "ok" => Ok(Consume::Spent),
            "missing" => Ok(Consume::Missing),
            "wrong" => Ok(Consume::Wrong),
            "void" => Ok(Consume::Void),
            "spent" => Ok(Consume::AlreadySpent),
            other => Err(StoreError::Script(vec![other.to_string()])),
        }
    }

    /// Unspends the code `request` spent (the request failed on our side).
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn give_back(&self, phone_tag: &str, request: &str) -> Result<(), StoreError> {
        let mut conn = self.redis.connection().await?;
        let _: i64 = self
            .give_back
            .key(self.code_key(phone_tag))
            .arg(request)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
