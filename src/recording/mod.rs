//! Call recording: every call's audio as compliance evidence.
//!
//! # Use
//! - At start: [`repair::repair_all`] closes what a crash left open (before admitting calls),
//!   then [`RecordingPool::start`] (or `from_config`) starts the workers.
//! - At admission: [`RecordingPool::disk`]'s verdict (the folder's health watcher, [`disk`]; no
//!   I/O) decides whether a recording can start.
//! - Per call: [`Recorder::open`] with a [`RecordingSpec`]; on error apply
//!   [`OnRecordingFailure::from_config`] (refuse with 503, or go on unrecorded and store
//!   [`RecordingError::reason`]). Give [`Recorder::tap`] to the media relay, which pushes a
//!   [`RecPacket`] per RTP packet with [`RecorderTap::push`] (never blocks; a full queue is
//!   counted). After a renegotiation, [`Recorder::update_payloads`]. At the end,
//!   [`Recorder::finish`] returns the [`RecordingResult`] for the CDR.
//! - At shutdown, after the calls have finished their recordings:
//!   [`RecordingPool::shutdown_blocking`].
//! - Evidence: [`digest::verify`] recomputes a file's SHA-256.
//!
//! # Threads
//! The async side only calls `try_send` (the tap) and awaits oneshot replies. File creation,
//! decoding, writing and flushing run on the pool's worker threads ([`pool`]: the worker that
//! will write a recording opens its file); syncing, renaming and digesting closed recordings, in groups, on one thread
//! ([`durable`]); the folder's health checks on the watcher's own thread.
//!
//! # Files
//! `dir/YYYY/MM/DD/CALL_ID.wav.part` (in a cluster `dir/NODE_ID/YYYY/…`: [`paths`]) while
//! recording, renamed to `CALL_ID.wav` when closed
//! (`.pcap.part`/`.pcap` beside it when a codec cannot be decoded). Stereo 16-bit, 8 kHz
//! (16 kHz for G.722), left = inside (agent), right = outside (customer), mode 0600.

pub mod codec;
pub mod counters;
pub mod digest;
pub mod disk;
pub(crate) mod durable;
pub mod error;
pub mod g711;
pub mod g722;
pub mod locate;
pub mod packet;
pub(crate) mod patch;
pub mod paths;
pub(crate) mod pcap;
pub mod pool;
pub(crate) mod queue;
pub mod repair;
pub(crate) mod session;
pub(crate) mod timeline;
pub(crate) mod wav;
pub mod writer;

#[cfg(test)]
mod tests;

pub use codec::{Codec, PayloadMap};
pub use counters::{RecordingCounters, RecordingTotals};
pub use disk::{DiskHealth, DiskProblem, DiskWatchOptions};
pub use error::{OnRecordingFailure, RecordingError};
pub use packet::{Leg, RecPacket};
pub use pool::{RecorderOptions, RecordingPool};
pub use repair::{RepairReport, RepairedRecording};
pub use writer::{PendingRecording, Recorder, RecorderTap, RecordingResult, RecordingSpec};
