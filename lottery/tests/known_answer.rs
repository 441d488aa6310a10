//! Known-answer tests: published RFC vectors and the two shared vector days.
//!
//! Provenance is given on each test. The vector days in `tests/vectors/` are
//! byte-for-byte copies of `shared/vectors/v1-small` and `v1-contested`.

mod common;

use common::{read, unhex32, vector_dir, RFC8032_TEST1_SECRET};
use lottery::merkle::{
    inclusion_proof, inclusion_proof_for_lines, leaf_hash, root_of_leaf_hashes, root_of_lines,
    verify_inclusion, MerkleStream, EMPTY_ROOT,
};
use lottery::rolls::{fill_rolls, roll, rolls, POOL_ROLL, SPILL_ROLL};
use lottery::snapshot::{parse_entrants, parse_stock};
use lottery::text::{check_reveals, DrawText, SealText, SeedText};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// The eight test leaves of certificate-transparency's C++ `merkle_tree_test.cc`,
/// as repeated in google/certificate-transparency-go `merkletree/merkle_tree_test.go`
/// (`testLeaves`) and transparency-dev/merkle `proof/verify_test.go` (`leaves`).
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Tree heads for the first 1..=8 of those leaves: `rootForTestLeaves` in
/// certificate-transparency-go `merkletree/merkle_tree_test.go`, `roots` in
/// transparency-dev/merkle `proof/verify_test.go`.
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `inclusionProofs` of transparency-dev/merkle `proof/verify_test.go`
/// (leaf numbers 1-based there; `pathToOne`/`pathToSix` of
/// certificate-transparency-go `TestPathToCurrentRoot` are the 8-leaf ones).
const CT_PATHS: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn ct_leaf_hashes() -> Vec<[u8; 32]> {
    CT_LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect()
}

#[test]
fn the_empty_tree_head_is_sha256_of_nothing() {
    // RFC 6962 §2.1: MTH({}) = SHA-256().
    assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
    assert_eq!(MerkleStream::new().root(), EMPTY_ROOT);
    assert_eq!(root_of_lines(b"").0, EMPTY_ROOT);
}

#[test]
fn tree_heads_match_the_certificate_transparency_roots_for_sizes_1_to_8() {
    let leaves = ct_leaf_hashes();
    for size in 1..=8 {
        assert_eq!(
            hex::encode(root_of_leaf_hashes(&leaves[..size])),
            CT_ROOTS[size - 1],
            "size {size}"
        );
        let mut stream = MerkleStream::new();
        for l in &CT_LEAVES[..size] {
            stream.push(&hex::decode(l).unwrap());
        }
        assert_eq!(
            hex::encode(stream.root()),
            CT_ROOTS[size - 1],
            "stream size {size}"
        );
    }
}

#[test]
fn audit_paths_match_the_published_inclusion_proofs_and_verify() {
    let leaves = ct_leaf_hashes();
    for (leaf, size, want) in CT_PATHS {
        let index = leaf - 1;
        let path = inclusion_proof(&leaves[..size as usize], index).unwrap();
        let got: Vec<String> = path.iter().map(hex::encode).collect();
        assert_eq!(got, want, "leaf {leaf} of {size}");
        let root = unhex32(CT_ROOTS[size as usize - 1]);
        assert!(verify_inclusion(index, size, &leaves[index as usize], &path, &root).is_ok());
    }
    // A one-leaf tree has an empty path and its root is the leaf hash.
    assert!(verify_inclusion(0, 1, &leaves[0], &[], &leaves[0]).is_ok());
}

#[test]
fn the_chacha20_keystream_matches_rfc8439_section_2_3_2() {
    // RFC 8439 §2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00,
    // block count 1. RFC state words 12..15 are (counter, nonce0, nonce1,
    // nonce2) = (1, 0x09000000, 0x4a000000, 0). rand_chacha reads words 12-13
    // as one 64-bit block counter and 14-15 as the 64-bit stream id, so the
    // same state is block 0x0900000000000001 of stream 0x4a000000; the word
    // position counts 32-bit words, 16 per block.
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(0x4a00_0000);
    rng.set_word_pos(u128::from(0x0900_0000_0000_0001u64) * 16);
    let mut block = [0u8; 64];
    rng.fill_bytes(&mut block);
    assert_eq!(
        hex::encode(block),
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
         d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    );
}

#[test]
fn the_chacha20_keystream_matches_rfc8439_section_2_4_2_through_the_roll_api() {
    // RFC 8439 §2.4.2: key 00..1f, nonce 00:00:00:00:00:00:00:4a:00:00:00:00,
    // initial counter 1; keystream = ciphertext XOR plaintext. In rand_chacha
    // terms: stream id 0x4a000000 (word 14 = 0x4a000000, word 15 = 0) and
    // block counter 1, i.e. u64 words 8.. of that stream. roll(seed, s, i) is
    // u64 word i, so words 8..22 must be the keystream read little-endian.
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let ciphertext = hex::decode(
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b\
         f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8\
         07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736\
         5af90bbf74a35be6b40b8eedf2785e42874d",
    )
    .unwrap();
    let mut words = [0u64; 15];
    fill_rolls(&key, 0x4a00_0000, 8, &mut words);
    let keystream: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let got: Vec<u8> = plaintext
        .iter()
        .zip(&keystream)
        .map(|(p, k)| p ^ k)
        .collect();
    assert_eq!(got, ciphertext);
    assert_eq!(roll(&key, 0x4a00_0000, 8), words[0]);
}

/// Checks a shared vector day against every output the library produces.
fn reproduce_vector_day(name: &str) {
    let entrants_bytes = read(name, "entrants.csv");
    let stock_bytes = read(name, "stock.csv");
    let seal_bytes = read(name, "seal.txt");
    let draw_bytes = read(name, "draw.txt");
    let seal = SealText::parse(&seal_bytes).unwrap();
    let drawn = DrawText::parse(&draw_bytes).unwrap();
    let entrants = parse_entrants(&entrants_bytes).unwrap();
    let stock = parse_stock(&stock_bytes).unwrap();
    lottery::snapshot::check_pools(&entrants, &stock).unwrap();

    assert_eq!(seal.to_bytes(), seal_bytes);
    assert_eq!(drawn.to_bytes(), draw_bytes);
    assert_eq!(seal.entrants, entrants.len() as u64);
    assert_eq!(
        root_of_lines(&entrants_bytes),
        (seal.entrants_root, entrants.len() as u64)
    );
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&stock_bytes)),
        seal.stock_sha256
    );
    assert_eq!(drawn.seal_id, seal.seal_id());
    check_reveals(&seal.commits, &drawn.reveals).unwrap();
    let seed = drawn.seed_text().seed();
    assert_eq!(seed, drawn.seed);

    let outcome = lottery::draw::draw(&entrants, &stock, &seed).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&outcome.result_csv),
        String::from_utf8_lossy(&read(name, "result.csv"))
    );
    assert_eq!(
        String::from_utf8_lossy(&outcome.pools_csv),
        String::from_utf8_lossy(&read(name, "pools.csv"))
    );
    assert_eq!(
        String::from_utf8_lossy(&outcome.spill_csv),
        String::from_utf8_lossy(&read(name, "spill.csv"))
    );
    assert_eq!(outcome.winners.len() as u64, drawn.winners);
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&outcome.result_csv)),
        drawn.result_sha256
    );
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&outcome.pools_csv)),
        drawn.pools_sha256
    );
    assert_eq!(
        <[u8; 32]>::from(Sha256::digest(&outcome.spill_csv)),
        drawn.spill_sha256
    );

    // Signatures verify under the pinned key and re-signing with RFC 8032's
    // test key 1 reproduces them (Ed25519 is deterministic).
    let key = lottery::sign::parse_public_key_file(&read(name, "authority.pub")).unwrap();
    lottery::sign::verify_signature(&key, &seal_bytes, &read(name, "seal.sig")).unwrap();
    lottery::sign::verify_signature(&key, &draw_bytes, &read(name, "draw.sig")).unwrap();
    let secret =
        lottery::sign::parse_secret_key_file(format!("{RFC8032_TEST1_SECRET}\n").as_bytes())
            .unwrap();
    assert_eq!(
        lottery::sign::sign(&secret, &seal_bytes).as_bytes(),
        read(name, "seal.sig")
    );
    assert_eq!(
        lottery::sign::sign(&secret, &draw_bytes).as_bytes(),
        read(name, "draw.sig")
    );

    // The full verifier agrees.
    let report = lottery::verify::verify_dir(&vector_dir(name), &key, None);
    assert!(report.all_passed(), "{report}");
}

#[test]
fn the_v1_small_day_is_reproduced_byte_for_byte() {
    // Source: shared/vectors/v1-small (40 entrants, 7 pharmacies, both rolls).
    reproduce_vector_day("v1-small");
}

#[test]
fn the_v1_contested_day_is_reproduced_byte_for_byte() {
    // Source: shared/vectors/v1-contested (600 entrants, 21 pharmacies, 3 districts).
    reproduce_vector_day("v1-contested");
}

#[test]
fn the_v1_small_seed_text_and_seed_are_reproduced() {
    // Source: shared/vectors/v1-small/seed.txt and the seed: line of draw.txt.
    let seed_bytes = read("v1-small", "seed.txt");
    let seed_text = SeedText::parse(&seed_bytes).unwrap();
    let drawn = DrawText::parse(&read("v1-small", "draw.txt")).unwrap();
    assert_eq!(drawn.seed_text().to_bytes(), seed_bytes);
    assert_eq!(
        hex::encode(seed_text.seed()),
        "d090430694ccc2488a1b6f9b3b99639a2f2b3d07d82e0e54b8165055d937e155"
    );
    assert_eq!(
        hex::encode(seed_text.seal_id),
        "ffaa56be51fb07fbda974baf50d0e1b3ddaa153b17972c7dc03d7861b0fa6dae"
    );
}

#[test]
fn every_v1_small_roll_matches_rolls_csv() {
    // Source: shared/vectors/v1-small/rolls.csv (index,ticket_id,roll_1,roll_2).
    let seed = unhex32("d090430694ccc2488a1b6f9b3b99639a2f2b3d07d82e0e54b8165055d937e155");
    let text = String::from_utf8(read("v1-small", "rolls.csv")).unwrap();
    let bulk1 = rolls(&seed, POOL_ROLL, 40);
    let bulk2 = rolls(&seed, SPILL_ROLL, 40);
    let mut count = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let i: u64 = f[0].parse().unwrap();
        assert_eq!(format!("{:016x}", roll(&seed, 1, i)), f[2], "roll_1({i})");
        assert_eq!(format!("{:016x}", roll(&seed, 2, i)), f[3], "roll_2({i})");
        assert_eq!(format!("{:016x}", bulk1[i as usize]), f[2]);
        assert_eq!(format!("{:016x}", bulk2[i as usize]), f[3]);
        count += 1;
    }
    assert_eq!(count, 40);
}

#[test]
fn the_v1_small_audit_path_of_entrant_5_matches_proof_5() {
    // Source: shared/vectors/v1-small/proof-5.txt (leaf first, root last).
    let text = String::from_utf8(read("v1-small", "proof-5.txt")).unwrap();
    let value = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key).map(str::to_string))
            .collect()
    };
    let bytes = read("v1-small", "entrants.csv");
    let (leaf, path, size) = inclusion_proof_for_lines(&bytes, 5).unwrap();
    assert_eq!(size, 40);
    assert_eq!(hex::encode(leaf), value("leaf_hash:")[0]);
    let got: Vec<String> = path.iter().map(hex::encode).collect();
    assert_eq!(got, value("audit:"));
    let root = unhex32(&value("root:")[0]);
    assert!(verify_inclusion(5, 40, &leaf, &path, &root).is_ok());
}

/// Rebuilds `entrants.tiles` for a vector day (the vectors predate the tiles and must not
/// change), as `notary tiles` does.
fn vector_tiles(name: &str) -> Vec<u8> {
    let out = tempfile::tempdir().unwrap();
    let tiles =
        lottery::tiles::rebuild(&vector_dir(name), out.path(), &lottery::NoProgress).unwrap();
    let bytes = std::fs::read(out.path().join("entrants.tiles")).unwrap();
    assert_eq!(tiles.to_bytes(), bytes);
    // The same bytes from the line-by-line builder the service's seal uses.
    let mut builder = lottery::tiles::TilesBuilder::new();
    for line in String::from_utf8(read(name, "entrants.csv"))
        .unwrap()
        .lines()
    {
        builder.push_line(line.as_bytes());
    }
    assert_eq!(builder.finish().to_bytes(), bytes);
    bytes
}

#[test]
fn the_proof_tiles_of_both_vector_days_are_pinned() {
    // Provenance: maskdraw-tiles-v1 has no outside implementation yet. These digests are of
    // the files this crate writes for shared/vectors/v1-small and v1-contested; the format is
    // checked against SPEC.md §12 read literally by `tiles::tests` (every node recomputed from
    // the recursive MTH), and the audit paths below against the full read and proof-5.txt.
    for (name, sha) in [
        (
            "v1-small",
            "5f2d16f99f5981c796207b31e4455ea72e3b73d2c6deeafa7833fe95849e7c31",
        ),
        (
            "v1-contested",
            "12a33454ed5d6911eacee40f2e9864014b4372ba6c4324a5e76df98cda760b52",
        ),
    ] {
        let bytes = vector_tiles(name);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha, "{name}");
    }
}

#[test]
fn the_v1_small_tiles_are_spec_section_12s_first_worked_example() {
    // 40 entrants: one block, so the file is a header, two offsets and the root once more.
    assert_eq!(
        hex::encode(vector_tiles("v1-small")),
        concat!(
            "6d61736b647261772d74696c65732d76310a000000000000", // "maskdraw-tiles-v1\n", 6 × 00
            "0000000000000008",                                 // height 8
            "0000000000000028",                                 // 40 entrants
            "bdb92840b84c4a32f285aad6b793b00705158522dfff95a6f18e151b0cd78da0", // entrants_root
            "0000000000000000",                                 // block 0 starts at byte 0
            "0000000000000b90",                                 // entrants.csv is 2960 bytes
            "bdb92840b84c4a32f285aad6b793b00705158522dfff95a6f18e151b0cd78da0", // node(8, 0)
        )
    );
    // Entrant 5's proof is all inside the one block: proof-5.txt's path, from the tiles.
    let day = tempfile::tempdir().unwrap();
    for f in ["seal.txt", "stock.csv", "entrants.csv"] {
        std::fs::copy(vector_dir("v1-small").join(f), day.path().join(f)).unwrap();
    }
    std::fs::write(day.path().join("entrants.tiles"), vector_tiles("v1-small")).unwrap();
    let proof = lottery::proof::DayProofs::open(day.path())
        .unwrap()
        .proof("01KARDKCX650GXHDPXBDD1JSYG")
        .unwrap();
    let text = String::from_utf8(read("v1-small", "proof-5.txt")).unwrap();
    let audit: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("audit:"))
        .collect();
    assert_eq!(proof.audit_path, audit);
    assert!(proof.path_verifies);
}

#[test]
fn the_v1_contested_tiles_give_entrant_300_the_top_of_its_audit_path() {
    // 600 entrants: blocks 0..256, 256..512, 512..600; heights 8 (3 nodes), 9 (2), 10 (1).
    let bytes = vector_tiles("v1-contested");
    assert_eq!(bytes.len(), 72 + 4 * 8 + 6 * 32);
    let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(
        [word(72), word(80), word(88), word(96)],
        [0, 18944, 37888, 44400]
    );
    let node = |i: usize| hex::encode(&bytes[104 + 32 * i..136 + 32 * i]);
    let mth = |lo: usize, hi: usize| {
        let leaves: Vec<[u8; 32]> = String::from_utf8(read("v1-contested", "entrants.csv"))
            .unwrap()
            .lines()
            .map(|l| leaf_hash(l.as_bytes()))
            .collect();
        hex::encode(root_of_leaf_hashes(&leaves[lo..hi]))
    };
    let pinned = [
        (
            "0718f74fc19738d2b769e2238b4165dae09cf6a1976b5cf8d11e566306e24675",
            (0, 256),
        ),
        (
            "52732ac7b9d7ccce011f1c0800804fe3eb796e57e1702f24a9311bb8c5b51ec3",
            (256, 512),
        ),
        (
            "9a87debcac1d896023b9dbcc95cb89d17f444a09d08bf35953b4fe9f6cca0220",
            (512, 600),
        ),
        (
            "73485d6cb3606f7a0de49e2db3d4f642480503d4122ae68bfc575578ea3951fb",
            (0, 512),
        ),
        (
            "9a87debcac1d896023b9dbcc95cb89d17f444a09d08bf35953b4fe9f6cca0220",
            (512, 600),
        ),
        (
            "c38cf77e2cc3be9f4048cd15b05d77423b1ad47cc52bf5e116b96020569384b6",
            (0, 600),
        ),
    ];
    for (i, (hash, (lo, hi))) in pinned.iter().enumerate() {
        assert_eq!(node(i), *hash, "node {i}");
        assert_eq!(mth(*lo, *hi), *hash, "MTH(D[{lo}:{hi}])");
    }
    // Entrant 300 is at index 44 of block 1: eight hashes from its block, then its block's
    // siblings node(8, 0) and node(9, 1) from the file; the same path as the full read's.
    let entrants = read("v1-contested", "entrants.csv");
    let (_, path, _) = inclusion_proof_for_lines(&entrants, 300).unwrap();
    let path: Vec<String> = path.iter().map(hex::encode).collect();
    assert_eq!(path.len(), 10);
    assert_eq!(path[8], pinned[0].0);
    assert_eq!(path[9], pinned[4].0);
    let day = tempfile::tempdir().unwrap();
    for f in ["seal.txt", "stock.csv", "entrants.csv"] {
        std::fs::copy(vector_dir("v1-contested").join(f), day.path().join(f)).unwrap();
    }
    std::fs::write(day.path().join("entrants.tiles"), &bytes).unwrap();
    let proof = lottery::proof::DayProofs::open(day.path())
        .unwrap()
        .proof("01KASGX05PQTTGV0P6T7KSZWMZ")
        .unwrap();
    assert_eq!(proof.leaf_index, 300);
    assert_eq!(proof.audit_path, path);
    assert_eq!(
        proof.audit_path[0],
        "39b3ba9aa49b31eef05f532b6f1dc1134957e7231cb2a403e5cf32c5111de6a6"
    );
    assert!(proof.path_verifies);
}
