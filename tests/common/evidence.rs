//! An evidence package unpacked and checked: every file the manifest lists is in the ZIP with
//! that size and SHA-256, and the ZIP holds nothing else but the manifest.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A package's files by path, and its manifest.
pub struct Package {
    pub files: BTreeMap<String, Vec<u8>>,
    pub manifest: Value,
}

impl Package {
    pub fn json(&self, path: &str) -> Value {
        let bytes = self
            .files
            .get(path)
            .unwrap_or_else(|| panic!("no {path} in {:?}", self.files.keys()));
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{path}: not JSON: {e}"))
    }
}

/// Unpacks `zip` and recomputes every listed file's SHA-256 against the manifest.
pub fn unpack_and_check(zip: &[u8]) -> Package {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a ZIP file");
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("a UTF-8 name").to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .expect("entry readable (CRC checked)");
        assert!(files.insert(name.clone(), bytes).is_none(), "{name} twice");
    }
    let manifest: Value =
        serde_json::from_slice(files.get("manifest.json").expect("a manifest")).expect("JSON");
    let listed = manifest["files"].as_array().expect("files listed");
    assert_eq!(
        listed.len() + 1,
        files.len(),
        "every file but the manifest is listed: {:?}",
        files.keys()
    );
    for f in listed {
        let path = f["path"].as_str().expect("path");
        let bytes = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} listed, not in the package"));
        assert_eq!(f["size"].as_u64(), Some(bytes.len() as u64), "{path} size");
        assert_eq!(
            f["sha256"].as_str(),
            Some(sha256_hex(bytes).as_str()),
            "{path} digest"
        );
    }
    Package { files, manifest }
}
