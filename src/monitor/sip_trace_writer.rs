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
/// Traces stored per transaction at most: under load one commit (one fsync) stores hundreds.
const BATCH: usize = 512;
/// After the first trace of an idle spell, the writer waits this long for more (as the CDR
/// writer does): a trace per call each in its own transaction and blocking-pool hop cost more
/// than the call's own signalling; gathered, dozens share one.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

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
        if batch.len() < BATCH {
            tokio::time::sleep(LINGER).await;
            while batch.len() < BATCH {
                let Ok(trace) = rx.try_recv() else { break };
                batch.push(trace);
            }
        }
        let traces = latest_per_call(std::mem::take(&mut batch));
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

/// A call's answer-time copy and its final trace in the same batch: only the final one (the
/// later) is stored, as it would replace the copy anyway. Halves the writes of short calls
/// under load.
fn latest_per_call(traces: Vec<SipTrace>) -> Vec<SipTrace> {
    let mut last = std::collections::HashMap::with_capacity(traces.len());
    for (i, t) in traces.iter().enumerate() {
        last.insert(t.call_id.clone(), i);
    }
    traces
        .into_iter()
        .enumerate()
        .filter(|(i, t)| last.get(&t.call_id) == Some(i))
        .map(|(_, t)| t)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(call: &str, messages: usize) -> SipTrace {
        SipTrace {
            call_id: call.into(),
            messages: Vec::with_capacity(messages),
            dropped_messages: messages as u32,
            dropped_bytes: 0,
        }
    }

    #[test]
    fn a_batch_keeps_each_calls_latest_trace_in_order() {
        let kept = latest_per_call(vec![
            trace("a", 1),
            trace("b", 1),
            trace("a", 2),
            trace("c", 1),
        ]);
        let ids: Vec<_> = kept
            .iter()
            .map(|t| (t.call_id.as_str(), t.dropped_messages))
            .collect();
        assert_eq!(ids, [("b", 1), ("a", 2), ("c", 1)]);
    }
}
