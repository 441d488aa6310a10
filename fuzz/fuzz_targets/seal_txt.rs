//! `seal.txt`: a text that parses formats back to its very bytes (so the seal id is the hash of
//! the parsed value) and parses again to the same value; the line rules alone refuse every
//! non-canonical text, so the final canonical-form guard never fires.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery::text::SealText;
use maskdraw_fuzz::assert_refused_by_a_line_rule;

fuzz_target!(|data: &[u8]| match SealText::parse(data) {
    Ok(seal) => {
        let bytes = seal.to_bytes();
        assert_eq!(bytes, data, "parse then format is not the identity");
        assert_eq!(SealText::parse(&bytes).as_ref(), Ok(&seal));
    }
    Err(e) => assert_refused_by_a_line_rule(&e),
});
