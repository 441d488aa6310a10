//! JSON request bodies: the object, its string fields, and the whole body of
//! `POST /api/v1/reservations` turned into domain types. The API maps [`BodyError`] to `400
//! malformed_json` or `400 validation_failed` with `field`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::{phone_tag, IdNumber, ParseError, PersonName, Phone};
use crate::envelope::ReservationEvent;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or not a JSON object (`malformed_json`).
    #[error("{0}")]
    Malformed(String),
    /// A field is missing or breaks its rule (`validation_failed` naming the field).
    #[error("{message}")]
    Field {
        /// The field's name in the body.
        field: &'static str,
        /// What is wrong, for the citizen.
        message: String,
    },
}

impl BodyError {
    fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Field {
            field,
            message: message.into(),
        }
    }
}

/// The body as a JSON object.
///
/// # Errors
/// [`BodyError::Malformed`] when it is not JSON or not an object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(BodyError::Malformed(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(BodyError::Malformed(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// A required string field.
///
/// # Errors
/// [`BodyError::Field`] when it is missing or not a string.
pub fn string_field<'a>(
    m: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, BodyError> {
    match m.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(BodyError::field(field, format!("{field} must be a string"))),
        None => Err(BodyError::field(field, format!("{field} is required"))),
    }
}

/// A required string field turned into a domain type by `parse`.
///
/// # Errors
/// [`BodyError::Field`] when it is missing, not a string, or refused by `parse`.
pub fn parse_with<T>(
    m: &Map<String, Value>,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<T, BodyError> {
    parse(string_field(m, field)?).map_err(|e| BodyError::field(field, e.to_string()))
}

/// Digits of a one-time phone code.
pub const CODE_LEN: usize = 6;

/// A phone code as sent: exactly [`CODE_LEN`] ASCII digits.
#[must_use]
pub fn is_code(s: &str) -> bool {
    s.len() == CODE_LEN && s.bytes().all(|b| b.is_ascii_digit())
}

/// Which pharmacies and products exist (the service's catalog).
pub trait Known {
    /// Whether a pharmacy with this id is listed.
    fn has_pharmacy(&self, id: &str) -> bool;
    /// Whether a product with this id is listed.
    fn has_product(&self, id: &str) -> bool;
}

/// A reservation after parsing: only domain types from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub id_number: IdNumber,
    pub phone: Phone,
    pub pharmacy_id: String,
    pub product_id: String,
    pub flexible: bool,
    /// The one-time code sent to `phone`, when given.
    pub phone_code: Option<String>,
}

impl NewReservation {
    /// The message intake publishes for this reservation, accepted at `accepted_at` as
    /// `ticket_id`; `person_tag` is [`crate::domain::person_tag`] of its id number, which intake
    /// has already computed for its checks. Only tags and the masked id are kept.
    #[must_use]
    pub fn into_event(
        self,
        secret: &[u8],
        ticket_id: String,
        person_tag: String,
        accepted_at: DateTime<Utc>,
        valid_until: DateTime<Utc>,
    ) -> ReservationEvent {
        ReservationEvent {
            ticket_id,
            person_tag,
            phone_tag: phone_tag(secret, &self.phone),
            masked_id: self.id_number.masked(),
            pharmacy_id: self.pharmacy_id,
            product_id: self.product_id,
            flexible: self.flexible,
            accepted_at,
            valid_until,
        }
    }

    /// A body that parses back to this reservation (the name, checked and dropped by the
    /// parser, is `name`).
    #[must_use]
    pub fn to_body(&self, name: &str) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("id_number".into(), self.id_number.normalized().into());
        m.insert("name".into(), name.into());
        m.insert("phone".into(), self.phone.as_str().into());
        m.insert("pharmacy_id".into(), self.pharmacy_id.clone().into());
        m.insert("product_id".into(), self.product_id.clone().into());
        m.insert("flexible".into(), self.flexible.into());
        if let Some(code) = &self.phone_code {
            m.insert("phone_code".into(), code.clone().into());
        }
        Value::Object(m).to_string().into_bytes()
    }
}

/// Turns the body of `POST /api/v1/reservations` into domain types before any IO.
///
/// # Errors
/// [`BodyError::Malformed`], or [`BodyError::Field`] naming the first bad field.
pub fn parse_reservation(body: &[u8], known: &impl Known) -> Result<NewReservation, BodyError> {
    let m = object(body)?;
    let id_number = parse_with(&m, "id_number", IdNumber::parse)?;
    // The name is checked and dropped: nothing but the id's tag and mask is kept.
    parse_with(&m, "name", PersonName::parse)?;
    let phone = parse_with(&m, "phone", Phone::parse)?;
    let pharmacy_id = string_field(&m, "pharmacy_id")?;
    if !known.has_pharmacy(pharmacy_id) {
        return Err(BodyError::field("pharmacy_id", "no such pharmacy"));
    }
    let product_id = string_field(&m, "product_id")?;
    if !known.has_product(product_id) {
        return Err(BodyError::field("product_id", "no such product"));
    }
    let flexible = match m.get("flexible") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(BodyError::field(
                "flexible",
                "flexible must be true or false",
            ))
        }
    };
    // Absent, null and empty all mean "no code"; anything else is 6 digits.
    let phone_code = match m.get("phone_code") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.is_empty() => None,
        Some(Value::String(c)) if is_code(c) => Some(c.clone()),
        Some(_) => return Err(BodyError::field("phone_code", "phone_code is 6 digits")),
    };
    Ok(NewReservation {
        id_number,
        phone,
        pharmacy_id: pharmacy_id.to_string(),
        product_id: product_id.to_string(),
        flexible,
        phone_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two;
    impl Known for Two {
        fn has_pharmacy(&self, id: &str) -> bool {
            id == "GZ-TH-0001"
        }
        fn has_product(&self, id: &str) -> bool {
            id == "KN95"
        }
    }

    const BODY: &str = r#"{"id_number":"11010519491231002x","name":"张三","phone":"+86 138-0013-8000",
        "pharmacy_id":"GZ-TH-0001","product_id":"KN95","flexible":true,"phone_code":"123456"}"#;

    #[test]
    fn a_body_parses_and_its_canonical_body_parses_to_the_same() {
        let r = parse_reservation(BODY.as_bytes(), &Two).unwrap();
        assert_eq!(r.id_number.normalized(), "11010519491231002X");
        assert_eq!(r.phone.as_str(), "13800138000");
        assert_eq!(r.phone_code.as_deref(), Some("123456"));
        assert_eq!(parse_reservation(&r.to_body("x"), &Two), Ok(r));
    }

    /// The input with which the `reservation_body` fuzz target found intake's messages refused
    /// as poison for validities above 400 days (`envelope`'s test has the message).
    #[test]
    fn the_message_for_a_body_is_accepted_by_the_persister_for_every_allowed_validity() {
        let body = br#"{"id_number":"440106199502235544","name":"Li S","phone":" 138-0013-8000","pharmacy_id":"G-","product_id":"S"}"#;
        struct Any;
        impl Known for Any {
            fn has_pharmacy(&self, _: &str) -> bool {
                true
            }
            fn has_product(&self, _: &str) -> bool {
                true
            }
        }
        let r = parse_reservation(body, &Any).unwrap();
        let accepted_at: DateTime<Utc> = "2026-11-23T10:00:00.123Z".parse().unwrap();
        for days in [1, 400, 401, crate::domain::MAX_DAYS] {
            let valid_until = accepted_at + chrono::Duration::days(i64::from(days));
            let tag = crate::domain::person_tag(b"key", &r.id_number);
            let event = r.clone().into_event(
                b"key",
                "01M83XJ8BV2KMCQBPZ2Y1HDWFK".into(),
                tag,
                accepted_at,
                valid_until,
            );
            let message = crate::envelope::Envelope::new(vec![event]).to_bytes();
            assert!(
                crate::envelope::Envelope::parse(&message).is_ok(),
                "{days} days"
            );
        }
    }

    #[test]
    fn the_first_bad_field_is_named() {
        let field = |body: &str| match parse_reservation(body.as_bytes(), &Two) {
            Err(BodyError::Field { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&BODY.replace("KN95", "N95")), "product_id");
        assert_eq!(field(&BODY.replace("true", "1")), "flexible");
        assert_eq!(field(&BODY.replace("123456", "12345")), "phone_code");
        assert_eq!(field(&BODY.replace("张三", "")), "name");
        assert!(matches!(
            parse_reservation(b"[]", &Two),
            Err(BodyError::Malformed(_))
        ));
    }
}
