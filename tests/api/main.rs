//! One integration test binary against the real PostgreSQL, Redis and RabbitMQ on loopback.
//! Every test gets its own database, Redis key prefix and queue names (see `helpers`).

// The benches' load generator and fault machinery (own services, proxies, processes).
#[path = "../../benches/common/mod.rs"]
mod common;

mod browser;
mod cluster;
mod cluster_infra;
mod conformance;
mod day;
mod deploy;
mod durability;
mod fallback_durability;
mod faults;
mod fuzzing;
mod hardening;
mod helpers;
mod locks;
mod officials;
mod pages;
mod phone_codes;
mod poison;
mod publication;
mod receipts;
mod redis_cluster;
mod reservations;
mod retention;
mod secrets;
mod timeouts;
mod two_of_each;
