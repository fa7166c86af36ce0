//! `[evidence]`: what makes the records hold against whoever holds the database (issue 17): the
//! deployment's Ed25519 signing key (made by `trunkguard keys create`) and where sealed
//! manifests are written.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The private key (PKCS#8 PEM, mode 0600). Absent: nothing is signed.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// Where sealed daily manifests are written as files (beside their rows in the database).
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
}

fn default_dir() -> PathBuf {
    PathBuf::from("data/evidence")
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            signing_key: None,
            dir: default_dir(),
        }
    }
}
