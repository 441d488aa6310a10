//! What the benches share: the open-model load generator and the day's set-up.
#![allow(dead_code)] // each bench uses a part

pub mod day_setup;
pub mod intake;
pub mod load;

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
