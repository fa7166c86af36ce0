//! Every input a fuzzer ever crashed on (testdata/fuzz-regressions/<target>/), and every seed of
//! the fuzz corpora (fuzz/corpus/<target>/), through the same harness the fuzz target runs
//! (`trunkguard::fuzz`), so they are checked by a plain `cargo test` without the fuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};

/// A fuzz target's name and its harness.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("sip_datagram", trunkguard::fuzz::sip_datagram),
    ("sip_stream", trunkguard::fuzz::sip_stream),
    ("sdp", trunkguard::fuzz::sdp),
    ("rtp", trunkguard::fuzz::rtp),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

/// Runs each file through its target's harness; returns how many ran. A panic names the file.
fn run_all(root: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let mut ran = 0;
    for (target, harness) in TARGETS {
        for file in files(&root.join(target)) {
            let data = std::fs::read(&file).expect("readable input");
            let outcome = std::panic::catch_unwind(|| harness(&data));
            assert!(outcome.is_ok(), "{target} fails on {}", file.display());
            ran += 1;
        }
    }
    ran
}

#[test]
fn fuzz_regressions_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-regressions");
    assert!(
        root.join("README.md").is_file(),
        "testdata/fuzz-regressions is missing"
    );
    // none found yet: the folder is there for the first one
    run_all("testdata/fuzz-regressions");
}

#[test]
fn fuzz_seeds_pass_the_harnesses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, _) in TARGETS {
        assert!(
            !files(&root.join(target)).is_empty(),
            "fuzz/corpus/{target} has no seed"
        );
    }
    assert!(run_all("fuzz/corpus") >= TARGETS.len());
}
