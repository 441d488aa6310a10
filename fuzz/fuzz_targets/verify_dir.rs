//! The notary's `verify_dir` on a sealed and drawn day (the shared vectors, with their audit)
//! in which one file was replaced by arbitrary bytes, with `seal.txt` or `draw.txt` optionally
//! signed again with the vectors' key (RFC 8032 test key 1), so that the checks past the
//! signatures are reached. It never panics, and it passes the day only when the file is
//! unchanged: every file of the day is signed, hashed or compared byte for byte.
//!
//! Input: one selector byte, then the file's new bytes. Selector bits 0–3 pick the file (modulo
//! [`FILES`]), bit 4 signs `seal.txt`/`draw.txt` again, bit 5 picks the day (small, contested).
//! scripts/fuzz.sh seeds the corpus with every file of both days under every selector.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use lottery::sign::{parse_public_key_file, sign};
use lottery::verify::verify_dir;

/// The day's files, in selector order.
const FILES: [&str; 11] = [
    "authority.pub",
    "seal.txt",
    "seal.sig",
    "stock.csv",
    "entrants.csv",
    "draw.txt",
    "draw.sig",
    "result.csv",
    "pools.csv",
    "spill.csv",
    "audit.txt",
];

/// RFC 8032 §7.1 TEST 1, the key that signed the shared vectors.
const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

macro_rules! day {
    ($name:literal) => {
        [
            include_bytes!(concat!(
                "../../lottery/tests/vectors/",
                $name,
                "/authority.pub"
            )),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/seal.txt")),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/seal.sig")),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/stock.csv")),
            include_bytes!(concat!(
                "../../lottery/tests/vectors/",
                $name,
                "/entrants.csv"
            )),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/draw.txt")),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/draw.sig")),
            include_bytes!(concat!(
                "../../lottery/tests/vectors/",
                $name,
                "/result.csv"
            )),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/pools.csv")),
            include_bytes!(concat!("../../lottery/tests/vectors/", $name, "/spill.csv")),
            include_bytes!(concat!(
                "../../lottery/tests/vectors/audit-v1/",
                $name,
                ".txt"
            )),
        ]
    };
}

const DAYS: [[&[u8]; 11]; 2] = [day!("v1-small"), day!("v1-contested")];

/// Each day written once per process, in a directory named after its draw date (so that check
/// runs too); every input changes one file and puts it back.
fn day_dirs() -> &'static [PathBuf; 2] {
    static DIRS: OnceLock<[PathBuf; 2]> = OnceLock::new();
    DIRS.get_or_init(|| {
        let base =
            std::env::temp_dir().join(format!("maskdraw-fuzz-verify-{}", std::process::id()));
        let dirs = [
            base.join("small/2026-11-24"),
            base.join("contested/2026-11-24"),
        ];
        for (dir, files) in dirs.iter().zip(DAYS) {
            std::fs::create_dir_all(dir).expect("temporary directory");
            for (name, bytes) in FILES.iter().zip(files) {
                std::fs::write(dir.join(name), bytes).expect("write a vector");
            }
            let key = parse_public_key_file(files[0]).expect("the vectors' key");
            let report = verify_dir(dir, &key, None);
            assert!(
                report.all_passed(),
                "the unchanged day must pass:\n{report}"
            );
        }
        dirs
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let file = usize::from(selector & 0x0f) % FILES.len();
    let resign = selector & 0x10 != 0;
    let day = usize::from(selector >> 5 & 1);
    let dir = &day_dirs()[day];
    let original = DAYS[day];
    let name = FILES[file];

    std::fs::write(dir.join(name), content).expect("write the changed file");
    let sig = match (resign, name) {
        (true, "seal.txt") => Some("seal.sig"),
        (true, "draw.txt") => Some("draw.sig"),
        _ => None,
    };
    if let Some(sig) = sig {
        let mut secret = [0u8; 32];
        for (i, out) in secret.iter_mut().enumerate() {
            *out = u8::from_str_radix(&SECRET[2 * i..2 * i + 2], 16).expect("hex");
        }
        std::fs::write(
            dir.join(sig),
            sign(&SigningKey::from_bytes(&secret), content),
        )
        .expect("write the signature");
    }
    let key = parse_public_key_file(original[0]).expect("the vectors' key");
    let report = verify_dir(dir, &key, None);
    if report.all_passed() {
        assert_eq!(
            content, original[file],
            "{name} changed, yet the day passes:\n{report}"
        );
    }

    // Put the day back for the next input.
    std::fs::write(dir.join(name), original[file]).expect("restore");
    if let Some(sig) = sig {
        let at = FILES.iter().position(|f| *f == sig).expect("listed");
        std::fs::write(dir.join(sig), original[at]).expect("restore");
    }
});
