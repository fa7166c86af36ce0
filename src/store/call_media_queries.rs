//! The per-call media tables (`cdr_media_legs`, `recordings`, `dtmf_events`, `recording_pauses`):
//! written with their CDR, read back with it, and the recording on its own for crash repair.
//!
//! Value mapping: u64 counters are stored saturated at `i64::MAX`; a NaN jitter is stored as NULL
//! and reads back as NaN, a NaN MOS reads back as `None` (NaN is bound as NULL: PostgreSQL would
//! store it, SQLite stores NULL); DTMF times keep milliseconds. Nothing a
//! valid [`Cdr`] holds is refused by the schema, because the CDR writer retries a refused batch
//! forever.

use std::collections::{HashMap, HashSet};

use sqlx::query::Query;

use super::multi_row::MultiRow;
use super::{Columns, Op, Store, StoreError};
use crate::model::Cdr;
use crate::model::{
    DtmfEvent, LegQuality, PauseEnd, RecordingInfo, RecordingPause, RecordingStatus,
};

const INSERT_LEGS: MultiRow = MultiRow {
    head: "INSERT INTO cdr_media_legs (cdr_id, leg, seq, packets_in, bytes_in, packets_out, \
           bytes_out, lost, jitter_ms, max_jitter_ms, longest_gap_ms, stray, mos, one_way) ",
    columns: 14,
    tail: " ON CONFLICT (cdr_id, leg) DO NOTHING",
    op: "insert media legs",
};

const RECORDING_COLUMNS: &str = "INSERT INTO recordings (cdr_id, status, path, pcap_path, \
     sha256, duration_ms, size_bytes, codec, overflowed_packets, note, pcap_sha256) ";

const INSERT_RECORDINGS: MultiRow = MultiRow {
    head: RECORDING_COLUMNS,
    columns: 11,
    tail: " ON CONFLICT (cdr_id) DO NOTHING",
    op: "insert recordings",
};

const UPSERT_RECORDING: MultiRow = MultiRow {
    head: RECORDING_COLUMNS,
    columns: 11,
    tail: " ON CONFLICT (cdr_id) DO UPDATE SET status = excluded.status, \
           path = excluded.path, pcap_path = excluded.pcap_path, sha256 = excluded.sha256, \
           duration_ms = excluded.duration_ms, size_bytes = excluded.size_bytes, \
           codec = excluded.codec, overflowed_packets = excluded.overflowed_packets, \
           note = excluded.note, pcap_sha256 = excluded.pcap_sha256",
    op: "upsert recording",
};

const INSERT_DTMF: MultiRow = MultiRow {
    head: "INSERT INTO dtmf_events (cdr_id, seq, leg, digit, at, duration_ms) ",
    columns: 6,
    tail: " ON CONFLICT (cdr_id, seq) DO NOTHING",
    op: "insert dtmf events",
};

const INSERT_PAUSES: MultiRow = MultiRow {
    head: "INSERT INTO recording_pauses (cdr_id, seq, start_ms, end_ms, paused_by, resumed_by, \
           ended) ",
    columns: 7,
    tail: " ON CONFLICT (cdr_id, seq) DO NOTHING",
    op: "insert recording pauses",
};

/// A row of a per-call table: the CDR's id, the item's position in its list (`seq`), the item.
struct Child<'a, T> {
    cdr_id: &'a str,
    seq: usize,
    item: &'a T,
}

impl<'a, T> Child<'a, T> {
    /// Each CDR's items, with their positions.
    fn of(cdrs: &[&'a Cdr], items: impl Fn(&'a Cdr) -> &'a [T]) -> Vec<Child<'a, T>> {
        cdrs.iter()
            .flat_map(|cdr| {
                items(cdr).iter().enumerate().map(|(seq, item)| Child {
                    cdr_id: &cdr.attempt.id,
                    seq,
                    item,
                })
            })
            .collect()
    }

    fn cdr_id(&self) -> &str {
        self.cdr_id
    }
}

/// The same child-table query for one CDR (`$1` = its id) and for the newest-CDRs page (`$1` =
/// the page size).
struct Selects {
    one: &'static str,
    page: &'static str,
}

macro_rules! selects {
    ($select:expr, $order:literal) => {
        Selects {
            one: concat!($select, " WHERE cdr_id = $1 ", $order),
            page: concat!(
                $select,
                " WHERE cdr_id IN (SELECT id FROM cdrs ",
                newest_cdrs_page!(),
                ") ",
                $order
            ),
        }
    };
}

const SELECT_LEGS: Selects = selects!(
    "SELECT cdr_id, leg, packets_in, bytes_in, packets_out, bytes_out, lost, jitter_ms, \
     max_jitter_ms, longest_gap_ms, stray, mos, one_way FROM cdr_media_legs",
    "ORDER BY cdr_id, seq"
);

macro_rules! select_recordings {
    ($tail:literal) => {
        concat!(
            "SELECT r.cdr_id, r.status, r.path, r.pcap_path, r.sha256, r.duration_ms, ",
            "r.size_bytes, r.codec, r.overflowed_packets, r.note, r.pcap_sha256 ",
            "FROM recordings r",
            $tail
        )
    };
}

const SELECT_RECORDINGS: Selects = selects!(select_recordings!(""), "");

const SELECT_DTMF: Selects = selects!(
    "SELECT cdr_id, leg, digit, at, duration_ms FROM dtmf_events",
    "ORDER BY cdr_id, seq"
);

const SELECT_PAUSES: Selects = selects!(
    "SELECT cdr_id, start_ms, end_ms, paused_by, resumed_by, ended FROM recording_pauses",
    "ORDER BY cdr_id, seq"
);

/// Which CDRs a read completes: the same rows the CDR query just read in the same transaction.
#[derive(Debug, Clone, Copy)]
pub(super) enum Selection<'a> {
    One(&'a str),
    NewestPage(i64),
}

impl Store {
    /// Store the recording of a stored CDR, replacing the one it has (crash repair marks a
    /// recording incomplete after a restart). Fails with [`StoreError::UnknownCdr`] when no CDR
    /// has this id: a recording is only ever kept with its call's record.
    pub async fn update_recording(
        &self,
        cdr_id: &str,
        info: &RecordingInfo,
    ) -> Result<(), StoreError> {
        dispatch!(self, update_recording(cdr_id, info))
    }

    /// The recording stored with a CDR; None when the CDR has none or does not exist.
    pub async fn recording(&self, cdr_id: &str) -> Result<Option<RecordingInfo>, StoreError> {
        dispatch!(self, recording(cdr_id))
    }

    /// The CDR id and recording whose WAV file is `path` (as stored, compared exactly). Should
    /// several CDRs name the same file, the newest call's is returned.
    pub async fn find_recording_by_path(
        &self,
        path: &str,
    ) -> Result<Option<(String, RecordingInfo)>, StoreError> {
        dispatch!(self, find_recording_by_path(path))
    }
}

/// A real column's value as bound: NaN as NULL, on both backends.
fn real(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

per_backend! {
    uses(multi_row);

    pub(super) async fn update_recording(
        pool: &DbPool,
        cdr_id: &str,
        info: &RecordingInfo,
    ) -> Result<(), StoreError> {
        let mut tx = Dialect::begin_write(pool)
            .await
            .op_on("begin recording update", cdr_id)?;
        let exists = sqlx::query("SELECT 1 FROM cdrs WHERE id = $1")
            .bind(cdr_id)
            .fetch_optional(&mut *tx)
            .await
            .op_on("find cdr of recording", cdr_id)?;
        if exists.is_none() {
            tx.rollback()
                .await
                .op_on("roll back recording update", cdr_id)?;
            return Err(StoreError::UnknownCdr {
                id: cdr_id.to_string(),
            });
        }
        multi_row::run(
            &mut tx,
            &UPSERT_RECORDING,
            &[(cdr_id, info)],
            bind_recording,
            |(cdr_id, _)| cdr_id,
        )
        .await?;
        tx.commit().await.op_on("commit recording update", cdr_id)?;
        Ok(())
    }

    pub(super) async fn recording(
        pool: &DbPool,
        cdr_id: &str,
    ) -> Result<Option<RecordingInfo>, StoreError> {
        let row = sqlx::query(SELECT_RECORDINGS.one)
            .bind(cdr_id)
            .fetch_optional(pool)
            .await
            .op_on("read recording", cdr_id)?;
        row.as_ref()
            .map(|row| recording_from_row(row, cdr_id))
            .transpose()
    }

    pub(super) async fn find_recording_by_path(
        pool: &DbPool,
        path: &str,
    ) -> Result<Option<(String, RecordingInfo)>, StoreError> {
        let row = sqlx::query(select_recordings!(
            " JOIN cdrs c ON c.id = r.cdr_id WHERE r.path = $1 OR r.pcap_path = $1 \
             ORDER BY c.invite_at DESC, c.id DESC LIMIT 1"
        ))
        .bind(path)
        .fetch_optional(pool)
        .await
        .op_on("find recording by path", path)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let cdr_id: String = Columns::new(&row, "read recording row").try_get("cdr_id")?;
        let info = recording_from_row(&row, &cdr_id)?;
        Ok(Some((cdr_id, info)))
    }

    /// Write newly inserted CDRs' legs, recordings, digits and recording pauses: one statement
    /// per table (per chunk of rows). Call only with CDRs whose row was just inserted, so that a
    /// duplicate CDR leaves the first one's children alone.
    pub(in crate::store) async fn insert_call_media(
        conn: &mut Conn,
        cdrs: &[&Cdr],
    ) -> Result<(), StoreError> {
        let mut legs = Child::of(cdrs, |cdr| &cdr.media);
        // A leg listed twice in one CDR: the first is stored, as the table's key wants.
        let mut seen = HashSet::new();
        legs.retain(|leg| {
            let first = seen.insert((leg.cdr_id, Dialect::text(&leg.item.leg)));
            if !first {
                tracing::warn!(cdr_id = %leg.cdr_id, leg = %leg.item.leg,
                    "CDR lists this media leg more than once; only the first is stored");
            }
            first
        });
        multi_row::run(conn, &INSERT_LEGS, &legs, bind_leg, Child::cdr_id).await?;
        let recordings: Vec<(&str, &RecordingInfo)> = cdrs
            .iter()
            .filter_map(|cdr| Some((cdr.attempt.id.as_str(), cdr.recording.as_ref()?)))
            .collect();
        multi_row::run(conn, &INSERT_RECORDINGS, &recordings, bind_recording, |(id, _)| id)
            .await?;
        let dtmf = Child::of(cdrs, |cdr| &cdr.dtmf);
        multi_row::run(conn, &INSERT_DTMF, &dtmf, bind_dtmf, Child::cdr_id).await?;
        let pauses = Child::of(cdrs, |cdr| &cdr.recording_pauses);
        multi_row::run(conn, &INSERT_PAUSES, &pauses, bind_pause, Child::cdr_id).await?;
        Ok(())
    }

    fn bind_leg<'q>(
        query: Query<'q, Db, Args<'q>>,
        row: &'q Child<'_, LegQuality>,
    ) -> Query<'q, Db, Args<'q>> {
        let leg = row.item;
        query
            .bind(Dialect::text(row.cdr_id))
            .bind(Dialect::text(&leg.leg))
            .bind(saturating_i64(row.seq as u64))
            .bind(saturating_i64(leg.packets_in))
            .bind(saturating_i64(leg.bytes_in))
            .bind(saturating_i64(leg.packets_out))
            .bind(saturating_i64(leg.bytes_out))
            .bind(saturating_i64(leg.lost))
            .bind(real(leg.jitter_ms))
            .bind(real(leg.max_jitter_ms))
            .bind(saturating_i64(leg.longest_gap_ms))
            .bind(saturating_i64(leg.stray))
            .bind(leg.mos.and_then(real))
            .bind(leg.one_way)
    }

    fn bind_dtmf<'q>(
        query: Query<'q, Db, Args<'q>>,
        row: &'q Child<'_, DtmfEvent>,
    ) -> Query<'q, Db, Args<'q>> {
        let event = row.item;
        query
            .bind(Dialect::text(row.cdr_id))
            .bind(saturating_i64(row.seq as u64))
            .bind(Dialect::text(&event.leg))
            .bind(Dialect::text(&event.digit))
            .bind(Dialect::time(event.at))
            .bind(i64::from(event.duration_ms))
    }

    fn bind_pause<'q>(
        query: Query<'q, Db, Args<'q>>,
        row: &'q Child<'_, RecordingPause>,
    ) -> Query<'q, Db, Args<'q>> {
        let pause = row.item;
        query
            .bind(Dialect::text(row.cdr_id))
            .bind(saturating_i64(row.seq as u64))
            .bind(pause.start_ms)
            .bind(pause.end_ms)
            .bind(Dialect::text(&pause.paused_by))
            .bind(Dialect::opt_text(&pause.resumed_by))
            .bind(pause.ended.as_str())
    }

    /// Fill in `media`, `recording` and `dtmf` of CDRs just read with `selection`: one query per
    /// table whatever the number of CDRs. Run it in the transaction that read the CDRs, so that
    /// both see the same snapshot.
    pub(in crate::store) async fn attach_call_media(
        conn: &mut Conn,
        cdrs: &mut [Cdr],
        selection: Selection<'_>,
    ) -> Result<(), StoreError> {
        if cdrs.is_empty() {
            return Ok(());
        }
        let index: HashMap<String, usize> = cdrs
            .iter()
            .enumerate()
            .map(|(i, cdr)| (cdr.attempt.id.clone(), i))
            .collect();
        let owner = |row: &Row| -> Result<(String, Option<usize>), StoreError> {
            let id: String = Columns::new(row, "read media row").try_get("cdr_id")?;
            let at = index.get(&id).copied();
            Ok((id, at))
        };

        for row in fetch(conn, &SELECT_LEGS, selection, "read media legs").await? {
            if let (id, Some(i)) = owner(&row)? {
                cdrs[i].media.push(leg_from_row(&row, &id)?);
            }
        }
        for row in fetch(conn, &SELECT_RECORDINGS, selection, "read recordings").await? {
            if let (id, Some(i)) = owner(&row)? {
                cdrs[i].recording = Some(recording_from_row(&row, &id)?);
            }
        }
        for row in fetch(conn, &SELECT_DTMF, selection, "read dtmf events").await? {
            if let (id, Some(i)) = owner(&row)? {
                cdrs[i].dtmf.push(dtmf_from_row(&row, &id)?);
            }
        }
        for row in fetch(conn, &SELECT_PAUSES, selection, "read recording pauses").await? {
            if let (id, Some(i)) = owner(&row)? {
                cdrs[i].recording_pauses.push(pause_from_row(&row, &id)?);
            }
        }
        Ok(())
    }

    async fn fetch(
        conn: &mut Conn,
        selects: &Selects,
        selection: Selection<'_>,
        op: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        match selection {
            Selection::One(id) => sqlx::query(selects.one)
                .bind(id)
                .fetch_all(conn)
                .await
                .op_on(op, id),
            Selection::NewestPage(limit) => sqlx::query(selects.page)
                .bind(limit)
                .fetch_all(conn)
                .await
                .op(op),
        }
    }

    fn bind_recording<'q>(
        query: Query<'q, Db, Args<'q>>,
        (cdr_id, info): &'q (&str, &RecordingInfo),
    ) -> Query<'q, Db, Args<'q>> {
        query
            .bind(Dialect::text(cdr_id))
            .bind(info.status.as_str())
            .bind(Dialect::opt_text(&info.path))
            .bind(Dialect::opt_text(&info.pcap_path))
            .bind(Dialect::opt_text(&info.sha256))
            .bind(info.duration_ms)
            .bind(info.size_bytes)
            .bind(Dialect::opt_text(&info.codec))
            .bind(saturating_i64(info.overflowed_packets))
            .bind(Dialect::opt_text(&info.note))
            .bind(Dialect::opt_text(&info.pcap_sha256))
    }

    /// A u64 column; `column` is `table.column` (the qualified name only serves the error).
    fn count(row: &Columns<Row>, id: &str, column: &'static str) -> Result<u64, StoreError> {
        let name = column.rsplit_once('.').map_or(column, |(_, name)| name);
        let value: i64 = row.try_get(name)?;
        u64::try_from(value).map_err(|_| corrupt(id, column, value.to_string()))
    }

    fn leg_from_row(row: &Row, id: &str) -> Result<LegQuality, StoreError> {
        let row = &Columns::of(row, "read media leg row", id);
        let real = |column: &'static str| -> Result<f64, StoreError> {
            Ok(row.try_get::<Option<f64>, _>(column)?.unwrap_or(f64::NAN))
        };
        Ok(LegQuality {
            leg: row.try_get("leg")?,
            packets_in: count(row, id, "cdr_media_legs.packets_in")?,
            bytes_in: count(row, id, "cdr_media_legs.bytes_in")?,
            packets_out: count(row, id, "cdr_media_legs.packets_out")?,
            bytes_out: count(row, id, "cdr_media_legs.bytes_out")?,
            lost: count(row, id, "cdr_media_legs.lost")?,
            jitter_ms: real("jitter_ms")?,
            max_jitter_ms: real("max_jitter_ms")?,
            longest_gap_ms: count(row, id, "cdr_media_legs.longest_gap_ms")?,
            stray: count(row, id, "cdr_media_legs.stray")?,
            mos: row.try_get("mos")?,
            one_way: row.try_get("one_way")?,
        })
    }

    fn recording_from_row(row: &Row, id: &str) -> Result<RecordingInfo, StoreError> {
        let row = &Columns::of(row, "read recording row", id);
        let status: String = row.try_get("status")?;
        let status = RecordingStatus::parse(&status)
            .ok_or_else(|| corrupt(id, "recordings.status", status.clone()))?;
        Ok(RecordingInfo {
            status,
            path: row.try_get("path")?,
            pcap_path: row.try_get("pcap_path")?,
            sha256: row.try_get("sha256")?,
            pcap_sha256: row.try_get("pcap_sha256")?,
            duration_ms: row.try_get("duration_ms")?,
            size_bytes: row.try_get("size_bytes")?,
            codec: row.try_get("codec")?,
            overflowed_packets: count(row, id, "recordings.overflowed_packets")?,
            note: row.try_get("note")?,
        })
    }

    pub(in crate::store) fn pause_from_row(
        row: &Row,
        id: &str,
    ) -> Result<RecordingPause, StoreError> {
        let row = Columns::of(row, "read recording pause row", id);
        let ended: String = row.try_get("ended")?;
        let ended = ended
            .parse::<PauseEnd>()
            .map_err(|_| corrupt(id, "recording_pauses.ended", ended.clone()))?;
        Ok(RecordingPause {
            start_ms: row.try_get("start_ms")?,
            end_ms: row.try_get("end_ms")?,
            paused_by: row.try_get("paused_by")?,
            resumed_by: row.try_get("resumed_by")?,
            ended,
        })
    }

    fn dtmf_from_row(row: &Row, id: &str) -> Result<DtmfEvent, StoreError> {
        let row = Columns::of(row, "read dtmf row", id);
        let at = row.time("dtmf_events.at", id)?;
        let duration: i64 = row.try_get("duration_ms")?;
        let duration_ms = u32::try_from(duration)
            .map_err(|_| corrupt(id, "dtmf_events.duration_ms", duration.to_string()))?;
        Ok(DtmfEvent {
            leg: row.try_get("leg")?,
            digit: row.try_get("digit")?,
            at,
            duration_ms,
        })
    }
}

/// SQLite integers are i64; a count beyond i64::MAX (never reached) is stored as i64::MAX rather
/// than refused.
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn corrupt(id: &str, column: &'static str, value: String) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        column,
        value,
    }
}

#[cfg(test)]
#[path = "call_media_queries_tests.rs"]
mod tests;
