//! The deployment's Ed25519 signing key (issue 17): made once by `trunkguard keys create`, kept
//! in a PKCS#8 PEM file only its owner may read (0600), and its public half handed to the
//! carrier or an auditor (SubjectPublicKeyInfo PEM, readable by OpenSSL: `openssl pkey -pubin`),
//! so that they can check sealed manifests without access to the gateway or its database.
//!
//! Files are small and read once per use; the functions are blocking (the CLI, or a blocking
//! thread).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an Ed25519 private key in PKCS#8 PEM ({reason})")]
    BadPrivate { path: PathBuf, reason: String },
    #[error("{path}: not an Ed25519 public key in PEM ({reason})")]
    BadPublic { path: PathBuf, reason: String },
    #[error("{path}: readable by others (mode {mode:o}); a signing key must be 0600")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("encoding the key: {0}")]
    Encode(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A new key pair from the OS's generator, written to `path` (which must not exist: a key is
/// never replaced by mistake, since every manifest it signed depends on it) with mode 0600.
/// Returns the public key.
pub fn create(path: &Path) -> Result<VerifyingKey, KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(pem.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    Ok(key.verifying_key())
}

/// The signing key at `path`; refused when others may read the file.
pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let pem = std::fs::read_to_string(path).map_err(io(path))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::BadPrivate {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The public key as PEM (SubjectPublicKeyInfo): what is handed out.
pub fn public_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// A public key handed out earlier (PEM), read back by whoever verifies.
pub fn load_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(io(path))?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| KeyError::BadPublic {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A short fingerprint to compare by eye or over the phone: the public key's raw 32 bytes in hex.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, Verifier};

    use super::*;

    #[test]
    fn a_created_key_is_private_loads_back_and_its_public_half_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        let public = create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Never replaced.
        assert!(matches!(create(&path), Err(KeyError::Io { .. })));
        let key = load(&path).unwrap();
        assert_eq!(key.verifying_key(), public);
        let handed_out = dir.path().join("public.pem");
        std::fs::write(&handed_out, public_pem(&public).unwrap()).unwrap();
        let theirs = load_public(&handed_out).unwrap();
        let signature = key.sign(b"manifest");
        assert!(theirs.verify(b"manifest", &signature).is_ok());
        assert!(theirs.verify(b"manifest!", &signature).is_err());
        assert_eq!(fingerprint(&theirs).len(), 64);
    }

    #[test]
    fn a_key_others_can_read_or_that_is_no_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load(&path),
                Err(KeyError::Exposed { mode: 0o644, .. })
            ));
        }
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(load(&junk), Err(KeyError::BadPrivate { .. })));
        assert!(matches!(
            load_public(&junk),
            Err(KeyError::BadPublic { .. })
        ));
    }
}
