//! Witness cosignatures (`seal.cosig.<party>`, SPEC.md §15): the known answer, the witness's
//! refusal to cosign two seals for one date, `notary cosign` / `keygen` / `verify --witness`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::vector_dir;
use lottery::cosign::{
    check_cosignature, check_cosignatures, cosign_dir, cosignature, CosignError, WitnessState,
};
use lottery::dir::{write_seal, SealFields};
use lottery::sample::{sample_data, sample_key, SampleOptions};
use lottery::sign::parse_secret_key_file;
use lottery::text::{commitment, Commit};

/// RFC 8032 §7.1 TEST 2's key: the witness of the known answer (the authority is TEST 1).
const WITNESS_SECRET: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn witness() -> lottery::sign::SecretKey {
    parse_secret_key_file(format!("{WITNESS_SECRET}\n").as_bytes()).unwrap()
}

/// The file was made with Python's `cryptography` (Ed25519PrivateKey.sign over the statement
/// of SPEC.md §15 for v1-small's seal).
#[test]
fn the_cosignature_of_v1_small_is_the_independently_computed_file() {
    let seal = lottery::text::SealText::parse(&common::read("v1-small", "seal.txt")).unwrap();
    let got = cosignature(&witness(), "notary", &seal.draw_date, &seal.seal_id());
    let want = std::fs::read(vector_dir("cosig-v1").join("seal.cosig.notary")).unwrap();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(want).unwrap()
    );

    let t = tempfile::tempdir().unwrap();
    for f in ["seal.txt", "seal.cosig.notary"] {
        let from = if f == "seal.txt" {
            vector_dir("v1-small").join(f)
        } else {
            vector_dir("cosig-v1").join(f)
        };
        std::fs::copy(from, t.path().join(f)).unwrap();
    }
    let key = witness().verifying_key();
    check_cosignature(t.path(), "notary", &key).unwrap();
    // Another party's name, another key, or the authority's key do not do.
    assert!(check_cosignature(t.path(), "officials", &key).is_err());
    let authority = sample_key(9).verifying_key();
    assert!(matches!(
        check_cosignatures(t.path(), &[("notary".into(), authority)]),
        Err(CosignError::Mismatch { .. })
    ));
}

#[test]
fn the_cosigned_statement_can_never_be_an_authority_signature_of_seal_txt() {
    // Same key for both: the signature of the statement does not verify over seal.txt.
    let key = witness();
    let seal_bytes = common::read("v1-small", "seal.txt");
    let seal = lottery::text::SealText::parse(&seal_bytes).unwrap();
    let file = cosignature(&key, "notary", &seal.draw_date, &seal.seal_id());
    let text = String::from_utf8(file).unwrap();
    let sig = text
        .lines()
        .last()
        .unwrap()
        .strip_prefix("signature:")
        .unwrap();
    assert!(lottery::sign::verify_signature(
        &key.verifying_key(),
        &seal_bytes,
        format!("{sig}\n").as_bytes()
    )
    .is_err());
}

fn sealed_day(root: &Path, date: &str, seed: u64) -> std::path::PathBuf {
    let (entrants, stock) = sample_data(&SampleOptions {
        entrants: 200,
        pharmacies: 6,
        seed,
    })
    .unwrap();
    let dir = root.join(date);
    write_seal(
        &dir,
        &entrants,
        &stock,
        &SealFields {
            draw_date: date.into(),
            cutoff: "2026-11-23T14:00:00Z".into(),
            previous: None,
            commits: vec![Commit {
                party: "notary".into(),
                digest: commitment(&[1; 16]),
            }],
        },
        &sample_key(1),
    )
    .unwrap();
    dir
}

#[test]
fn a_witness_never_cosigns_a_second_different_seal_for_a_date() {
    let t = tempfile::tempdir().unwrap();
    let authority = sample_key(1).verifying_key();
    let state = t.path().join("witness.state");
    let a = sealed_day(&t.path().join("a"), "2026-11-24", 1);
    let done = cosign_dir(&a, &authority, &witness(), "notary", &state).unwrap();
    assert!(!done.repeated);
    check_cosignature(&a, "notary", &witness().verifying_key()).unwrap();
    let first = std::fs::read(a.join("seal.cosig.notary")).unwrap();
    // Again for the same seal: allowed, the same bytes, the state unchanged.
    let again = cosign_dir(&a, &authority, &witness(), "notary", &state).unwrap();
    assert!(again.repeated);
    assert_eq!(std::fs::read(a.join("seal.cosig.notary")).unwrap(), first);
    assert_eq!(WitnessState::load(&state).unwrap().entries.len(), 1);
    // Another list sealed for the same date (other entrants): refused, nothing written.
    let b = sealed_day(&t.path().join("b"), "2026-11-24", 2);
    let e = cosign_dir(&b, &authority, &witness(), "notary", &state).unwrap_err();
    assert!(matches!(e, CosignError::Equivocation { .. }), "{e}");
    assert!(e.to_string().contains("two different seals for one date"));
    assert!(!b.join("seal.cosig.notary").exists());
    // Another date is fine, appended to the state.
    let c = sealed_day(&t.path().join("c"), "2026-11-25", 3);
    cosign_dir(&c, &authority, &witness(), "notary", &state).unwrap();
    let text = std::fs::read_to_string(&state).unwrap();
    let dates: Vec<&str> = text.lines().map(|l| &l[..10]).collect();
    assert_eq!(dates, vec!["2026-11-24", "2026-11-25"]);
    assert!(!t.path().join("witness.state.lock").exists());
}

#[test]
fn a_witness_refuses_a_directory_that_does_not_verify_is_drawn_or_whose_state_is_damaged() {
    let t = tempfile::tempdir().unwrap();
    let authority = sample_key(1).verifying_key();
    let state = t.path().join("witness.state");
    let a = sealed_day(t.path(), "2026-11-24", 1);
    // Under another authority key.
    let e = cosign_dir(
        &a,
        &sample_key(2).verifying_key(),
        &witness(),
        "notary",
        &state,
    )
    .unwrap_err();
    assert!(matches!(e, CosignError::NotVerified(_)), "{e}");
    // A damaged state: the witness cannot know what it cosigned.
    std::fs::write(&state, "2026-11-24 zz\n").unwrap();
    let e = cosign_dir(&a, &authority, &witness(), "notary", &state).unwrap_err();
    assert!(matches!(e, CosignError::BadState { line: 1, .. }), "{e}");
    std::fs::remove_file(&state).unwrap();
    // A held lock.
    std::fs::write(t.path().join("witness.state.lock"), "").unwrap();
    let e = cosign_dir(&a, &authority, &witness(), "notary", &state).unwrap_err();
    assert!(matches!(e, CosignError::Locked { .. }), "{e}");
    std::fs::remove_file(t.path().join("witness.state.lock")).unwrap();
    // A drawn day.
    std::fs::write(a.join("draw.txt"), "x").unwrap();
    let e = cosign_dir(&a, &authority, &witness(), "notary", &state).unwrap_err();
    assert!(matches!(e, CosignError::AlreadyDrawn("draw.txt")), "{e}");
    assert!(!state.exists());
    assert!(!a.join("seal.cosig.notary").exists());
}

fn notary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notary"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn notary_keygen_cosign_and_verify_witness_work_end_to_end() {
    let t = tempfile::tempdir().unwrap();
    let day = sealed_day(t.path(), "2026-11-24", 1);
    let authority = t.path().join("authority.pub");
    std::fs::write(
        &authority,
        lottery::sign::public_key_file(&sample_key(1).verifying_key()),
    )
    .unwrap();
    let secret = t.path().join("notary.key");
    let out = notary(&["keygen", s(&secret)]);
    assert!(out.status.success(), "{out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!notary(&["keygen", s(&secret)]).status.success());
    let public = t.path().join("notary.pub");
    let state = t.path().join("notary.state");

    // Before the cosignature, verify --witness fails on that check alone.
    let witness = format!("notary={}", s(&public));
    let verify = |w: &str| notary(&["verify", s(&day), "--key", s(&authority), "--witness", w]);
    let out = verify(&witness);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let fails: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fails.len(), 1, "{text}");
    assert!(fails[0].starts_with("FAIL seal.cosig.notary is notary's cosignature of this seal: "));

    let out = notary(&[
        "cosign",
        s(&day),
        "--key",
        s(&secret),
        "--party",
        "notary",
        "--state",
        s(&state),
        "--authority",
        s(&authority),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = verify(&witness);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .ends_with("PASS seal.cosig.notary is notary's cosignature of this seal\n"));

    // A second seal for the date: exit 3, the equivocation named.
    let other = sealed_day(&t.path().join("other"), "2026-11-24", 5);
    let out = notary(&[
        "cosign",
        s(&other),
        "--key",
        s(&secret),
        "--party",
        "notary",
        "--state",
        s(&state),
        "--authority",
        s(&authority),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("two different seals for one date"));
}
