//! Tamper tests: every single-byte change to any file of a sealed and drawn
//! directory makes `verify` fail, with the authority key pinned outside the
//! directory. Source day: tests/vectors/v1-small (a copy of shared/vectors/v1-small).

mod common;

use std::path::Path;

use common::{read, vector_dir};
use lottery::sign::parse_public_key_file;
use lottery::verify::verify_dir;

const SEAL_FILES: [&str; 5] = [
    "entrants.csv",
    "stock.csv",
    "seal.txt",
    "seal.sig",
    "authority.pub",
];
const DRAW_FILES: [&str; 5] = [
    "draw.txt",
    "draw.sig",
    "result.csv",
    "pools.csv",
    "spill.csv",
];

fn copy_day(to: &Path, files: &[&str]) {
    for f in files {
        std::fs::copy(vector_dir("v1-small").join(f), to.join(f)).unwrap();
    }
}

/// Replacement bytes tried at each position, rotated so every position gets a
/// different kind of change: a low bit, the ASCII case bit, a LF, a NUL, a
/// high bit (not UTF-8 on its own), a space.
fn replacement(original: u8, position: usize) -> u8 {
    let candidates = [
        original ^ 0x01,
        original ^ 0x20,
        b'\n',
        0,
        original ^ 0x80,
        b' ',
    ];
    let mut k = position % candidates.len();
    while candidates[k] == original {
        k = (k + 1) % candidates.len();
    }
    candidates[k]
}

fn tamper_every_byte(dir: &Path, files: &[&str]) -> usize {
    let key = parse_public_key_file(&read("v1-small", "authority.pub")).unwrap();
    assert!(
        verify_dir(dir, &key, None).all_passed(),
        "{}",
        verify_dir(dir, &key, None)
    );
    let mut cases = 0;
    for f in files {
        let path = dir.join(f);
        let original = std::fs::read(&path).unwrap();
        for pos in 0..original.len() {
            let mut changed = original.clone();
            changed[pos] = replacement(original[pos], pos);
            std::fs::write(&path, &changed).unwrap();
            let report = verify_dir(dir, &key, None);
            assert!(
                !report.all_passed(),
                "{f} byte {pos} changed to {:#04x} still verifies",
                changed[pos]
            );
            cases += 1;
        }
        // Removing the last byte (the final LF) and appending one are changes too.
        for changed in [
            original[..original.len() - 1].to_vec(),
            [&original[..], b"\n"].concat(),
        ] {
            std::fs::write(&path, &changed).unwrap();
            assert!(
                !verify_dir(dir, &key, None).all_passed(),
                "{f} truncated/extended still verifies"
            );
            cases += 1;
        }
        std::fs::write(&path, &original).unwrap();
    }
    cases
}

/// One test per file and directory kind, so the test harness spreads the
/// work over the cores.
macro_rules! tamper_tests {
    ($($name:ident: $file:literal in $kind:ident;)*) => {$(
        #[test]
        fn $name() {
            let tmp = tempfile::tempdir().unwrap();
            copy_day(tmp.path(), &SEAL_FILES);
            if stringify!($kind) == "drawn" {
                copy_day(tmp.path(), &DRAW_FILES);
            }
            assert!(tamper_every_byte(tmp.path(), &[$file]) > 60);
        }
    )*};
}

tamper_tests! {
    every_byte_change_to_entrants_csv_of_a_drawn_day_fails: "entrants.csv" in drawn;
    every_byte_change_to_stock_csv_of_a_drawn_day_fails: "stock.csv" in drawn;
    every_byte_change_to_seal_txt_of_a_drawn_day_fails: "seal.txt" in drawn;
    every_byte_change_to_seal_sig_of_a_drawn_day_fails: "seal.sig" in drawn;
    every_byte_change_to_authority_pub_of_a_drawn_day_fails: "authority.pub" in drawn;
    every_byte_change_to_draw_txt_of_a_drawn_day_fails: "draw.txt" in drawn;
    every_byte_change_to_draw_sig_of_a_drawn_day_fails: "draw.sig" in drawn;
    every_byte_change_to_result_csv_of_a_drawn_day_fails: "result.csv" in drawn;
    every_byte_change_to_pools_csv_of_a_drawn_day_fails: "pools.csv" in drawn;
    every_byte_change_to_spill_csv_of_a_drawn_day_fails: "spill.csv" in drawn;
    every_byte_change_to_entrants_csv_of_a_sealed_only_day_fails: "entrants.csv" in sealed;
    every_byte_change_to_stock_csv_of_a_sealed_only_day_fails: "stock.csv" in sealed;
    every_byte_change_to_seal_txt_of_a_sealed_only_day_fails: "seal.txt" in sealed;
    every_byte_change_to_seal_sig_of_a_sealed_only_day_fails: "seal.sig" in sealed;
    every_byte_change_to_authority_pub_of_a_sealed_only_day_fails: "authority.pub" in sealed;
}

#[test]
fn a_missing_or_extra_draw_file_fails_verification() {
    let key = parse_public_key_file(&read("v1-small", "authority.pub")).unwrap();
    for missing in DRAW_FILES {
        let tmp = tempfile::tempdir().unwrap();
        copy_day(tmp.path(), &SEAL_FILES);
        copy_day(tmp.path(), &DRAW_FILES);
        std::fs::remove_file(tmp.path().join(missing)).unwrap();
        assert!(
            !verify_dir(tmp.path(), &key, None).all_passed(),
            "without {missing}"
        );
    }
}

#[test]
fn a_directory_signed_by_another_key_fails_verification() {
    let other = lottery::sample::sample_key(99).verifying_key();
    let report = verify_dir(&vector_dir("v1-small"), &other, None);
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    assert!(
        failed.contains(&"seal.sig is the authority's signature of seal.txt"),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"draw.sig is the authority's signature of draw.txt"),
        "{failed:?}"
    );
}

#[test]
fn the_scan_verify_hands_back_draws_the_sealed_day_and_a_broken_file_gives_none() {
    use lottery::verify::{draw_from_scan, verify_dir_scanned, EntrantsCheck};
    let key = parse_public_key_file(&read("v1-small", "authority.pub")).unwrap();
    let (report, scanned) = verify_dir_scanned(
        &vector_dir("v1-small"),
        &key,
        None,
        &EntrantsCheck::Root,
        &lottery::NoProgress,
    );
    assert!(report.all_passed(), "{report}");
    let scanned = scanned.expect("a clean day hands back its scan");
    let drawn = lottery::text::DrawText::parse(&read("v1-small", "draw.txt")).unwrap();
    let replayed = draw_from_scan(&scanned.entrants, &scanned.stock, &drawn.seed).unwrap();
    assert_eq!(replayed.result_csv, read("v1-small", "result.csv"));
    assert_eq!(replayed.spill_csv, read("v1-small", "spill.csv"));

    // Two lines swapped: out of order, so no scan comes back (and the report fails).
    let tmp = tempfile::tempdir().unwrap();
    copy_day(tmp.path(), &SEAL_FILES);
    let text = read("v1-small", "entrants.csv");
    let mut lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    lines.swap(0, 1);
    std::fs::write(tmp.path().join("entrants.csv"), lines.concat()).unwrap();
    let (report, scanned) = verify_dir_scanned(
        tmp.path(),
        &key,
        None,
        &EntrantsCheck::Root,
        &lottery::NoProgress,
    );
    assert!(!report.all_passed());
    assert!(scanned.is_none());
}

#[test]
fn the_file_digest_check_passes_only_the_bytes_whose_sha256_was_recorded() {
    use lottery::verify::{verify_dir_scanned, EntrantsCheck};
    use sha2::{Digest, Sha256};
    let key = parse_public_key_file(&read("v1-small", "authority.pub")).unwrap();
    let bytes = read("v1-small", "entrants.csv");
    let recorded: [u8; 32] = Sha256::digest(&bytes).into();
    let tmp = tempfile::tempdir().unwrap();
    copy_day(tmp.path(), &SEAL_FILES);
    let check = |digest: [u8; 32]| {
        verify_dir_scanned(
            tmp.path(),
            &key,
            None,
            &EntrantsCheck::FileSha256(digest),
            &lottery::NoProgress,
        )
    };
    let (report, scanned) = check(recorded);
    assert!(report.all_passed(), "{report}");
    let scanned = scanned.unwrap();
    assert_eq!(scanned.entrants.root, None, "no tree is built in this mode");
    assert_eq!(scanned.entrants.file_sha256, Some(recorded));

    // Another recorded digest, or any changed byte of a still well-formed file, fails.
    let mut other = recorded;
    other[0] ^= 1;
    assert!(!check(other).0.all_passed());
    let mut changed = bytes.clone();
    let at = changed.iter().position(|&b| b == b',').unwrap() - 1;
    changed[at] = if changed[at] == b'Z' { b'Y' } else { b'Z' };
    std::fs::write(tmp.path().join("entrants.csv"), &changed).unwrap();
    let (report, _) = check(recorded);
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    assert!(
        failed.contains(&"entrants.csv is the file the seal wrote (its SHA-256 as recorded)"),
        "{failed:?}"
    );
}

/// A copy of a vector day with its proof tiles written by `notary tiles`.
fn day_with_tiles(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(vector_dir(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    lottery::tiles::rebuild(tmp.path(), tmp.path(), &lottery::NoProgress).unwrap();
    tmp
}

const TILES_CHECK: &str = "entrants.tiles is rebuilt from entrants.csv byte for byte";

/// Verify fails, and the one failed check is the tiles', naming the file.
fn assert_only_the_tiles_fail(dir: &Path, what: &str) {
    let key = parse_public_key_file(&read("v1-small", "authority.pub")).unwrap();
    let report = verify_dir(dir, &key, None);
    let failed: Vec<String> = report
        .failures()
        .map(|c| format!("{}: {:?}", c.name, c.outcome))
        .collect();
    assert_eq!(failed.len(), 1, "{what}: {failed:?}");
    assert!(failed[0].starts_with(TILES_CHECK), "{what}: {failed:?}");
    assert!(
        failed[0][TILES_CHECK.len()..].contains("entrants.tiles"),
        "{what}: {failed:?}"
    );
}

#[test]
fn every_byte_change_to_entrants_tiles_fails_verification_naming_the_file() {
    for name in ["v1-small", "v1-contested"] {
        let day = day_with_tiles(name);
        let key = parse_public_key_file(&read(name, "authority.pub")).unwrap();
        let report = verify_dir(day.path(), &key, None);
        assert!(report.all_passed(), "{report}");
        assert!(report.checks.iter().any(|c| c.name == TILES_CHECK));
        let path = day.path().join("entrants.tiles");
        let original = std::fs::read(&path).unwrap();
        for pos in 0..original.len() {
            let mut changed = original.clone();
            changed[pos] = replacement(original[pos], pos);
            std::fs::write(&path, &changed).unwrap();
            assert_only_the_tiles_fail(day.path(), &format!("{name} byte {pos}"));
        }
        for (what, changed) in [
            ("truncated", original[..original.len() - 1].to_vec()),
            ("cut to its header", original[..72].to_vec()),
            ("empty", Vec::new()),
            ("extended", [&original[..], &[0u8]].concat()),
        ] {
            std::fs::write(&path, &changed).unwrap();
            assert_only_the_tiles_fail(day.path(), &format!("{name} {what}"));
        }
        std::fs::write(&path, &original).unwrap();
    }
}

#[test]
fn another_days_tiles_fail_verification_naming_the_file() {
    let small = day_with_tiles("v1-small");
    let contested = day_with_tiles("v1-contested");
    std::fs::copy(
        contested.path().join("entrants.tiles"),
        small.path().join("entrants.tiles"),
    )
    .unwrap();
    assert_only_the_tiles_fail(small.path(), "v1-contested's tiles in v1-small");
    // Nor can they serve proofs: the full read answers, as if they were absent.
    let proofs = lottery::proof::DayProofs::open(small.path()).unwrap();
    assert!(matches!(
        proofs.source(),
        lottery::proof::ProofSource::FullRead(lottery::proof::FullReadReason::Unusable(why))
            if why.contains("entrants.tiles")
    ));
}

/// A few tickets of v1-contested across its three blocks, and one that was never sealed.
fn contested_sample() -> Vec<String> {
    let text = String::from_utf8(read("v1-contested", "entrants.csv")).unwrap();
    let all: Vec<&str> = text.lines().map(|l| &l[..26]).collect();
    let mut out: Vec<String> = [0usize, 1, 100, 255, 256, 300, 511, 512, 598, 599]
        .iter()
        .map(|&i| all[i].to_string())
        .collect();
    out.push("01KASGX05PQTTGV0P6T7KSZWN0".into());
    out
}

fn proof_text(r: &Result<lottery::proof::TicketProof, lottery::proof::ProofError>) -> String {
    match r {
        Ok(p) => serde_json::to_string(p).unwrap(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn proofs_over_damaged_tiles_are_the_full_reads_and_the_damage_is_reported() {
    use lottery::proof::{full_read, DayProofs, FullReadReason, ProofSource};
    let day = day_with_tiles("v1-contested");
    let asked = contested_sample();
    // entrants.csv is intact, so the full read's answers are the truth.
    let truth: Vec<String> = asked
        .iter()
        .map(|t| proof_text(&full_read::ticket_proof(day.path(), t)))
        .collect();
    let path = day.path().join("entrants.tiles");
    let original = std::fs::read(&path).unwrap();
    let mut reported = 0;
    for pos in 0..original.len() {
        let mut changed = original.clone();
        changed[pos] = replacement(original[pos], pos);
        std::fs::write(&path, &changed).unwrap();
        let proofs = DayProofs::open(day.path()).unwrap();
        for (t, want) in asked.iter().zip(&truth) {
            let (got, source) = proofs.proof_with_source(t);
            assert_eq!(&proof_text(&got), want, "byte {pos}, ticket {t}");
            if matches!(
                source,
                ProofSource::FullRead(FullReadReason::Unusable(_) | FullReadReason::Disagrees(_))
            ) {
                reported += 1;
            }
        }
    }
    // Most changes are caught at open (header, length) or by the block proof; a change to a
    // node none of these tickets needs is left to `notary verify`.
    assert!(
        reported > original.len(),
        "{reported} damaged answers reported"
    );
}

#[test]
fn a_damaged_entrants_csv_never_yields_a_proof_that_verifies_for_a_line_that_was_not_sealed() {
    use lottery::merkle::{leaf_hash, verify_inclusion};
    use lottery::proof::DayProofs;
    let day = day_with_tiles("v1-contested");
    let seal = lottery::text::SealText::parse(&read("v1-contested", "seal.txt")).unwrap();
    let sealed_text = String::from_utf8(read("v1-contested", "entrants.csv")).unwrap();
    let sealed: Vec<&str> = sealed_text.lines().collect();
    let path = day.path().join("entrants.csv");
    let original = std::fs::read(&path).unwrap();
    let asked = contested_sample();
    let mut checked = 0;
    for pos in (0..original.len()).step_by(41) {
        let mut changed = original.clone();
        changed[pos] = replacement(original[pos], pos);
        std::fs::write(&path, &changed).unwrap();
        let Ok(proofs) = DayProofs::open(day.path()) else {
            continue;
        };
        for t in &asked {
            let Ok(p) = proofs.proof(t) else { continue };
            if !p.path_verifies {
                continue;
            }
            // A proof that says it verifies is a true statement about the sealed file.
            assert_eq!(p.leaf, sealed[p.leaf_index as usize], "byte {pos}, {t}");
            let path: Vec<[u8; 32]> = p
                .audit_path
                .iter()
                .map(|h| hex::decode(h).unwrap().try_into().unwrap())
                .collect();
            assert!(verify_inclusion(
                p.leaf_index,
                seal.entrants,
                &leaf_hash(p.leaf.as_bytes()),
                &path,
                &seal.entrants_root
            )
            .is_ok());
            checked += 1;
        }
    }
    std::fs::write(&path, &original).unwrap();
    assert!(checked > 1000, "{checked}");
}
