//! Admission: who gets in at peak. Per-IP and per-person rate limits (governor's GCRA) and
//! load shedding when too many requests are in flight or the broker backlog is too deep.
//! The page smooths taps client-side (`gate.json`); scripts skip the page, so the server
//! enforces its own limits here.

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

pub struct Admission {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    person: DefaultKeyedRateLimiter<String>,
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

impl Admission {
    pub fn new(
        ip_per_sec: u32,
        person_per_min: u32,
        max_in_flight: usize,
        max_backlog: u64,
    ) -> Self {
        let ip_q = Quota::per_second(NonZeroU32::new(ip_per_sec.max(1)).unwrap_or(NonZeroU32::MIN));
        let person_q =
            Quota::per_minute(NonZeroU32::new(person_per_min.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            ip: RateLimiter::keyed(ip_q),
            person: RateLimiter::keyed(person_q),
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

    /// # Errors
    /// `Shed::RateLimited` when this address is over its quota.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Shed> {
        self.ip.check_key(&ip).map_err(|nu| {
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
        self.ip.retain_recent();
        self.person.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_quota_is_told_when_to_retry() {
        let a = Admission::new(2, 100, 10, 10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(a.check_ip(ip).is_ok());
        assert!(a.check_ip(ip).is_ok());
        assert!(matches!(a.check_ip(ip), Err(Shed::RateLimited(s)) if s >= 1));
        assert!(a.check_ip("10.0.0.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn requests_past_the_in_flight_bound_are_shed_and_slots_come_back() {
        let a = Admission::new(100, 100, 2, 10);
        let s1 = a.enter().unwrap();
        let _s2 = a.enter().unwrap();
        assert_eq!(a.enter().err(), Some(Shed::Overloaded("in_flight")));
        drop(s1);
        assert!(a.enter().is_ok());
    }

    #[test]
    fn a_deep_backlog_sheds_load() {
        let a = Admission::new(100, 100, 10, 5);
        a.set_backlog(6);
        assert_eq!(a.enter().err(), Some(Shed::Overloaded("backlog")));
        a.set_backlog(5);
        assert!(a.enter().is_ok());
    }
}
