//! The checks of the manifest itself: its row against its signed body, its file copy under
//! `[evidence] dir`, its link to the previous day's final manifest, and the audit chains' heads
//! it sealed still links of their logs.

use super::{Finding, VerifyContext};
use crate::evidence::canonical::time;
use crate::evidence::manifest::SignedManifest;
use crate::evidence::seal::signed_of_row;
use crate::store::chain::{ChainedLog, GENESIS};
use crate::store::{Store, StoreError};

pub(super) fn row_matches_body(
    m: &crate::store::NewManifest,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) {
    let b = &s.body;
    for (column, same) in [
        ("day", m.day == b.day),
        ("is_final", m.is_final == b.is_final),
        ("prev_sha256", m.prev_sha256 == b.prev_manifest_sha256),
        ("merkle_root", m.merkle_root == b.merkle_root),
        ("key_fingerprint", m.key_fingerprint == b.key_fingerprint),
        ("sealed_at", time(m.sealed_at) == b.sealed_at),
    ] {
        if !same {
            findings.push(Finding::ManifestRowEdited {
                column: column.to_string(),
            });
        }
    }
}

pub(super) async fn check_file(
    ctx: &VerifyContext,
    m: &crate::store::NewManifest,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) {
    let Some(relative) = &m.file else {
        return;
    };
    let path = ctx.evidence_dir.join(relative);
    match tokio::fs::read_to_string(&path).await {
        Err(_) => findings.push(Finding::ManifestFileMissing {
            path: relative.clone(),
        }),
        Ok(text) => {
            let same = crate::evidence::manifest::parse(&text).is_ok_and(|f| {
                f.body.canonical() == s.body.canonical()
                    && f.signature == s.signature
                    && f.manifest_sha256 == s.manifest_sha256
            });
            if !same {
                findings.push(Finding::ManifestFileDiffers {
                    path: relative.clone(),
                });
            }
        }
    }
}

pub(super) async fn check_chain(
    store: &Store,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    let prev = store.final_manifest_before(Some(&s.body.day)).await?;
    let expected = prev.as_ref().map_or_else(
        || GENESIS.to_string(),
        |p| p.manifest.manifest_sha256.clone(),
    );
    // The previous row's hash as stored must also be its body's (else the row was rewritten).
    let prev_recomputed = prev
        .as_ref()
        .and_then(|p| signed_of_row(&p.manifest).ok())
        .map(|p| p.body.sha256());
    let broken = s.body.prev_manifest_sha256 != expected
        || prev_recomputed.is_some_and(|r| r != expected)
        || s.body.prev_day != prev.as_ref().map(|p| p.manifest.day.clone());
    if broken {
        findings.push(Finding::ChainBroken {
            previous_day: prev.map(|p| p.manifest.day),
            expected,
            found: s.body.prev_manifest_sha256.clone(),
        });
    }
    Ok(())
}

pub(super) async fn check_heads(
    store: &Store,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    for head in &s.body.chains {
        let Some(id) = head.head_id else { continue };
        let log = match head.log.as_str() {
            "audit_log" => ChainedLog::Audit,
            "enforcement_log" => ChainedLog::Enforcement,
            _ => continue,
        };
        if !store.chain_has_link(log, id, &head.head_sha256).await? {
            findings.push(Finding::ChainHeadMissing {
                log: head.log.clone(),
                head_id: id,
            });
        }
    }
    Ok(())
}
