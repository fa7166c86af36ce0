//! A signed daily manifest (issue 17): what a UTC day held when it was sealed, and the checks
//! anyone can make of it with the deployment's public key alone (no database).
//!
//! The body (`ManifestBody`) lists one entry per sealed fact — each CDR (its id and the SHA-256
//! of its canonical JSON, `canonical::cdr_content`), each recording (the digests stored for its
//! WAV and pcap), each retention deletion and each legal-hold change of the day — with the
//! audit and enforcement chains' heads, the counts, the previous final manifest's hash (the
//! chain of manifests) and the Merkle root over the entries (`merkle`, RFC 6962):
//!
//! - leaf bytes: an entry's canonical JSON (`{"kind":"cdr",…}`), the `kind` naming what it is;
//!   leaf hash `SHA-256(0x00 || bytes)`, node `SHA-256(0x01 || left || right)`;
//! - `root_signature`: Ed25519 over the root statement (`root_statement`: format, day, final,
//!   sealed_at, leaf count, root, key fingerprint), so one call's inclusion proof can be checked
//!   without the whole manifest;
//! - `manifest_sha256`: SHA-256 of the body's canonical JSON; `signature`: Ed25519 over those
//!   same bytes. The next final manifest carries `manifest_sha256` as its `prev_manifest_sha256`.
//!
//! The file (`SignedManifest`) is the body's fields with `manifest_sha256` and `signature`
//! beside them; whatever its layout, a verifier re-canonicalizes the body.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::canonical;
use super::merkle::{self, Hash};
use crate::model::RecordingPause;

pub const FORMAT: &str = "trunkguard-manifest/1";
pub const ROOT_FORMAT: &str = "trunkguard-manifest-root/1";

/// One sealed fact: a leaf of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A CDR of a call whose INVITE was in the day.
    Cdr {
        id: String,
        invite_at: String,
        /// SHA-256 of the CDR's canonical JSON (`cdr/1`).
        sha256: String,
    },
    /// The recording of a call of the day: the digests stored when it was closed.
    Recording {
        call_id: String,
        status: String,
        wav_sha256: Option<String>,
        pcap_sha256: Option<String>,
        /// When the retention purge had deleted its files, if it had at the seal.
        purged_at: Option<String>,
        /// The PCI pauses (issue 17): where the file is silence by design, who paused and
        /// resumed. Absent when none, so a recording without pauses seals as before.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pauses: Vec<RecordingPause>,
    },
    /// A row of the retention log written in the day.
    Retention {
        id: i64,
        at: String,
        /// `recording` (its files) or `cdr` (the CDR and its rows).
        deleted: String,
        call_id: String,
        file: Option<String>,
        note: Option<String>,
    },
    /// A legal hold placed or released in the day.
    Hold {
        hold_id: i64,
        call_id: String,
        /// `placed` or `released`.
        event: String,
        at: String,
        by: String,
        reason: Option<String>,
    },
}

impl Entry {
    /// The leaf's bytes: the entry's canonical JSON.
    pub fn leaf_bytes(&self) -> String {
        canonical::to_string(&serde_json::to_value(self).unwrap_or_default())
    }

    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(self.leaf_bytes().as_bytes())
    }
}

/// A chained log's head at the seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainHead {
    /// `audit_log` or `enforcement_log`.
    pub log: String,
    /// The newest linked row; null for an empty chain.
    pub head_id: Option<i64>,
    pub head_sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub cdrs: u64,
    pub recordings: u64,
    pub retention: u64,
    pub holds: u64,
    /// Every entry: the tree's size.
    pub leaves: u64,
}

/// A recording file that was not what its digest says when the day was sealed (it is sealed
/// with the digest stored at the recording's close; this says the file already differed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SealProblem {
    pub call_id: String,
    /// `wav` or `pcap`.
    pub file: String,
    /// `missing`, `unreadable` or `differs`.
    pub problem: String,
}

/// What is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestBody {
    /// `trunkguard-manifest/1`.
    pub format: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// A seal of a day that had ended; false for today so far (superseded by the final seal).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The INVITE times and log times covered: `[covers_from, covers_to)`.
    pub covers_from: String,
    pub covers_to: String,
    pub sealed_at: String,
    pub gateway_version: String,
    /// The `manifest_sha256` of the final manifest of the latest day sealed before (64 zeros
    /// for the first).
    pub prev_manifest_sha256: String,
    pub prev_day: Option<String>,
    pub chains: Vec<ChainHead>,
    pub counts: Counts,
    pub problems: Vec<SealProblem>,
    /// A partial seal's calls still in progress (journaled, INVITE before `covers_to`, no CDR
    /// yet): their CDRs arrive after the seal, and verification reports them as such, not as
    /// added. Absent when none (a final seal waits for every call of its day).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<String>,
    /// Every leaf, in the tree's order: CDRs and recordings by INVITE time and id, then the
    /// retention log by id, then hold changes by time.
    pub entries: Vec<Entry>,
    pub merkle_root: String,
    /// The public key's 32 bytes in hex (`trunkguard keys public`).
    pub key_fingerprint: String,
    /// Ed25519 (hex) over the root statement.
    pub root_signature: String,
}

/// A manifest as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedManifest {
    #[serde(flatten)]
    pub body: ManifestBody,
    /// SHA-256 of the body's canonical JSON.
    pub manifest_sha256: String,
    /// Ed25519 (hex) over the body's canonical JSON.
    pub signature: String,
}

/// What is wrong with a manifest itself (not with the day it describes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestFinding {
    /// Not a manifest this version reads.
    Unreadable { reason: String },
    /// The body does not hash to `manifest_sha256`: it was changed after the seal.
    BodyAltered { expected: String, found: String },
    /// The signature does not verify with the key.
    BadSignature,
    /// The root statement's signature does not verify with the key.
    BadRootSignature,
    /// Signed by another key than the one given.
    KeyMismatch { sealed: String, expected: String },
    /// The entries do not give the stated root.
    MerkleRootMismatch { stated: String, computed: String },
    /// The counts do not match the entries.
    CountsMismatch,
}

impl ManifestBody {
    /// The body's canonical JSON: what is hashed and signed.
    pub fn canonical(&self) -> String {
        canonical::to_string(&serde_json::to_value(self).unwrap_or_default())
    }

    pub fn sha256(&self) -> String {
        canonical::sha256_hex(self.canonical().as_bytes())
    }

    pub fn leaf_hashes(&self) -> Vec<Hash> {
        self.entries.iter().map(Entry::leaf_hash).collect()
    }

    /// The counts the entries give.
    pub fn computed_counts(&self) -> Counts {
        let mut c = Counts {
            leaves: self.entries.len() as u64,
            ..Counts::default()
        };
        for e in &self.entries {
            match e {
                Entry::Cdr { .. } => c.cdrs += 1,
                Entry::Recording { .. } => c.recordings += 1,
                Entry::Retention { .. } => c.retention += 1,
                Entry::Hold { .. } => c.holds += 1,
            }
        }
        c
    }

    /// The root statement `root_signature` signs.
    pub fn root_statement(&self) -> String {
        root_statement(&RootStatement {
            day: self.day.clone(),
            is_final: self.is_final,
            sealed_at: self.sealed_at.clone(),
            leaves: self.entries.len() as u64,
            merkle_root: self.merkle_root.clone(),
            key_fingerprint: self.key_fingerprint.clone(),
        })
    }
}

/// What the root signature covers (also carried by an inclusion proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RootStatement {
    pub day: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub sealed_at: String,
    pub leaves: u64,
    pub merkle_root: String,
    pub key_fingerprint: String,
}

/// The root statement's canonical bytes.
pub fn root_statement(s: &RootStatement) -> String {
    canonical::to_string(&serde_json::json!({
        "format": ROOT_FORMAT,
        "day": s.day,
        "final": s.is_final,
        "sealed_at": s.sealed_at,
        "leaves": s.leaves,
        "merkle_root": s.merkle_root,
        "key_fingerprint": s.key_fingerprint,
    }))
}

/// Completes `body` (counts, root, fingerprint, root signature) and signs it.
pub fn sign(mut body: ManifestBody, key: &SigningKey) -> SignedManifest {
    body.format = FORMAT.to_string();
    body.counts = body.computed_counts();
    body.merkle_root = hex::encode(merkle::root(&body.leaf_hashes()));
    body.key_fingerprint = super::keys::fingerprint(&key.verifying_key());
    body.root_signature = hex::encode(key.sign(body.root_statement().as_bytes()).to_bytes());
    let bytes = body.canonical();
    SignedManifest {
        manifest_sha256: canonical::sha256_hex(bytes.as_bytes()),
        signature: hex::encode(key.sign(bytes.as_bytes()).to_bytes()),
        body,
    }
}

/// Whether `signature_hex` is `key`'s signature of `message`.
pub fn signature_ok(key: &VerifyingKey, message: &[u8], signature_hex: &str) -> bool {
    let Ok(bytes) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

/// The key a manifest names (its fingerprint is the public key itself).
pub fn key_of_fingerprint(fingerprint: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(fingerprint).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Everything that can be checked of a manifest with `key` alone: its format, its hash, both
/// signatures, the key, the root from the entries and the counts. Empty: intact.
pub fn check(m: &SignedManifest, key: &VerifyingKey) -> Vec<ManifestFinding> {
    let mut findings = Vec::new();
    let body = &m.body;
    if body.format != FORMAT {
        findings.push(ManifestFinding::Unreadable {
            reason: format!("format {:?}, not {FORMAT}", body.format),
        });
        return findings;
    }
    let expected_key = super::keys::fingerprint(key);
    if body.key_fingerprint != expected_key {
        findings.push(ManifestFinding::KeyMismatch {
            sealed: body.key_fingerprint.clone(),
            expected: expected_key,
        });
    }
    let bytes = body.canonical();
    let found = canonical::sha256_hex(bytes.as_bytes());
    if found != m.manifest_sha256 {
        findings.push(ManifestFinding::BodyAltered {
            expected: m.manifest_sha256.clone(),
            found,
        });
    }
    if !signature_ok(key, bytes.as_bytes(), &m.signature) {
        findings.push(ManifestFinding::BadSignature);
    }
    if !signature_ok(key, body.root_statement().as_bytes(), &body.root_signature) {
        findings.push(ManifestFinding::BadRootSignature);
    }
    let computed = hex::encode(merkle::root(&body.leaf_hashes()));
    if computed != body.merkle_root {
        findings.push(ManifestFinding::MerkleRootMismatch {
            stated: body.merkle_root.clone(),
            computed,
        });
    }
    if body.computed_counts() != body.counts {
        findings.push(ManifestFinding::CountsMismatch);
    }
    findings
}

/// A manifest file's text read back.
pub fn parse(text: &str) -> Result<SignedManifest, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
