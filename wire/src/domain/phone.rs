use super::ParseError;

/// An 11-digit mainland mobile number (`1[3-9]` and nine digits). Leading `+`s, an optional
/// `86` prefix, and spaces or dashes anywhere are accepted and dropped.
/// (The API's document states this grammar as a pattern: nothing else is forgiven.)
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// # Errors
    /// When what is left after dropping the prefix and separators is not a mobile number.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let digits: String = raw
            .trim_start_matches('+')
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        let digits = match digits.strip_prefix("86") {
            Some(rest) if rest.len() == 11 => rest.to_string(),
            _ => digits,
        };
        let b = digits.as_bytes();
        if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) {
            return Err(ParseError("a mobile number has 11 digits"));
        }
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return Err(ParseError("a mainland mobile number starts with 13 to 19"));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({}****{})", &self.0[..3], &self.0[7..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefixes_and_separators_are_dropped() {
        assert_eq!(
            Phone::parse("+86 138-0013-8000").unwrap().as_str(),
            "13800138000"
        );
        assert_eq!(
            Phone::parse(" 13800138000 ").unwrap().as_str(),
            "13800138000"
        );
        // Other blanks are not separators.
        assert!(Phone::parse("13800138000\t").is_err());
        assert!(Phone::parse("\u{3000}13800138000").is_err());
    }

    #[test]
    fn landlines_and_short_numbers_are_refused() {
        for bad in [
            "020-83838383",
            "1380013800",
            "12800138000",
            "138001380001",
            "1380013800a",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_mobile_number_parses_to_itself(second in 3u8..10, rest in 0u64..1_000_000_000) {
            let s = format!("1{second}{rest:09}");
            let p = Phone::parse(&s).unwrap();
            prop_assert_eq!(p.as_str(), s.as_str());
        }
    }
}
