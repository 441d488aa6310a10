//! `entrants.csv`: the in-memory parser and the streaming scanner (which the notary's verifier
//! and the draw use) give the same verdict on every input, and a file that parses is exactly the
//! file its entrants format to, with the tree head the scanner computed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery::merkle::root_of_lines;
use lottery::scan::scan_entrants;
use lottery::snapshot::{entrants_csv, parse_entrants, SnapshotError};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_entrants(data);
    let scan = scan_entrants(data, None, &|_| {}).expect("reading a slice cannot fail");
    match &parsed {
        Ok(entrants) => {
            assert_eq!(
                entrants_csv(entrants),
                data,
                "parse then format is not the identity"
            );
            assert_eq!(scan.error, None);
            assert!(!scan.duplicate_tag);
            assert_eq!(scan.lines, entrants.len() as u64);
            let tickets: Vec<u128> = entrants.iter().map(|e| e.ticket_id.to_u128()).collect();
            assert_eq!(scan.tickets, tickets);
            let (root, lines) = root_of_lines(data);
            assert_eq!(lines, scan.lines);
            if !entrants.is_empty() {
                assert_eq!(scan.root, Some(root), "the scanner's tree head differs");
            }
        }
        // A repeated tag is found by the scanner as a flag; whatever it reports after it is
        // a later line.
        Err(SnapshotError::DuplicatePersonTag { line, .. }) => {
            assert!(
                scan.duplicate_tag,
                "the scanner missed the tag repeated on line {line}"
            );
            if let Some(e) = &scan.error {
                assert!(e.line() >= *line, "scanner: {e}, parser: line {line}");
            }
        }
        Err(e) => {
            assert_eq!(
                scan.error.as_ref(),
                Some(e),
                "the scanner and the parser disagree"
            );
            assert!(!scan.duplicate_tag);
        }
    }
});
