//! The message that carries reservations from intake to the persister: a JSON envelope with a
//! version and a batch of reservations that shared one confirmed publish (DESIGN.md "Scale").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{PharmacyId, ProductId, TicketId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationEvent {
    pub ticket_id: String,
    pub person_tag: String,
    pub phone_tag: String,
    pub masked_id: String,
    pub pharmacy_id: String,
    pub product_id: String,
    pub flexible: bool,
    pub accepted_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl ReservationEvent {
    /// The reservation as Redis keeps it beside its lock until it is durable.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings, bools and dates cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// # Errors
    /// When the bytes are not a reservation.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub reservations: Vec<ReservationEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("not a reservation envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown envelope version {0}")]
    Version(u32),
    #[error("reservation {index}: {why}")]
    Field { index: usize, why: &'static str },
}

fn is_tag(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl Envelope {
    pub const VERSION: u32 = 1;

    pub fn new(reservations: Vec<ReservationEvent>) -> Self {
        Self {
            v: Self::VERSION,
            reservations,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings, bools and dates cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks a message body; anything that fails is poison for the dead-letter queue.
    ///
    /// # Errors
    /// When the body is not JSON of this shape, the version is unknown or a field breaks its rule.
    pub fn parse(body: &[u8]) -> Result<Self, MessageError> {
        let env: Envelope = serde_json::from_slice(body)?;
        if env.v != Self::VERSION {
            return Err(MessageError::Version(env.v));
        }
        for (index, r) in env.reservations.iter().enumerate() {
            let bad = |why| Err(MessageError::Field { index, why });
            if TicketId::parse(&r.ticket_id).is_err() {
                return bad("ticket_id");
            }
            if !is_tag(&r.person_tag) || !is_tag(&r.phone_tag) {
                return bad("person_tag or phone_tag");
            }
            if PharmacyId::parse(&r.pharmacy_id).is_err()
                || ProductId::parse(&r.product_id).is_err()
            {
                return bad("pharmacy_id or product_id");
            }
            if r.masked_id.len() != 18 || r.valid_until <= r.accepted_at {
                return bad("masked_id or validity");
            }
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event() -> ReservationEvent {
        ReservationEvent {
            ticket_id: "01KARC38627GVHHC7H1R7AQYA9".into(),
            person_tag: "1807dfaf1f7e42734f56d48f05e1ddfb".into(),
            phone_tag: "2807dfaf1f7e42734f56d48f05e1ddfb".into(),
            masked_id: "4401**********123X".into(),
            pharmacy_id: "GZ-TH-0001".into(),
            product_id: "KN95".into(),
            flexible: true,
            accepted_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            valid_until: "2026-12-03T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn an_envelope_survives_the_round_trip() {
        let env = Envelope::new(vec![event(), event()]);
        assert_eq!(Envelope::parse(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn poison_is_recognised() {
        assert!(Envelope::parse(b"not json").is_err());
        assert!(Envelope::parse(br#"{"v":2,"reservations":[]}"#).is_err());
        let mut e = event();
        e.person_tag = "XYZ".into();
        assert!(Envelope::parse(&Envelope::new(vec![e]).to_bytes()).is_err());
    }
}
