//! The body of `POST /api/v1/reservations`: any bytes are either a reservation of domain types
//! or a refusal naming a field of the body; a reservation's canonical body parses to the same
//! reservation, what the service derives from it (tags, mask, log form) never panics, and the
//! message intake publishes for it, with the shortest and the longest validity the settings
//! allow, is an envelope the persister accepts (not poison for the dead-letter queue).
#![no_main]

use libfuzzer_sys::fuzz_target;
use maskdraw_wire::body::{parse_reservation, BodyError, Known};
use maskdraw_wire::domain::{person_tag, phone_tag, PharmacyId, ProductId, TicketId, MAX_DAYS};
use maskdraw_wire::envelope::Envelope;

/// A catalog listing every well-formed id, so that the fuzzer gets past the lookups.
struct Everything;

impl Known for Everything {
    fn has_pharmacy(&self, id: &str) -> bool {
        PharmacyId::parse(id).is_ok()
    }
    fn has_product(&self, id: &str) -> bool {
        ProductId::parse(id).is_ok()
    }
}

const FIELDS: [&str; 7] = [
    "id_number",
    "name",
    "phone",
    "pharmacy_id",
    "product_id",
    "flexible",
    "phone_code",
];

fuzz_target!(|data: &[u8]| match parse_reservation(data, &Everything) {
    Ok(r) => {
        assert_eq!(
            parse_reservation(&r.to_body("x"), &Everything).as_ref(),
            Ok(&r)
        );
        assert_eq!(r.id_number.masked().len(), 18);
        assert_eq!(person_tag(b"key", &r.id_number).len(), 32);
        assert_eq!(phone_tag(b"key", &r.phone).len(), 32);
        let _ = format!("{r:?}");
        let accepted_at: chrono::DateTime<chrono::Utc> =
            "2026-11-23T10:00:00.123Z".parse().expect("a time");
        for days in [1, MAX_DAYS] {
            let valid_until = accepted_at + chrono::Duration::days(i64::from(days));
            let ticket = TicketId::generate(accepted_at.timestamp_millis() as u64).to_string();
            let tag = person_tag(b"key", &r.id_number);
            let event = r
                .clone()
                .into_event(b"key", ticket, tag, accepted_at, valid_until);
            let body = Envelope::new(vec![event]).to_bytes();
            let parsed = Envelope::parse(&body);
            assert!(
                parsed.is_ok(),
                "intake's message is poison with a validity of {days} days: {parsed:?}\n{}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    Err(BodyError::Field { field, message }) => {
        assert!(FIELDS.contains(&field), "{field}");
        assert!(!message.is_empty());
    }
    Err(BodyError::Malformed(message)) => assert!(!message.is_empty()),
});
