use super::ParseError;

/// `[A-Z0-9-]{1,16}` (DESIGN.md "Sealed snapshot format").
fn check(raw: &str) -> Result<(), ParseError> {
    let b = raw.as_bytes();
    if b.is_empty() || b.len() > 16 {
        return Err(ParseError("an identifier has 1 to 16 characters"));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'-')
    {
        return Err(ParseError("an identifier is made of A-Z, 0-9 and -"));
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// # Errors
            /// When `raw` does not match `[A-Z0-9-]{1,16}`.
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                check(raw)?;
                Ok(Self(raw.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A pharmacy's catalog id, as it appears in `stock.csv` and `entrants.csv`.
    PharmacyId
);
identifier!(
    /// A product's catalog id.
    ProductId
);
identifier!(
    /// A district's id; pharmacies of one district share a spill group.
    DistrictId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lower_case_blank_and_long_ids_are_refused() {
        for bad in ["", "gz-1", "GZ 1", "ABCDEFGHIJKLMNOPQ", "GZ_1"] {
            assert!(PharmacyId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_id_of_the_grammar_parses(s in "[A-Z0-9-]{1,16}") {
            let p = ProductId::parse(&s).unwrap();
            prop_assert_eq!(p.as_str(), s.as_str());
        }
    }
}
