//! The `notary` binary end to end: exact output shape and exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{read, vector_dir, RFC8032_TEST1_SECRET};

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
fn verify_prints_one_pass_line_per_check_and_exits_zero_on_a_good_day() {
    let dir = vector_dir("v1-small");
    let out = notary(&["verify", s(&dir), "--key", s(&dir.join("authority.pub"))]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().count() >= 20);
    assert!(stdout.lines().all(|l| l.starts_with("PASS ")), "{stdout}");
}

#[test]
fn verify_prints_fail_with_a_reason_and_exits_non_zero_on_a_tampered_day() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [
        "entrants.csv",
        "stock.csv",
        "seal.txt",
        "seal.sig",
        "draw.txt",
        "draw.sig",
        "result.csv",
        "pools.csv",
        "spill.csv",
    ] {
        std::fs::copy(vector_dir("v1-small").join(f), tmp.path().join(f)).unwrap();
    }
    let result = String::from_utf8(read("v1-small", "result.csv"))
        .unwrap()
        .replacen(",1\n", ",2\n", 1);
    std::fs::write(tmp.path().join("result.csv"), result).unwrap();
    let key = vector_dir("v1-small").join("authority.pub");
    let out = notary(&["verify", s(tmp.path()), "--key", s(&key)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout
            .contains("FAIL result.csv is reproduced by the draw byte for byte: result.csv line 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL draw.txt result_sha256 matches result.csv"),
        "{stdout}"
    );
}

#[test]
fn verify_works_on_a_sealed_only_directory_and_checks_the_chain_link() {
    // Day one: v1-small's seal only. Day two: a new seal naming day one's seal
    // id as previous, signed by the same (RFC 8032 test) key.
    let day1 = tempfile::tempdir().unwrap();
    for f in ["entrants.csv", "stock.csv", "seal.txt", "seal.sig"] {
        std::fs::copy(vector_dir("v1-small").join(f), day1.path().join(f)).unwrap();
    }
    let key_file = vector_dir("v1-small").join("authority.pub");
    let out = notary(&["verify", s(day1.path()), "--key", s(&key_file)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let secret =
        lottery::sign::parse_secret_key_file(format!("{RFC8032_TEST1_SECRET}\n").as_bytes())
            .unwrap();
    let seal1 = lottery::text::SealText::parse(&read("v1-small", "seal.txt")).unwrap();
    let entrants = lottery::snapshot::parse_entrants(&read("v1-small", "entrants.csv")).unwrap();
    let stock = lottery::snapshot::parse_stock(&read("v1-small", "stock.csv")).unwrap();
    let day2 = tempfile::tempdir().unwrap();
    let fields = lottery::dir::SealFields {
        draw_date: "2026-11-25".into(),
        cutoff: "2026-11-24T14:00:00Z".into(),
        previous: Some(seal1.seal_id()),
        commits: vec![],
    };
    lottery::dir::write_seal(day2.path(), &entrants[1..], &stock, &fields, &secret).unwrap();
    let out = notary(&[
        "verify",
        s(day2.path()),
        "--key",
        s(&key_file),
        "--previous",
        s(day1.path()),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("PASS previous seal links to this one"));
    // The wrong previous directory breaks the link.
    let out = notary(&[
        "verify",
        s(day2.path()),
        "--key",
        s(&key_file),
        "--previous",
        s(day2.path()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("FAIL previous seal links to this one"));
}

#[test]
fn replay_writes_the_three_outputs_byte_for_byte() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = notary(&[
        "replay",
        s(&vector_dir("v1-contested")),
        "--out",
        s(out_dir.path()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["result.csv", "pools.csv", "spill.csv"] {
        assert_eq!(
            std::fs::read(out_dir.path().join(f)).unwrap(),
            read("v1-contested", f),
            "{f}"
        );
    }
}

#[test]
fn proof_prints_the_audit_path_rolls_and_cutoffs_as_json() {
    // Entrant 5 of v1-small: proof-5.txt and rolls.csv line 5.
    let out = notary(&[
        "proof",
        s(&vector_dir("v1-small")),
        "01KARDKCX650GXHDPXBDD1JSYG",
    ]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["leaf_index"], 5);
    assert_eq!(json["tree_size"], 40);
    assert_eq!(
        json["leaf"],
        "01KARDKCX650GXHDPXBDD1JSYG,PH0001,SURG,1,92845daeafe987c18fdf66145a091fd6"
    );
    assert_eq!(
        json["leaf_hash"],
        "1124eb3a67335efeeaa245a78680dbcd97259d4041759e1d98baf7f50a0b8ed6"
    );
    assert_eq!(
        json["audit_path"][5],
        "37117830cf1e081a6957dbe01f190c3e418eedb99d12a9be686ccd7d1e4b62ed"
    );
    assert_eq!(
        json["root"],
        "bdb92840b84c4a32f285aad6b793b00705158522dfff95a6f18e151b0cd78da0"
    );
    assert_eq!(json["path_verifies"], true);
    assert_eq!(json["roll_1"], "9b4c18918a224341");
    assert_eq!(json["roll_2"], "5fc0d66929acb23d");
    assert_eq!(json["pool_cutoff"], "-");
    assert_eq!(json["spill_cutoff"], "d788992107f3dee3");
    assert_eq!(json["won"], true);
    assert_eq!(json["won_roll"], 1);

    // A spill winner of v1-small.
    let out = notary(&[
        "proof",
        s(&vector_dir("v1-small")),
        "01KAT3123TSFQ8DYFT44FBYFFB",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["won_roll"], 2);
    assert_eq!(json["won_at"], "PH0004");
    assert_eq!(json["pool_cutoff"], "7e6909115a8d3139");
}

#[test]
fn proof_of_an_unknown_or_malformed_ticket_exits_non_zero_with_a_clear_message() {
    let out = notary(&[
        "proof",
        s(&vector_dir("v1-small")),
        "01KARDKCX650GXHDPXBDD1JSYH",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not among the sealed entrants"));
    let out = notary(&["proof", s(&vector_dir("v1-small")), "not-a-ticket"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_gives_a_clear_error_not_a_panic() {
    let out = notary(&["verify", "/nonexistent", "--key", "/nonexistent.pub"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read key file"));
    let empty = tempfile::tempdir().unwrap();
    let key = vector_dir("v1-small").join("authority.pub");
    let out = notary(&["verify", s(empty.path()), "--key", s(&key)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let out = notary(&["replay", s(empty.path()), "--out", s(empty.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn sample_writes_a_directory_that_verifies_and_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [a.path(), b.path()] {
        let out = notary(&[
            "sample",
            s(d),
            "--entrants",
            "5000",
            "--pharmacies",
            "30",
            "--seed",
            "7",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("roll two"));
    }
    for f in [
        "entrants.csv",
        "stock.csv",
        "seal.txt",
        "seal.sig",
        "result.csv",
        "pools.csv",
        "spill.csv",
        "draw.txt",
        "draw.sig",
        "authority.pub",
        "entrants.tiles",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(
        !std::fs::read(a.path().join("spill.csv"))
            .unwrap()
            .is_empty(),
        "the sample exercises roll two"
    );
    let out = notary(&[
        "verify",
        s(a.path()),
        "--key",
        s(&a.path().join("authority.pub")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn verify_fails_when_a_directory_named_for_a_date_holds_another_days_seal() {
    let key = vector_dir("v1-small").join("authority.pub");
    let root = tempfile::tempdir().unwrap();
    let copy_to = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(vector_dir("v1-small")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        dir
    };
    // v1-small's seal.txt says draw_date:2026-11-24.
    let wrong = copy_to("2026-11-25");
    let out = notary(&["verify", s(&wrong), "--key", s(&key)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "FAIL directory name matches seal.txt draw_date: the directory is named 2026-11-25, seal.txt says draw_date:2026-11-24"
        ),
        "{stdout}"
    );
    // The same day under its own date passes that check, also when named with a trailing slash.
    let right = copy_to("2026-11-24");
    let out = notary(&["verify", &format!("{}/", s(&right)), "--key", s(&key)]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("PASS directory name matches seal.txt draw_date"),
        "{stdout}"
    );
    // A directory not named like a date gets no such check (v1-small itself).
    let out = notary(&["verify", s(&vector_dir("v1-small")), "--key", s(&key)]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("directory name"), "{stdout}");
}

fn copy_vector(name: &str, to: &Path) {
    for e in std::fs::read_dir(vector_dir(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn tiles_rewrites_the_file_the_sample_wrote_and_verify_then_checks_it() {
    let day = tempfile::tempdir().unwrap();
    let out = notary(&[
        "sample",
        s(day.path()),
        "--entrants",
        "3000",
        "--pharmacies",
        "20",
    ]);
    assert!(out.status.success());
    let written = std::fs::read(day.path().join("entrants.tiles")).unwrap();
    let key = day.path().join("authority.pub");
    let verify = || {
        let out = notary(&["verify", s(day.path()), "--key", s(&key)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(verify().contains("PASS entrants.tiles is rebuilt from entrants.csv byte for byte\n"));

    // Without the file: an optional part is absent, and the day still verifies.
    std::fs::remove_file(day.path().join("entrants.tiles")).unwrap();
    assert!(verify()
        .contains("PASS entrants.tiles is absent (optional derived data: nothing to check)\n"));

    // Elsewhere with --out, then in place: the same bytes the sample wrote.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = notary(&["tiles", s(day.path()), "--out", s(elsewhere.path())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3000 entrants"));
    assert!(!day.path().join("entrants.tiles").exists());
    assert_eq!(
        std::fs::read(elsewhere.path().join("entrants.tiles")).unwrap(),
        written
    );
    let out = notary(&["tiles", s(day.path())]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(day.path().join("entrants.tiles")).unwrap(),
        written
    );
    assert!(verify().contains("PASS entrants.tiles is rebuilt"));
}

#[test]
fn tiles_refuses_an_entrants_csv_that_is_not_the_sealed_one() {
    let day = tempfile::tempdir().unwrap();
    copy_vector("v1-small", day.path());
    // Still a valid file (one flexible flag flipped), but not the sealed one.
    let text = String::from_utf8(read("v1-small", "entrants.csv")).unwrap();
    let changed = text.replacen(",SURG,1,", ",SURG,0,", 1);
    assert_ne!(changed, text);
    std::fs::write(day.path().join("entrants.csv"), changed).unwrap();
    let out = notary(&["tiles", s(day.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("seal.txt says 40"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!day.path().join("entrants.tiles").exists());
    // A file breaking a rule gets no tiles either.
    std::fs::write(
        day.path().join("entrants.csv"),
        text.lines()
            .rev()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let out = notary(&["tiles", s(day.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("entrants.csv line 2"));
}

#[test]
fn proof_prints_the_same_with_or_without_tiles_and_warns_only_when_they_are_damaged() {
    let day = tempfile::tempdir().unwrap();
    copy_vector("v1-contested", day.path());
    let text = String::from_utf8(read("v1-contested", "entrants.csv")).unwrap();
    let tickets: Vec<&str> = text.lines().map(|l| &l[..26]).collect();
    let asked = [tickets[0], tickets[300], tickets[599]];
    let prove = |t: &str| notary(&["proof", s(day.path()), t]);
    let without: Vec<Output> = asked.iter().map(|t| prove(t)).collect();
    for out in &without {
        assert!(out.status.success());
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(notary(&["tiles", s(day.path())]).status.success());
    for (t, before) in asked.iter().zip(&without) {
        let out = prove(t);
        assert_eq!(out.stdout, before.stdout, "{t}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The last entrant's path verifies (the full read used to hash its LF into the leaf).
    let json: serde_json::Value = serde_json::from_slice(&without[2].stdout).unwrap();
    assert_eq!(json["leaf_index"], 599);
    assert_eq!(json["path_verifies"], true);

    // Node 0 at height 9 (byte 200) is the last block's sibling: its proofs notice, answer
    // from entrants.csv alone, and say so on stderr; stdout is unchanged.
    let path = day.path().join("entrants.tiles");
    let mut tiles = std::fs::read(&path).unwrap();
    tiles[200] ^= 1;
    std::fs::write(&path, &tiles).unwrap();
    let out = prove(tickets[599]);
    assert!(out.status.success());
    assert_eq!(out.stdout, without[2].stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: block 2 of entrants.csv (lines 513 to 600)")
            && stderr.contains("answered from entrants.csv alone"),
        "{stderr}"
    );
    // A never-sealed ticket is still unknown, whatever the tiles.
    let out = prove("01KASGX05PQTTGV0P6T7KSZWN0");
    assert_eq!(out.status.code(), Some(3));
}
