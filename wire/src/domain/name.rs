use super::ParseError;

/// The name a citizen types: 1 to 30 characters, no control characters (the page trims; the
/// API takes the name as sent, so its document can state the rule exactly).
/// It is checked and then dropped: only the identity number's tag and mask are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// # Errors
    /// When the name is empty, longer than 30 characters or holds control characters.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw;
        let n = s.chars().count();
        if n == 0 {
            return Err(ParseError("the name is empty"));
        }
        if n > 30 {
            return Err(ParseError("the name is longer than 30 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError("the name holds control characters"));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_chinese_name_is_accepted() {
        assert_eq!(PersonName::parse("陈小明").unwrap().as_str(), "陈小明");
    }

    #[test]
    fn empty_long_and_control_names_are_refused() {
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse(&"名".repeat(31)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
    }

    proptest! {
        #[test]
        fn any_short_printable_name_is_accepted(s in "[a-zA-Z\u{4e00}-\u{9fa5}]{1,30}") {
            prop_assert!(PersonName::parse(&s).is_ok());
        }
    }
}
