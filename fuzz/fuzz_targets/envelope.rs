//! The broker's envelope as the persister reads it: any bytes are either an envelope whose
//! every field passed the domain's rules or poison; an envelope serializes to bytes that parse
//! to the same envelope; and every reservation it lets through makes a valid `entrants.csv`
//! line, the form the seal writes it in (a reservation the persister stores but the seal cannot
//! write would stop the day's seal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery::snapshot::Entrant;
use maskdraw_wire::domain::TicketId;
use maskdraw_wire::envelope::{Envelope, ReservationEvent};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::parse(data) {
        assert_eq!(Envelope::parse(&env.to_bytes()).ok().as_ref(), Some(&env));
        for r in &env.reservations {
            assert_eq!(
                ReservationEvent::from_bytes(&r.to_bytes()).ok().as_ref(),
                Some(r)
            );
            let id = TicketId::parse(&r.ticket_id).expect("checked by parse");
            assert_eq!(id.to_string(), r.ticket_id);
            let line = format!(
                "{},{},{},{},{}",
                r.ticket_id,
                r.pharmacy_id,
                r.product_id,
                u8::from(r.flexible),
                r.person_tag
            );
            let entrant = Entrant::parse_line(line.as_bytes());
            assert!(entrant.is_ok(), "{line}: {entrant:?}");
            assert_eq!(entrant.map(|e| e.ticket_id.to_u128()), Ok(id.value()));
        }
    }
});
