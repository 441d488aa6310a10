//! The authority's Ed25519 key pair: `authority.key` (secret, mode 0600) and `authority.pub`.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use super::{io, DayError};

pub const SECRET_FILE: &str = "authority.key";
pub const PUBLIC_FILE: &str = "authority.pub";

/// Makes a new key pair in `dir`; refuses to overwrite an existing one.
///
/// # Errors
/// When a key exists already or the files cannot be written.
pub fn keygen(dir: &Path) -> Result<(PathBuf, PathBuf), DayError> {
    std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
    let secret = dir.join(SECRET_FILE);
    let public = dir.join(PUBLIC_FILE);
    if secret.exists() {
        return Err(DayError::Refused(format!(
            "{} exists already; refusing to overwrite a key",
            secret.display()
        )));
    }
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&secret).map_err(io(secret.display()))?;
    f.write_all(lottery::sign::secret_key_file(&key).as_bytes())
        .map_err(io(secret.display()))?;
    f.sync_all().map_err(io(secret.display()))?;
    std::fs::write(
        &public,
        lottery::sign::public_key_file(&key.verifying_key()),
    )
    .map_err(io(public.display()))?;
    Ok((secret, public))
}

/// Loads the secret key from `dir/authority.key`.
///
/// # Errors
/// When the file is missing or malformed.
pub fn load(dir: &Path) -> Result<SigningKey, DayError> {
    let path = dir.join(SECRET_FILE);
    let bytes = std::fs::read(&path).map_err(io(path.display()))?;
    Ok(lottery::sign::parse_secret_key_file(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_pair_is_private_matches_and_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("md-keys-{}", uuid::Uuid::new_v4()));
        let (secret, public) = keygen(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let key = load(&dir).unwrap();
        let pubtext = std::fs::read_to_string(&public).unwrap();
        assert_eq!(pubtext.len(), 65);
        assert!(pubtext.ends_with('\n'));
        assert_eq!(
            lottery::sign::parse_public_key_file(pubtext.as_bytes()).unwrap(),
            key.verifying_key()
        );
        assert!(keygen(&dir).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
