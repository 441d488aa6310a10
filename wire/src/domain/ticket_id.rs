use super::ParseError;

/// A ULID: 26 Crockford base32 characters, upper case; 48 bits of milliseconds then 80 random
/// bits, so it is unguessable and sorts by acceptance time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(ulid::Ulid);

impl TicketId {
    /// A fresh id for a reservation accepted at `now_ms` (Unix milliseconds).
    pub fn generate(now_ms: u64) -> Self {
        Self(ulid::Ulid::from_parts(now_ms, rand::random::<u128>()))
    }

    /// # Errors
    /// When `raw` is not 26 upper-case Crockford base32 characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = raw.len() == 26
            && raw.bytes().all(|c| {
                c.is_ascii_digit()
                    || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'L' | b'O' | b'U'))
            })
            && raw.as_bytes()[0] <= b'7';
        if !ok {
            return Err(ParseError(
                "a ticket id is 26 upper-case Crockford base32 characters",
            ));
        }
        ulid::Ulid::from_string(raw)
            .map(Self)
            .map_err(|_| ParseError("a ticket id is 26 upper-case Crockford base32 characters"))
    }

    /// Milliseconds since the Unix epoch at acceptance.
    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }

    /// The id as one 128-bit number (for compact keys).
    pub fn value(&self) -> u128 {
        self.0 .0
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_vector_ticket_parses_and_prints_the_same() {
        let s = "01KARC38627GVHHC7H1R7AQYA9";
        assert_eq!(TicketId::parse(s).unwrap().to_string(), s);
    }

    #[test]
    fn lower_case_and_ambiguous_letters_are_refused() {
        for bad in [
            "01karc38627gvhhc7h1r7aqya9",
            "01KARC38627GVHHC7H1R7AQYAI",
            "01KARC",
            "81KARC38627GVHHC7H1R7AQYA9",
        ] {
            assert!(TicketId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn ids_sort_by_acceptance_time(a in 0u64..(1u64 << 47), b in 0u64..(1u64 << 47)) {
            let (x, y) = (TicketId::generate(a), TicketId::generate(b));
            if a < b { prop_assert!(x.to_string() < y.to_string()); }
            prop_assert_eq!(TicketId::parse(&x.to_string()).unwrap(), x);
        }
    }
}
