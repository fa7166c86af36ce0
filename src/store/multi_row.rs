//! Multi-row statements: `… VALUES ($1, $2, …), ($n, …) …` (`?` on SQLite), every value a bound
//! parameter, run in chunks that stay under both backends' parameter limits. The CDR writer's transaction writes
//! a whole batch with a few of these rather than a few statements per call: with sqlx every
//! statement is a hand-off to SQLite's worker thread and back (on PostgreSQL a round trip), and
//! those cost the gateway more than the writes themselves.
//!
//! A statement's text depends on its number of rows, so the rows go in chunks of a few sizes
//! only, powers of two up to [`MAX_ROWS`] (a batch of 13 rows: 8, 4, 1), and each size's
//! statement is prepared once per connection and kept in sqlx's statement cache. Prepared per
//! batch instead (one text per batch size, each new), parsing them took a fifth of the gateway's
//! instructions at low rates and as much per row at high ones (bench/README.md, session 13). The
//! price: up to log₂ more statements for a batch whose size is not a power of two.

use std::fmt::Write as _;

use sqlx::query::Query;

use std::collections::HashSet;

use super::{Columns, Op, StoreError};

/// SQLite's limit on a statement's parameters (`SQLITE_MAX_VARIABLE_NUMBER` of the bundled
/// 3.46); PostgreSQL's, 65,535, is higher.
const MAX_PARAMETERS: usize = 32_766;

/// At most this many rows per statement, whatever the columns (a power of two): a failed
/// statement names a small chunk, and each connection keeps the prepared statements of every
/// chunk size, whose memory grows with their rows (SQLite: about 0.25 MiB for 64 rows of 27
/// values, 1 MiB for 256).
pub(super) const MAX_ROWS: usize = 64;

/// How a backend writes a generated statement's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …`, bound in order (SQLite: no lookup by name per parameter).
    Anonymous,
}

/// A multi-row statement: `head`, `VALUES` and one tuple of `columns` parameters per row, `tail`.
/// In a SELECT the tuples' columns are `v.column1`, `v.column2`… after `FROM (` … `) AS v`: both
/// backends name a VALUES list's columns so.
pub(super) struct MultiRow {
    pub(super) head: &'static str,
    pub(super) columns: usize,
    pub(super) tail: &'static str,
    /// What the statement does, for its error.
    pub(super) op: &'static str,
}

impl MultiRow {
    /// Rows per statement at most: as many as the parameter limit allows, at most [`MAX_ROWS`],
    /// a power of two.
    pub(super) fn rows_per_statement(&self) -> usize {
        let rows = (MAX_PARAMETERS / self.columns.max(1)).clamp(1, MAX_ROWS);
        1 << rows.ilog2()
    }

    /// The sizes of the chunks `rows` rows go in, in order: full chunks of
    /// [`rows_per_statement`](Self::rows_per_statement), then the rest by its binary digits,
    /// largest first. So a statement only ever has a power of two of rows.
    pub(super) fn chunks(&self, rows: usize) -> impl Iterator<Item = usize> {
        let most = self.rows_per_statement();
        let mut left = rows;
        std::iter::from_fn(move || {
            (left > 0).then(|| {
                let size = most.min(1 << left.ilog2());
                left -= size;
                size
            })
        })
    }

    /// The text for `rows` rows, and ` RETURNING id` after it if `returning_id`.
    pub(super) fn sql_returning(
        &self,
        rows: usize,
        placeholders: Placeholders,
        returning_id: bool,
    ) -> String {
        let mut sql = self.sql(rows, placeholders);
        if returning_id {
            sql.push_str(" RETURNING id");
        }
        sql
    }

    /// The text for `rows` rows.
    pub(super) fn sql(&self, rows: usize, placeholders: Placeholders) -> String {
        let mut sql = String::with_capacity(
            self.head.len() + self.tail.len() + 8 + rows * (self.columns * 8 + 4),
        );
        sql.push_str(self.head);
        sql.push_str("VALUES ");
        let mut n = 0usize;
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column in 0..self.columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                match placeholders {
                    Placeholders::Anonymous => sql.push('?'),
                    Placeholders::Numbered => {
                        n += 1;
                        // fmt::Write on a String only grows it: it cannot fail.
                        let _ = write!(sql, "${n}");
                    }
                }
            }
            sql.push(')');
        }
        sql.push_str(self.tail);
        sql
    }
}

/// How many statements [`run`](sqlite::run) has sent on this thread: the tests show with it that
/// a CDR batch's statements do not grow with the batch (a `#[tokio::test]` runs on one thread).
#[cfg(test)]
pub(super) mod sent {
    use std::cell::Cell;

    thread_local! {
        static SENT: Cell<u64> = const { Cell::new(0) };
    }

    pub(in crate::store) fn one() {
        SENT.with(|n| n.set(n.get() + 1));
    }

    pub(in crate::store) fn so_far() -> u64 {
        SENT.with(Cell::get)
    }
}

per_backend! {
    /// Runs `statement` over `rows`, `bind` binding one row's values in column order (as many as
    /// `statement.columns`); returns the rows the statements return (their RETURNING). Nothing is
    /// sent for no rows. `label` names a row for the error of a chunk that fails.
    pub(in crate::store) async fn run<'a, T>(
        conn: &mut Conn,
        statement: &MultiRow,
        rows: &'a [T],
        bind: impl for<'q> Fn(Query<'q, Db, Args<'q>>, &'q T) -> Query<'q, Db, Args<'q>>,
        label: impl Fn(&T) -> &str,
    ) -> Result<Vec<Row>, StoreError> {
        let mut returned = Vec::new();
        let mut rest = rows;
        for size in statement.chunks(rows.len()) {
            let (chunk, after) = rest.split_at(size);
            rest = after;
            let sql = statement.sql(size, Dialect::PLACEHOLDERS);
            let query = chunk
                .iter()
                .fold(sqlx::query(&sql), &bind);
            #[cfg(test)]
            sent::one();
            let first = chunk.first().map_or("", &label);
            returned.extend(
                // Persistent (sqlx's default, said here because it is the point): the few
                // texts `chunks` makes are each prepared once per connection.
                query
                    .persistent(true)
                    .fetch_all(&mut *conn)
                    .await
                    .op_on(statement.op, format_args!("{} rows from {first}", chunk.len()))?,
            );
        }
        Ok(returned)
    }

    /// Runs `statement`, an INSERT (or upsert) of rows with an `id` column and no RETURNING of
    /// its own, over `rows`; returns the ids (as stored: `Dialect::text`) of the rows it wrote.
    /// A chunk of several rows names them with `RETURNING id`. A chunk of one row on SQLite is
    /// sent without it and counted by its changes: SQLite's RETURNING fills an ephemeral table
    /// per statement, and at low rates a batch holds one call, so most chunks are single rows
    /// (bench/README.md, "Session 14: the CDR writer's transaction"). On PostgreSQL RETURNING
    /// costs nothing of note and every chunk keeps it.
    pub(in crate::store) async fn written_ids<'a, T>(
        conn: &mut Conn,
        statement: &MultiRow,
        rows: &'a [T],
        bind: impl for<'q> Fn(Query<'q, Db, Args<'q>>, &'q T) -> Query<'q, Db, Args<'q>>,
        id: impl Fn(&T) -> &str,
    ) -> Result<HashSet<String>, StoreError> {
        let mut written = HashSet::with_capacity(rows.len());
        let mut rest = rows;
        for size in statement.chunks(rows.len()) {
            let (chunk, after) = rest.split_at(size);
            rest = after;
            let by_changes = size == 1 && Dialect::SINGLE_ROW_BY_CHANGES;
            let sql = statement.sql_returning(size, Dialect::PLACEHOLDERS, !by_changes);
            let query = chunk.iter().fold(sqlx::query(&sql), &bind).persistent(true);
            #[cfg(test)]
            sent::one();
            let first = chunk.first().map_or("", &id);
            if by_changes {
                let done = query
                    .execute(&mut *conn)
                    .await
                    .op_on(statement.op, format_args!("{} rows from {first}", chunk.len()))?;
                if done.rows_affected() > 0 {
                    written.extend(chunk.iter().map(|row| Dialect::text(id(row)).into_owned()));
                }
            } else {
                let returned = query
                    .fetch_all(&mut *conn)
                    .await
                    .op_on(statement.op, format_args!("{} rows from {first}", chunk.len()))?;
                for row in &returned {
                    written.insert(Columns::new(row, statement.op).try_get("id")?);
                }
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
#[path = "multi_row_tests.rs"]
mod tests;
