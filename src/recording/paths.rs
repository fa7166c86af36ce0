//! Where recordings go and how a stored path is read back.
//!
//! `[recording] dir` (the *root*) may be shared storage (NFS) seen by every node of a cluster.
//! A cluster node records under `<root>/<node_id>/YYYY/MM/DD/`, a single node under
//! `<root>/YYYY/MM/DD/`, so that a node repairing what a crash left (`repair`) touches its own
//! files only. Paths are stored relative to the root (`gw-a/2026/11/27/CALL.wav`), so that any
//! node finds a file wherever it mounts the folder; rows stored before were absolute and are
//! read as they are.

use std::path::{Component, Path, PathBuf};

/// The folder a node records in: `root/node` in a cluster, `root` on a single node.
pub fn node_dir(root: &Path, node: Option<&str>) -> PathBuf {
    match node {
        Some(node) if is_plain_name(node) => root.join(node),
        // `[cluster] node_id` is checked to be a plain name; anything else stays in the root
        // rather than lead out of it.
        _ => root.to_path_buf(),
    }
}

/// How a recording file is stored: relative to `root` when it lies under it, else as it is.
pub fn to_stored(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// A stored path as a file path on this node: a relative one under `root`, an absolute one (a
/// row stored before paths were relative) as it is. Nothing is checked here: opening goes
/// through `locate`, which refuses whatever lies outside the folder.
pub fn resolve(root: &Path, stored: &Path) -> PathBuf {
    if stored.is_absolute() {
        stored.to_path_buf()
    } else {
        root.join(stored)
    }
}

/// One normal path component: no separator, not `.` or `..`.
fn is_plain_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_records_in_its_own_folder() {
        let root = Path::new("/r");
        assert_eq!(node_dir(root, Some("gw-a")), Path::new("/r/gw-a"));
        assert_eq!(node_dir(root, None), Path::new("/r"));
        for odd in ["..", ".", "a/b", ""] {
            assert_eq!(node_dir(root, Some(odd)), Path::new("/r"), "{odd:?}");
        }
    }

    #[test]
    fn stored_paths_are_relative_to_the_root_and_resolve_back() {
        let root = Path::new("/r");
        let file = Path::new("/r/gw-a/2026/11/27/C1.wav");
        let stored = to_stored(root, file);
        assert_eq!(stored, "gw-a/2026/11/27/C1.wav");
        assert_eq!(resolve(root, Path::new(&stored)), file);
        // Elsewhere: kept absolute, and an absolute row resolves to itself.
        assert_eq!(to_stored(root, Path::new("/x/C1.wav")), "/x/C1.wav");
        assert_eq!(
            resolve(Path::new("/other"), Path::new("/r/2026/C1.wav")),
            Path::new("/r/2026/C1.wav")
        );
        // Another node's mount point: the same relative path.
        assert_eq!(
            resolve(Path::new("/mnt/rec"), Path::new(&stored)),
            Path::new("/mnt/rec/gw-a/2026/11/27/C1.wav")
        );
    }
}
