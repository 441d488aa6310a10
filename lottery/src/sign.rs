//! Ed25519 (RFC 8032) signatures of `seal.txt` and `draw.txt` and the key
//! files (DESIGN.md, "Sealed snapshot format": `seal.sig` is 128 lowercase hex
//! characters and LF; `authority.pub` is 64 lowercase hex characters and LF).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::snapshot::decode_lower_hex;

pub use ed25519_dalek::{SigningKey as SecretKey, VerifyingKey as PublicKey};

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The file is not `<N hex>` + LF.
    #[error("{what} must be {hex_len} lowercase hex characters and LF")]
    Format {
        /// Which file.
        what: &'static str,
        /// Hex characters expected.
        hex_len: usize,
    },
    /// The public key bytes are not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key")]
    BadKey,
    /// The signature does not verify.
    #[error("signature does not verify under the pinned key")]
    BadSignature,
}

fn parse_hex_file<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<[u8; N], SignError> {
    let err = SignError::Format {
        what,
        hex_len: 2 * N,
    };
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return Err(err);
    };
    let mut out = [0u8; N];
    decode_lower_hex(body, &mut out).ok_or(err)?;
    Ok(out)
}

/// Signs `message`, returning the contents of a `.sig` file (128 hex + LF).
#[must_use]
pub fn sign(key: &SigningKey, message: &[u8]) -> String {
    format!("{}\n", hex::encode(key.sign(message).to_bytes()))
}

/// Verifies a `.sig` file's contents over `message` (strict RFC 8032
/// verification: non-canonical signatures and small-order keys are refused).
///
/// # Errors
/// [`SignError::Format`] or [`SignError::BadSignature`].
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    sig_file: &[u8],
) -> Result<(), SignError> {
    let bytes: [u8; 64] = parse_hex_file("signature file", sig_file)?;
    let sig = Signature::from_bytes(&bytes);
    key.verify_strict(message, &sig)
        .map_err(|_| SignError::BadSignature)
}

/// Parses `authority.pub`.
///
/// # Errors
/// [`SignError::Format`] or [`SignError::BadKey`].
pub fn parse_public_key_file(bytes: &[u8]) -> Result<VerifyingKey, SignError> {
    let raw: [u8; 32] = parse_hex_file("public key file", bytes)?;
    VerifyingKey::from_bytes(&raw).map_err(|_| SignError::BadKey)
}

/// The contents of `authority.pub` for a key.
#[must_use]
pub fn public_key_file(key: &VerifyingKey) -> String {
    format!("{}\n", hex::encode(key.to_bytes()))
}

/// Parses a secret key file: the 32-byte RFC 8032 private key as 64 hex + LF.
///
/// # Errors
/// [`SignError::Format`].
pub fn parse_secret_key_file(bytes: &[u8]) -> Result<SigningKey, SignError> {
    let raw: [u8; 32] = parse_hex_file("secret key file", bytes)?;
    Ok(SigningKey::from_bytes(&raw))
}

/// The contents of a secret key file (keep it off the snapshot directory).
#[must_use]
pub fn secret_key_file(key: &SigningKey) -> String {
    format!("{}\n", hex::encode(key.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 1: empty message.
    #[test]
    fn rfc8032_test_1_signs_and_verifies() {
        let key = parse_secret_key_file(
            b"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
        )
        .unwrap();
        assert_eq!(
            public_key_file(&key.verifying_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n"
        );
        let sig = sign(&key, b"");
        assert_eq!(
            sig,
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b\n"
        );
        assert!(verify_signature(&key.verifying_key(), b"", sig.as_bytes()).is_ok());
        assert_eq!(
            verify_signature(&key.verifying_key(), b"x", sig.as_bytes()),
            Err(SignError::BadSignature)
        );
        assert!(verify_signature(&key.verifying_key(), b"", sig.trim_end().as_bytes()).is_err());
        assert!(
            verify_signature(&key.verifying_key(), b"", sig.to_uppercase().as_bytes()).is_err()
        );
    }
}
