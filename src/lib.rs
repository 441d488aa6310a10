//! maskdraw: a city's fair mask lottery. See ARCHITECTURE.md for the map.

pub mod admission;
pub mod api;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod day;
// In maskdraw-wire with the reservation body and the envelope: no IO, so fuzz/ builds them alone.
pub use maskdraw_wire::domain;
pub mod metrics;
pub mod persist;
pub mod queue;
pub mod receipts;
pub mod retention;
pub mod sms;
pub mod startup;
pub mod store;
pub mod telemetry;
