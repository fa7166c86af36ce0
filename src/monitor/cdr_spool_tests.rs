use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::model::{ms_precision, sample_cdr};

fn journal(id: &str, part: Option<&str>) -> CdrWrite {
    let cdr = sample_cdr(id);
    CdrWrite::Journal {
        cdr,
        recording_part: part.map(str::to_string),
        // Dialog state travels with the entries that have a recording (both forms round-trip).
        dialogs: part.map(|p| format!(r#"{{"legs":["{p}"]}}"#).into()),
        at: ms_precision(Utc::now()),
    }
}

fn read_all(spool: &CdrSpool) -> SpoolPage {
    let mut all = SpoolPage::default();
    loop {
        let page = spool.read_page(all.next, 3).unwrap();
        if page.next == all.next {
            return all;
        }
        all.writes.extend(page.writes);
        all.skipped += page.skipped;
        all.next = page.next;
    }
}

#[test]
fn writes_come_back_in_order_and_clear_empties_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let mut spool = CdrSpool::open(&spool_dir, 1 << 20).unwrap();
    let writes = vec![
        journal("a", Some("/rec/a.wav.part")),
        CdrWrite::Cdr(sample_cdr("a")),
        journal("b", None),
        CdrWrite::Cdr(sample_cdr("c")),
    ];
    spool.append(&writes[..2]).unwrap();
    spool.append(&writes[2..]).unwrap();
    assert_eq!(spool.entries(), 4);

    // Paged by 3: the second page starts where the first ended.
    let all = read_all(&spool);
    assert_eq!(all.writes, writes);
    assert_eq!(all.skipped, 0);
    assert_eq!(all.next, spool.len());

    // A new handle on the same file sees the same lines (what a restart does).
    drop(spool);
    let mut spool = CdrSpool::open(&spool_dir, 1 << 20).unwrap();
    assert_eq!(spool.entries(), 4);
    assert_eq!(read_all(&spool).writes, writes);

    spool.clear().unwrap();
    assert!(spool.is_empty());
    assert_eq!(std::fs::metadata(spool.path()).unwrap().len(), 0);
    assert!(read_all(&spool).writes.is_empty());
}

#[test]
fn folder_and_file_are_the_owners_only() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir(&spool_dir).unwrap();
    std::fs::set_permissions(&spool_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spool = CdrSpool::open(&spool_dir, 1 << 20).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spool_dir), 0o700);
    assert_eq!(mode(spool.path()), 0o600);
}

#[test]
fn a_torn_last_line_is_cut_off_and_the_next_append_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = CdrSpool::open(dir.path(), 1 << 20).unwrap();
    spool
        .append(&[
            CdrWrite::Cdr(sample_cdr("x1")),
            CdrWrite::Cdr(sample_cdr("x2")),
        ])
        .unwrap();
    let whole = spool.len();
    let path = spool.path().to_path_buf();
    drop(spool);

    // A crash in the middle of an append: half a line, no newline.
    let mut line = Vec::new();
    encode_line(&CdrWrite::Cdr(sample_cdr("x3")), &mut line);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&line[..line.len() / 2]).unwrap();
    drop(file);

    let mut spool = CdrSpool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.entries(), 2);
    assert_eq!(spool.len(), whole);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    spool.append(&[CdrWrite::Cdr(sample_cdr("x4"))]).unwrap();
    let ids: Vec<String> = read_all(&spool)
        .writes
        .into_iter()
        .map(|w| match w {
            CdrWrite::Cdr(cdr) => cdr.attempt.id,
            CdrWrite::Journal { cdr, .. } => cdr.attempt.id,
        })
        .collect();
    assert_eq!(ids, ["x1", "x2", "x4"]);
}

#[test]
fn a_corrupt_line_is_skipped_and_counted_the_others_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = CdrSpool::open(dir.path(), 1 << 20).unwrap();
    spool
        .append(&[
            CdrWrite::Cdr(sample_cdr("y1")),
            CdrWrite::Cdr(sample_cdr("y2")),
            CdrWrite::Cdr(sample_cdr("y3")),
        ])
        .unwrap();
    let path = spool.path().to_path_buf();
    drop(spool);
    // Flip one byte inside the second line's JSON: its digest no longer matches.
    let mut bytes = std::fs::read(&path).unwrap();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let at = second + DIGEST_HEX + 20;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    std::fs::write(&path, &bytes).unwrap();

    let spool = CdrSpool::open(dir.path(), 1 << 20).unwrap();
    let all = read_all(&spool);
    assert_eq!(all.skipped, 1);
    assert_eq!(
        all.writes,
        vec![
            CdrWrite::Cdr(sample_cdr("y1")),
            CdrWrite::Cdr(sample_cdr("y3"))
        ]
    );
}

#[test]
fn over_the_cap_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = Vec::new();
    encode_line(&CdrWrite::Cdr(sample_cdr("z1")), &mut one);
    // Room for two lines and a bit, not three.
    let mut spool = CdrSpool::open(dir.path(), one.len() as u64 * 2 + 10).unwrap();
    spool.append(&[CdrWrite::Cdr(sample_cdr("z1"))]).unwrap();
    let err = spool
        .append(&[
            CdrWrite::Cdr(sample_cdr("z2")),
            CdrWrite::Cdr(sample_cdr("z3")),
        ])
        .unwrap_err();
    assert!(matches!(err, SpoolError::Full { .. }), "{err}");
    assert_eq!(spool.entries(), 1);
    assert_eq!(spool.len(), one.len() as u64);
    spool.append(&[CdrWrite::Cdr(sample_cdr("z2"))]).unwrap();
    assert_eq!(spool.entries(), 2);
}

#[test]
fn default_folder_is_next_to_the_database_file() {
    assert_eq!(
        default_dir("sqlite://data/trunkguard.db"),
        Some(PathBuf::from("data/spool"))
    );
    assert_eq!(
        default_dir("sqlite:///var/lib/tg/tg.db?mode=rwc"),
        Some(PathBuf::from("/var/lib/tg/spool"))
    );
    assert_eq!(default_dir("sqlite::memory:"), None);
    // A server database: the node's own spool under its working directory.
    assert_eq!(
        default_dir("postgres://tg@db.example/trunkguard"),
        Some(PathBuf::from("data/spool"))
    );
    assert_eq!(default_dir("sqlite://file:x?mode=memory"), None);
}
