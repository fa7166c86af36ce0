//! One call proven part of its sealed day (issue 17): an evidence package carries, per call,
//! `manifest_proof.json` — the day's root statement and its signature, the call's CDR entry and
//! recording entry as sealed, each with its Merkle audit path. With the deployment's public key
//! alone, whoever holds the package checks that the root statement is signed, that each entry
//! leads to the root by its path, that the package's `cdr.json` hashes to the sealed CDR entry
//! and its recording files to the sealed digests (`verify_package`).

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::canonical::{cdr_sha256, sha256_hex, CdrRow};
use super::manifest::{root_statement, signature_ok, Entry, RootStatement, SignedManifest};
use super::merkle::{self, Hash};
use super::seal::{current_manifest, day_text, signed_of_row};
use crate::store::{Store, StoreError};

pub const PROOF_FORMAT: &str = "trunkguard-manifest-proof/1";
/// Its name in a call's folder of a package.
pub const PROOF_FILE: &str = "manifest_proof.json";

/// One entry and its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeafProof {
    pub index: u64,
    pub entry: Entry,
    /// The audit path, leaf to root, hex.
    pub path: Vec<String>,
}

/// `manifest_proof.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestProof {
    /// `trunkguard-manifest-proof/1`.
    pub format: String,
    /// What the root signature covers (day, final, sealed_at, leaves, root, key fingerprint).
    pub statement: RootStatement,
    pub root_signature: String,
    /// The manifest's own hash and signature, to match it with the manifest file.
    pub manifest_sha256: String,
    pub signature: String,
    pub cdr: LeafProof,
    pub recording: Option<LeafProof>,
}

fn leaf_proof(index: usize, entries: &[Entry], leaves: &[Hash]) -> Option<LeafProof> {
    Some(LeafProof {
        index: index as u64,
        entry: entries.get(index)?.clone(),
        path: merkle::path(index, leaves)?
            .iter()
            .map(hex::encode)
            .collect(),
    })
}

/// The proofs of `calls` (id and INVITE time) whose day has a manifest that holds them.
/// Computed off the runtime (a day of many calls is a large tree).
pub async fn proofs_for_calls(
    store: &Store,
    calls: &[(String, DateTime<Utc>)],
) -> Result<BTreeMap<String, ManifestProof>, StoreError> {
    let mut by_day: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, at) in calls {
        by_day
            .entry(day_text(at.date_naive()))
            .or_default()
            .push(id.clone());
    }
    let mut out = BTreeMap::new();
    for (day, ids) in by_day {
        let Some(row) = current_manifest(store, &day).await? else {
            continue;
        };
        let Ok(signed) = signed_of_row(&row.manifest) else {
            tracing::warn!(day = %day, "evidence: the day's manifest does not read; no proof packed");
            continue;
        };
        let proofs = tokio::task::spawn_blocking(move || proofs_in(&signed, &ids))
            .await
            .unwrap_or_default();
        out.extend(proofs);
    }
    Ok(out)
}

/// The proofs of `ids` in one manifest.
pub fn proofs_in(m: &SignedManifest, ids: &[String]) -> Vec<(String, ManifestProof)> {
    let b = &m.body;
    let leaves = b.leaf_hashes();
    let mut out = Vec::new();
    for id in ids {
        let cdr = b
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Cdr { id: i, .. } if i == id));
        let Some(cdr) = cdr.and_then(|i| leaf_proof(i, &b.entries, &leaves)) else {
            continue;
        };
        let recording = b
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Recording { call_id, .. } if call_id == id))
            .and_then(|i| leaf_proof(i, &b.entries, &leaves));
        out.push((
            id.clone(),
            ManifestProof {
                format: PROOF_FORMAT.to_string(),
                statement: RootStatement {
                    day: b.day.clone(),
                    is_final: b.is_final,
                    sealed_at: b.sealed_at.clone(),
                    leaves: b.entries.len() as u64,
                    merkle_root: b.merkle_root.clone(),
                    key_fingerprint: b.key_fingerprint.clone(),
                },
                root_signature: b.root_signature.clone(),
                manifest_sha256: m.manifest_sha256.clone(),
                signature: m.signature.clone(),
                cdr,
                recording,
            },
        ));
    }
    out
}

/// What checking one call of a package found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallProofReport {
    /// The call's folder in the package.
    pub folder: String,
    pub call_id: Option<String>,
    pub day: Option<String>,
    pub ok: bool,
    /// Each thing that failed, in words.
    pub problems: Vec<String>,
}

/// Whether `leaf` is at its place under the statement's root.
fn leaf_proves(p: &LeafProof, statement: &RootStatement) -> bool {
    let Ok(root) = hex::decode(&statement.merkle_root) else {
        return false;
    };
    let Ok(root): Result<Hash, _> = root.try_into() else {
        return false;
    };
    let path: Option<Vec<Hash>> = p
        .path
        .iter()
        .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect();
    let Some(path) = path else { return false };
    merkle::verify(
        p.index,
        statement.leaves,
        &p.entry.leaf_hash(),
        &path,
        &root,
    )
}

/// Checks one call's proof against the package's files (`files`: path in the package → bytes,
/// of the call's folder) and, when given, the manifest.
pub fn check_call(
    folder: &str,
    proof: &ManifestProof,
    files: &BTreeMap<String, Vec<u8>>,
    key: &VerifyingKey,
    manifest: Option<&SignedManifest>,
) -> CallProofReport {
    let mut problems = Vec::new();
    let s = &proof.statement;
    if proof.format != PROOF_FORMAT {
        problems.push(format!("not a {PROOF_FORMAT} proof"));
    }
    if s.key_fingerprint != super::keys::fingerprint(key) {
        problems.push("sealed with another key".to_string());
    }
    if !signature_ok(key, root_statement(s).as_bytes(), &proof.root_signature) {
        problems.push("the root statement's signature does not verify".to_string());
    }
    if !leaf_proves(&proof.cdr, s) {
        problems.push("the CDR entry is not under the signed root".to_string());
    }
    let Entry::Cdr { id, sha256, .. } = &proof.cdr.entry else {
        problems.push("the CDR proof holds no CDR entry".to_string());
        return report(folder, None, s, problems);
    };
    match files.get(&format!("{folder}/cdr.json")) {
        None => problems.push("no cdr.json".to_string()),
        Some(bytes) => match serde_json::from_slice::<CdrRow>(bytes) {
            Err(e) => problems.push(format!("cdr.json does not read: {e}")),
            Ok(row) => {
                if row.attempt.id != *id {
                    problems.push(format!(
                        "cdr.json is call {}, the proof {id}",
                        row.attempt.id
                    ));
                }
                if cdr_sha256(&row.attempt, &row.outcome) != *sha256 {
                    problems.push("cdr.json is not the CDR that was sealed".to_string());
                }
            }
        },
    }
    if let Some(rec) = &proof.recording {
        if !leaf_proves(rec, s) {
            problems.push("the recording entry is not under the signed root".to_string());
        }
        if let Entry::Recording {
            wav_sha256,
            pcap_sha256,
            ..
        } = &rec.entry
        {
            for (name, sealed) in [
                ("recording.wav", wav_sha256),
                ("recording.pcap", pcap_sha256),
            ] {
                if let (Some(bytes), Some(sealed)) =
                    (files.get(&format!("{folder}/{name}")), sealed)
                {
                    if !sha256_hex(bytes).eq_ignore_ascii_case(sealed) {
                        problems.push(format!("{name} is not the recording that was sealed"));
                    }
                }
            }
        } else {
            problems.push("the recording proof holds no recording entry".to_string());
        }
    }
    if let Some(m) = manifest {
        if m.manifest_sha256 != proof.manifest_sha256 || m.body.merkle_root != s.merkle_root {
            problems.push("the proof is of another manifest".to_string());
        } else {
            for p in std::iter::once(&proof.cdr).chain(proof.recording.as_ref()) {
                if m.body.entries.get(p.index as usize) != Some(&p.entry) {
                    problems.push(format!("entry {} is not the manifest's", p.index));
                }
            }
        }
    }
    report(folder, Some(id.clone()), s, problems)
}

fn report(
    folder: &str,
    call_id: Option<String>,
    s: &RootStatement,
    problems: Vec<String>,
) -> CallProofReport {
    CallProofReport {
        folder: folder.to_string(),
        call_id,
        day: Some(s.day.clone()),
        ok: problems.is_empty(),
        problems,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackageReadError {
    #[error("not a ZIP file: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

/// Checks every call of an evidence package (a ZIP's bytes): a call folder without a proof is
/// reported (its day was not sealed when the package was made).
pub fn verify_package(
    zip: &[u8],
    key: &VerifyingKey,
    manifest: Option<&SignedManifest>,
) -> Result<Vec<CallProofReport>, PackageReadError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))?;
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let name = entry.name()?.to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|source| PackageReadError::Io {
                name: name.clone(),
                source,
            })?;
        files.insert(name, bytes);
    }
    let folders: Vec<String> = files
        .keys()
        .filter_map(|n| n.strip_suffix("/cdr.json"))
        .map(str::to_string)
        .collect();
    let mut reports = Vec::new();
    for folder in folders {
        let proof = files
            .get(&format!("{folder}/{PROOF_FILE}"))
            .map(|b| serde_json::from_slice::<ManifestProof>(b));
        reports.push(match proof {
            Some(Ok(proof)) => check_call(&folder, &proof, &files, key, manifest),
            Some(Err(e)) => CallProofReport {
                folder,
                call_id: None,
                day: None,
                ok: false,
                problems: vec![format!("{PROOF_FILE} does not read: {e}")],
            },
            None => CallProofReport {
                folder,
                call_id: None,
                day: None,
                ok: false,
                problems: vec![format!(
                    "no {PROOF_FILE}: the call's day was not sealed when the package was made"
                )],
            },
        });
    }
    Ok(reports)
}
