//! Property tests of the draw's invariants and of the parsers' agreement.

mod common;

use std::collections::{HashMap, HashSet};

use lottery::draw::{draw, Roll};
use lottery::scan::scan_entrants;
use lottery::snapshot::{
    entrants_csv, parse_entrants, Entrant, Ident, PersonTag, StockLine, TicketId,
};
use proptest::prelude::*;

/// A random but valid snapshot: up to 6 pharmacies in up to 3 districts, two
/// products, 0–5 packs per pool, up to 80 entrants.
fn snapshot() -> impl Strategy<Value = (Vec<Entrant>, Vec<StockLine>)> {
    (
        1usize..=6,
        1u8..=3,
        proptest::collection::vec(0u64..=5, 12),
        0usize..=80,
    )
        .prop_flat_map(|(pharmacies, districts, packs, n)| {
            (
                Just((pharmacies, districts, packs)),
                proptest::collection::vec(
                    (0..pharmacies, 0usize..2, any::<bool>(), any::<u128>()),
                    n,
                ),
                proptest::collection::vec(0u8..3, pharmacies),
            )
        })
        .prop_map(|((pharmacies, districts, packs), raw, district_of)| {
            let products = [
                Ident::parse(b"KN95").unwrap(),
                Ident::parse(b"SURG").unwrap(),
            ];
            let mut stock = Vec::new();
            for ph in 0..pharmacies {
                for (k, product_id) in products.iter().enumerate() {
                    stock.push(StockLine {
                        pharmacy_id: Ident::parse(format!("PH{ph}").as_bytes()).unwrap(),
                        district_id: Ident::parse(
                            format!("D{}", district_of[ph] % districts).as_bytes(),
                        )
                        .unwrap(),
                        product_id: *product_id,
                        packs: packs[ph * 2 + k],
                    });
                }
            }
            let mut tickets: Vec<u128> = raw.iter().map(|r| r.3 >> 1).collect();
            tickets.sort_unstable();
            tickets.dedup();
            let entrants = tickets
                .iter()
                .zip(&raw)
                .enumerate()
                .map(|(i, (&t, &(ph, k, flexible, _)))| Entrant {
                    ticket_id: TicketId::from_u128(t),
                    pharmacy_id: stock[ph * 2].pharmacy_id,
                    product_id: products[k],
                    flexible,
                    person_tag: PersonTag((i as u128).to_be_bytes()),
                })
                .collect();
            (entrants, stock)
        })
}

proptest! {
    #[test]
    fn winners_never_exceed_packs_and_each_ticket_wins_at_most_once((entrants, stock) in snapshot(), seed in any::<[u8; 32]>()) {
        let out = draw(&entrants, &stock, &seed).unwrap();
        let mut per_pool: HashMap<(Ident, Ident), u64> = HashMap::new();
        let mut seen = HashSet::new();
        for w in &out.winners {
            prop_assert!(seen.insert(w.ticket_id), "{} won twice", w.ticket_id);
            *per_pool.entry((w.pharmacy_id, w.product_id)).or_default() += 1;
        }
        for s in &stock {
            prop_assert!(per_pool.get(&s.pool()).copied().unwrap_or(0) <= s.packs);
        }
        for p in &out.pools {
            prop_assert!(p.winners <= p.packs);
            prop_assert_eq!(p.winners, p.entrants.min(p.packs));
        }
        // Winners are listed ascending by ticket id.
        prop_assert!(out.winners.windows(2).all(|w| w[0].ticket_id < w[1].ticket_id));
    }

    #[test]
    fn spill_winners_were_flexible_roll_one_losers_of_the_same_district_and_product((entrants, stock) in snapshot(), seed in any::<[u8; 32]>()) {
        let out = draw(&entrants, &stock, &seed).unwrap();
        let district: HashMap<Ident, Ident> = stock.iter().map(|s| (s.pharmacy_id, s.district_id)).collect();
        let roll_one: HashSet<TicketId> = out.winners.iter().filter(|w| w.roll == Roll::One).map(|w| w.ticket_id).collect();
        for w in out.winners.iter().filter(|w| w.roll == Roll::Two) {
            let e = &entrants[w.entrant_index as usize];
            prop_assert!(e.flexible);
            prop_assert!(!roll_one.contains(&e.ticket_id));
            prop_assert_eq!(e.product_id, w.product_id);
            prop_assert_eq!(district[&e.pharmacy_id], district[&w.pharmacy_id]);
        }
        for w in out.winners.iter().filter(|w| w.roll == Roll::One) {
            let e = &entrants[w.entrant_index as usize];
            prop_assert_eq!((e.pharmacy_id, e.product_id), (w.pharmacy_id, w.product_id));
        }
        // Roll two hands out exactly min(leftover, candidates) packs per group.
        for g in &out.spill {
            prop_assert!(g.leftover > 0);
            prop_assert_eq!(g.winners, g.leftover.min(g.candidates));
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes((entrants, stock) in snapshot(), seed in any::<[u8; 32]>()) {
        let a = draw(&entrants, &stock, &seed).unwrap();
        let b = draw(&entrants, &stock, &seed).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn the_streaming_scanner_and_the_in_memory_parser_agree_on_any_one_byte_change(
        (entrants, _stock) in snapshot(), pos in any::<usize>(), byte in any::<u8>()
    ) {
        let mut bytes = entrants_csv(&entrants);
        if !bytes.is_empty() {
            let p = pos % bytes.len();
            bytes[p] = byte;
        }
        let scan = scan_entrants(&bytes[..], None, &|_| {}).unwrap();
        let (root, lines) = lottery::merkle::root_of_lines(&bytes);
        prop_assert_eq!((scan.root, scan.lines), (Some(root), lines));
        // Without the tree, the same findings, and the file's SHA-256 instead of a root.
        let quick = lottery::scan::scan_entrants_with(
            &bytes[..], None, lottery::scan::ScanDigest::FileSha256, &|_| {},
        ).unwrap();
        prop_assert_eq!(
            (quick.lines, &quick.error, quick.duplicate_tag, &quick.tickets),
            (scan.lines, &scan.error, scan.duplicate_tag, &scan.tickets)
        );
        let sha: [u8; 32] = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes)).into();
        prop_assert_eq!((quick.root, quick.file_sha256), (None, Some(sha)));
        let parsed = parse_entrants(&bytes);
        match (&parsed, &scan.error, scan.duplicate_tag) {
            (Ok(_), None, false) => {}
            (Err(lottery::snapshot::SnapshotError::DuplicatePersonTag { .. }), None, true) => {}
            // A duplicate found by the sorted-tag check precedes the scanner's
            // first other error; the file path resolves its line.
            (Err(lottery::snapshot::SnapshotError::DuplicatePersonTag { line, .. }), Some(s), true) => prop_assert!(*line < s.line()),
            (Err(e), Some(s), _) => prop_assert_eq!(e, s),
            _ => prop_assert!(false, "parser {:?} vs scanner {:?} / dup {}", parsed, scan.error, scan.duplicate_tag),
        }
    }
}

#[test]
fn the_scanner_streams_a_file_larger_than_one_batch_to_the_same_root() {
    // 300,000 lines of 74 bytes cross the 16 MiB batch boundary.
    let mut bytes = Vec::new();
    for i in 0..300_000u64 {
        Entrant {
            ticket_id: TicketId::from_u128(u128::from(i) << 70 | 1),
            pharmacy_id: Ident::parse(b"PH0001").unwrap(),
            product_id: Ident::parse(b"KN95").unwrap(),
            flexible: i % 2 == 0,
            person_tag: PersonTag(u128::from(i).to_be_bytes()),
        }
        .write_line(&mut bytes);
    }
    let scan = scan_entrants(&bytes[..], None, &|_| {}).unwrap();
    assert_eq!(scan.error, None);
    assert!(!scan.duplicate_tag);
    let (root, lines) = lottery::merkle::root_of_lines(&bytes);
    assert_eq!((scan.root, scan.lines), (Some(root), lines));
    assert_eq!(scan.tickets.len(), 300_000);
    // An ordering break exactly at a batch edge is found with its line number.
    let line = 16 * 1024 * 1024 / 74 + 1;
    let mut broken = bytes.clone();
    let at = (line - 1) * 74;
    broken[at..at + 26].copy_from_slice(b"00000000000000000000000000");
    let scan = scan_entrants(&broken[..], None, &|_| {}).unwrap();
    assert_eq!(
        scan.error,
        Some(lottery::snapshot::SnapshotError::TicketOrder { line: line as u64 })
    );
}
