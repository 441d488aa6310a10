//! Domain types: parse, don't validate. Every value that crosses the API boundary is turned
//! into one of these before any IO happens (STYLE.md "Types carry the rules").

mod id_number;
mod identifier;
mod name;
mod phone;
mod tags;
mod ticket_id;

pub use id_number::IdNumber;
pub use identifier::{DistrictId, PharmacyId, ProductId};
pub use name::PersonName;
pub use phone::Phone;
pub use tags::{holder_secret, is_holder, person_tag, phone_tag};
pub use ticket_id::TicketId;

/// The longest validity or cooldown, in days: ten years (settings beyond it are refused, and the
/// persister refuses a reservation valid for longer).
pub const MAX_DAYS: u32 = 3_650;

/// Why a piece of input was refused; the API maps it to `400 validation_failed` with `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub &'static str);
