//! What the fuzz targets share.

use lottery::text::TextError;

/// A text refused by `SealText::parse`, `DrawText::parse` or `SeedText::parse` must have been
/// refused by a line rule: the canonical-form guard that follows them (line 0) is there for
/// texts the rules let through by mistake, and must never fire.
pub fn assert_refused_by_a_line_rule(e: &TextError) {
    if let TextError::Line {
        line: 0, reason, ..
    } = e
    {
        panic!("a text passed every line rule but is not canonical: {reason}");
    }
    assert!(!e.to_string().is_empty());
}
