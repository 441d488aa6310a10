//! Intake receipts (`maskdraw-receipt-v1`, SPEC.md §16): the known answers, batch signing,
//! and `notary receipt` against published days: entered, omitted, won, cooling down, another
//! ticket of the person, altered, tampered, a gap.

mod common;

use std::path::Path;
use std::process::Command;

use common::vector_dir;
use lottery::dir::{write_draw, write_seal, SealFields};
use lottery::merkle::Hash;
use lottery::receipt::{check_receipt, parse_ms, sign_batch, Receipt, SignedReceipt};
use lottery::sample::sample_key;
use lottery::sign::parse_secret_key_file;
use lottery::snapshot::{Entrant, Ident, PersonTag, StockLine, TicketId};
use lottery::text::{commitment, Commit, Reveal};

/// RFC 8032 §7.1 TEST 3's key: the intake of the known answers.
const INTAKE_SECRET: &str = "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7";

fn intake() -> lottery::sign::SecretKey {
    parse_secret_key_file(format!("{INTAKE_SECRET}\n").as_bytes()).unwrap()
}

fn vector(i: usize) -> Vec<u8> {
    std::fs::read(vector_dir("receipt-v1").join(format!("receipt-{i}.txt"))).unwrap()
}

/// The files were made by `tests/vectors/receipt-v1/make.py` (hashlib and `cryptography`).
#[test]
fn a_batch_of_three_is_signed_once_and_each_receipt_is_the_independently_computed_file() {
    let parsed: Vec<SignedReceipt> = (0..3)
        .map(|i| SignedReceipt::parse(&vector(i)).unwrap())
        .collect();
    let receipts: Vec<Receipt> = parsed.iter().map(|s| s.receipt.clone()).collect();
    let signed = sign_batch(&intake(), &receipts).unwrap();
    for (i, s) in signed.iter().enumerate() {
        assert_eq!(
            String::from_utf8(s.to_bytes()).unwrap(),
            String::from_utf8(vector(i)).unwrap()
        );
        s.verify(&intake().verifying_key()).unwrap();
        assert_eq!(s, &parsed[i]);
    }
    // One signature for the batch.
    assert!(signed.windows(2).all(|w| w[0].signature == w[1].signature));
    let head = std::fs::read(vector_dir("receipt-v1").join("batch-head.txt")).unwrap();
    assert!(head.starts_with(b"maskdraw-receipt-batch-v1\nsize:3\nroot:0d9cccbe"));
}

#[test]
fn a_changed_field_path_or_index_or_another_key_fails_verification() {
    let key = intake().verifying_key();
    let good = SignedReceipt::parse(&vector(0)).unwrap();
    let mut r = good.clone();
    r.receipt.flexible = false;
    assert!(r.verify(&key).is_err());
    let mut r = good.clone();
    r.path[0][0] ^= 1;
    assert!(r.verify(&key).is_err());
    let mut r = good.clone();
    r.index = 1;
    assert!(r.verify(&key).is_err());
    assert!(good.verify(&sample_key(1).verifying_key()).is_err());
    // A single receipt is a batch of one: an empty path.
    let one = sign_batch(&intake(), std::slice::from_ref(&good.receipt)).unwrap();
    assert!(one[0].path.is_empty());
    one[0].verify(&key).unwrap();
    // Strict parsing: a trailing space, a missing line, an uppercase hex digit.
    let text = String::from_utf8(vector(0)).unwrap();
    for bad in [
        text.replacen("flexible:1", "flexible:1 ", 1),
        text.replacen("cooldown_days:3\n", "", 1),
        text.replacen("signature:", "signature:A", 1),
    ] {
        assert!(SignedReceipt::parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn every_receipt_of_batches_up_to_300_verifies_alone() {
    let base = SignedReceipt::parse(&vector(1)).unwrap().receipt;
    for n in [1usize, 2, 3, 5, 64, 255, 256, 257, 300] {
        let receipts: Vec<Receipt> = (0..n)
            .map(|i| {
                let mut r = base.clone();
                r.ticket_id = TicketId::from_u128(r.ticket_id.to_u128() + i as u128);
                r
            })
            .collect();
        let signed = sign_batch(&intake(), &receipts).unwrap();
        for s in &signed {
            let again = SignedReceipt::parse(&s.to_bytes()).unwrap();
            again.verify(&intake().verifying_key()).unwrap();
        }
    }
}

// ---- notary receipt against published days -------------------------------------------

const PERSON: u128 = 0xabc;
const OTHER_PERSON_TICKET_MS: u128 = 1_795_100_000_000;

fn ident(s: &str) -> Ident {
    Ident::parse(s.as_bytes()).unwrap()
}

/// The receipt's ticket, accepted 2026-11-22T10:00:00Z.
fn ticket() -> TicketId {
    TicketId::from_u128((1_795_341_600_000u128 << 80) | 7)
}

/// Another ticket of the same person (accepted earlier).
fn other_ticket() -> TicketId {
    TicketId::from_u128((OTHER_PERSON_TICKET_MS << 80) | 9)
}

fn entrant(t: TicketId, pharmacy: &str, flexible: bool, person: u128) -> Entrant {
    Entrant {
        ticket_id: t,
        pharmacy_id: ident(pharmacy),
        product_id: ident("KN95"),
        flexible,
        person_tag: PersonTag(person.to_be_bytes()),
    }
}

/// A day: two bystanders, plus `extra`; `wins` is the pharmacy whose one pack goes to its one
/// entrant (every other pool has no packs).
fn seal_day(
    root: &Path,
    date: &str,
    previous: Option<Hash>,
    extra: &[Entrant],
    wins: &str,
) -> Hash {
    let mut entrants = vec![
        entrant(
            TicketId::from_u128((1_795_000_000_000u128 << 80) | 1),
            "PH1",
            false,
            1,
        ),
        entrant(
            TicketId::from_u128((1_795_000_000_001u128 << 80) | 2),
            "PH2",
            false,
            2,
        ),
    ];
    entrants.extend_from_slice(extra);
    entrants.sort_by_key(|e| e.ticket_id);
    let mut pharmacies: Vec<Ident> = entrants.iter().map(|e| e.pharmacy_id).collect();
    pharmacies.push(ident(wins));
    pharmacies.sort();
    pharmacies.dedup();
    let stock: Vec<StockLine> = pharmacies
        .iter()
        .map(|p| StockLine {
            pharmacy_id: *p,
            district_id: ident("D1"),
            product_id: ident("KN95"),
            packs: u64::from(p.as_str() == wins),
        })
        .collect();
    let key = sample_key(1);
    let secret = [5u8; 16];
    let days = lottery::text::days_from_date(date).unwrap();
    let fields = SealFields {
        draw_date: date.into(),
        // 14:00 UTC the day before.
        cutoff: format!("{}T14:00:00Z", lottery::text::date_from_days(days - 1)),
        previous,
        commits: vec![Commit {
            party: "notary".into(),
            digest: commitment(&secret),
        }],
    };
    let dir = root.join(date);
    let seal = write_seal(&dir, &entrants, &stock, &fields, &key).unwrap();
    write_draw(
        &dir,
        &entrants,
        &stock,
        &seal,
        vec![Reveal {
            party: "notary".into(),
            secret: secret.to_vec(),
        }],
        "dice 6".into(),
        &key,
    )
    .unwrap();
    seal.seal_id()
}

/// Days 23 to 27 November; `day_entrants(date)` adds the entrants of that day, `wins(date)`
/// names the pharmacy with the day's one pack.
fn days(
    root: &Path,
    day_entrants: impl Fn(&str) -> Vec<Entrant>,
    wins: impl Fn(&str) -> &'static str,
) {
    let mut prev = None;
    for date in [
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-26",
        "2026-11-27",
    ] {
        prev = Some(seal_day(root, date, prev, &day_entrants(date), wins(date)));
    }
}

/// A receipt for `ticket()` of PERSON at PH9 (not flexible): first draw 2026-11-24, valid
/// until 2026-11-26T20:00Z (so the days of 24, 25, 26 and 27 November, whose cutoffs are 14:00
/// the day before), cooldown `cooldown` days.
fn receipt_file(root: &Path, cooldown: u32) -> std::path::PathBuf {
    let r = Receipt {
        ticket_id: ticket(),
        person_tag: PersonTag(PERSON.to_be_bytes()),
        pharmacy_id: ident("PH9"),
        product_id: ident("KN95"),
        flexible: false,
        accepted_ms: parse_ms("2026-11-22T10:00:00.000Z").unwrap(),
        valid_until_ms: parse_ms("2026-11-26T20:00:00.000Z").unwrap(),
        first_draw: "2026-11-24".into(),
        cooldown_days: cooldown,
    };
    let signed = sign_batch(&intake(), &[r]).unwrap();
    let path = root.join("receipt.txt");
    std::fs::write(&path, signed[0].to_bytes()).unwrap();
    path
}

fn run(root: &Path, receipt: &Path, authority: bool) -> (Option<i32>, String) {
    let intake_pub = root.join("intake.pub");
    std::fs::write(
        &intake_pub,
        lottery::sign::public_key_file(&intake().verifying_key()),
    )
    .unwrap();
    let authority_pub = root.join("authority.pub");
    std::fs::write(
        &authority_pub,
        lottery::sign::public_key_file(&sample_key(1).verifying_key()),
    )
    .unwrap();
    let mut args = vec![
        "receipt".to_string(),
        receipt.display().to_string(),
        "--key".into(),
        intake_pub.display().to_string(),
        "--snapshots".into(),
        root.display().to_string(),
    ];
    if authority {
        args.push("--authority".into());
        args.push(authority_pub.display().to_string());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_notary"))
        .args(&args)
        .output()
        .unwrap();
    let mut text = String::from_utf8(out.stdout).unwrap();
    text.push_str(&String::from_utf8(out.stderr).unwrap());
    (out.status.code(), text)
}

fn mine() -> Entrant {
    entrant(ticket(), "PH9", false, PERSON)
}

fn line<'a>(out: &'a str, date: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(date)).unwrap_or("")
}

#[test]
fn a_ticket_sealed_into_every_guaranteed_day_keeps_the_promise() {
    let t = tempfile::tempdir().unwrap();
    days(
        t.path(),
        |d| {
            if d >= "2026-11-24" {
                vec![mine()]
            } else {
                vec![]
            }
        },
        |_| "PH1",
    );
    let receipt = receipt_file(t.path(), 3);
    let (code, out) = run(t.path(), &receipt, true);
    assert_eq!(code, Some(0), "{out}");
    for d in ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"] {
        assert!(
            line(&out, d).starts_with(&format!("{d} ENTERED (entrants.csv line 3)")),
            "{out}"
        );
    }
    // The 23rd's cutoff is after acceptance but before the guaranteed date: nothing promised.
    assert_eq!(
        line(&out, "2026-11-23"),
        "2026-11-23 not entered, before the first guaranteed date"
    );
    assert!(
        out.ends_with(
            "summary: 5 days from 2026-11-23 to 2026-11-27; the receipt's promise is kept\n"
        ),
        "{out}"
    );
}

#[test]
fn a_missing_ticket_is_printed_as_an_omission_and_exits_one() {
    let t = tempfile::tempdir().unwrap();
    days(
        t.path(),
        |d| {
            if d != "2026-11-25" {
                vec![mine()]
            } else {
                vec![]
            }
        },
        |_| "PH1",
    );
    let (code, out) = run(t.path(), &receipt_file(t.path(), 3), true);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        line(&out, "2026-11-25"),
        "2026-11-25 OMITTED: not in entrants.csv, and no published rule keeps it out"
    );
    assert!(out.contains("1 break the receipt's promise"), "{out}");
}

#[test]
fn a_ticket_that_won_is_excluded_from_later_days_by_its_result_line() {
    let t = tempfile::tempdir().unwrap();
    days(
        t.path(),
        |d| {
            if d <= "2026-11-25" {
                vec![mine()]
            } else {
                vec![]
            }
        },
        |d| if d == "2026-11-25" { "PH9" } else { "PH1" },
    );
    let (code, out) = run(t.path(), &receipt_file(t.path(), 3), true);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        line(&out, "2026-11-25").contains("WON: result.csv line"),
        "{out}"
    );
    assert!(
        line(&out, "2026-11-26").starts_with("2026-11-26 EXCLUDED: the ticket won on 2026-11-25"),
        "{out}"
    );
    assert!(
        line(&out, "2026-11-27").starts_with("2026-11-27 EXCLUDED: the ticket won on 2026-11-25"),
        "{out}"
    );
}

#[test]
fn a_person_cooling_down_from_another_tickets_win_is_excluded_only_within_the_cooldown() {
    let t = tempfile::tempdir().unwrap();
    // The person's other ticket wins on the 24th; ours is kept out from then on.
    days(
        t.path(),
        |d| match d {
            "2026-11-23" | "2026-11-24" => vec![entrant(other_ticket(), "PH8", false, PERSON)],
            _ => vec![],
        },
        |d| if d == "2026-11-24" { "PH8" } else { "PH1" },
    );
    // Cooldown 2: the 25th and 26th are within it, the 27th is not.
    let (code, out) = run(t.path(), &receipt_file(t.path(), 2), true);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "2026-11-24")
            .starts_with("2026-11-24 EXCLUDED: the same person is entered with ticket"),
        "{out}"
    );
    for d in ["2026-11-25", "2026-11-26"] {
        assert!(
            line(&out, d).starts_with(&format!(
                "{d} EXCLUDED: the person is cooling down: its ticket {}",
                other_ticket()
            )),
            "{out}"
        );
        assert!(line(&out, d).contains("won on 2026-11-24"), "{out}");
    }
    assert!(
        line(&out, "2026-11-27").starts_with("2026-11-27 OMITTED"),
        "{out}"
    );
}

#[test]
fn a_ticket_sealed_with_other_fields_is_named_as_altered() {
    let t = tempfile::tempdir().unwrap();
    days(
        t.path(),
        |d| {
            if d == "2026-11-26" {
                vec![entrant(ticket(), "PH9", true, PERSON)]
            } else {
                vec![mine()]
            }
        },
        |_| "PH1",
    );
    let (code, out) = run(t.path(), &receipt_file(t.path(), 3), false);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "2026-11-26").starts_with("2026-11-26 ALTERED: entrants.csv line 3 is "),
        "{out}"
    );
    assert!(
        line(&out, "2026-11-26").ends_with(",PH9,KN95,0,00000000000000000000000000000abc"),
        "{out}"
    );
    assert!(out.contains("NOTE the days' signatures and digests were not checked (no --authority)"));
}

#[test]
fn with_the_authority_key_a_tampered_day_is_unverified_and_a_missing_day_a_gap() {
    let t = tempfile::tempdir().unwrap();
    days(t.path(), |_| vec![mine()], |_| "PH1");
    // Another bystander's line is changed: the day no longer matches its seal.
    let path = t.path().join("2026-11-25/entrants.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen(",PH1,KN95,0,", ",PH1,KN95,1,", 1)).unwrap();
    std::fs::remove_dir_all(t.path().join("2026-11-26")).unwrap();
    let (code, out) = run(t.path(), &receipt_file(t.path(), 3), true);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "2026-11-25").starts_with("2026-11-25 UNVERIFIED: entrants.csv does not hash"),
        "{out}"
    );
    assert!(
        line(&out, "2026-11-27").starts_with("2026-11-27 GAP: "),
        "{out}"
    );
    // Without the key the changed bystander line is not looked at: the ticket is there.
    let (_, out) = run(t.path(), &receipt_file(t.path(), 3), false);
    assert!(
        line(&out, "2026-11-25").starts_with("2026-11-25 ENTERED"),
        "{out}"
    );
}

#[test]
fn a_receipt_that_does_not_verify_exits_two_before_reading_any_day() {
    let t = tempfile::tempdir().unwrap();
    let receipt = receipt_file(t.path(), 3);
    let text = std::fs::read_to_string(&receipt).unwrap();
    std::fs::write(&receipt, text.replacen("PH9", "PH8", 1)).unwrap();
    let (code, out) = run(t.path(), &receipt, false);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("signature does not verify under the intake key"),
        "{out}"
    );
    // The library refuses it too (check_receipt leaves verification to its caller).
    let changed = SignedReceipt::parse(text.replacen("PH9", "PH8", 1).as_bytes()).unwrap();
    assert!(changed.verify(&intake().verifying_key()).is_err());
    // A directory without days: nothing to say, and nothing broken.
    let report = check_receipt(&changed, t.path(), None).unwrap();
    assert!(report.days.is_empty());
    assert!(report.all_kept());
}
