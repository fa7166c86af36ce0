//! `trunkguard recording get CALL_ID -o FILE`: copy a call's recording out of the recordings
//! folder, checking on the way that it is the recording that was made (its SHA-256 against the
//! digest stored with the CDR). Reads the database directly; the file is opened inside the
//! recordings folder only (`recording::locate`), like the API does.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CliError;
use crate::recording::locate::open_contained;
use crate::store::Store;

/// What was copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    pub sha256: String,
}

/// Copies the WAV (or with `pcap`, the raw RTP capture) of `call_id` to `to`, which must not
/// exist. On a digest mismatch the copy is removed and the error says both digests.
pub async fn get(
    store: &Store,
    recordings_dir: &Path,
    call_id: &str,
    to: &Path,
    pcap: bool,
    out: &mut impl Write,
) -> Result<Copied, CliError> {
    let info = store
        .recording(call_id)
        .await?
        .ok_or_else(|| CliError::Evidence(format!("call {call_id} has no recording")))?;
    if let Some(at) = store.recording_purged_at(call_id).await? {
        return Err(CliError::Evidence(format!(
            "the recording of call {call_id} was deleted by the retention purge at {at}"
        )));
    }
    let (stored, digest) = if pcap {
        (info.pcap_path.clone(), info.pcap_sha256.clone())
    } else {
        (info.path.clone(), info.sha256.clone())
    };
    let what = if pcap { "pcap" } else { "recording file" };
    let stored = stored.ok_or_else(|| {
        CliError::Evidence(format!(
            "call {call_id} has no {what} (recording status {})",
            info.status.as_str()
        ))
    })?;
    let digest = digest.ok_or_else(|| {
        CliError::Evidence(format!(
            "call {call_id}: no digest is on record for its {what}: it cannot be checked"
        ))
    })?;
    let (dir, to_path) = (recordings_dir.to_path_buf(), to.to_path_buf());
    let copied = tokio::task::spawn_blocking(move || copy_checked(&dir, &stored, &to_path))
        .await
        .map_err(|e| CliError::io("copying the recording", std::io::Error::other(e)))??;
    if !copied.sha256.eq_ignore_ascii_case(digest.trim()) {
        let _ = tokio::fs::remove_file(to).await;
        return Err(CliError::Evidence(format!(
            "MISMATCH: call {call_id}: the file's SHA-256 is {} but {} was stored when it was \
             recorded; no copy written",
            copied.sha256, digest
        )));
    }
    writeln!(
        out,
        "{}: {} bytes, sha256 {} (matches the digest stored with call {call_id})",
        to.display(),
        copied.bytes,
        copied.sha256
    )
    .map_err(|e| CliError::io("writing the output", e))?;
    Ok(copied)
}

/// Copies while hashing, into a new file (never over an existing one).
fn copy_checked(dir: &Path, stored: &str, to: &Path) -> Result<Copied, CliError> {
    let mut source = open_contained(dir, Path::new(stored))
        .map_err(|e| CliError::Evidence(format!("cannot open the recording: {e}")))?;
    let mut target = File::options()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| CliError::io(format!("creating {}", to.display()), e))?;
    let result = copy_into(&mut source.file, &mut target, to);
    if result.is_err() {
        let _ = std::fs::remove_file(to);
    }
    result
}

fn copy_into(source: &mut File, target: &mut File, to: &Path) -> Result<Copied, CliError> {
    let write_error = |e| CliError::io(format!("writing {}", to.display()), e);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::io("reading the recording", e)),
        };
        hasher.update(&buf[..n]);
        target.write_all(&buf[..n]).map_err(write_error)?;
        bytes += n as u64;
    }
    target.sync_all().map_err(write_error)?;
    Ok(Copied {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// The recordings folder as the gateway stores paths under it (absolute).
pub fn recordings_dir(config: &crate::config::Config) -> PathBuf {
    std::path::absolute(&config.recording.dir).unwrap_or_else(|_| config.recording.dir.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample_cdr;

    #[tokio::test]
    async fn copies_a_recording_that_matches_and_refuses_one_that_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let dir = root.join("recordings");
        std::fs::create_dir_all(dir.join("2026")).unwrap();
        let wav = dir.join("2026/C1.wav");
        let audio: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&wav, &audio).unwrap();
        let digest = crate::recording::digest::sha256_file(&wav).unwrap();
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let mut cdr = sample_cdr("C1");
        let rec = cdr.recording.as_mut().unwrap();
        rec.path = Some(wav.display().to_string());
        rec.sha256 = Some(digest.clone());
        let mut outside = sample_cdr("C2");
        outside.recording.as_mut().unwrap().path = Some("/etc/hostname".into());
        store.insert_cdrs(&[cdr, outside]).await.unwrap();

        let to = root.join("copy.wav");
        let mut out = Vec::new();
        let copied = get(&store, &dir, "C1", &to, false, &mut out).await.unwrap();
        assert_eq!(copied.bytes, audio.len() as u64);
        assert_eq!(copied.sha256, digest);
        assert_eq!(std::fs::read(&to).unwrap(), audio);
        assert!(String::from_utf8(out).unwrap().contains("matches"));

        // Never over an existing file.
        let e = get(&store, &dir, "C1", &to, false, &mut Vec::new()).await;
        assert!(matches!(e, Err(CliError::Io { .. })), "{e:?}");

        // One byte changed: refused, and no copy is left.
        let mut tampered = audio.clone();
        tampered[100_000] ^= 1;
        std::fs::write(&wav, &tampered).unwrap();
        let to2 = root.join("copy2.wav");
        let e = get(&store, &dir, "C1", &to2, false, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("MISMATCH"), "{e}");
        assert!(!to2.exists());

        // Outside the recordings folder, no pcap, unknown call: refused.
        let to3 = root.join("copy3.wav");
        assert!(get(&store, &dir, "C2", &to3, false, &mut Vec::new())
            .await
            .is_err());
        assert!(!to3.exists());
        assert!(get(&store, &dir, "C1", &to3, true, &mut Vec::new())
            .await
            .is_err());
        assert!(get(&store, &dir, "nope", &to3, false, &mut Vec::new())
            .await
            .is_err());
    }
}
