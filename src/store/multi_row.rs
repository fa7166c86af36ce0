//! Multi-row statements: `… VALUES ($1, $2, …), ($n, …) …` (`?` on SQLite), every value a bound
//! parameter, run in chunks that stay under both backends' parameter limits. The CDR writer's transaction writes
//! a whole batch with a few of these rather than a few statements per call: with sqlx every
//! statement is a hand-off to SQLite's worker thread and back (on PostgreSQL a round trip), and
//! those cost the gateway more than the writes themselves.
//!
//! The statements are not kept prepared (`persistent(false)`): their text changes with the
//! number of rows, and caching each length would push the store's other statements out of
//! sqlx's statement cache (100 per connection). The price: SQLite parses each one (in its worker,
//! no extra hand-off), and sqlx sends PostgreSQL each one in two round trips (parse, then
//! execute) rather than one.

use std::fmt::Write as _;

use sqlx::query::Query;

use super::{Op, StoreError};

/// SQLite's limit on a statement's parameters (`SQLITE_MAX_VARIABLE_NUMBER` of the bundled
/// 3.46); PostgreSQL's, 65,535, is higher.
const MAX_PARAMETERS: usize = 32_766;

/// At most this many rows per statement, whatever the columns: a statement's text (about 6 bytes
/// a value) stays in the tens of kilobytes, and a failed statement names a small chunk.
pub(super) const MAX_ROWS: usize = 250;

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
    /// Rows per statement: as many as the parameter limit allows, at most [`MAX_ROWS`].
    pub(super) fn rows_per_statement(&self) -> usize {
        (MAX_PARAMETERS / self.columns.max(1)).clamp(1, MAX_ROWS)
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
        for chunk in rows.chunks(statement.rows_per_statement()) {
            let sql = statement.sql(chunk.len(), Dialect::PLACEHOLDERS);
            let query = chunk
                .iter()
                .fold(sqlx::query(&sql), &bind);
            #[cfg(test)]
            sent::one();
            let first = chunk.first().map_or("", &label);
            returned.extend(
                query
                    .persistent(false)
                    .fetch_all(&mut *conn)
                    .await
                    .op_on(statement.op, format_args!("{} rows from {first}", chunk.len()))?,
            );
        }
        Ok(returned)
    }
}

#[cfg(test)]
#[path = "multi_row_tests.rs"]
mod tests;
