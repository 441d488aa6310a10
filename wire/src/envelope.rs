//! The message that carries reservations from intake to the persister: a JSON envelope with a
//! version and a batch of reservations that shared one confirmed publish (DESIGN.md "Scale").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{PharmacyId, ProductId, TicketId, MAX_DAYS};

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

/// `4401**********123X`: what `IdNumber::masked` writes.
fn is_masked_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4..14].iter().all(|&c| c == b'*')
        && b[14..17].iter().all(u8::is_ascii_digit)
        && (b[17].is_ascii_digit() || b[17] == b'X')
}

/// Times intake can have written: after the service existed, before the year 2200, and a
/// validity no longer than the longest configurable one ([`MAX_DAYS`]).
fn sane_times(r: &ReservationEvent) -> bool {
    let (lo, hi) = (
        DateTime::<Utc>::from_timestamp(1_577_836_800, 0), // 2020-01-01
        DateTime::<Utc>::from_timestamp(7_258_118_400, 0), // 2200-01-01
    );
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return false;
    };
    r.accepted_at >= lo
        && r.valid_until <= hi
        && r.valid_until > r.accepted_at
        && r.valid_until - r.accepted_at <= chrono::Duration::days(i64::from(MAX_DAYS))
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

    /// Parses and checks a message body with the domain's own rules, field by field; anything
    /// that fails is poison for the dead-letter queue (it must never reach the database, where
    /// a NUL byte, say, would fail the whole batch again and again).
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
            if !is_masked_id(&r.masked_id) {
                return bad("masked_id");
            }
            if !sane_times(r) {
                return bad("accepted_at or valid_until");
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

    /// Found by the `reservation_body` fuzz target: with `validity_days` above 400 (the settings
    /// allow up to 3,650) every reservation intake published was poison to the persister, which
    /// still refused validities longer than 400 days.
    #[test]
    fn a_reservation_valid_for_the_longest_configurable_validity_is_not_poison() {
        let body = br#"{"v":1,"reservations":[{"ticket_id":"01M83XJ8BV2KMCQBPZ2Y1HDWFK","person_tag":"b70c1400292ba6b615856dda289350c8","phone_tag":"d969a45ec8d45a4e60b8958c0b2375cd","masked_id":"4401**********5544","pharmacy_id":"G-","product_id":"S","flexible":false,"accepted_at":"2026-11-23T10:00:00.123Z","valid_until":"2036-11-20T10:00:00.123Z"}]}"#;
        let env = Envelope::parse(body).unwrap();
        let r = &env.reservations[0];
        assert_eq!(
            r.valid_until - r.accepted_at,
            chrono::Duration::days(i64::from(MAX_DAYS))
        );
        let mut longer = r.clone();
        longer.valid_until += chrono::Duration::milliseconds(1);
        assert!(Envelope::parse(&Envelope::new(vec![longer]).to_bytes()).is_err());
    }

    #[test]
    fn poison_is_recognised() {
        assert!(Envelope::parse(b"not json").is_err());
        assert!(Envelope::parse(br#"{"v":2,"reservations":[]}"#).is_err());
        let mut e = event();
        e.person_tag = "XYZ".into();
        assert!(Envelope::parse(&Envelope::new(vec![e]).to_bytes()).is_err());
    }

    #[test]
    fn every_field_is_checked_with_the_domain_rules() {
        type Breaker = Box<dyn Fn(&mut ReservationEvent)>;
        let breakers: Vec<(&str, Breaker)> = vec![
            (
                "masked_id",
                Box::new(|e| e.masked_id = "4401**********12\0X".into()),
            ),
            (
                "masked_id",
                Box::new(|e| e.masked_id = "4401*********1123X".into()),
            ),
            (
                "masked_id",
                Box::new(|e| e.masked_id = "4401**********123x".into()),
            ),
            ("pharmacy_id", Box::new(|e| e.pharmacy_id = "GZ\0TH".into())),
            ("product_id", Box::new(|e| e.product_id = "kn95".into())),
            (
                "ticket_id",
                Box::new(|e| e.ticket_id = "01KARC38627GVHHC7H1R7AQYA\0".into()),
            ),
            (
                "phone_tag",
                Box::new(|e| e.phone_tag = "2807DFAF1F7E42734F56D48F05E1DDFB".into()),
            ),
            ("times", Box::new(|e| e.valid_until = e.accepted_at)),
            (
                "times",
                Box::new(|e| {
                    e.valid_until = e.accepted_at + chrono::Duration::days(i64::from(MAX_DAYS) + 1)
                }),
            ),
            (
                "times",
                Box::new(|e| e.accepted_at = "1999-01-01T00:00:00Z".parse().unwrap()),
            ),
        ];
        for (what, breaks) in breakers {
            let mut e = event();
            breaks(&mut e);
            let body = Envelope::new(vec![event(), e]).to_bytes();
            assert!(
                matches!(
                    Envelope::parse(&body),
                    Err(MessageError::Field { index: 1, .. })
                ),
                "{what}"
            );
        }
    }
}
