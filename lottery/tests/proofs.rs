//! The fast proof path (`DayProofs` over `entrants.tiles`) against the full read it replaces
//! (`proof::full_read::ticket_proof`, the old implementation, kept as the oracle): the same
//! answer, JSON field for field, for every ticket of both shared vector days, for sample days
//! whose sizes sit around block and level edges, and for tickets that were never sealed.

mod common;

use std::path::Path;

use common::vector_dir;
use lottery::proof::{full_read, DayProofs, FullReadReason, ProofError, ProofSource, TicketProof};
use lottery::sample::{generate, SampleOptions};
use lottery::snapshot::TicketId;
use lottery::tiles::TILES_FILE;

/// A copy of a vector day (every file but the tiles it lacks).
fn copy_vector(name: &str, to: &Path) {
    for e in std::fs::read_dir(vector_dir(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The tickets of a day, in file order.
fn tickets(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("entrants.csv"))
        .unwrap()
        .lines()
        .map(|l| l[..26].to_string())
        .collect()
}

/// Tickets that are not entrants: below the first, above the last, and one just above each
/// given ticket (when that is not the next one).
fn strangers(sealed: &[String], near: &[usize]) -> Vec<String> {
    let value = |t: &str| TicketId::parse(t.as_bytes()).unwrap().to_u128();
    let mut out = vec![
        TicketId::from_u128(0).to_string(),
        TicketId::from_u128((1u128 << 127) + 5).to_string(),
    ];
    if let Some(first) = sealed.first() {
        out.push(TicketId::from_u128(value(first) - 1).to_string());
    }
    for &i in near {
        let above = value(&sealed[i]) + 1;
        if sealed.get(i + 1).is_none_or(|next| value(next) != above) {
            out.push(TicketId::from_u128(above).to_string());
        }
    }
    out
}

fn same(a: &Result<TicketProof, ProofError>, b: &Result<TicketProof, ProofError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap(),
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

/// Every listed ticket: the fast path from the tiles, and the oracle, agree.
fn assert_fast_equals_oracle(dir: &Path, asked: &[String]) {
    let proofs = DayProofs::open(dir).unwrap();
    assert_eq!(proofs.source(), ProofSource::Tiles);
    for t in asked {
        let (fast, source) = proofs.proof_with_source(t);
        let oracle = full_read::ticket_proof(dir, t);
        assert!(
            same(&fast, &oracle),
            "{t}: fast {fast:?}\noracle {oracle:?}"
        );
        assert_eq!(source, ProofSource::Tiles, "{t}");
        // The one-shot entry point is the same path.
        assert!(same(&lottery::proof::ticket_proof(dir, t), &oracle), "{t}");
    }
}

#[test]
fn every_ticket_of_both_vector_days_gets_the_full_reads_proof_from_the_tiles() {
    for name in ["v1-small", "v1-contested"] {
        let tmp = tempfile::tempdir().unwrap();
        copy_vector(name, tmp.path());
        lottery::tiles::rebuild(tmp.path(), tmp.path(), &lottery::NoProgress).unwrap();
        let sealed = tickets(tmp.path());
        let every: Vec<usize> = (0..sealed.len()).collect();
        let mut asked = sealed.clone();
        asked.extend(strangers(&sealed, &every));
        assert_fast_equals_oracle(tmp.path(), &asked);
        for t in strangers(&sealed, &every) {
            assert!(matches!(
                DayProofs::open(tmp.path()).unwrap().proof(&t),
                Err(ProofError::UnknownTicket(_))
            ));
        }
    }
}

#[test]
fn a_day_without_tiles_answers_by_the_full_read_and_says_so() {
    let dir = vector_dir("v1-contested");
    let proofs = DayProofs::open(&dir).unwrap();
    assert_eq!(
        proofs.source(),
        ProofSource::FullRead(FullReadReason::Absent)
    );
    for t in tickets(&dir).iter().step_by(37) {
        let (got, source) = proofs.proof_with_source(t);
        assert!(same(&got, &full_read::ticket_proof(&dir, t)));
        assert_eq!(source, ProofSource::FullRead(FullReadReason::Absent));
    }
}

/// Entrant counts around block (256) and level edges, and past one 4,096-line group (the
/// parallel writers' and the scan's unit) so that whole groups are written too.
const SIZES: [u64; 17] = [
    1, 2, 3, 255, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 4096, 9000,
];

#[test]
fn sample_days_of_sizes_around_powers_of_two_get_the_full_reads_proofs() {
    for (k, &n) in SIZES.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let options = SampleOptions {
            entrants: n,
            pharmacies: 12,
            seed: 40 + k as u64,
        };
        generate(tmp.path(), &options, &lottery::NoProgress).unwrap();
        // The sample writes its tiles, and they are what the notary rebuilds.
        let written = std::fs::read(tmp.path().join(TILES_FILE)).unwrap();
        let rebuilt = tempfile::tempdir().unwrap();
        lottery::tiles::rebuild(tmp.path(), rebuilt.path(), &lottery::NoProgress).unwrap();
        assert_eq!(
            std::fs::read(rebuilt.path().join(TILES_FILE)).unwrap(),
            written,
            "n = {n}"
        );
        let sealed = tickets(tmp.path());
        assert_eq!(sealed.len() as u64, n);
        // Every ticket up to a block and a bit, then fewer as the day grows (the oracle reads
        // the whole day for each), always with the first and last of every block.
        let (step, edges) = match n {
            0..=300 => (1, [0, 1, 254, 255].as_slice()),
            301..=1025 => (29, [0, 1, 254, 255].as_slice()),
            _ => (401, [0, 255].as_slice()),
        };
        let mut near: Vec<usize> = (0..sealed.len()).step_by(step).collect();
        for b in (0..sealed.len()).step_by(256) {
            near.extend(edges.iter().map(|e| b + e).filter(|&i| i < sealed.len()));
        }
        near.push(sealed.len() - 1);
        near.sort_unstable();
        near.dedup();
        let mut asked: Vec<String> = near.iter().map(|&i| sealed[i].clone()).collect();
        asked.extend(strangers(&sealed, &near));
        assert_fast_equals_oracle(tmp.path(), &asked);

        // Sealed only (no draw files yet): the same.
        if n == 769 {
            for f in lottery::verify::DRAW_FILES {
                std::fs::remove_file(tmp.path().join(f)).unwrap();
            }
            assert_fast_equals_oracle(tmp.path(), &asked);
            let p = DayProofs::open(tmp.path())
                .unwrap()
                .proof(&sealed[300])
                .unwrap();
            assert!(!p.drawn && p.won.is_none());
        }
    }
}

#[test]
fn one_opened_day_answers_many_threads_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let options = SampleOptions {
        entrants: 3000,
        pharmacies: 20,
        seed: 9,
    };
    generate(tmp.path(), &options, &lottery::NoProgress).unwrap();
    let proofs = DayProofs::open(tmp.path()).unwrap();
    let sealed = tickets(tmp.path());
    let oracle: Vec<String> = sealed
        .iter()
        .step_by(97)
        .map(|t| serde_json::to_string(&full_read::ticket_proof(tmp.path(), t).unwrap()).unwrap())
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for (t, want) in sealed.iter().step_by(97).zip(&oracle) {
                    let got = serde_json::to_string(&proofs.proof(t).unwrap()).unwrap();
                    assert_eq!(&got, want);
                }
            });
        }
    });
}

#[test]
fn the_proof_json_keeps_every_field_in_its_order() {
    // The service's page reads these names; a change here is a change of the public API.
    let tmp = tempfile::tempdir().unwrap();
    copy_vector("v1-small", tmp.path());
    lottery::tiles::rebuild(tmp.path(), tmp.path(), &lottery::NoProgress).unwrap();
    let p = DayProofs::open(tmp.path())
        .unwrap()
        .proof("01KARDKCX650GXHDPXBDD1JSYG")
        .unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let keys: Vec<String> = serde_json::from_str::<serde_json::Value>(&json)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut want = vec![
        "ticket_id",
        "leaf_index",
        "tree_size",
        "leaf",
        "leaf_hash",
        "audit_path",
        "root",
        "path_verifies",
        "seal_id",
        "pharmacy_id",
        "district_id",
        "product_id",
        "flexible",
        "drawn",
        "seed",
        "roll_1",
        "roll_2",
        "pool_cutoff",
        "spill_cutoff",
        "won",
        "won_roll",
        "won_at",
    ];
    // serde_json's map is sorted; the order on the wire is the struct's (checked by text).
    let mut sorted = keys.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    assert!(json.starts_with("{\"ticket_id\":\"01KARDKCX650GXHDPXBDD1JSYG\",\"leaf_index\":5,"));
    assert!(
        json.ends_with(",\"won\":true,\"won_roll\":1,\"won_at\":\"PH0001\"}"),
        "{json}"
    );
}
