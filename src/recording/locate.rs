//! Finding a stored recording's file without ever leaving the recordings folder, whatever the
//! stored path contains (`..`, an absolute path elsewhere, a symlink planted in the folder).
//!
//! Opening checks the file that was actually opened, not the name: the final component is opened
//! with `O_NOFOLLOW` (a symlink is refused), then the opened descriptor's real path
//! (`/proc/self/fd/N`, else the canonical name) must lie inside the canonical folder and be a
//! regular file. So a directory swapped for a symlink between a check and the open still cannot
//! lead outside. Everything here is blocking: call it off the async runtime.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("the recordings folder {} cannot be resolved: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error("{}: no such file", path.display())]
    Missing { path: PathBuf },
    #[error("{} is outside the recordings folder", path.display())]
    Outside { path: PathBuf },
    #[error("{} is not a regular file (a symlink, a folder or a device)", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A recording file opened for reading inside the recordings folder.
#[derive(Debug)]
pub struct OpenedRecording {
    pub file: File,
    /// Where the opened file really is.
    pub real_path: PathBuf,
    /// Its path under the recordings folder (`2026/11/27/CALL.wav`): the name to log.
    pub relative: String,
    pub len: u64,
}

/// The recordings folder, resolved (symlinks in its own path are the operator's choice).
pub fn canonical_dir(dir: &Path) -> Result<PathBuf, LocateError> {
    std::fs::canonicalize(dir).map_err(|source| LocateError::Dir {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Opens the recording stored as `stored` (relative to `dir`, or absolute: `paths::resolve`),
/// refusing anything that is not a regular file inside `dir`.
pub fn open_contained(dir: &Path, stored: &Path) -> Result<OpenedRecording, LocateError> {
    use std::os::unix::fs::OpenOptionsExt;

    let stored = &super::paths::resolve(dir, stored);
    let dir = canonical_dir(dir)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO planted in the folder must not hang the open (no effect on files).
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(stored)
        .map_err(|e| open_error(stored, e))?;
    let real_path = real_path_of(&file, stored)?;
    let relative = inside(&dir, &real_path)?;
    let meta = file.metadata().map_err(|source| LocateError::Io {
        path: stored.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(LocateError::NotRegular {
            path: stored.to_path_buf(),
        });
    }
    Ok(OpenedRecording {
        file,
        real_path,
        relative,
        len: meta.len(),
    })
}

/// The path to delete for the recording stored as `stored`: its folder resolved inside `dir`
/// and its own name (not followed: deleting a symlink deletes the link, never its target).
pub fn deletable(dir: &Path, stored: &Path) -> Result<PathBuf, LocateError> {
    let stored = &super::paths::resolve(dir, stored);
    let dir = canonical_dir(dir)?;
    let (Some(parent), Some(Component::Normal(name))) =
        (stored.parent(), stored.components().next_back())
    else {
        return Err(LocateError::Outside {
            path: stored.to_path_buf(),
        });
    };
    let parent = std::fs::canonicalize(parent).map_err(|e| open_error(stored, e))?;
    let path = parent.join(name);
    inside(&dir, &path)?;
    Ok(path)
}

/// `path` relative to `dir` when it lies strictly inside it.
fn inside(dir: &Path, path: &Path) -> Result<String, LocateError> {
    match path.strip_prefix(dir) {
        Ok(rel) if rel.components().all(|c| matches!(c, Component::Normal(_))) => {
            let rel = rel.to_string_lossy().into_owned();
            if rel.is_empty() {
                Err(LocateError::Outside {
                    path: path.to_path_buf(),
                })
            } else {
                Ok(rel)
            }
        }
        _ => Err(LocateError::Outside {
            path: path.to_path_buf(),
        }),
    }
}

/// Where an opened file really is: the kernel's name for the descriptor, else the canonical
/// form of the name it was opened by.
fn real_path_of(file: &File, stored: &Path) -> Result<PathBuf, LocateError> {
    use std::os::fd::AsRawFd;
    let proc = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    match std::fs::read_link(&proc) {
        Ok(p) if p.is_absolute() => Ok(p),
        _ => std::fs::canonicalize(stored).map_err(|e| open_error(stored, e)),
    }
}

fn open_error(path: &Path, e: io::Error) -> LocateError {
    let path = path.to_path_buf();
    match e.kind() {
        io::ErrorKind::NotFound => LocateError::Missing { path },
        // O_NOFOLLOW on a symlink: ELOOP.
        _ if e.raw_os_error() == Some(libc::ELOOP) => LocateError::NotRegular { path },
        _ => LocateError::Io { path, source: e },
    }
}

/// A file name safe in a `Content-Disposition` header and on any file system: letters, digits,
/// `.`, `-` and `_` kept, anything else `_`, at most 100 characters, never empty or dots only.
pub fn download_name(call_id: &str, extension: &str) -> String {
    let mut stem: String = call_id
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.chars().all(|c| c == '.') {
        stem = "recording".to_string();
    }
    format!("{stem}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Folder {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        dir: PathBuf,
        wav: PathBuf,
        secret: PathBuf,
    }

    /// `root/recordings/2026/11/27/C1.wav` and a secret file beside the recordings folder.
    fn folder() -> Folder {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let dir = root.join("recordings");
        let day = dir.join("2026/11/27");
        std::fs::create_dir_all(&day).unwrap();
        let wav = day.join("C1.wav");
        std::fs::write(&wav, b"RIFF audio").unwrap();
        let secret = root.join("secret.txt");
        std::fs::write(&secret, b"top secret").unwrap();
        Folder {
            _tmp: tmp,
            root,
            dir,
            wav,
            secret,
        }
    }

    fn read(o: OpenedRecording) -> Vec<u8> {
        use std::io::Read;
        let mut v = Vec::new();
        let mut f = o.file;
        f.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn a_recording_inside_the_folder_opens() {
        let f = folder();
        let o = open_contained(&f.dir, &f.wav).unwrap();
        assert_eq!(o.relative, "2026/11/27/C1.wav");
        assert_eq!(o.len, 10);
        assert_eq!(o.real_path, f.wav);
        assert_eq!(read(o), b"RIFF audio");
        // A `..` that stays inside is fine: what counts is where the file is.
        let roundabout = f.dir.join("2026/11/../11/27/C1.wav");
        assert_eq!(
            open_contained(&f.dir, &roundabout).unwrap().relative,
            "2026/11/27/C1.wav"
        );
        assert_eq!(
            deletable(&f.dir, &roundabout).unwrap(),
            f.dir.join("2026/11/27/C1.wav")
        );
    }

    #[test]
    fn paths_leading_out_of_the_folder_are_refused() {
        let f = folder();
        let escapes = [
            f.dir.join("2026/11/27/../../../../secret.txt"),
            f.secret.clone(),
            PathBuf::from("/etc/passwd"),
            f.dir.join("../secret.txt"),
        ];
        for stored in &escapes {
            let e = open_contained(&f.dir, stored).unwrap_err();
            assert!(matches!(e, LocateError::Outside { .. }), "{stored:?}: {e}");
            let e = deletable(&f.dir, stored).unwrap_err();
            assert!(matches!(e, LocateError::Outside { .. }), "{stored:?}: {e}");
        }
        // The folder itself is not a recording.
        assert!(open_contained(&f.dir, &f.dir).is_err());
        assert!(deletable(&f.dir, &f.dir.join("..")).is_err());
        // A missing file says so.
        assert!(matches!(
            open_contained(&f.dir, &f.dir.join("2026/11/27/none.wav")),
            Err(LocateError::Missing { .. })
        ));
        // A relative path is under the folder (stored paths are relative to it): one that
        // climbs out is still refused.
        assert!(open_contained(&f.dir, Path::new("Cargo.toml")).is_err());
        for stored in ["../secret.txt", "2026/../../secret.txt"] {
            let e = open_contained(&f.dir, Path::new(stored)).unwrap_err();
            assert!(matches!(e, LocateError::Outside { .. }), "{stored}: {e}");
            let e = deletable(&f.dir, Path::new(stored)).unwrap_err();
            assert!(matches!(e, LocateError::Outside { .. }), "{stored}: {e}");
        }
    }

    #[test]
    fn a_relative_stored_path_is_found_under_the_folder() {
        let f = folder();
        let o = open_contained(&f.dir, Path::new("2026/11/27/C1.wav")).unwrap();
        assert_eq!(o.real_path, f.wav);
        assert_eq!(o.relative, "2026/11/27/C1.wav");
        assert_eq!(
            deletable(&f.dir, Path::new("2026/11/27/C1.wav")).unwrap(),
            f.wav
        );
        // An absolute path of a row stored before is read as it is.
        assert_eq!(open_contained(&f.dir, &f.wav).unwrap().real_path, f.wav);
    }

    #[test]
    fn symlinks_planted_in_the_folder_are_not_followed() {
        let f = folder();
        // A symlink as the file itself, pointing outside.
        let link = f.dir.join("2026/11/27/C2.wav");
        std::os::unix::fs::symlink(&f.secret, &link).unwrap();
        let e = open_contained(&f.dir, &link).unwrap_err();
        assert!(matches!(e, LocateError::NotRegular { .. }), "{e}");
        // Deleting it deletes the link, never the target.
        assert_eq!(deletable(&f.dir, &link).unwrap(), link);
        // A symlinked folder inside the recordings folder, pointing outside.
        let out = f.root.join("elsewhere");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("C3.wav"), b"not ours").unwrap();
        std::os::unix::fs::symlink(&out, f.dir.join("2026/11/28")).unwrap();
        let through = f.dir.join("2026/11/28/C3.wav");
        let e = open_contained(&f.dir, &through).unwrap_err();
        assert!(matches!(e, LocateError::Outside { .. }), "{e}");
        let e = deletable(&f.dir, &through).unwrap_err();
        assert!(matches!(e, LocateError::Outside { .. }), "{e}");
        // Even a symlink to a real recording is refused as the file itself.
        let alias = f.dir.join("2026/11/27/C4.wav");
        std::os::unix::fs::symlink(&f.wav, &alias).unwrap();
        assert!(open_contained(&f.dir, &alias).is_err());
        // A folder is not a recording.
        let e = open_contained(&f.dir, &f.dir.join("2026")).unwrap_err();
        assert!(matches!(e, LocateError::NotRegular { .. }), "{e}");
        assert!(std::fs::read(&f.secret).is_ok(), "nothing outside touched");
    }

    #[test]
    fn download_names_are_safe() {
        assert_eq!(download_name("C1-ab_9.x", "wav"), "C1-ab_9.x.wav");
        assert_eq!(
            download_name("../../etc/passwd", "wav"),
            ".._.._etc_passwd.wav"
        );
        assert_eq!(download_name("a\"b\r\nc;d", "wav"), "a_b__c_d.wav");
        assert_eq!(download_name("..", "pcap"), "recording.pcap");
        assert_eq!(download_name("", "wav"), "recording.wav");
        assert_eq!(download_name(&"x".repeat(300), "wav").len(), 104);
    }
}
