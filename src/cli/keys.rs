//! `trunkguard keys create` and `keys public`: the deployment's signing key (`evidence::keys`).
//! The private key's path comes from `--key` or `[evidence] signing_key`; the public key is
//! printed as PEM with its fingerprint, to hand to the carrier or an auditor.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CliError;
use crate::config::Config;
use crate::evidence::keys;

/// The key file: `--key`, else `[evidence] signing_key`.
pub fn key_path(given: Option<PathBuf>, config: &Config) -> Result<PathBuf, CliError> {
    given
        .or_else(|| config.evidence.signing_key.clone())
        .ok_or_else(|| {
            CliError::Usage(
                "no signing key: set [evidence] signing_key in the config or pass --key".into(),
            )
        })
}

pub fn create(path: &Path, out: &mut impl Write) -> Result<(), CliError> {
    let public = keys::create(path).map_err(|e| CliError::Evidence(e.to_string()))?;
    writeln!(out, "private key written to {} (mode 0600)", path.display())
        .map_err(|e| CliError::io("writing", e))?;
    print_public(&public, out)
}

pub fn public(path: &Path, out: &mut impl Write) -> Result<(), CliError> {
    let key = keys::load(path).map_err(|e| CliError::Evidence(e.to_string()))?;
    print_public(&key.verifying_key(), out)
}

fn print_public(key: &ed25519_dalek::VerifyingKey, out: &mut impl Write) -> Result<(), CliError> {
    let pem = keys::public_pem(key).map_err(|e| CliError::Evidence(e.to_string()))?;
    write!(out, "fingerprint: {}\n{pem}", keys::fingerprint(key))
        .map_err(|e| CliError::io("writing", e))
}
