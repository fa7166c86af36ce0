//! Stores the calls' finished SIP traces (`sip::trace::SipTraces` hands them over): compressed
//! off the call's task, many traces per transaction. Its own queue, bounded, so that traces
//! never hold back CDRs: a trace the queue cannot take, or that the database refuses, is lost
//! (logged and counted), never retried for ever. The CDR writer's spool is not used: a trace is
//! evidence, not the record the carrier's figures come from.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::model::SipTrace;
use crate::store::sip_trace::StoredSipTrace;
use crate::store::Store;

/// Finished traces waiting for the writer.
pub const QUEUE: usize = 4096;
/// Traces stored per transaction at most.
const BATCH: usize = 64;

/// What the writer did.
#[derive(Debug, Default)]
pub struct SipTraceWriterStats {
    pub stored: AtomicU64,
    pub failed: AtomicU64,
}

/// The writer task: runs until every sender of its queue is gone, then stores what is left.
pub fn start(
    store: Store,
) -> (
    mpsc::Sender<SipTrace>,
    Arc<SipTraceWriterStats>,
    JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(SipTraceWriterStats::default());
    let task = tokio::spawn(run(store, rx, stats.clone()));
    (tx, stats, task)
}

async fn run(store: Store, mut rx: mpsc::Receiver<SipTrace>, stats: Arc<SipTraceWriterStats>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let traces = std::mem::take(&mut batch);
        let n = traces.len() as u64;
        // Compressing a batch takes a few ms of CPU: off the async workers.
        let rows = tokio::task::spawn_blocking(move || encode_all(traces)).await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, traces = n, "SIP trace encoding task failed");
                stats.failed.fetch_add(n, Relaxed);
                continue;
            }
        };
        let encoded = rows.len() as u64;
        stats.failed.fetch_add(n - encoded, Relaxed);
        match store.insert_sip_traces(&rows).await {
            Ok(()) => {
                stats.stored.fetch_add(encoded, Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, traces = encoded, "SIP traces not stored");
                stats.failed.fetch_add(encoded, Relaxed);
            }
        }
    }
}

fn encode_all(traces: Vec<SipTrace>) -> Vec<StoredSipTrace> {
    traces
        .iter()
        .filter_map(|t| match StoredSipTrace::encode(t) {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::error!(call_id = %t.call_id, error = %e, "SIP trace not encoded");
                None
            }
        })
        .collect()
}
