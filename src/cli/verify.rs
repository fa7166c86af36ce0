//! `trunkguard verify PATH|CALL_ID`: is this file the recording that was made? Prints what was
//! compared; the caller turns a mismatch into exit status 1.

use std::io::Write;

use super::CliError;
use crate::evidence::verify::verify;
use crate::store::Store;

/// Checks `target` (a recording file or a call id) and prints the digests; true when the file is
/// the recording on record.
pub async fn run(
    store: &Store,
    recordings_dir: &std::path::Path,
    target: &str,
    out: &mut impl Write,
) -> Result<bool, CliError> {
    let v = verify(store, recordings_dir, target).await?;
    let w = |e| CliError::io("writing", e);
    let call = v.call_id.as_deref().unwrap_or("(unknown to the store)");
    writeln!(out, "file:     {}", v.path.display()).map_err(w)?;
    writeln!(out, "call:     {call}").map_err(w)?;
    writeln!(out, "sha256:   {}", v.actual_sha256).map_err(w)?;
    writeln!(
        out,
        "recorded: {}",
        v.recorded_sha256.as_deref().unwrap_or("(none)")
    )
    .map_err(w)?;
    if let Some(r) = &v.recording {
        writeln!(out, "status:   {}", r.status.as_str()).map_err(w)?;
        if let Some(caveat) = r.status.caveat() {
            writeln!(out, "holds:    {caveat}").map_err(w)?;
        }
    }
    if let Some(p) = &v.pcap {
        writeln!(out, "pcap:     {}", p.path.display()).map_err(w)?;
        writeln!(
            out,
            "  sha256:   {}",
            p.actual_sha256.as_deref().unwrap_or("(unreadable)")
        )
        .map_err(w)?;
        writeln!(
            out,
            "  recorded: {}",
            p.recorded_sha256.as_deref().unwrap_or("(none)")
        )
        .map_err(w)?;
    }
    let matches = v.matches();
    if matches {
        writeln!(out, "OK: the file is the recording that was made").map_err(w)?;
    } else {
        writeln!(out, "MISMATCH: the file is not the recording on record").map_err(w)?;
    }
    Ok(matches)
}
