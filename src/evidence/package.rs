//! The evidence package: one ZIP file holding a call's (or several calls') files and a
//! `manifest.json` naming each file with its size and SHA-256, so whoever receives it (a carrier,
//! a regulator) can check every byte with `sha256sum`. Written as a stream (`zip`'s stream
//! writer, data descriptors, no seeking): the caller hands it any `Write` (the HTTP body through
//! a bounded channel) and the recordings are copied a buffer at a time, hashed as they pass, so
//! memory stays at one buffer whatever their size. JSON is deflated; audio is stored as it is.
//! Every entry carries the package's creation time, so two packages of the same calls differ
//! only in their times. Blocking: run it off the async runtime.

use std::io::{self, Read, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

use hex::encode as hex;

/// The manifest's name in the package (it lists every other file).
pub const MANIFEST: &str = "manifest.json";
/// How to check the package, in words.
pub const README: &str = "README.txt";

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("evidence package: writing {path}: {source}")]
    Zip {
        path: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("evidence package: writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("evidence package: {path} does not serialize: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// One file of the package as the manifest lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PackedFile {
    /// Its path inside the package (`calls/<call id>/recording.wav`).
    pub path: String,
    pub size: u64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// A ZIP being written to `W`, with the list of what it holds so far.
pub struct PackageWriter<W: Write> {
    zip: ZipWriter<StreamWriter<W>>,
    files: Vec<PackedFile>,
    time: zip::DateTime,
    buf: Box<[u8]>,
}

/// Bytes copied at a time from a recording into the package.
const COPY_CHUNK: usize = 64 * 1024;
/// Above this an entry needs ZIP64 (known before it is written: the file's length).
const ZIP32_LIMIT: u64 = 0xFFFF_FFFF;

impl<W: Write> PackageWriter<W> {
    /// A package whose entries are dated `created_at` (UTC; a ZIP keeps no zone).
    pub fn new(out: W, created_at: DateTime<Utc>) -> PackageWriter<W> {
        PackageWriter {
            zip: ZipWriter::new_stream(out),
            files: Vec::new(),
            time: zip_time(created_at),
            buf: vec![0u8; COPY_CHUNK].into_boxed_slice(),
        }
    }

    fn options(&self, method: CompressionMethod, large: bool) -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(self.time)
            .unix_permissions(0o644)
            .large_file(large)
    }

    /// A JSON file (pretty, deflated).
    pub fn add_json<T: Serialize + ?Sized>(
        &mut self,
        path: &str,
        value: &T,
    ) -> Result<&PackedFile, PackageError> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| PackageError::Json {
            path: path.to_string(),
            source,
        })?;
        bytes.push(b'\n');
        self.add_bytes(path, &bytes, CompressionMethod::Deflated)
    }

    /// A small file held in memory.
    pub fn add_bytes(
        &mut self,
        path: &str,
        bytes: &[u8],
        method: CompressionMethod,
    ) -> Result<&PackedFile, PackageError> {
        let options = self.options(method, false);
        self.zip
            .start_file(path, options)
            .map_err(|source| zip_error(path, source))?;
        self.zip
            .write_all(bytes)
            .map_err(|source| io_error(path, source))?;
        Ok(self.listed(path, bytes.len() as u64, hex(Sha256::digest(bytes))))
    }

    /// A file copied from `source` (`len` bytes expected), stored as it is and hashed as it
    /// passes: the digest is the one of the bytes in the package. A source shorter or longer
    /// than `len` is an error (the file changed while it was being packed).
    pub fn add_reader(
        &mut self,
        path: &str,
        source: &mut impl Read,
        len: u64,
    ) -> Result<&PackedFile, PackageError> {
        let options = self.options(CompressionMethod::Stored, len >= ZIP32_LIMIT);
        self.zip
            .start_file(path, options)
            .map_err(|source| zip_error(path, source))?;
        let mut hasher = Sha256::new();
        let mut copied = 0u64;
        loop {
            let n = match source.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(path, e)),
            };
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            self.zip.write_all(chunk).map_err(|e| io_error(path, e))?;
            copied += n as u64;
        }
        if copied != len {
            return Err(io_error(
                path,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{copied} bytes read, {len} expected: the file changed"),
                ),
            ));
        }
        Ok(self.listed(path, copied, hex(hasher.finalize())))
    }

    fn listed(&mut self, path: &str, size: u64, sha256: String) -> &PackedFile {
        self.files.push(PackedFile {
            path: path.to_string(),
            size,
            sha256,
        });
        let last = self.files.len() - 1;
        &self.files[last]
    }

    /// The files written so far, in order.
    pub fn files(&self) -> &[PackedFile] {
        &self.files
    }

    /// Writes `README.txt`, then `manifest.json`: `head`'s fields and `files` (every file but
    /// the manifest itself, README included), and closes the archive. Returns the manifest's
    /// list.
    pub fn finish<H: Serialize>(mut self, head: &H) -> Result<Vec<PackedFile>, PackageError> {
        self.add_bytes(README, readme().as_bytes(), CompressionMethod::Deflated)?;
        let mut manifest = serde_json::to_value(head).map_err(|source| PackageError::Json {
            path: MANIFEST.to_string(),
            source,
        })?;
        let files = serde_json::to_value(&self.files).map_err(|source| PackageError::Json {
            path: MANIFEST.to_string(),
            source,
        })?;
        if let Some(object) = manifest.as_object_mut() {
            object.insert("files".to_string(), files);
        }
        self.add_json(MANIFEST, &manifest)?;
        // The manifest is not in its own list.
        self.files.pop();
        let mut out = self
            .zip
            .finish()
            .map_err(|source| zip_error(MANIFEST, source))?;
        out.flush().map_err(|e| io_error(MANIFEST, e))?;
        Ok(self.files)
    }
}

fn readme() -> String {
    format!(
        "trunkguard evidence package\n\
         \n\
         {MANIFEST} lists every other file of this package with its size and SHA-256\n\
         (README.txt included). To check them, unpack the package and, in its folder:\n\
         \n\
         \x20   jq -r '.files[] | \"\\(.sha256)  \\(.path)\"' {MANIFEST} | sha256sum -c\n\
         \n\
         Each call's folder (calls/<call id>/) holds its CDR (cdr.json), its media legs and\n\
         DTMF (legs.json), its legal holds (holds.json), its audit trail (audit.json: who\n\
         read or changed it, before this package), its SIP trace (sip_trace.json and\n\
         sip_trace.txt: both legs' SIP messages; when none is stored the manifest's\n\
         calls[].sip_trace says why), its recording (recording.wav, and\n\
         recording.pcap when the codec could not be decoded) and verification.json: the\n\
         SHA-256 stored when the recording was closed, the SHA-256 of the file as packed,\n\
         and whether they are equal (ok, mismatch, missing, purged or none). When the\n\
         call's day was sealed, manifest_proof.json proves the CDR and the recording part of\n\
         the day's signed manifest; check it with the deployment's public key:\n\
         \n\
         \x20   trunkguard manifest verify --package THIS.zip --public-key public.pem\n"
    )
}

fn zip_error(path: &str, source: zip::result::ZipError) -> PackageError {
    PackageError::Zip {
        path: path.to_string(),
        source,
    }
}

fn io_error(path: &str, source: io::Error) -> PackageError {
    PackageError::Io {
        path: path.to_string(),
        source,
    }
}

/// A ZIP time (local to no zone; 1980 to 2107, 2 s steps): the UTC time, clamped.
fn zip_time(t: DateTime<Utc>) -> zip::DateTime {
    let year = u16::try_from(t.year().clamp(1980, 2107)).unwrap_or(1980);
    // Months, days, hours… are small: the casts cannot truncate.
    zip::DateTime::from_date_and_time(
        year,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second().min(59) as u8,
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_with_the_digest_of_its_bytes() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T05:42:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut out = Vec::new();
        let mut p = PackageWriter::new(&mut out, at);
        p.add_json("calls/a/cdr.json", &serde_json::json!({"id": "a"}))
            .unwrap();
        let audio = vec![7u8; 200_000];
        p.add_reader("calls/a/recording.wav", &mut &audio[..], audio.len() as u64)
            .unwrap();
        // A file that changed while packed is an error naming it.
        let short = p
            .add_reader("calls/a/recording.pcap", &mut &audio[..10], 11)
            .unwrap_err()
            .to_string();
        assert!(short.contains("calls/a/recording.pcap"), "{short}");
        let mut out = Vec::new();
        let mut p = PackageWriter::new(&mut out, at);
        p.add_json("calls/a/cdr.json", &serde_json::json!({"id": "a"}))
            .unwrap();
        p.add_reader("calls/a/recording.wav", &mut &audio[..], audio.len() as u64)
            .unwrap();
        let listed = p.finish(&serde_json::json!({"by": "officer"})).unwrap();
        assert_eq!(
            listed.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["calls/a/cdr.json", "calls/a/recording.wav", README]
        );
        assert_eq!(listed[1].sha256, hex(Sha256::digest(&audio)));

        let mut zip = zip::ZipArchive::new(io::Cursor::new(out)).unwrap();
        let mut manifest = String::new();
        zip.by_name(MANIFEST)
            .unwrap()
            .read_to_string(&mut manifest)
            .unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["by"], "officer");
        assert_eq!(manifest["files"].as_array().unwrap().len(), 3);
        for f in &listed {
            let mut entry = zip.by_name(&f.path).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes.len() as u64, f.size);
            assert_eq!(hex(Sha256::digest(&bytes)), f.sha256, "{}", f.path);
        }
        let wav = zip.by_name("calls/a/recording.wav").unwrap();
        assert_eq!(wav.compression(), CompressionMethod::Stored);
        assert_eq!(wav.last_modified().map(|t| t.hour()), Some(5));
    }
}
