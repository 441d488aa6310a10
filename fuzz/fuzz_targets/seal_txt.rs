//! `seal.txt`: a text that parses formats back to its very bytes (so the seal id is the hash of
//! the parsed value) and parses again to the same value; the line rules alone refuse every
//! non-canonical text, so the final canonical-form guard never fires.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery::text::{SealText, TextError};

fuzz_target!(|data: &[u8]| match SealText::parse(data) {
    Ok(seal) => {
        let bytes = seal.to_bytes();
        assert_eq!(bytes, data, "parse then format is not the identity");
        assert_eq!(SealText::parse(&bytes).as_ref(), Ok(&seal));
    }
    Err(TextError::Line {
        line: 0, reason, ..
    }) => {
        panic!("a text passed every line rule but is not canonical: {reason}")
    }
    Err(e) => {
        let _ = e.to_string();
    }
});
