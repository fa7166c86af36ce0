//! The CDR feed of a cluster's monitor leader: every node's CDRs in the order they were stored
//! (`cdr_feed`, filled by a trigger on `cdrs` in the inserting transaction; migration
//! `20261127000009_cdr_feed.sql`). The leader reads past its cursor (`monitor_cursor`), and a new
//! leader warms its windows up from the CDRs at or before it.

use chrono::{DateTime, Utc};

use super::cdr_queries::SELECT_CDRS;
use super::{Columns, Op, Store, StoreError};
use crate::model::Cdr;

/// The CDR columns with the feed's position in front, over `cdrs` joined with `cdr_feed`.
fn select_fed(tail: &str) -> String {
    format!(
        "{} JOIN cdr_feed ON cdr_feed.cdr_id = cdrs.id {tail}",
        SELECT_CDRS.replacen("SELECT ", "SELECT cdr_feed.seq AS feed_seq, ", 1)
    )
}

impl Store {
    /// CDRs stored after feed position `after`, in feed order, at most `limit`, each with its
    /// position; without their media, recording and DTMF (the rules do not read them).
    pub async fn cdr_feed_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Cdr)>, StoreError> {
        dispatch!(self, cdr_feed_after(after, limit.max(0)))
    }

    /// The last feed position (0 when no CDR was ever stored).
    pub async fn cdr_feed_last(&self) -> Result<i64, StoreError> {
        dispatch!(self, cdr_feed_last())
    }

    /// This database's id: a random number given at its first asking and kept (in
    /// `monitor_cursor`, as `database_id`), so that the nodes of a cluster can tell whether they
    /// share one database. The first of two concurrent askers wins; both read its id.
    pub async fn database_id(&self) -> Result<i64, StoreError> {
        let fresh = rand::random::<i64>().checked_abs().unwrap_or(1).max(1);
        dispatch!(self, give_database_id(fresh))?;
        self.cursor("database_id").await
    }

    /// As `cdrs_since`, but only CDRs at or before feed position `upto`: what a new leader puts
    /// back into its windows before it judges the CDRs after `upto`.
    pub async fn cdrs_since_upto(
        &self,
        since: DateTime<Utc>,
        upto: i64,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<Cdr>, StoreError> {
        // Without a position, the page starts just before `since` (times are milliseconds), as
        // `cdrs_since` does.
        let (after_at, after_id) = match after {
            Some((t, id)) => (t, id),
            None => (
                since
                    .checked_sub_signed(chrono::Duration::milliseconds(1))
                    .unwrap_or(since),
                String::new(),
            ),
        };
        dispatch!(
            self,
            cdrs_since_upto(since, upto, after_at, &after_id, limit.max(0))
        )
    }
}

per_backend! {
    uses(cdr_queries);

    pub(super) async fn cdr_feed_after(
        pool: &DbPool,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Cdr)>, StoreError> {
        let sql = select_fed("WHERE cdr_feed.seq > $1 ORDER BY cdr_feed.seq LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
            .op_on("read cdr feed", format_args!("after {after}"))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = Columns::new(row, "read cdr feed row").try_get("feed_seq")?;
                Ok((seq, cdr_queries::cdr_from_row(row)?))
            })
            .collect()
    }

    pub(super) async fn cdr_feed_last(pool: &DbPool) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM cdr_feed")
            .fetch_one(pool)
            .await
            .op("read last cdr feed position")?;
        Ok(seq.unwrap_or(0))
    }

    pub(super) async fn give_database_id(pool: &DbPool, fresh: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO monitor_cursor (name, value) VALUES ('database_id', $1) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(fresh)
        .execute(pool)
        .await
        .op("give the database its id")?;
        Ok(())
    }

    pub(super) async fn cdrs_since_upto(
        pool: &DbPool,
        since: DateTime<Utc>,
        upto: i64,
        after_at: DateTime<Utc>,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<Cdr>, StoreError> {
        let sql = select_fed(
            "WHERE invite_at >= $1 AND cdr_feed.seq <= $2 AND (invite_at, id) > ($3, $4) \
             ORDER BY invite_at, id LIMIT $5",
        );
        let rows = sqlx::query(&sql)
            .bind(Dialect::time(since))
            .bind(upto)
            .bind(Dialect::time(after_at))
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await
            .op_on(
                "read cdrs up to a feed position",
                format_args!("upto {upto}"),
            )?;
        rows.iter().map(cdr_queries::cdr_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::model::sample_cdr;

    fn t0() -> DateTime<Utc> {
        sample_cdr("x").attempt.invite_at
    }

    fn stored_at(id: &str, at: DateTime<Utc>) -> Cdr {
        let mut c = sample_cdr(id);
        c.attempt.invite_at = at;
        c.outcome.end_at = at + Duration::seconds(30);
        c
    }

    #[tokio::test]
    async fn every_stored_cdr_gets_the_next_position_once() {
        crate::store::testing::on_each_backend(feed_positions).await;
    }

    async fn feed_positions(store: Store) {
        assert_eq!(store.cdr_feed_last().await.unwrap(), 0);
        // Stored in this order, whatever their INVITE times.
        let (a, b, c) = (
            stored_at("a", t0() + Duration::seconds(10)),
            stored_at("b", t0()),
            stored_at("c", t0() + Duration::seconds(5)),
        );
        store.insert_cdrs(&[a.clone(), b.clone()]).await.unwrap();
        // Stored again (a replayed batch): no new position.
        store.insert_cdrs(&[a.clone(), c.clone()]).await.unwrap();
        let fed = store.cdr_feed_after(0, 10).await.unwrap();
        let ids: Vec<(i64, &str)> = fed
            .iter()
            .map(|(s, c)| (*s, c.attempt.id.as_str()))
            .collect();
        assert_eq!(ids, [(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(fed[0].1.attempt, a.attempt);
        assert_eq!(fed[0].1.outcome, a.outcome);
        assert_eq!(store.cdr_feed_last().await.unwrap(), 3);
        let after: Vec<i64> = store
            .cdr_feed_after(1, 1)
            .await
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(after, [2]);

        // The warm-up sees what is at or before a position, in INVITE order.
        let warm = store
            .cdrs_since_upto(t0() - Duration::hours(1), 2, None, 10)
            .await
            .unwrap();
        let ids: Vec<&str> = warm.iter().map(|c| c.attempt.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        let page = store
            .cdrs_since_upto(
                t0() - Duration::hours(1),
                3,
                Some((t0(), "b".to_string())),
                1,
            )
            .await
            .unwrap();
        assert_eq!(page[0].attempt.id, "c");
        let id = store.database_id().await.unwrap();
        assert!(id > 0);
        assert_eq!(store.database_id().await.unwrap(), id);
    }

    #[tokio::test]
    async fn a_database_keeps_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let a = Store::connect(&url).await.unwrap();
        let id = a.database_id().await.unwrap();
        assert!(id > 0);
        assert_eq!(a.database_id().await.unwrap(), id);
        // Another connection to the same file: the same id; another file: another.
        assert_eq!(
            Store::connect(&url)
                .await
                .unwrap()
                .database_id()
                .await
                .unwrap(),
            id
        );
        let other = format!("sqlite://{}/b.db", dir.path().display());
        let b = Store::connect(&other).await.unwrap();
        assert_ne!(b.database_id().await.unwrap(), id);
    }
}
