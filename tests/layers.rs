//! The architecture's import rule, checked: a part of `src/` imports only parts on a lower floor
//! (docs/architecture.md, "Parts and what each may import"). The floors are listed once, here;
//! a new part must be given a floor, and an upward `use` fails this test with its file and line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each part's floor: the ground floor holds the vocabulary every part speaks.
const FLOORS: &[(&str, u8)] = &[
    ("model", 0),
    ("bounded", 0),
    ("shutdown", 0),
    ("config", 1),
    ("store", 1),
    ("sip", 2),
    ("media", 2),
    ("cluster", 2),
    ("recording", 3),
    ("policy", 4),
    ("monitor", 5),
    ("evidence", 5),
    ("retention", 6),
    ("trunks", 6),
    ("b2bua", 7),
    ("api", 8),
    ("fuzz", 8),
    ("cli", 9),
    ("app", 10),
];

fn floor(part: &str) -> Option<u8> {
    FLOORS.iter().find(|(p, _)| *p == part).map(|(_, f)| *f)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The parts a line names as `crate::part` (also inside `crate::{a, b::c}`).
fn parts_named(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn every_part_imports_only_parts_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut unplaced = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let part = first.trim_end_matches(".rs").to_string();
        if part == "lib" || part == "main" {
            continue; // the crate root and the binary see everything
        }
        let Some(own) = floor(&part) else {
            unplaced.insert(part, rel.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for named in parts_named(line) {
                if named == part {
                    continue;
                }
                match floor(&named) {
                    Some(f) if f < own => {}
                    Some(f) => upward.push(format!(
                        "{}:{}: `{part}` (floor {own}) imports `{named}` (floor {f})",
                        rel.display(),
                        n + 1
                    )),
                    None => {
                        unplaced.insert(named, rel.display().to_string());
                    }
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "parts without a floor in tests/layers.rs (and docs/architecture.md): {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports of a part on the same or a higher floor:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_nested_paths() {
    assert_eq!(
        parts_named("use crate::{model::Cdr, store::Store};"),
        ["model", "store"]
    );
    assert_eq!(
        parts_named("let x = crate::b2bua::Registry::default();"),
        ["b2bua"]
    );
    assert!(parts_named("use super::x;").is_empty());
}
