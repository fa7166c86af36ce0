//! The CDR spool: where the CDR writer puts final CDRs and journal entries while the database
//! refuses them (locked, read-only, gone), so that an outage followed by a crash loses nothing
//! and memory stays bounded.
//!
//! One append-only file, `cdrs.spool`, in its own folder (0700; the file 0600: CDRs are personal
//! data). One line per write, in submission order: 16 hex digits (the first 8 bytes of the
//! SHA-256 of the JSON), a space, the JSON, a newline. Each append is fsynced before the writer
//! forgets the batch. A line whose digest does not match, or a last line without its newline (a
//! crash mid-append), is skipped and logged; opening the spool cuts such a torn tail off so that
//! the next append starts on a line of its own.
//!
//! Replay reads the file from an offset in pages (bounded memory); once every line is stored the
//! file is truncated. Replaying a line twice is harmless: a stored CDR id is never inserted again
//! (nor counted again in the KPI buckets), and a journal entry for a stored CDR is ignored.
//!
//! Every method here does blocking file I/O: call it from `spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Cdr;
use crate::store::{decode_cdr_value, CdrWrite, Dialogs};

/// The spool file's name inside its folder.
pub const SPOOL_FILE: &str = "cdrs.spool";
/// Hex digits of the line digest.
const DIGEST_HEX: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("CDR spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Appending would take the file over `max_bytes`: the batch stays with the writer.
    #[error("CDR spool {path} is full ({len} bytes, at most {max} bytes)")]
    Full { path: PathBuf, len: u64, max: u64 },
}

/// One line as written.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LineOut<'a> {
    Cdr {
        cdr: &'a Cdr,
    },
    Journal {
        cdr: &'a Cdr,
        recording_part: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dialogs: Option<&'a str>,
        at: DateTime<Utc>,
    },
}

/// One line as read: the CDR goes through the journal's decoder (a NaN jitter was written as
/// null).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LineIn {
    Cdr {
        cdr: serde_json::Value,
    },
    Journal {
        cdr: serde_json::Value,
        recording_part: Option<String>,
        /// Absent in lines written before dialogs were journaled.
        #[serde(default)]
        dialogs: Option<String>,
        at: DateTime<Utc>,
    },
}

/// The spool folder when `database.spool_dir` is not set: `spool` next to the database file;
/// for a PostgreSQL database (a server, maybe shared by a cluster's nodes) `data/spool` under
/// the node's working directory, as the SQLite default `data/trunkguard.db` has it. None for
/// an in-memory database (nothing to keep across a crash).
pub fn default_dir(database_url: &str) -> Option<PathBuf> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Some(PathBuf::from("data/spool"));
    }
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file.starts_with(":memory:") || rest.contains("mode=memory") {
        return None;
    }
    let parent = Path::new(file).parent().unwrap_or(Path::new(""));
    Some(parent.join("spool"))
}

/// A page of spooled writes and where the next page starts.
#[derive(Debug, Default)]
pub struct SpoolPage {
    pub writes: Vec<CdrWrite>,
    /// The offset just after the last line read (skipped lines included).
    pub next: u64,
    /// Lines skipped in this page (bad digest, undecodable, torn).
    pub skipped: u64,
}

/// The open spool file. Owned by the CDR writer (behind a mutex, used from blocking tasks).
#[derive(Debug)]
pub struct CdrSpool {
    path: PathBuf,
    file: File,
    /// Bytes in the file: every line in it is whole.
    len: u64,
    /// Lines in the file (including ones already replayed until the file is truncated).
    entries: u64,
    max_bytes: u64,
}

impl CdrSpool {
    /// Open (creating the folder 0700 and the file 0600) and scan the spool: count its lines and
    /// cut a torn last line off.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<CdrSpool, SpoolError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let path = dir.join(SPOOL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(&path))?;
        let (whole, entries) = scan(&mut file).map_err(io(&path))?;
        let on_disk = file.metadata().map_err(io(&path))?.len();
        if whole < on_disk {
            tracing::warn!(path = %path.display(), torn_bytes = on_disk - whole,
                "CDR spool ends with a torn line (a crash while appending); cut off");
            file.set_len(whole).map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
        }
        if entries > 0 {
            tracing::warn!(path = %path.display(), entries, bytes = whole,
                "CDR spool holds writes not yet stored; they are replayed first");
        }
        Ok(CdrSpool {
            path,
            file,
            len: whole,
            entries,
            max_bytes,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines in the file.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Append the writes in order and fsync. All or nothing: over the cap nothing is written;
    /// after an I/O error the file is cut back to where it was.
    pub fn append(&mut self, writes: &[CdrWrite]) -> Result<(), SpoolError> {
        let mut buf = Vec::with_capacity(writes.len() * 1024);
        for write in writes {
            encode_line(write, &mut buf);
        }
        let len = self.len + buf.len() as u64;
        if len > self.max_bytes {
            return Err(SpoolError::Full {
                path: self.path.clone(),
                len: self.len,
                max: self.max_bytes,
            });
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Never leave half a batch behind: the writer keeps it and tries again.
            if let Err(error) = self.file.set_len(self.len) {
                tracing::error!(path = %self.path.display(), %error,
                    "cannot cut a failed append off the CDR spool; its torn line is skipped on replay");
            }
            return Err(SpoolError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.len = len;
        self.entries += writes.len() as u64;
        Ok(())
    }

    /// Up to `max` writes from `offset` on (an offset returned by an earlier page, or 0).
    pub fn read_page(&self, offset: u64, max: usize) -> Result<SpoolPage, SpoolError> {
        self.read_page_until(offset, max, u64::MAX)
    }

    /// `read_page`, reading nothing at or after `end` (a line boundary).
    pub fn read_page_until(
        &self,
        offset: u64,
        max: usize,
        end: u64,
    ) -> Result<SpoolPage, SpoolError> {
        let end = end.min(self.len);
        let io = |source| SpoolError::Io {
            path: self.path.clone(),
            source,
        };
        let mut page = SpoolPage {
            next: offset,
            ..SpoolPage::default()
        };
        if offset >= end {
            return Ok(page);
        }
        let mut reader = File::open(&self.path).map_err(io)?;
        reader.seek(SeekFrom::Start(offset)).map_err(io)?;
        // Only what is known to be whole: an append racing this read is not seen.
        let mut reader = BufReader::new(reader.take(end - offset));
        let mut line = Vec::new();
        while page.writes.len() < max {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            let at = page.next;
            page.next += n as u64;
            match decode_line(&line) {
                Ok(write) => page.writes.push(write),
                Err(why) => {
                    page.skipped += 1;
                    tracing::error!(path = %self.path.display(), offset = at, why,
                        "CDR spool line skipped");
                }
            }
        }
        Ok(page)
    }

    /// Empty the file once everything in it is stored.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        let io = |source| SpoolError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.set_len(0).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len = 0;
        self.entries = 0;
        Ok(())
    }
}

/// The length of the whole lines at the start of the file, and how many there are.
fn scan(file: &mut File) -> std::io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let mut line = Vec::new();
    let (mut whole, mut entries) = (0u64, 0u64);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok((whole, entries));
        }
        whole += n as u64;
        entries += 1;
    }
}

fn digest_hex(json: &[u8]) -> String {
    let digest = Sha256::digest(json);
    digest[..DIGEST_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode_line(write: &CdrWrite, buf: &mut Vec<u8>) {
    let dialogs = match write {
        CdrWrite::Journal { dialogs, .. } => dialogs.as_ref().and_then(Dialogs::json),
        CdrWrite::Cdr(_) => None,
    };
    let line = match write {
        CdrWrite::Cdr(cdr) => LineOut::Cdr { cdr },
        CdrWrite::Journal {
            cdr,
            recording_part,
            at,
            ..
        } => LineOut::Journal {
            cdr,
            recording_part: recording_part.as_deref(),
            dialogs: dialogs.as_deref(),
            at: *at,
        },
    };
    // serde_json writes no raw newline inside a document, so a line is one write.
    match serde_json::to_vec(&line) {
        Ok(json) => {
            buf.extend_from_slice(digest_hex(&json).as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(&json);
            buf.push(b'\n');
        }
        // Cannot happen with the Cdr type (no maps, no fallible Serialize).
        Err(error) => tracing::error!(%error, "cannot encode a CDR write for the spool; lost"),
    }
}

fn decode_line(line: &[u8]) -> Result<CdrWrite, &'static str> {
    let line = line.strip_suffix(b"\n").ok_or("torn line (no newline)")?;
    if line.len() < DIGEST_HEX + 1 || line[DIGEST_HEX] != b' ' {
        return Err("no digest");
    }
    let (digest, json) = (&line[..DIGEST_HEX], &line[DIGEST_HEX + 1..]);
    if digest != digest_hex(json).as_bytes() {
        return Err("digest does not match");
    }
    let decoded: LineIn = serde_json::from_slice(json).map_err(|_| "JSON does not decode")?;
    let cdr = |value| decode_cdr_value(value).map_err(|_| "CDR does not decode");
    Ok(match decoded {
        LineIn::Cdr { cdr: value } => CdrWrite::Cdr(cdr(value)?),
        LineIn::Journal {
            cdr: value,
            recording_part,
            dialogs,
            at,
        } => CdrWrite::Journal {
            cdr: cdr(value)?,
            recording_part,
            dialogs: dialogs.map(Dialogs::from),
            at,
        },
    })
}

#[cfg(test)]
#[path = "cdr_spool_tests.rs"]
mod tests;
