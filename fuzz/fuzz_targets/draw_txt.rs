//! `draw.txt` and the seed text it carries: a text that parses formats back to its very bytes
//! and parses again to the same value; the seed text made from it round-trips too; the line
//! rules alone refuse every non-canonical text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery::text::{DrawText, SeedText};
use maskdraw_fuzz::assert_refused_by_a_line_rule;

fuzz_target!(|data: &[u8]| {
    match DrawText::parse(data) {
        Ok(draw) => {
            let bytes = draw.to_bytes();
            assert_eq!(bytes, data, "parse then format is not the identity");
            assert_eq!(DrawText::parse(&bytes).as_ref(), Ok(&draw));
            let seed = draw.seed_text();
            assert_eq!(SeedText::parse(&seed.to_bytes()).as_ref(), Ok(&seed));
        }
        Err(e) => assert_refused_by_a_line_rule(&e),
    }
    // The same bytes as a seed text (the header differs, the rest of the grammar is shared).
    match SeedText::parse(data) {
        Ok(seed) => assert_eq!(
            seed.to_bytes(),
            data,
            "parse then format is not the identity"
        ),
        Err(e) => assert_refused_by_a_line_rule(&e),
    }
});
