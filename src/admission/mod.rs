//! Admission: who gets in at peak. Per-client rate limits on every public call and per-person
//! limits on reservations (governor's GCRA), and load shedding when too many requests are in
//! flight or the broker backlog is too deep. The page smooths taps client-side (`gate.json`);
//! scripts skip the page, so the server enforces its own limits here.
//!
//! The client is the TCP peer, unless the peer is one of the configured `trusted_proxies`
//! (the load balancers): then it is the address the proxies appended to `X-Forwarded-For`,
//! read from the right past every trusted hop, so a client cannot pick its own address by
//! sending the header itself.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// 429: this client or person is going too fast; retry after this many seconds.
    RateLimited(u64),
    /// 503: the whole system is full.
    Overloaded(&'static str),
}

/// The public calls, each limited per client address on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Reserve,
    Status,
    /// Proofs and published-file downloads.
    Proof,
    Lookup,
    Pickup,
    /// Asking for a phone code (each one is an SMS the city pays for).
    PhoneCode,
}

/// Per-client rates of each [`Call`].
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub reserve_per_sec: u32,
    pub status_per_sec: u32,
    pub proof_per_sec: u32,
    pub lookup_per_min: u32,
    pub pickup_per_sec: u32,
    pub phone_code_per_min: u32,
    pub person_per_min: u32,
}

pub struct Admission {
    reserve: DefaultKeyedRateLimiter<IpAddr>,
    status: DefaultKeyedRateLimiter<IpAddr>,
    proof: DefaultKeyedRateLimiter<IpAddr>,
    lookup: DefaultKeyedRateLimiter<IpAddr>,
    pickup: DefaultKeyedRateLimiter<IpAddr>,
    phone_code: DefaultKeyedRateLimiter<IpAddr>,
    person: DefaultKeyedRateLimiter<String>,
    proxies: Vec<ipnet::IpNet>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    backlog: AtomicU64,
    max_backlog: u64,
}

/// Holds one in-flight slot until dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl Admission {
    pub fn new(
        rates: Rates,
        proxies: Vec<ipnet::IpNet>,
        max_in_flight: usize,
        max_backlog: u64,
    ) -> Self {
        let per_sec = |n| RateLimiter::keyed(Quota::per_second(nz(n)));
        Self {
            reserve: per_sec(rates.reserve_per_sec),
            status: per_sec(rates.status_per_sec),
            proof: per_sec(rates.proof_per_sec),
            lookup: RateLimiter::keyed(Quota::per_minute(nz(rates.lookup_per_min))),
            pickup: per_sec(rates.pickup_per_sec),
            phone_code: RateLimiter::keyed(Quota::per_minute(nz(rates.phone_code_per_min))),
            person: RateLimiter::keyed(Quota::per_minute(nz(rates.person_per_min))),
            proxies,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight,
            backlog: AtomicU64::new(0),
            max_backlog,
        }
    }

    /// Takes an in-flight slot, or sheds when all are taken or the backlog is too deep.
    ///
    /// # Errors
    /// `Shed::Overloaded` with the reason.
    pub fn enter(&self) -> Result<Slot, Shed> {
        if self.backlog.load(Ordering::Relaxed) > self.max_backlog {
            return Err(Shed::Overloaded("backlog"));
        }
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.in_flight.clone());
        if now >= self.max_in_flight {
            return Err(Shed::Overloaded("in_flight"));
        }
        Ok(slot)
    }

    /// The client behind a request from `peer` that carried these `X-Forwarded-For` values:
    /// `peer` itself unless it is a trusted proxy; then the right-most forwarded address that
    /// is not a trusted proxy (the one the outermost trusted proxy saw).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let trusted = |ip: &IpAddr| self.proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let hops = forwarded_for
            .iter()
            .rev()
            .flat_map(|h| h.rsplit(','))
            .map(str::trim);
        let mut client = peer;
        for hop in hops {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                // A hop we cannot read: nothing left of it can be trusted.
                Err(_) => return client,
            }
        }
        client
    }

    /// # Errors
    /// `Shed::RateLimited` when this client is over its quota for `call`.
    pub fn check(&self, call: Call, client: IpAddr) -> Result<(), Shed> {
        let limiter = match call {
            Call::Reserve => &self.reserve,
            Call::Status => &self.status,
            Call::Proof => &self.proof,
            Call::Lookup => &self.lookup,
            Call::Pickup => &self.pickup,
            Call::PhoneCode => &self.phone_code,
        };
        limiter.check_key(&client).map_err(|nu| {
            Shed::RateLimited(retry_secs(nu.wait_time_from(DefaultClock::default().now())))
        })
    }

    /// # Errors
    /// `Shed::RateLimited` when this person is over their quota.
    pub fn check_person(&self, tag: &str) -> Result<(), Shed> {
        self.person.check_key(&tag.to_string()).map_err(|nu| {
            Shed::RateLimited(retry_secs(nu.wait_time_from(DefaultClock::default().now())))
        })
    }

    /// Records the broker queue depth seen by the monitor.
    pub fn set_backlog(&self, depth: u64) {
        self.backlog.store(depth, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Forgets limiter state of keys that have been quiet, so memory stays bounded.
    pub fn forget_idle(&self) {
        for l in [
            &self.reserve,
            &self.status,
            &self.proof,
            &self.lookup,
            &self.pickup,
            &self.phone_code,
        ] {
            l.retain_recent();
        }
        self.person.retain_recent();
    }
}

/// A bounded queue in front of a scarce resource: at most `slots` callers use it at once and
/// at most `max_waiting` wait for a turn; a caller past that bound is turned away at once
/// (so the excess of a burst is shed in microseconds) while a burst that fits the queue waits
/// its turn, however slow the resource is today.
pub struct Gate {
    slots: tokio::sync::Semaphore,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl Gate {
    pub fn new(slots: usize, max_waiting: usize) -> Self {
        Self {
            slots: tokio::sync::Semaphore::new(slots),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// A turn, or `None` when the queue is full or no turn came within `patience`.
    pub async fn enter(&self, patience: Duration) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Some(permit);
        }
        // Counted as waiting until this future ends, however it ends: a request whose client
        // went away is dropped mid-wait and must not keep its place in the count.
        let now = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Slot(self.waiting.clone());
        if now >= self.max_waiting {
            return None;
        }
        tokio::time::timeout(patience, self.slots.acquire())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(reserve: u32) -> Rates {
        Rates {
            reserve_per_sec: reserve,
            status_per_sec: 3,
            proof_per_sec: 1,
            lookup_per_min: 1,
            pickup_per_sec: 1,
            phone_code_per_min: 1,
            person_per_min: 100,
        }
    }

    fn admission(reserve: u32, in_flight: usize, backlog: u64) -> Admission {
        Admission::new(rates(reserve), Vec::new(), in_flight, backlog)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_over_its_quota_is_told_when_to_retry() {
        let a = admission(2, 10, 10);
        let ip1 = ip("10.0.0.1");
        assert!(a.check(Call::Reserve, ip1).is_ok());
        assert!(a.check(Call::Reserve, ip1).is_ok());
        assert!(matches!(a.check(Call::Reserve, ip1), Err(Shed::RateLimited(s)) if s >= 1));
        assert!(a.check(Call::Reserve, ip("10.0.0.2")).is_ok());
    }

    #[test]
    fn each_call_has_its_own_quota() {
        let a = admission(1, 10, 10);
        let c = ip("10.0.0.1");
        assert!(a.check(Call::Reserve, c).is_ok());
        assert!(a.check(Call::Reserve, c).is_err());
        for _ in 0..3 {
            assert!(a.check(Call::Status, c).is_ok());
        }
        assert!(a.check(Call::Status, c).is_err());
        assert!(a.check(Call::Proof, c).is_ok());
        assert!(a.check(Call::Proof, c).is_err());
        assert!(a.check(Call::Lookup, c).is_ok());
        assert!(matches!(a.check(Call::Lookup, c), Err(Shed::RateLimited(s)) if s >= 30));
    }

    #[test]
    fn the_forwarded_client_counts_only_behind_a_trusted_proxy() {
        let a = Admission::new(rates(1), vec!["10.0.0.0/8".parse().unwrap()], 10, 10);
        // Not a proxy: the header is the client's own claim and is ignored.
        assert_eq!(a.client(ip("203.0.113.9"), &["1.2.3.4"]), ip("203.0.113.9"));
        // Behind the balancer: the address it appended.
        assert_eq!(
            a.client(ip("10.0.0.5"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // A client that sends its own header cannot choose: the right-most untrusted hop wins.
        assert_eq!(
            a.client(ip("10.0.0.5"), &["1.2.3.4, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            a.client(ip("10.0.0.5"), &["1.2.3.4", "198.51.100.7, 10.0.0.9"]),
            ip("198.51.100.7")
        );
        // Garbage where an address should be: the last trusted hop is the best we know.
        assert_eq!(a.client(ip("10.0.0.5"), &["nonsense"]), ip("10.0.0.5"));
        assert_eq!(a.client(ip("10.0.0.5"), &[]), ip("10.0.0.5"));
        // Two clients behind one balancer are limited apart.
        assert!(a
            .check(Call::Reserve, a.client(ip("10.0.0.5"), &["198.51.100.1"]))
            .is_ok());
        assert!(a
            .check(Call::Reserve, a.client(ip("10.0.0.5"), &["198.51.100.2"]))
            .is_ok());
        assert!(a
            .check(Call::Reserve, a.client(ip("10.0.0.5"), &["198.51.100.1"]))
            .is_err());
    }

    #[test]
    fn requests_past_the_in_flight_bound_are_shed_and_slots_come_back() {
        let a = admission(100, 2, 10);
        let s1 = a.enter().unwrap();
        let _s2 = a.enter().unwrap();
        assert_eq!(a.enter().err(), Some(Shed::Overloaded("in_flight")));
        drop(s1);
        assert!(a.enter().is_ok());
    }

    #[test]
    fn a_deep_backlog_sheds_load() {
        let a = admission(100, 10, 5);
        a.set_backlog(6);
        assert_eq!(a.enter().err(), Some(Shed::Overloaded("backlog")));
        a.set_backlog(5);
        assert!(a.enter().is_ok());
    }

    #[tokio::test]
    async fn a_gate_lets_its_queue_wait_and_turns_the_excess_away_at_once() {
        let gate = Arc::new(Gate::new(1, 2));
        let held = gate
            .enter(Duration::from_secs(1))
            .await
            .expect("a free slot");
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.enter(Duration::from_secs(5)).await.is_some() })
            })
            .collect();
        while gate.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        // The queue is full: the next caller is refused without waiting for its patience.
        let t = std::time::Instant::now();
        assert!(gate.enter(Duration::from_secs(5)).await.is_none());
        assert!(t.elapsed() < Duration::from_secs(5));
        drop(held);
        for w in waiters {
            assert!(w.await.unwrap(), "a queued caller gets its turn");
        }
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        // With the slot held and nobody else waiting, patience runs out.
        let _held = gate.enter(Duration::from_secs(1)).await.unwrap();
        assert!(gate.enter(Duration::from_millis(20)).await.is_none());
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        // A waiter dropped mid-wait (its client went away) gives its place back.
        let gone = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter(Duration::from_secs(60)).await.is_some() })
        };
        while gate.waiting.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
    }
}
