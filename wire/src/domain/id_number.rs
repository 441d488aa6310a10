use super::ParseError;

/// An 18-character PRC resident identity number (GB 11643-1999): a 6-digit region code, an
/// 8-digit birth date, a 3-digit sequence and the ISO 7064 MOD 11-2 check character (`X` for 10).
///
/// The raw number never leaves this type except through [`IdNumber::normalized`] (for the
/// HMAC that makes the person tag) and [`IdNumber::masked`] (for pharmacy staff).
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

impl IdNumber {
    /// Parses a number: exactly 18 characters, a final `x` read as `X` (nothing else is
    /// forgiven, so the API's document can state the grammar exactly; the page trims).
    ///
    /// # Errors
    /// When the length, the characters, the region, the birth date or the check character is
    /// wrong.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 18 {
            return Err(ParseError("an identity number has 18 characters"));
        }
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(ParseError(
                "an identity number is 17 digits and a digit or X",
            ));
        }
        if b[0] == b'0' || b[0] == b'9' {
            return Err(ParseError(
                "the region code of the identity number is not valid",
            ));
        }
        let digit = |i: usize| u32::from(b[i] - b'0');
        let year = (0..4).fold(0, |a, i| a * 10 + digit(6 + i));
        let month = digit(10) * 10 + digit(11);
        let day = digit(12) * 10 + digit(13);
        if !(1900..=2100).contains(&year)
            || chrono::NaiveDate::from_ymd_opt(year as i32, month, day).is_none()
        {
            return Err(ParseError(
                "the birth date in the identity number is not a date",
            ));
        }
        let sum: u32 = WEIGHTS.iter().enumerate().map(|(i, w)| w * digit(i)).sum();
        if CHECK[(sum % 11) as usize] != b[17] {
            return Err(ParseError(
                "the check character of the identity number is wrong",
            ));
        }
        Ok(Self(s))
    }

    /// The canonical form hashed into the person tag: 18 characters, `X` upper case.
    pub fn normalized(&self) -> &str {
        &self.0
    }

    /// `4401**********123X`: the first four and the last four characters.
    pub fn masked(&self) -> String {
        format!("{}**********{}", &self.0[..4], &self.0[14..])
    }

    /// Computes the check character for 17 leading digits (used by test and demo generators).
    ///
    /// # Panics
    /// If `first17` is not 17 ASCII digits.
    pub fn check_char(first17: &str) -> char {
        assert!(first17.len() == 17 && first17.bytes().all(|c| c.is_ascii_digit()));
        let sum: u32 = first17
            .bytes()
            .zip(WEIGHTS)
            .map(|(c, w)| w * u32::from(c - b'0'))
            .sum();
        CHECK[(sum % 11) as usize] as char
    }
}

impl std::fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The sample number printed in GB 11643-1999's annex.
    #[test]
    fn the_standard_example_parses() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "1101**********002X");
    }

    #[test]
    fn a_lower_case_x_is_accepted_and_blanks_are_not() {
        assert_eq!(
            IdNumber::parse("11010519491231002x").unwrap().normalized(),
            "11010519491231002X"
        );
        assert!(IdNumber::parse(" 11010519491231002X").is_err());
        assert!(IdNumber::parse("11010519491231002X\t").is_err());
    }

    #[test]
    fn a_wrong_check_character_is_refused() {
        assert!(IdNumber::parse("110105194912310021").is_err());
    }

    #[test]
    fn an_impossible_birth_date_is_refused() {
        let first = "44010619990230123";
        let id = format!("{first}{}", IdNumber::check_char(first));
        assert!(IdNumber::parse(&id).is_err());
    }

    #[test]
    fn short_long_and_non_digit_numbers_are_refused() {
        for bad in [
            "",
            "4401",
            "4401061990010112345",
            "4401061990O101123X",
            "X40106199001011234",
        ] {
            assert!(IdNumber::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_number_with_its_check_character_parses(
            region in 110000u32..660000, y in 1920i32..2020, m in 1u32..13, d in 1u32..29, seq in 0u32..1000
        ) {
            let first = format!("{region:06}{y:04}{m:02}{d:02}{seq:03}");
            let id = format!("{first}{}", IdNumber::check_char(&first));
            prop_assert!(IdNumber::parse(&id).is_ok());
        }

        #[test]
        fn changing_one_digit_breaks_the_check(
            region in 110000u32..660000, y in 1920i32..2020, m in 1u32..13, d in 1u32..29,
            seq in 0u32..1000, pos in 14usize..17, delta in 1u8..10
        ) {
            let first = format!("{region:06}{y:04}{m:02}{d:02}{seq:03}");
            let mut id = format!("{first}{}", IdNumber::check_char(&first)).into_bytes();
            id[pos] = b'0' + (id[pos] - b'0' + delta) % 10;
            prop_assert!(IdNumber::parse(std::str::from_utf8(&id).unwrap()).is_err());
        }
    }
}
