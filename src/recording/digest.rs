//! SHA-256 of a recording, streamed, and verification against the digest stored with the CDR.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::RecordingError;

/// Lower-case hex SHA-256 of the file at `path`, read in 64 KiB blocks (recordings can be large).
pub fn sha256_file(path: &Path) -> Result<String, RecordingError> {
    let mut file = File::open(path).map_err(|e| RecordingError::io(path, e))?;
    sha256_of(&mut file, path)
}

/// Lower-case hex SHA-256 of what `reader` yields (a file opened by the caller; `path` names it
/// in errors).
pub fn sha256_of(reader: &mut impl Read, path: &Path) -> Result<String, RecordingError> {
    // One read buffer per thread, kept: a fresh zeroed 64 KiB per digest (every recording is
    // digested when it closes) cost more than hashing a short call's file.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        if buf.is_empty() {
            buf.resize(64 * 1024, 0);
        }
        let mut hasher = Sha256::new();
        loop {
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RecordingError::io(path, e)),
            };
            hasher.update(&buf[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
}

/// Whether the file at `path` still has the digest `expected_hex` (case-insensitive hex).
pub fn verify(path: &Path, expected_hex: &str) -> Result<bool, RecordingError> {
    let actual = sha256_file(path)?;
    Ok(actual.eq_ignore_ascii_case(expected_hex.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let empty_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_file(&empty).unwrap(), empty_hex);

        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").unwrap();
        let abc_hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(verify(&abc, abc_hex).unwrap());
        assert!(verify(&abc, &abc_hex.to_uppercase()).unwrap());
        assert!(!verify(&abc, empty_hex).unwrap());

        // One changed byte in a file larger than the read block is caught.
        let big = dir.path().join("big");
        let mut data = vec![7u8; 200_000];
        std::fs::write(&big, &data).unwrap();
        let digest = sha256_file(&big).unwrap();
        data[150_000] = 8;
        std::fs::write(&big, &data).unwrap();
        assert!(!verify(&big, &digest).unwrap());

        let missing = dir.path().join("missing");
        assert!(matches!(
            verify(&missing, abc_hex),
            Err(RecordingError::Io { .. })
        ));
    }
}
