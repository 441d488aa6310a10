//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A fixture directory copied from `shared/vectors/` (see tests/vectors/README.md).
pub fn vector_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

pub fn read(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(vector_dir(name).join(file)).unwrap()
}

pub fn unhex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).unwrap();
    out
}

/// The RFC 8032 §7.1 TEST 1 secret key, which signed the shared vectors.
pub const RFC8032_TEST1_SECRET: &str =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
