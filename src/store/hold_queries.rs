//! Legal holds (`legal_holds`): a call on hold is exempt from the retention purge. Placing a hold
//! adds a row; releasing it fills `released_at`/`released_by` and keeps the row, so the history
//! of holds on a call stays. At most one hold is active per call (a partial unique index).

use chrono::{DateTime, Utc};

use super::{Columns, Op, Store, StoreError};

/// A hold, active (`released_at` None) or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    pub id: i64,
    pub call_id: String,
    pub placed_at: DateTime<Utc>,
    pub placed_by: String,
    pub reason: String,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

impl LegalHold {
    pub fn is_active(&self) -> bool {
        self.released_at.is_none()
    }
}

/// What placing a hold did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceHold {
    /// A new hold.
    Placed(LegalHold),
    /// The call was on hold already: that hold, unchanged.
    AlreadyHeld(LegalHold),
}

const SELECT_HOLDS: &str = "SELECT id, call_id, placed_at, placed_by, reason, released_at, \
     released_by, release_reason FROM legal_holds";

impl Store {
    /// Puts a call on hold, unless it is on hold already (then that hold is returned).
    pub async fn place_hold(
        &self,
        call_id: &str,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<PlaceHold, StoreError> {
        dispatch!(self, place_hold(call_id, by, reason, at))
    }

    /// Releases the call's active hold; None when it has none.
    pub async fn release_hold(
        &self,
        call_id: &str,
        by: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<LegalHold>, StoreError> {
        dispatch!(self, release_hold(call_id, by, reason, at))
    }

    /// Every hold of a call, active or released, oldest first.
    pub async fn holds_of_call(&self, call_id: &str) -> Result<Vec<LegalHold>, StoreError> {
        dispatch!(self, holds_of_call(call_id))
    }

    /// Is the call on hold now?
    pub async fn is_on_hold(&self, call_id: &str) -> Result<bool, StoreError> {
        dispatch!(self, is_on_hold(call_id))
    }
}

per_backend! {
    pub(super) async fn place_hold(
        pool: &DbPool,
        call_id: &str,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<PlaceHold, StoreError> {
        // A write transaction: no other writer places a hold between the look-up and the insert.
        let mut tx = Dialect::begin_write(pool)
            .await
            .op_on("begin hold placing", call_id)?;
        let sql = format!("{SELECT_HOLDS} WHERE call_id = $1 AND released_at IS NULL");
        let active = sqlx::query(&sql)
            .bind(call_id)
            .fetch_optional(&mut *tx)
            .await
            .op_on("read active hold", call_id)?;
        if let Some(row) = active {
            tx.rollback().await.op_on("end hold placing", call_id)?;
            return Ok(PlaceHold::AlreadyHeld(hold_from_row(&row)?));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO legal_holds (call_id, placed_at, placed_by, reason) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(call_id)
        .bind(Dialect::time(at))
        .bind(by)
        .bind(reason)
        .fetch_one(&mut *tx)
        .await
        .op_on("insert hold", call_id)?;
        tx.commit().await.op_on("commit hold", call_id)?;
        Ok(PlaceHold::Placed(LegalHold {
            id,
            call_id: call_id.to_string(),
            placed_at: crate::model::ms_precision(at),
            placed_by: by.to_string(),
            reason: reason.to_string(),
            released_at: None,
            released_by: None,
            release_reason: None,
        }))
    }

    pub(super) async fn release_hold(
        pool: &DbPool,
        call_id: &str,
        by: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<LegalHold>, StoreError> {
        let mut tx = Dialect::begin_write(pool)
            .await
            .op_on("begin hold release", call_id)?;
        let done = sqlx::query(
            "UPDATE legal_holds SET released_at = $2, released_by = $3, release_reason = $4 \
             WHERE call_id = $1 AND released_at IS NULL",
        )
        .bind(call_id)
        .bind(Dialect::time(at))
        .bind(by)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .op_on("release hold", call_id)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.op_on("end hold release", call_id)?;
            return Ok(None);
        }
        let sql = format!("{SELECT_HOLDS} WHERE call_id = $1 ORDER BY id DESC LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(call_id)
            .fetch_one(&mut *tx)
            .await
            .op_on("read released hold", call_id)?;
        tx.commit().await.op_on("commit hold release", call_id)?;
        Ok(Some(hold_from_row(&row)?))
    }

    pub(super) async fn holds_of_call(
        pool: &DbPool,
        call_id: &str,
    ) -> Result<Vec<LegalHold>, StoreError> {
        let sql = format!("{SELECT_HOLDS} WHERE call_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(call_id)
            .fetch_all(pool)
            .await
            .op_on("read holds of call", call_id)?;
        rows.iter().map(hold_from_row).collect()
    }

    pub(super) async fn is_on_hold(pool: &DbPool, call_id: &str) -> Result<bool, StoreError> {
        let held = sqlx::query("SELECT 1 FROM legal_holds WHERE call_id = $1 AND released_at IS NULL")
            .bind(call_id)
            .fetch_optional(pool)
            .await
            .op_on("check hold of call", call_id)?;
        Ok(held.is_some())
    }

    fn hold_from_row(row: &Row) -> Result<LegalHold, StoreError> {
        let row = Columns::new(row, "read hold row");
        let id: i64 = row.try_get("id")?;
        let what = format!("legal hold {id}");
        Ok(LegalHold {
            id,
            call_id: row.try_get("call_id")?,
            placed_at: row.time("legal_holds.placed_at", &what)?,
            placed_by: row.try_get("placed_by")?,
            reason: row.try_get("reason")?,
            released_at: row.opt_time("legal_holds.released_at", &what)?,
            released_by: row.try_get("released_by")?,
            release_reason: row.try_get("release_reason")?,
        })
    }
}

#[cfg(test)]
#[path = "hold_queries_tests.rs"]
mod tests;
