//! What the benches share (and the test suite includes): the open-model load generator, the
//! fault machinery and the day's set-up.
#![allow(dead_code)] // each bench uses a part

pub mod day_setup;
pub mod faults;
pub mod intake;
pub mod load;

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
