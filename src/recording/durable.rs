//! Closed recordings made durable in groups, on a thread of their own.
//!
//! A recording is evidence only once it survives a power loss: its samples on disk before its
//! final name, and the name on disk before the CDR says "complete". Done per file, that was
//! two `fsync`s per call (the file, then its folder), each a synchronous write of data and
//! inode plus a cache flush of the disk, on the worker thread that also drains the packet
//! queues of its other calls: at 1,000 calls/s about a tenth of the gateway's CPU, and a slow
//! disk stalled the recorders (issue 16).
//!
//! Here the workers hand each closed recording (files written, still `.part`) to one thread,
//! which takes whatever has queued up meanwhile as a group and, for the whole group: one
//! `syncfs` (every file's data and inode), the renames, one more `syncfs` (the folders'
//! entries), then the digests and the replies. A group is what closed within `LINGER` of its
//! first recording or while the previous group was being synced, so the cost per call falls as
//! the load grows (group commit, as a database's log does). The order of a crash's outcomes is kept: a file renamed is a file
//! whose content was on disk, and the call learns its result (and writes its CDR) only once
//! the name is on disk too. A process killed meanwhile leaves `.part` files, which the next
//! start repairs as before.
//!
//! `syncfs` flushes the whole file system the folder is on, other writers' data included; when
//! it fails (an odd file system), each file and folder of the group is synced on its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::session::CallWriter;
use super::writer::sync_dir;

/// The most recordings committed as one group (a bound on the replies a slow sync delays).
const MAX_GROUP: usize = 1024;
/// How long the first recording of a group waits for others: at most 20 groups a second
/// however many calls end, each call's result (and CDR) at most this much later.
const LINGER: Duration = Duration::from_millis(50);

/// Starts the thread that commits the recordings closed in `dir`.
pub(crate) fn start(dir: PathBuf) -> io::Result<(mpsc::Sender<CallWriter>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<CallWriter>();
    let handle = std::thread::Builder::new()
        .name("recording-sync".into())
        .spawn(move || run(&rx, &dir))?;
    Ok((tx, handle))
}

/// Until every worker has let go of its sender (the pool shut down) and the queue is empty.
fn run(rx: &mpsc::Receiver<CallWriter>, dir: &Path) {
    while let Ok(first) = rx.recv() {
        // Let the group form: the workers close each recording as its call ends, one at a
        // time, and a `syncfs` writes out every dirty page of the file system (the live calls'
        // audio too), so syncing as often as calls end costs far more than syncing a group of
        // them a little later. A sleep, not a wait on the channel: each recording handed over
        // meanwhile would wake the thread.
        std::thread::sleep(LINGER);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(writer) => group.push(writer),
                Err(_) => break,
            }
        }
        // A bug in one recording must not leave every later call without its result; the
        // group's own calls get `WorkerGone` (their replies are dropped with it).
        let committed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit(dir, group)));
        if committed.is_err() {
            tracing::error!(dir = %dir.display(), "recording sync panicked; its group's recordings are left as .part");
        }
    }
}

/// Syncs, renames, syncs again, then digests and replies, for every recording of `group`.
pub(crate) fn commit(dir: &Path, mut group: Vec<CallWriter>) {
    if let Err(e) = sync_file_system(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, recordings = group.len(),
            "syncfs failed; syncing each recording alone");
        for writer in &mut group {
            writer.sync_files();
        }
    }
    let folders: Vec<Option<PathBuf>> = group.iter_mut().map(|w| w.rename_files()).collect();
    if let Err(e) = sync_file_system(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "syncfs failed; syncing each folder alone");
        let mut synced: BTreeMap<&Path, Option<io::Error>> = BTreeMap::new();
        for folder in folders.iter().flatten() {
            synced
                .entry(folder.as_path())
                .or_insert_with(|| sync_dir(folder).err());
        }
        for (writer, folder) in group.iter_mut().zip(&folders) {
            if let Some(Some(err)) = folder.as_deref().and_then(|f| synced.get(f)) {
                writer.names_not_synced(err);
            }
        }
    }
    for writer in group {
        writer.deliver();
    }
}

/// `syncfs(2)` on the file system holding `dir`.
fn sync_file_system(dir: &Path) -> io::Result<()> {
    let folder = File::open(dir)?;
    rustix::fs::syncfs(&folder).map_err(io::Error::from)
}
