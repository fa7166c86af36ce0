//! The package written as a ZIP on the blocking thread: each call's JSON files, its SIP trace,
//! its recording files checked against their stored digests as they are packed, then the
//! manifest.

use std::io::Write;

use chrono::Utc;

use super::body::ChannelWriter;
use super::gather::{CallParts, Source};
use super::{EvidenceManifest, FileVerification, Verification};
use crate::evidence::package::PackageWriter;

/// Writes the whole package; returns how many files it listed. Blocking.
pub(super) fn write_package(
    out: &mut ChannelWriter,
    calls: Vec<CallParts>,
    manifest: &EvidenceManifest,
    actor: &str,
) -> Result<usize, crate::evidence::package::PackageError> {
    let mut p = PackageWriter::new(&mut *out, manifest.created_at);
    for call in calls {
        let dir = format!("calls/{}", call.folder);
        let r = &call.record;
        p.add_json(&format!("{dir}/cdr.json"), &r.cdr)?;
        p.add_json(
            &format!("{dir}/legs.json"),
            &serde_json::json!({ "media": r.media, "dtmf": r.dtmf }),
        )?;
        p.add_json(&format!("{dir}/holds.json"), &r.holds)?;
        p.add_json(
            &format!("{dir}/anomalies.json"),
            &serde_json::json!({ "anomalies": r.anomalies, "enforcement": r.enforcement }),
        )?;
        p.add_json(&format!("{dir}/audit.json"), &call.audit)?;
        if let Ok(trace) = &call.sip_trace {
            p.add_json(&format!("{dir}/sip_trace.json"), trace)?;
            p.add_bytes(
                &format!("{dir}/sip_trace.txt"),
                trace.to_text().as_bytes(),
                zip::CompressionMethod::Deflated,
            )?;
        }
        let wav = pack_file(&mut p, &format!("{dir}/recording.wav"), call.wav)?;
        let pcap = pack_file(&mut p, &format!("{dir}/recording.pcap"), call.pcap)?;
        let result = if call.purged_at.is_some() {
            "purged"
        } else if wav.is_none() {
            "none"
        } else if [&wav, &pcap].into_iter().flatten().all(|f| f.matches) {
            "ok"
        } else {
            "mismatch"
        };
        let verification = Verification {
            call_id: call.id.clone(),
            result: result.into(),
            recording_status: call.recording_status,
            wav,
            pcap,
            purged_at: call.purged_at,
            checked_at: Utc::now(),
            checked_by: actor.to_string(),
        };
        if result == "mismatch" {
            tracing::warn!(call_id = %call.id, "api: evidence: recording does not match its stored digest");
        }
        p.add_json(&format!("{dir}/verification.json"), &verification)?;
        if let Some(proof) = &call.proof {
            p.add_json(
                &format!("{dir}/{}", crate::evidence::proof::PROOF_FILE),
                proof,
            )?;
        }
    }
    let files = p.finish(manifest)?;
    out.flush()
        .map_err(|source| crate::evidence::package::PackageError::Io {
            path: "the response".into(),
            source,
        })?;
    Ok(files.len())
}

/// Packs one recording file (when the call has it) and checks it against its stored digest.
fn pack_file<W: Write>(
    p: &mut PackageWriter<W>,
    path: &str,
    source: Option<Source>,
) -> Result<Option<FileVerification>, crate::evidence::package::PackageError> {
    let Some(source) = source else {
        return Ok(None);
    };
    let (packed_as, computed, problem) = match source.opened {
        Ok(mut opened) => {
            let packed = p.add_reader(path, &mut opened.file, opened.len)?;
            (Some(path.to_string()), Some(packed.sha256.clone()), None)
        }
        Err(problem) => (None, None, Some(problem)),
    };
    let matches = matches!((&source.stored_sha256, &computed), (Some(s), Some(c)) if s.eq_ignore_ascii_case(c));
    Ok(Some(FileVerification {
        packed_as,
        stored_as: source.name,
        stored_sha256: source.stored_sha256,
        computed_sha256: computed,
        matches,
        problem,
    }))
}
