//! The CDR writer, started before any recovery, and its feed: stored CDRs on to the monitor,
//! the KPI buckets updated in the same transaction.

use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::app::AppError;
use crate::config::Config;
use crate::model::Cdr;
use crate::monitor::cdr_writer::{CdrSink, CdrWriter, CdrWriterHandle, KpiRollup, WriterHooks};
use crate::monitor::persist;
use crate::store::Store;
use crate::trunks::{over_long_secs, OverLongMap};

/// Stored CDRs waiting for the monitor (a full queue holds the CDR writer back, not calls).
const STORED_CDR_QUEUE: usize = 4096;
/// The over-long threshold for a CDR of no configured trunk (the rule's default, 60 min).
const DEFAULT_OVER_LONG_SECS: u64 = 3600;

/// The CDR writer and what comes out of it.
pub(super) struct CdrFeed {
    pub(super) cdrs: CdrSink,
    pub(super) writer: CdrWriterHandle,
    /// Stored CDRs, for the monitor (queued until it starts).
    pub(super) stored: mpsc::Receiver<Cdr>,
    /// The over-long thresholds of the KPI rollup, by trunk (changed by the `TrunkBook`).
    pub(super) over_long: OverLongMap,
}

/// The CDR writer (with its spool, when the database has one) starts before any recovery: the
/// spool replay and the closing of interrupted calls both write through it. What it stores
/// goes on to the monitor, and the KPI buckets are updated in the same transaction.
pub(super) async fn start_cdr_writer(store: &Store, config: &Config) -> Result<CdrFeed, AppError> {
    let spool_dir = config
        .database
        .spool_dir
        .clone()
        .or_else(|| crate::monitor::cdr_spool::default_dir(&config.database.url));
    let spool = match spool_dir {
        Some(dir) => Some(
            crate::monitor::cdr_writer::open_spool(dir, config.database.spool_max_bytes).await?,
        ),
        None => None,
    };
    let (stored_tx, stored) = mpsc::channel(STORED_CDR_QUEUE);
    let over_long: OverLongMap = Arc::new(RwLock::new(over_long_secs(&config.trunks)));
    let (cdrs, writer) = CdrWriter::spawn_with(
        store.clone(),
        config.database.cdr_queue,
        WriterHooks {
            rollup: Some(kpi_rollup(over_long.clone())),
            stored: Some(stored_tx),
            spool,
        },
    );
    Ok(CdrFeed {
        cdrs,
        writer,
        stored,
        over_long,
    })
}

/// A stored CDR's KPI deltas, with the over-long threshold of its trunk as it is now.
fn kpi_rollup(over_long: OverLongMap) -> KpiRollup {
    Arc::new(move |cdr: &Cdr| {
        let secs = cdr
            .attempt
            .trunk
            .as_deref()
            .and_then(|t| over_long.read().get(t).copied())
            .unwrap_or(DEFAULT_OVER_LONG_SECS);
        persist::rollup(cdr, secs)
    })
}
