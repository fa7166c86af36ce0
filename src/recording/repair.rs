//! Repair on start: every `*.wav.part` under the recording directory is a recording that a crash
//! left open. Its header is made to match the bytes that reached the disk, the file is cut to a
//! whole frame, synced and renamed to `.wav` (its `.pcap.part` too), and the gateway gets the
//! list so it can close those calls' CDRs with `gateway_restart` and mark them incomplete.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::digest::sha256_file;
use super::error::RecordingError;
use super::pcap::truncate_to_whole_records;
use super::writer::{sync_dir, PART_SUFFIX};

/// A recording found open and repaired.
#[derive(Debug, Clone)]
pub struct RepairedRecording {
    pub call_id: String,
    /// The repaired `.wav`.
    pub path: PathBuf,
    pub pcap_path: Option<PathBuf>,
    /// SHA-256 of the repaired pcap, when there is one.
    pub pcap_sha256_hex: Option<String>,
    pub sample_rate: u32,
    pub duration_ms: u64,
    pub size_bytes: u64,
    pub sha256_hex: String,
}

/// What `repair_all` did. A file it could not repair is left in place and listed in `failed`.
#[derive(Debug, Default)]
pub struct RepairReport {
    pub repaired: Vec<RepairedRecording>,
    pub failed: Vec<(PathBuf, String)>,
}

/// What a WAV header says once fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WavFacts {
    pub frames: u64,
    pub rate: u32,
    pub channels: u16,
}

/// Repairs every recording left open under `dir`, on tokio's blocking pool. Run it at start,
/// before calls are admitted.
pub async fn repair_all(dir: PathBuf) -> RepairReport {
    repair_all_except(dir, HashSet::new()).await
}

/// `repair_all`, leaving alone the recordings of the calls in `skip` (call ids: calls another
/// node is closing, whose recordings are its to repair).
pub async fn repair_all_except(dir: PathBuf, skip: HashSet<String>) -> RepairReport {
    tokio::task::spawn_blocking(move || repair_all_blocking_except(&dir, &skip))
        .await
        .unwrap_or_default()
}

/// `repair_all` for threads that may block.
pub fn repair_all_blocking(dir: &Path) -> RepairReport {
    repair_all_blocking_except(dir, &HashSet::new())
}

fn repair_all_blocking_except(dir: &Path, skip: &HashSet<String>) -> RepairReport {
    let mut report = RepairReport::default();
    let mut parts = Vec::new();
    collect_parts(dir, 0, &mut parts);
    parts.sort();
    for part in parts {
        let name = part
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let call_id = name
            .strip_suffix(".wav.part")
            .or_else(|| name.strip_suffix(".pcap.part"))
            .unwrap_or(name);
        if skip.contains(call_id) {
            continue;
        }
        if name.ends_with(".wav.part") {
            match repair_one(&part) {
                Ok(r) => {
                    tracing::warn!(call_id = %r.call_id, path = %r.path.display(),
                        duration_ms = r.duration_ms, "repaired a recording left open by a crash");
                    report.repaired.push(r);
                }
                // Repaired meanwhile by the node closing that call (its journal row was
                // claimed after the folder was read).
                Err(_) if !part.exists() => {}
                Err(e) => {
                    tracing::error!(path = %part.display(), error = %e, "cannot repair recording");
                    report.failed.push((part, e.to_string()));
                }
            }
        } else if name.ends_with(".pcap.part") && !wav_part_of(&part).exists() {
            // The WAV was closed but the crash came before its pcap was renamed.
            if let Err(e) = finish_pcap(&part) {
                if part.exists() {
                    report.failed.push((part, e.to_string()));
                }
            }
        }
    }
    report
}

/// Repairs one recording left open, named by its `.wav.part` as the journal gave it: a lost
/// node's, by the survivor closing its calls (a shared recordings folder). `Ok(None)` when the
/// file is not there (the folder is not shared, or it was repaired already). Blocking.
pub fn repair_part(part: &Path) -> Result<Option<RepairedRecording>, RecordingError> {
    if !part.exists() {
        return Ok(None);
    }
    match repair_one(part) {
        Ok(r) => Ok(Some(r)),
        Err(_) if !part.exists() => Ok(None),
        Err(e) => Err(e),
    }
}

fn collect_parts(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    // YYYY/MM/DD is three levels; a little slack, but never an unbounded walk.
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            collect_parts(&path, depth + 1, out);
        } else if kind.is_file() && path.to_string_lossy().ends_with(PART_SUFFIX) {
            out.push(path);
        }
    }
}

fn strip_part(part: &Path) -> PathBuf {
    let s = part.as_os_str().to_string_lossy();
    PathBuf::from(s.strip_suffix(PART_SUFFIX).unwrap_or(&s))
}

fn wav_part_of(pcap_part: &Path) -> PathBuf {
    let s = pcap_part.as_os_str().to_string_lossy();
    PathBuf::from(s.replace(".pcap.part", ".wav.part"))
}

fn finish_pcap(part: &Path) -> Result<PathBuf, RecordingError> {
    truncate_to_whole_records(part).map_err(|e| RecordingError::io(part, e))?;
    let path = strip_part(part);
    std::fs::rename(part, &path).map_err(|e| RecordingError::io(&path, e))?;
    Ok(path)
}

fn repair_one(part: &Path) -> Result<RepairedRecording, RecordingError> {
    let path = strip_part(part);
    if path.exists() {
        // Never overwrite a closed recording; someone has to look at this one.
        return Err(RecordingError::AlreadyExists { path });
    }
    let facts = fix_wav_header(part)?;
    std::fs::rename(part, &path).map_err(|e| RecordingError::io(&path, e))?;
    let mut pcap_part = path.with_extension("pcap").into_os_string();
    pcap_part.push(PART_SUFFIX);
    let pcap_part = PathBuf::from(pcap_part);
    let pcap_path = if pcap_part.exists() {
        Some(finish_pcap(&pcap_part)?)
    } else {
        None
    };
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(|e| RecordingError::io(dir, e))?;
    }
    let call_id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size_bytes = std::fs::metadata(&path)
        .map_err(|e| RecordingError::io(&path, e))?
        .len();
    Ok(RepairedRecording {
        call_id,
        sha256_hex: sha256_file(&path)?,
        pcap_sha256_hex: pcap_path.as_deref().map(sha256_file).transpose()?,
        pcap_path,
        sample_rate: facts.rate,
        duration_ms: facts.frames * 1000 / facts.rate.max(1) as u64,
        size_bytes,
        path,
    })
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Rewrites the RIFF and data sizes of a WAV file from its length, after cutting it to a whole
/// frame. The data chunk must be the last one (it is in every file the recorder writes,
/// `recording::wav`, and was in those hound wrote before it).
pub(crate) fn fix_wav_header(path: &Path) -> Result<WavFacts, RecordingError> {
    let bad = |reason: &str| RecordingError::Unrepairable {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let io = |e| RecordingError::io(path, e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut riff = [0u8; 12];
    if len < 12 {
        return Err(bad("shorter than a RIFF header"));
    }
    file.read_exact(&mut riff).map_err(io)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(bad("not RIFF/WAVE"));
    }
    let mut pos = 12u64;
    let mut fmt: Option<(u16, u32, u16)> = None;
    let data_start = loop {
        if pos + 8 > len {
            return Err(bad("no data chunk"));
        }
        let mut head = [0u8; 8];
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        file.read_exact(&mut head).map_err(io)?;
        let size = le_u32(&head[4..8]) as u64;
        match &head[0..4] {
            b"fmt " => {
                let mut f = [0u8; 16];
                if size < 16 || pos + 8 + 16 > len {
                    return Err(bad("short fmt chunk"));
                }
                file.read_exact(&mut f).map_err(io)?;
                fmt = Some((le_u16(&f[2..4]), le_u32(&f[4..8]), le_u16(&f[12..14])));
            }
            b"data" => break pos + 8,
            _ => {}
        }
        pos += 8 + size + (size & 1);
    };
    let (channels, rate, block_align) = fmt.ok_or_else(|| bad("data before fmt"))?;
    if channels == 0 || block_align == 0 || rate == 0 {
        return Err(bad("invalid fmt chunk"));
    }
    let available = len - data_start;
    // RIFF sizes are 32-bit; the recorder never writes more than that.
    let data_len = (available - available % block_align as u64).min(u32::MAX as u64 - data_start);
    let data_len = data_len - data_len % block_align as u64;
    if data_start + data_len < len {
        file.set_len(data_start + data_len).map_err(io)?;
    }
    file.seek(SeekFrom::Start(4)).map_err(io)?;
    file.write_all(&((data_start + data_len - 8) as u32).to_le_bytes())
        .map_err(io)?;
    file.seek(SeekFrom::Start(data_start - 4)).map_err(io)?;
    file.write_all(&(data_len as u32).to_le_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(WavFacts {
        frames: data_len / block_align as u64,
        rate,
        channels,
    })
}
