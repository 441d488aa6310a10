//! The broker's envelope as the persister reads it: any bytes are either an envelope whose
//! every field passed the domain's rules or poison; an envelope serializes to bytes that parse
//! to the same envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
        }
    }
});
