use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{IdNumber, Phone};

fn tag(secret: &[u8], domain: &[u8], value: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(domain);
    mac.update(value);
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// `person_tag = HMAC-SHA256(secret, normalized id)`, first 16 bytes as lowercase hex
/// (DESIGN.md "Rules of the reservation"): the only trace of the identity number we keep.
pub fn person_tag(secret: &[u8], id: &IdNumber) -> String {
    tag(secret, b"", id.normalized().as_bytes())
}

/// The phone's tag, domain-separated from the person tag; used to match a lookup.
pub fn phone_tag(secret: &[u8], phone: &Phone) -> String {
    tag(secret, b"phone:", phone.as_str().as_bytes())
}

fn holder_mac(secret: &[u8], ticket: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(b"holder:");
    mac.update(ticket.as_bytes());
    mac
}

/// The holder secret of a ticket, returned with its 202: ticket ids become public with
/// `entrants.csv`, so a ticket id alone shows only the outcome; whoever also shows this secret
/// sees the pickup code. Derived (HMAC with its own label), so nothing is stored and it
/// survives the loss of any cache.
pub fn holder_secret(secret: &[u8], ticket: &str) -> String {
    hex::encode(&holder_mac(secret, ticket).finalize().into_bytes()[..16])
}

/// Whether `given` is the holder secret of `ticket`, compared in constant time.
pub fn is_holder(secret: &[u8], ticket: &str, given: &str) -> bool {
    match hex::decode(given) {
        Ok(tag) if tag.len() == 16 => holder_mac(secret, ticket)
            .verify_truncated_left(&tag)
            .is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently: python3 -c "import hmac,hashlib;
    // print(hmac.new(b'0123456789abcdef', b'11010519491231002X', hashlib.sha256).hexdigest()[:32])"
    #[test]
    fn the_person_tag_is_the_truncated_hmac_of_the_normalized_id() {
        let id = IdNumber::parse("11010519491231002x").unwrap();
        assert_eq!(
            person_tag(b"0123456789abcdef", &id),
            "dd6a5ba2eed683e7925b20f655c01434"
        );
    }

    #[test]
    fn only_the_holder_secret_of_that_ticket_opens_it() {
        let s = b"0123456789abcdef";
        let t = "01KARC38627GVHHC7H1R7AQYA9";
        let h = holder_secret(s, t);
        assert_eq!(h.len(), 32);
        assert!(is_holder(s, t, &h));
        assert!(!is_holder(s, "01KARC38627GVHHC7H1R7AQYA8", &h));
        assert!(!is_holder(b"another-secret-16", t, &h));
        assert!(!is_holder(s, t, &h[..30]));
        assert!(!is_holder(s, t, "not hex"));
    }

    #[test]
    fn phone_and_person_tags_differ_for_the_same_digits() {
        let phone = Phone::parse("13800138000").unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_ne!(
            phone_tag(b"0123456789abcdef", &phone),
            person_tag(b"0123456789abcdef", &id)
        );
        assert_eq!(phone_tag(b"0123456789abcdef", &phone).len(), 32);
    }
}
