#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod chain;
pub mod cosign;
pub mod dir;
pub mod draw;
pub mod limits;
pub mod merkle;
pub mod proof;
pub mod receipt;
pub mod rolls;
pub mod sample;
pub mod scan;
pub mod sign;
pub mod snapshot;
pub mod text;
pub mod tiles;
pub mod verify;

/// Progress reporting for long work, so the library stays free of any
/// terminal code. Every method has a default that does nothing.
pub trait Progress: Sync {
    /// A stage of `total` units (bytes or items) begins.
    fn start(&self, _stage: &str, _total: u64) {}
    /// `done` units of the current stage are done (absolute, not a delta).
    fn set(&self, _done: u64) {}
    /// The current stage ended.
    fn finish(&self) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
