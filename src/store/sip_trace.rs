//! The calls' SIP traces (`sip_traces`): one row per attempt, the trace compressed
//! (`model::SipTrace::encode`: postcard in an LZ4 frame; rows written before issue 16 hold gzip
//! of the JSON, which `SipTrace::decode` still reads). Written by the gateway's trace writer
//! (`monitor::sip_trace_writer`), read back by [`read`] (the API, the evidence package),
//! deleted by the retention purge with the call's recording (`delete_expired_sip_traces`).

use chrono::{DateTime, Utc};

use super::multi_row::MultiRow;
use super::{Op, Store, StoreError};
use crate::model::{SipTrace, SipTraceError};

/// A trace as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSipTrace {
    pub cdr_id: String,
    /// When the INVITE arrived: the retention purge's clock.
    pub invite_at: DateTime<Utc>,
    pub messages: i64,
    /// `SipTrace::encode`d.
    pub trace: Vec<u8>,
}

impl StoredSipTrace {
    /// A finished trace, compressed for the store.
    pub fn encode(trace: &SipTrace) -> Result<StoredSipTrace, SipTraceError> {
        Ok(StoredSipTrace {
            cdr_id: trace.call_id.clone(),
            invite_at: trace.messages.first().map_or_else(Utc::now, |m| m.at),
            messages: trace.messages.len() as i64,
            trace: trace.encode()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadSipTraceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("SIP trace of call {call_id}: {source}")]
    Decode {
        call_id: String,
        source: SipTraceError,
    },
}

/// The SIP trace of call `call_id` (the CDR's id): every message of both legs in the order
/// they crossed the wire. `Ok(None)`: none is stored (tracing off, purged by retention, or the
/// call is still in progress: a trace is stored a few seconds after its CDR).
pub async fn read(store: &Store, call_id: &str) -> Result<Option<SipTrace>, ReadSipTraceError> {
    let Some(bytes) = store.sip_trace_bytes(call_id).await? else {
        return Ok(None);
    };
    SipTrace::decode(&bytes)
        .map(Some)
        .map_err(|source| ReadSipTraceError::Decode {
            call_id: call_id.to_string(),
            source,
        })
}

impl Store {
    /// Stores traces in one transaction; a call's trace stored again replaces it.
    pub async fn insert_sip_traces(&self, traces: &[StoredSipTrace]) -> Result<(), StoreError> {
        if traces.is_empty() {
            return Ok(());
        }
        dispatch!(self, insert_sip_traces(traces))
    }

    /// A call's compressed trace, as stored.
    pub async fn sip_trace_bytes(&self, call_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, sip_trace_bytes(call_id))
    }

    /// Deletes at most `limit` traces of calls whose INVITE came before `cutoff` and that are
    /// not on hold. Returns how many.
    pub async fn delete_expired_sip_traces(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        dispatch!(self, delete_expired_sip_traces(cutoff, limit))
    }
}

/// A batch of traces in a few statements (`multi_row`), not one each: at 1,000 calls/s the
/// writer's statement per trace, each a hand-off to SQLite's worker, let its queue fill up while
/// the CDR writer held the database (traces lost, issue 16).
const UPSERT_TRACES: MultiRow = MultiRow {
    head: "INSERT INTO sip_traces (cdr_id, invite_at, messages, trace) ",
    columns: 4,
    tail: " ON CONFLICT (cdr_id) DO UPDATE SET invite_at = excluded.invite_at, \
           messages = excluded.messages, trace = excluded.trace",
    op: "insert sip traces",
};

/// One trace per call, the last given (as upserting them one by one would leave): one statement
/// may not update a row twice.
fn last_per_call(traces: &[StoredSipTrace]) -> Vec<&StoredSipTrace> {
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<&StoredSipTrace> = traces
        .iter()
        .rev()
        .filter(|t| seen.insert(t.cdr_id.as_str()))
        .collect();
    last.reverse();
    last
}

per_backend! {
    uses(multi_row);

    pub(super) async fn insert_sip_traces(
        pool: &DbPool,
        traces: &[StoredSipTrace],
    ) -> Result<(), StoreError> {
        let rows = super::last_per_call(traces);
        let mut tx = Dialect::begin_write(pool).await.op("begin sip traces insert")?;
        multi_row::run(
            &mut tx,
            &super::UPSERT_TRACES,
            &rows,
            |query, t| {
                query
                    .bind(&t.cdr_id)
                    .bind(Dialect::time(t.invite_at))
                    .bind(t.messages)
                    .bind(&t.trace)
            },
            |t| t.cdr_id.as_str(),
        )
        .await?;
        tx.commit().await.op("commit sip traces")?;
        Ok(())
    }

    pub(super) async fn sip_trace_bytes(
        pool: &DbPool,
        call_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT trace FROM sip_traces WHERE cdr_id = $1")
            .bind(call_id)
            .fetch_optional(pool)
            .await
            .op_on("read sip trace", call_id)
    }

    pub(super) async fn delete_expired_sip_traces(
        pool: &DbPool,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sip_traces WHERE cdr_id IN (SELECT t.cdr_id FROM sip_traces t \
             WHERE t.invite_at < $1 AND NOT EXISTS (SELECT 1 FROM legal_holds h \
             WHERE h.call_id = t.cdr_id AND h.released_at IS NULL) LIMIT $2)",
        )
        .bind(Dialect::time(cutoff))
        .bind(i64::from(limit))
        .execute(pool)
        .await
        .op("delete expired sip traces")?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
#[path = "sip_trace_tests.rs"]
mod tests;
