//! The journal of calls in progress (`call_journal`): one row per call that has no CDR yet,
//! holding its latest provisional CDR as JSON, so that a restart after a crash can write a CDR for
//! every attempt. Journal entries and final CDRs are written by [`Store::apply_cdr_writes`], in
//! one transaction per batch and a few statements whatever its size (`multi_row`), with the
//! effect of applying them one by one in submission order:
//!
//! - a journal entry upserts its call's row, unless a CDR with that id is already stored (a late
//!   entry must not bring back a call that has ended);
//! - a final CDR is inserted (first write wins) and its journal row deleted, whether or not the
//!   CDR row was new ([`Store::insert_cdrs`] does the same).
//!
//! So a journal row and a CDR row never share an id, and after a clean shutdown the table is empty.
//!
//! JSON mapping: serde_json writes a NaN (or infinite) f64 as `null`; a leg's null jitter reads
//! back as NaN and a null MOS as `None`, as in the `cdr_media_legs` table.

use std::collections::{HashMap, HashSet};

use super::kpi_queries::{BucketCounters, Rollup};
use super::multi_row::MultiRow;
use super::{Columns, Dialogs, Op, Store, StoreError};
use crate::model::Cdr;
use crate::model::LegQuality;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::query::Query;

/// Upsert journal rows unless their call's CDR is stored (`multi_row::written_ids` names the
/// rows written). The WHERE also settles the INSERT … SELECT … ON CONFLICT parsing ambiguity. A
/// claim (`closing_by`) is left as it is: whoever is closing the call goes on.
const UPSERT_JOURNAL: MultiRow = MultiRow {
    head:
        "INSERT INTO call_journal (id, cdr_json, recording_part, dialogs_json, updated_at, node) \
           SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6 FROM (",
    columns: 6,
    tail: ") AS v WHERE NOT EXISTS (SELECT 1 FROM cdrs WHERE cdrs.id = v.column1) \
           ON CONFLICT (id) DO UPDATE SET cdr_json = excluded.cdr_json, \
           recording_part = excluded.recording_part, dialogs_json = excluded.dialogs_json, \
           updated_at = excluded.updated_at, node = excluded.node",
    op: "upsert journal entries",
};

const SELECT_JOURNAL: &str = "SELECT id, cdr_json, recording_part, dialogs_json, updated_at \
     FROM call_journal ORDER BY updated_at, id";

/// How much of an undecodable JSON document a [`StoreError::Corrupt`] quotes.
const EXCERPT_CHARS: usize = 120;

/// One write to the CDR tables. The CDR writer's queue carries these; a batch of them is applied
/// in order by [`Store::apply_cdr_writes`].
#[derive(Debug, Clone, PartialEq)]
pub enum CdrWrite {
    /// A call in progress: its provisional CDR, the recording file being written, its dialog
    /// state (JSON written and read by `b2bua::restart`, opaque here, encoded only if the entry
    /// is written), and when the entry was made (stored as `updated_at`).
    Journal {
        cdr: Cdr,
        recording_part: Option<String>,
        dialogs: Option<Dialogs>,
        at: DateTime<Utc>,
    },
    /// A call that has ended: its final CDR.
    Cdr(Cdr),
}

/// Counters of a batch without KPI buckets.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct NoCounters;

impl BucketCounters for NoCounters {
    fn merge(&mut self, _: &Self) {}
}

/// What [`Store::apply_cdr_writes`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedWrites {
    /// CDR rows inserted; a CDR whose id was already stored is not counted.
    pub cdrs_inserted: u64,
    /// Journal rows inserted or updated.
    pub journal_upserts: u64,
    /// Journal entries ignored because their call's CDR was already stored (or, never in
    /// practice, because the CDR could not be encoded as JSON).
    pub journal_ignored: u64,
}

/// A call the journal says was in progress: no CDR was stored for it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournaledCall {
    /// The latest provisional CDR; its id is the row's id.
    pub cdr: Cdr,
    /// The recording file that was being written, as given to the journal.
    pub recording_part: Option<String>,
    /// The call's dialog state as given to the journal (see [`CdrWrite::Journal`]).
    pub dialogs: Option<String>,
    /// When the latest entry was made: the last moment the call was known to be alive.
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Apply journal entries and final CDRs in the given order, in one transaction (see the module
    /// documentation). Replaying a batch after a failed commit gives the same result.
    pub async fn apply_cdr_writes(&self, writes: &[CdrWrite]) -> Result<AppliedWrites, StoreError> {
        self.apply_cdr_writes_with::<NoCounters>(writes, None).await
    }

    /// `apply_cdr_writes`, and in the same transaction adds what each newly inserted CDR
    /// contributes to the KPI buckets (`rollup`), so the buckets count every stored CDR once.
    pub async fn apply_cdr_writes_with<C: BucketCounters>(
        &self,
        writes: &[CdrWrite],
        rollup: Option<Rollup<'_, C>>,
    ) -> Result<AppliedWrites, StoreError> {
        if writes.is_empty() {
            return Ok(AppliedWrites::default());
        }
        dispatch!(self, apply_cdr_writes_with(writes, rollup))
    }

    /// The calls in progress according to the journal, oldest entry first: after a crash, the
    /// calls that have no CDR. The outer error is the query's; each row is decoded on its own, so
    /// a row that does not decode (hand-edited, written by something else, or whose JSON names
    /// another id) is an `Err(StoreError::Corrupt)` entry and the other rows are still returned.
    ///
    /// Rows stay until a final CDR with their id is stored (submit it through the CDR writer, or
    /// [`Store::insert_cdrs`]); a corrupt row stays until that too.
    pub async fn journaled_calls(
        &self,
    ) -> Result<Vec<Result<JournaledCall, StoreError>>, StoreError> {
        dispatch!(self, journaled_calls())
    }
}

/// A journal row to upsert: a call's latest entry in the batch.
struct JournalRow<'a> {
    cdr: &'a Cdr,
    json: String,
    recording_part: Option<&'a str>,
    dialogs: Option<String>,
    at: DateTime<Utc>,
    /// The entries of the batch it stands for (the earlier ones it overwrites included).
    entries: u64,
}

/// What a batch comes to, worked out before it is written, so that each table gets one
/// statement (per chunk) whatever the number of calls, with the result of applying the writes
/// one by one in order. Calls are told apart by their id as stored (`Dialect::text`).
struct Plan<'a> {
    /// The final CDRs, in order.
    cdrs: Vec<&'a Cdr>,
    /// For each of `cdrs`: the entries of its call made before it in the batch. Each was
    /// upserted and then deleted by the CDR if the CDR is new, and ignored if the CDR was stored
    /// before the batch. (Not encoded: a CDR always encodes, and the row is gone at commit.)
    entries_before: Vec<u64>,
    /// The latest entry of each call that has no final CDR in the batch.
    journal: Vec<JournalRow<'a>>,
    /// Entries ignored whatever is stored: made after their call's CDR in the batch, or (never
    /// in practice) whose CDR could not be encoded as JSON.
    ignored: u64,
}

per_backend! {
    uses(cdr_queries, kpi_queries, multi_row);

    pub(super) async fn apply_cdr_writes_with<C: BucketCounters>(
        pool: &DbPool,
        writes: &[CdrWrite],
        rollup: Option<Rollup<'_, C>>,
    ) -> Result<AppliedWrites, StoreError> {
        let plan = plan(writes);
        // A write transaction: waits for the write lock up front (busy_timeout) rather than
        // failing to upgrade.
        let mut tx = Dialect::begin_write(pool).await.op("begin cdr writes")?;
        let new = cdr_queries::insert_batch(&mut tx, &plan.cdrs).await?;
        let upserted = upsert_journal(&mut tx, &plan.journal).await?;
        let mut applied = AppliedWrites {
            journal_ignored: plan.ignored,
            ..AppliedWrites::default()
        };
        let mut deltas = Vec::new();
        for ((cdr, new), entries) in plan.cdrs.iter().zip(&new).zip(&plan.entries_before) {
            if *new {
                applied.cdrs_inserted += 1;
                applied.journal_upserts += entries;
                if let Some(rollup) = rollup {
                    deltas.extend(rollup(cdr));
                }
            } else if *entries > 0 {
                applied.journal_ignored += entries;
                ignored_entries(cdr, *entries);
            }
        }
        for row in &plan.journal {
            if upserted.contains(&*Dialect::text(&row.cdr.attempt.id)) {
                applied.journal_upserts += row.entries;
            } else {
                applied.journal_ignored += row.entries;
                ignored_entries(row.cdr, row.entries);
            }
        }
        if !deltas.is_empty() {
            kpi_queries::add_to_buckets(&mut tx, deltas).await?;
        }
        tx.commit().await.op("commit cdr writes")?;
        Ok(applied)
    }

    fn plan(writes: &[CdrWrite]) -> Plan<'_> {
        let mut plan = Plan {
            cdrs: Vec::new(),
            entries_before: Vec::new(),
            journal: Vec::new(),
            ignored: 0,
        };
        // Each call's first final CDR: its position in `writes` and in `plan.cdrs`.
        let mut first_cdr = HashMap::new();
        for (at, write) in writes.iter().enumerate() {
            if let CdrWrite::Cdr(cdr) = write {
                first_cdr
                    .entry(Dialect::text(&cdr.attempt.id))
                    .or_insert((at, plan.cdrs.len()));
                plan.cdrs.push(cdr);
            }
        }
        plan.entries_before = vec![0; plan.cdrs.len()];
        // Each journaled call's latest entry (its position in `writes`) and its entries before
        // it, in the order of the calls' first entries; encoded once all are known, so that an
        // entry a later one replaces is never encoded.
        let mut latest: Vec<(usize, u64)> = Vec::new();
        let mut rows = HashMap::new();
        for (at, write) in writes.iter().enumerate() {
            let CdrWrite::Journal { cdr, .. } = write else {
                continue;
            };
            let id = Dialect::text(&cdr.attempt.id);
            match first_cdr.get(&id) {
                Some(&(cdr_at, index)) if at < cdr_at => plan.entries_before[index] += 1,
                Some(_) => {
                    plan.ignored += 1;
                    ignored_entries(cdr, 1);
                }
                None => match rows.get(&id) {
                    Some(&index) => {
                        let earlier: &mut (usize, u64) = &mut latest[index];
                        *earlier = (at, earlier.1 + 1);
                    }
                    None => {
                        rows.insert(id, latest.len());
                        latest.push((at, 1));
                    }
                },
            }
        }
        for (at, entries) in latest {
            let CdrWrite::Journal {
                cdr,
                recording_part,
                dialogs,
                at: made,
            } = &writes[at]
            else {
                continue;
            };
            let json = match serde_json::to_string(cdr) {
                Ok(json) => json,
                Err(error) => {
                    // Cannot happen with the Cdr type (no maps, no fallible Serialize).
                    // Failing the batch would make the writer retry it forever; the
                    // final CDR does not depend on this entry.
                    tracing::error!(cdr_id = %cdr.attempt.id, %error,
                        "cannot encode a journal entry; ignored");
                    plan.ignored += entries;
                    continue;
                }
            };
            plan.journal.push(JournalRow {
                cdr,
                json,
                recording_part: recording_part.as_deref(),
                dialogs: dialogs.as_ref().and_then(Dialogs::json),
                at: *made,
                entries,
            });
        }
        plan
    }

    pub(super) async fn journaled_calls(
        pool: &DbPool,
    ) -> Result<Vec<Result<JournaledCall, StoreError>>, StoreError> {
        let rows = sqlx::query(SELECT_JOURNAL)
            .fetch_all(pool)
            .await
            .op("read call journal")?;
        Ok(rows.iter().map(journaled_from_row).collect())
    }

    /// Upserts the rows whose call has no stored CDR; returns their ids (as stored).
    async fn upsert_journal(
        conn: &mut Conn,
        rows: &[JournalRow<'_>],
    ) -> Result<HashSet<String>, StoreError> {
        multi_row::written_ids(conn, &UPSERT_JOURNAL, rows, bind_journal, |row| {
            &row.cdr.attempt.id
        })
        .await
    }

    fn bind_journal<'q>(
        query: Query<'q, Db, Args<'q>>,
        row: &'q JournalRow<'_>,
    ) -> Query<'q, Db, Args<'q>> {
        query
            .bind(Dialect::text(&row.cdr.attempt.id))
            .bind(row.json.as_str())
            .bind(row.recording_part.map(Dialect::text))
            .bind(row.dialogs.as_deref().map(Dialect::text))
            .bind(Dialect::time(row.at))
            .bind(Dialect::opt_text(&row.cdr.attempt.node))
    }

    pub(in crate::store) fn journaled_from_row(row: &Row) -> Result<JournaledCall, StoreError> {
        let id: String = Columns::new(row, "read journal row").try_get("id")?;
        let row = Columns::of(row, "read journal row", &id);
        let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
            id: id.clone(),
            column,
            value,
        };
        let json: String = row.try_get("cdr_json")?;
        let cdr = decode_cdr(&json).map_err(|error| {
            let excerpt: String = json.chars().take(EXCERPT_CHARS).collect();
            let more = if json.chars().count() > EXCERPT_CHARS {
                "…"
            } else {
                ""
            };
            corrupt(
                "call_journal.cdr_json",
                format!("{excerpt}{more} ({error})"),
            )
        })?;
        if cdr.attempt.id != id {
            return Err(corrupt(
                "call_journal.cdr_json",
                format!("a CDR with id `{}`", cdr.attempt.id),
            ));
        }
        let updated_at = row.time("call_journal.updated_at", &id)?;
        Ok(JournaledCall {
            cdr,
            recording_part: row.try_get("recording_part")?,
            dialogs: row.try_get("dialogs_json")?,
            updated_at,
        })
    }
}

/// Journal entries of a call whose CDR is stored (before the batch or earlier in it).
fn ignored_entries(cdr: &Cdr, entries: u64) {
    tracing::warn!(cdr_id = %cdr.attempt.id, entries,
        "journal entry for a call whose CDR is already stored; ignored");
}

/// [`LegQuality`] as found in journal JSON, where a NaN or infinite f64 was written as null.
#[derive(Deserialize)]
struct JournalLeg {
    leg: String,
    packets_in: u64,
    bytes_in: u64,
    packets_out: u64,
    bytes_out: u64,
    lost: u64,
    jitter_ms: Option<f64>,
    max_jitter_ms: Option<f64>,
    longest_gap_ms: u64,
    stray: u64,
    mos: Option<f64>,
    one_way: bool,
}

impl From<JournalLeg> for LegQuality {
    fn from(leg: JournalLeg) -> LegQuality {
        LegQuality {
            leg: leg.leg,
            packets_in: leg.packets_in,
            bytes_in: leg.bytes_in,
            packets_out: leg.packets_out,
            bytes_out: leg.bytes_out,
            lost: leg.lost,
            jitter_ms: leg.jitter_ms.unwrap_or(f64::NAN),
            max_jitter_ms: leg.max_jitter_ms.unwrap_or(f64::NAN),
            longest_gap_ms: leg.longest_gap_ms,
            stray: leg.stray,
            mos: leg.mos,
            one_way: leg.one_way,
        }
    }
}

/// Read a provisional CDR back: the media legs through [`JournalLeg`], the rest as serde wrote it.
fn decode_cdr(json: &str) -> Result<Cdr, serde_json::Error> {
    decode_cdr_value(serde_json::from_str(json)?)
}

/// `decode_cdr` of a parsed document (the CDR spool's lines hold one).
pub(crate) fn decode_cdr_value(mut value: serde_json::Value) -> Result<Cdr, serde_json::Error> {
    let legs = value
        .as_object_mut()
        .and_then(|fields| fields.remove("media"));
    // Without "media" the field takes its serde default (no legs); it is filled in below.
    let mut cdr: Cdr = serde_json::from_value(value)?;
    if let Some(legs) = legs {
        let legs: Option<Vec<JournalLeg>> = serde_json::from_value(legs)?;
        cdr.media = legs
            .unwrap_or_default()
            .into_iter()
            .map(LegQuality::from)
            .collect();
    }
    Ok(cdr)
}

#[cfg(test)]
#[path = "journal_queries_tests.rs"]
mod tests;
