//! What reaches maskdraw from outside, turned into domain types before any IO (STYLE.md "Parse,
//! don't validate"): the domain types themselves, the body of `POST /api/v1/reservations` and
//! the broker's envelope. No IO and no server dependencies, so that the fuzz targets
//! (`fuzz/`, ARCHITECTURE.md "Fuzzing") build this crate in seconds rather than the whole
//! service.
#![forbid(unsafe_code)]

pub mod body;
pub mod domain;
pub mod envelope;
