//! `notary verify-chain` (SPEC.md §14): a chain of sample days, a gap, a fork, a skipped
//! date and a tampered middle day.

use std::path::Path;
use std::process::Command;

use lottery::chain::{verify_chain, Link};
use lottery::dir::{write_draw, write_seal, SealFields};
use lottery::merkle::Hash;
use lottery::sample::{sample_data, sample_key, SampleOptions};
use lottery::text::{commitment, Commit, Reveal};

const SECRET: [u8; 16] = [9; 16];

/// Seals (and, with `drawn`, draws) a small day named `date` linking to `previous`.
fn day(root: &Path, date: &str, previous: Option<Hash>, drawn: bool) -> Hash {
    let (entrants, stock) = sample_data(&SampleOptions {
        entrants: 300,
        pharmacies: 8,
        seed: date.bytes().map(u64::from).sum(),
    })
    .unwrap();
    let key = sample_key(1);
    let fields = SealFields {
        draw_date: date.into(),
        cutoff: "2026-11-20T14:00:00Z".into(),
        previous,
        commits: vec![Commit {
            party: "notary".into(),
            digest: commitment(&SECRET),
        }],
    };
    let dir = root.join(date);
    let seal = write_seal(&dir, &entrants, &stock, &fields, &key).unwrap();
    if drawn {
        let reveals = vec![Reveal {
            party: "notary".into(),
            secret: SECRET.to_vec(),
        }];
        write_draw(
            &dir,
            &entrants,
            &stock,
            &seal,
            reveals,
            "dice 1 2 3".into(),
            &key,
        )
        .unwrap();
    }
    seal.seal_id()
}

/// Four days, 24 to 27 November, each linking to the one before; the last only sealed.
fn chain(root: &Path) -> Vec<Hash> {
    let mut ids = Vec::new();
    for (k, date) in ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"]
        .iter()
        .enumerate()
    {
        ids.push(day(root, date, ids.last().copied(), k < 3));
    }
    ids
}

fn key() -> lottery::sign::PublicKey {
    sample_key(1).verifying_key()
}

fn notary_chain(root: &Path) -> (Option<i32>, String) {
    let key_file = root.join("authority.pub");
    std::fs::write(&key_file, lottery::sign::public_key_file(&key())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_notary"))
        .args([
            "verify-chain",
            root.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_whole_chain_passes_with_one_summary_line_per_day() {
    let t = tempfile::tempdir().unwrap();
    let ids = chain(t.path());
    let (code, out) = notary_chain(t.path());
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with(&format!(
        "2026-11-24 PASS seal {} starts the chain; ",
        hex::encode(&ids[0][..6])
    )));
    assert!(lines[0].ends_with("checks passed, drawn"), "{out}");
    assert!(lines[1].starts_with("2026-11-25 PASS seal "), "{out}");
    assert!(lines[1].contains(" links to 2026-11-24; "), "{out}");
    assert!(lines[3].ends_with("checks passed, sealed only"), "{out}");
    assert_eq!(
        lines[4],
        "chain: 4 days from 2026-11-24 to 2026-11-27, 0 failed"
    );
}

#[test]
fn a_missing_middle_day_is_named_as_a_gap_and_fails() {
    let t = tempfile::tempdir().unwrap();
    chain(t.path());
    std::fs::remove_dir_all(t.path().join("2026-11-25")).unwrap();
    let (code, out) = notary_chain(t.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("2026-11-25 ---- no directory\n"), "{out}");
    assert!(
        out.contains("no day here (a sealed day after 2026-11-24 is missing)"),
        "{out}"
    );
    let r = verify_chain(t.path(), &key(), &lottery::NoProgress).unwrap();
    assert!(matches!(r.days[1].link, Link::Gap { .. }));
    assert!(r.days[1].report.all_passed());
    assert!(out.ends_with("chain: 3 days from 2026-11-24 to 2026-11-27, 1 failed\n"));
}

#[test]
fn a_skipped_date_that_the_chain_links_over_is_named_but_passes() {
    let t = tempfile::tempdir().unwrap();
    let a = day(t.path(), "2026-11-24", None, true);
    day(t.path(), "2026-11-26", Some(a), true);
    let (code, out) = notary_chain(t.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("2026-11-25 ---- no directory\n2026-11-26 PASS"),
        "{out}"
    );
}

#[test]
fn two_seals_claiming_the_same_previous_are_named_as_a_fork() {
    let t = tempfile::tempdir().unwrap();
    let ids = chain(t.path());
    // A second seal for the 26th's successor slot: the 27th is re-sealed onto the 25th.
    std::fs::remove_dir_all(t.path().join("2026-11-27")).unwrap();
    day(t.path(), "2026-11-27", Some(ids[1]), false);
    let (code, out) = notary_chain(t.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("2026-11-26 FAIL seal ")
            && out.contains("FORK: links to 2026-11-25, as 2026-11-27 does"),
        "{out}"
    );
    assert!(
        out.contains("FORK: links to 2026-11-25, as 2026-11-26 does"),
        "{out}"
    );
}

#[test]
fn a_tampered_middle_day_fails_alone_and_a_changed_seal_breaks_the_next_link() {
    let t = tempfile::tempdir().unwrap();
    chain(t.path());
    let entrants = t.path().join("2026-11-25/entrants.csv");
    let mut bytes = std::fs::read(&entrants).unwrap();
    bytes[30] = if bytes[30] == b'0' { b'1' } else { b'0' };
    std::fs::write(&entrants, bytes).unwrap();
    let r = verify_chain(t.path(), &key(), &lottery::NoProgress).unwrap();
    let failing: Vec<&str> = r
        .days
        .iter()
        .filter(|d| !d.is_ok())
        .map(|d| d.date.as_str())
        .collect();
    assert_eq!(failing, vec!["2026-11-25"], "{r}");
    assert!(r.days[1].link.is_ok());
    assert!(r.to_string().contains("2026-11-25 FAIL seal "), "{r}");

    // Changing the 26th's seal.txt breaks its signature and the 27th's link to it.
    let seal = t.path().join("2026-11-26/seal.txt");
    let text = std::fs::read_to_string(&seal).unwrap();
    std::fs::write(
        &seal,
        text.replace("cutoff:2026-11-20T14", "cutoff:2026-11-20T15"),
    )
    .unwrap();
    let (code, out) = notary_chain(t.path());
    assert_eq!(code, Some(1));
    let line26 = out.lines().find(|l| l.starts_with("2026-11-26")).unwrap();
    assert!(
        line26.contains("seal.sig is the authority's signature of seal.txt"),
        "{out}"
    );
    let line27 = out.lines().find(|l| l.starts_with("2026-11-27")).unwrap();
    assert!(line27.contains("GAP: links to"), "{out}");
}

#[test]
fn a_directory_named_like_an_impossible_date_fails() {
    let t = tempfile::tempdir().unwrap();
    day(t.path(), "2026-11-24", None, false);
    std::fs::create_dir(t.path().join("2026-02-30")).unwrap();
    let (code, out) = notary_chain(t.path());
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with("2026-02-30 FAIL not a calendar date\n"),
        "{out}"
    );
}
