//! The day's content now against what was sealed: each CDR (altered, deleted, added, or after a
//! partial seal), each recording (its row and its files' bytes), the retention log and the
//! legal-hold changes; a deletion the retention purge logged is a note, not a finding.

use std::collections::{BTreeMap, BTreeSet};

use super::{AfterSeal, DayReport, Finding, RetentionNote, VerifyContext};
use crate::evidence::canonical::time;
use crate::evidence::manifest::{Entry, SignedManifest};
use crate::evidence::seal::{
    collect, file_state, hold_entry, retention_entry, CdrFact, FileState, ManifestError,
};
use crate::store::{DayRecording, Store, StoreError};

/// The retention purge's deletion of a call's `what` (`cdr` or `recording`), if logged.
async fn purged(
    store: &Store,
    call_id: &str,
    what: &str,
) -> Result<Option<RetentionNote>, StoreError> {
    Ok(store
        .retention_entries(Some(call_id), 100)
        .await?
        .into_iter()
        .find(|e| e.kind == what)
        .map(|e| RetentionNote {
            call_id: call_id.to_string(),
            deleted: what.to_string(),
            at: time(e.at),
        }))
}

pub(super) async fn check_content(
    store: &Store,
    ctx: &VerifyContext,
    s: &SignedManifest,
    report: &mut DayReport,
) -> Result<(), ManifestError> {
    let b = &s.body;
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| ManifestError::Unreadable {
                day: b.day.clone(),
                reason: format!("time {t:?}: {e}"),
            })
    };
    let now = collect(store, parse(&b.covers_from)?, parse(&b.covers_to)?).await?;
    report.cdrs = now.cdrs.len() as u64;
    report.recordings = now.recordings.len() as u64;
    let findings = &mut report.findings;

    // CDRs.
    let found: BTreeMap<&str, &CdrFact> = now.cdrs.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut sealed_ids = BTreeSet::new();
    let mut cdrs_purged = BTreeSet::new();
    for e in &b.entries {
        let Entry::Cdr { id, sha256, .. } = e else {
            continue;
        };
        sealed_ids.insert(id.as_str());
        match found.get(id.as_str()) {
            Some(c) if c.sha256 == *sha256 => {}
            Some(c) => findings.push(Finding::CdrAltered {
                id: id.clone(),
                sealed_sha256: sha256.clone(),
                found_sha256: c.sha256.clone(),
            }),
            None => match purged(store, id, "cdr").await? {
                Some(note) => {
                    cdrs_purged.insert(id.clone());
                    report.retention.push(note);
                }
                None => findings.push(Finding::CdrDeleted { id: id.clone() }),
            },
        }
    }
    let cut_off = parse(&b.covers_to)?;
    let mut later = BTreeSet::new();
    for c in &now.cdrs {
        if sealed_ids.contains(c.id.as_str()) {
            continue;
        }
        let in_progress = b.in_progress.contains(&c.id);
        if !b.is_final && (in_progress || c.end_at >= cut_off) {
            later.insert(c.id.as_str());
            report.after_seal.push(AfterSeal {
                id: c.id.clone(),
                invite_at: time(c.invite_at),
                end_at: time(c.end_at),
                in_progress,
            });
        } else {
            findings.push(Finding::CdrAdded {
                id: c.id.clone(),
                invite_at: time(c.invite_at),
            });
        }
    }

    // Recordings.
    let rows: BTreeMap<&str, &DayRecording> = now
        .recordings
        .iter()
        .map(|r| (r.call_id.as_str(), r))
        .collect();
    let known: BTreeSet<(&str, &str)> = b
        .problems
        .iter()
        .map(|p| (p.call_id.as_str(), p.file.as_str()))
        .collect();
    let mut sealed_recordings = BTreeSet::new();
    let mut to_hash: Vec<(String, &'static str, String, String)> = Vec::new();
    for e in &b.entries {
        let Entry::Recording {
            call_id,
            status,
            wav_sha256,
            pcap_sha256,
            purged_at,
            pauses,
        } = e
        else {
            continue;
        };
        sealed_recordings.insert(call_id.as_str());
        let Some(r) = rows.get(call_id.as_str()) else {
            if !cdrs_purged.contains(call_id) {
                findings.push(Finding::RecordingRowDeleted {
                    call_id: call_id.clone(),
                });
            }
            continue;
        };
        let mut edited = |column: &str, sealed: &Option<String>, found: &Option<String>| {
            if sealed != found {
                findings.push(Finding::RecordingRowEdited {
                    call_id: call_id.clone(),
                    column: column.to_string(),
                    sealed: sealed.clone(),
                    found: found.clone(),
                });
            }
        };
        edited("sha256", wav_sha256, &r.sha256);
        edited("pcap_sha256", pcap_sha256, &r.pcap_sha256);
        edited("status", &Some(status.clone()), &Some(r.status.clone()));
        if *pauses != r.pauses {
            let show = |p: &[crate::model::RecordingPause]| serde_json::to_string(p).ok();
            findings.push(Finding::RecordingRowEdited {
                call_id: call_id.clone(),
                column: "pauses".into(),
                sealed: show(pauses),
                found: show(&r.pauses),
            });
        }
        match (purged_at, r.purged_at) {
            (None, Some(_)) => match purged(store, call_id, "recording").await? {
                Some(note) => report.retention.push(note),
                None => findings.push(Finding::RecordingPurgedUnlogged {
                    call_id: call_id.clone(),
                }),
            },
            (Some(_), None) => findings.push(Finding::RecordingRowEdited {
                call_id: call_id.clone(),
                column: "purged_at".into(),
                sealed: purged_at.clone(),
                found: None,
            }),
            (Some(_), Some(_)) => {}
            (None, None) => {
                for (file, path, sha) in [
                    ("wav", &r.path, wav_sha256),
                    ("pcap", &r.pcap_path, pcap_sha256),
                ] {
                    if let (Some(path), Some(sha)) = (path, sha) {
                        if !known.contains(&(call_id.as_str(), file)) {
                            to_hash.push((call_id.clone(), file, path.clone(), sha.clone()));
                        }
                    }
                }
            }
        }
    }
    for r in &now.recordings {
        if !sealed_recordings.contains(r.call_id.as_str()) && !later.contains(r.call_id.as_str()) {
            findings.push(Finding::RecordingAdded {
                call_id: r.call_id.clone(),
            });
        }
    }
    let root = ctx.recordings_dir.clone();
    let states = tokio::task::spawn_blocking(move || {
        to_hash
            .into_iter()
            .map(|(call_id, file, path, sha)| {
                let state = file_state(&root, &path);
                (call_id, file, sha, state)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ManifestError::Join(e.to_string()))?;
    for (call_id, file, sealed, state) in states {
        let file = file.to_string();
        match state {
            FileState::Sha256(found) if found.eq_ignore_ascii_case(&sealed) => {}
            FileState::Sha256(found) => findings.push(Finding::RecordingReplaced {
                call_id,
                file,
                sealed_sha256: sealed,
                found_sha256: found,
            }),
            FileState::Missing => findings.push(Finding::RecordingFileDeleted { call_id, file }),
            FileState::Unreadable(reason) => findings.push(Finding::RecordingFileUnreadable {
                call_id,
                file,
                reason,
            }),
        }
    }

    // The retention log and the hold changes of the window.
    let sealed: BTreeMap<i64, &Entry> = b
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Retention { id, .. } => Some((*id, e)),
            _ => None,
        })
        .collect();
    let current: BTreeMap<i64, Entry> = now
        .retention
        .iter()
        .map(|r| (r.id, retention_entry(r)))
        .collect();
    for (id, change) in changes(&sealed, &current) {
        findings.push(Finding::RetentionLogChanged { id, change });
    }
    let sealed: BTreeMap<(i64, String), &Entry> = b
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Hold { hold_id, event, .. } => Some(((*hold_id, event.clone()), e)),
            _ => None,
        })
        .collect();
    let current: BTreeMap<(i64, String), Entry> = now
        .holds
        .iter()
        .map(|h| ((h.hold_id, h.event.to_string()), hold_entry(h)))
        .collect();
    for ((hold_id, event), change) in changes(&sealed, &current) {
        findings.push(Finding::HoldChanged {
            hold_id,
            event,
            change,
        });
    }
    Ok(())
}

/// Keys deleted, edited or added between the sealed entries and the current ones.
fn changes<K: Ord + Clone>(
    sealed: &BTreeMap<K, &Entry>,
    current: &BTreeMap<K, Entry>,
) -> Vec<(K, String)> {
    let mut out = Vec::new();
    for (k, e) in sealed {
        match current.get(k) {
            None => out.push((k.clone(), "deleted".to_string())),
            Some(c) if c != *e => out.push((k.clone(), "edited".to_string())),
            Some(_) => {}
        }
    }
    for k in current.keys() {
        if !sealed.contains_key(k) {
            out.push((k.clone(), "added".to_string()));
        }
    }
    out
}
