//! Operators' orders from outside the gateway process (`enforcement_requests`): the CLI stores
//! them, the running gateway takes the pending ones, applies them and marks them handled.

use chrono::{DateTime, Utc};

use super::enforcement_queries::SubjectKey;
use super::{Columns, Op, Store, StoreError};

/// An operator's order from outside the gateway process, for the gateway to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub requested_at: DateTime<Utc>,
    /// `impose` or `lift`.
    pub action: String,
    pub subject: SubjectKey,
    /// The step to impose; for a lift, one step or (none) every step on the subject.
    pub step: Option<String>,
    pub duration_secs: Option<i64>,
    pub operator: String,
    pub reason: String,
}

/// A stored request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcementRequest {
    pub id: i64,
    pub request: NewRequest,
    /// `pending`, `applied` or `rejected`.
    pub state: String,
    pub handled_at: Option<DateTime<Utc>>,
    pub result: Option<String>,
}

const SELECT_REQUESTS: &str = "SELECT id, requested_at, action, subject_kind, trunk, number, \
     step, duration_secs, operator, reason, state, handled_at, result FROM enforcement_requests";

impl Store {
    /// Stores an operator's order for the gateway; returns its id.
    pub async fn insert_enforcement_request(&self, r: &NewRequest) -> Result<i64, StoreError> {
        dispatch!(self, insert_enforcement_request(r))
    }

    /// Pending orders, oldest first, at most `limit`.
    pub async fn pending_enforcement_requests(
        &self,
        limit: u32,
    ) -> Result<Vec<EnforcementRequest>, StoreError> {
        dispatch!(self, pending_enforcement_requests(limit))
    }

    pub async fn enforcement_request(
        &self,
        id: i64,
    ) -> Result<Option<EnforcementRequest>, StoreError> {
        dispatch!(self, enforcement_request(id))
    }

    /// Marks a pending order `applied` or `rejected` with what happened.
    pub async fn finish_enforcement_request(
        &self,
        id: i64,
        state: &str,
        result: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, finish_enforcement_request(id, state, result, at))
    }
}

per_backend! {
    uses(enforcement_queries);

    pub(super) async fn insert_enforcement_request(
        pool: &DbPool,
        r: &NewRequest,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO enforcement_requests (requested_at, action, subject_kind, trunk, \
             number, step, duration_secs, operator, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(Dialect::time(r.requested_at))
        .bind(&r.action)
        .bind(&r.subject.kind)
        .bind(&r.subject.trunk)
        .bind(&r.subject.number)
        .bind(&r.step)
        .bind(r.duration_secs)
        .bind(&r.operator)
        .bind(&r.reason)
        .fetch_one(pool)
        .await
        .op("insert enforcement request")
    }

    pub(super) async fn pending_enforcement_requests(
        pool: &DbPool,
        limit: u32,
    ) -> Result<Vec<EnforcementRequest>, StoreError> {
        let sql = format!("{SELECT_REQUESTS} WHERE state = 'pending' ORDER BY id LIMIT $1");
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .op("read pending enforcement requests")?;
        rows.iter().map(request_from_row).collect()
    }

    pub(super) async fn enforcement_request(
        pool: &DbPool,
        id: i64,
    ) -> Result<Option<EnforcementRequest>, StoreError> {
        let sql = format!("{SELECT_REQUESTS} WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await
            .op_on("read enforcement request", format_args!("request {id}"))?;
        row.as_ref().map(request_from_row).transpose()
    }

    pub(super) async fn finish_enforcement_request(
        pool: &DbPool,
        id: i64,
        state: &str,
        result: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE enforcement_requests SET state = $2, result = $3, handled_at = $4 \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(state)
        .bind(result)
        .bind(Dialect::time(at))
        .execute(pool)
        .await
        .op_on("finish enforcement request", format_args!("request {id}"))?;
        Ok(())
    }

    fn request_from_row(row: &Row) -> Result<EnforcementRequest, StoreError> {
        let row = &Columns::new(row, "read enforcement request row");
        let id: i64 = row.try_get("id")?;
        let what = format!("enforcement request {id}");
        Ok(EnforcementRequest {
            id,
            request: NewRequest {
                requested_at: row.time("requested_at", &what)?,
                action: row.try_get("action")?,
                subject: enforcement_queries::subject_of(row)?,
                step: row.try_get("step")?,
                duration_secs: row.try_get("duration_secs")?,
                operator: row.try_get("operator")?,
                reason: row.try_get("reason")?,
            },
            state: row.try_get("state")?,
            handled_at: row.opt_time("handled_at", &what)?,
            result: row.try_get("result")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample_cdr;
    use crate::store::testing::on_each_backend;

    fn t0() -> DateTime<Utc> {
        sample_cdr("x").attempt.invite_at
    }

    fn number(n: &str) -> SubjectKey {
        SubjectKey {
            kind: "caller_id".into(),
            trunk: "demo".into(),
            number: n.into(),
        }
    }

    #[tokio::test]
    async fn requests_wait_until_handled_once() {
        on_each_backend(|store| async move {
            let t = t0();
            let r = NewRequest {
                requested_at: t,
                action: "impose".into(),
                subject: number("861012345678"),
                step: Some("suspend_number".into()),
                duration_secs: Some(600),
                operator: "bob".into(),
                reason: "carrier asked".into(),
            };
            let id = store.insert_enforcement_request(&r).await.unwrap();
            let pending = store.pending_enforcement_requests(10).await.unwrap();
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].request, r);
            assert_eq!(pending[0].state, "pending");
            store
                .finish_enforcement_request(id, "applied", "imposed 42", t)
                .await
                .unwrap();
            // Handled once: a second answer does not overwrite the first.
            store
                .finish_enforcement_request(id, "rejected", "late", t)
                .await
                .unwrap();
            assert!(store
                .pending_enforcement_requests(10)
                .await
                .unwrap()
                .is_empty());
            let done = store.enforcement_request(id).await.unwrap().unwrap();
            assert_eq!(done.state, "applied");
            assert_eq!(done.result.as_deref(), Some("imposed 42"));
            assert_eq!(done.handled_at, Some(t));
        })
        .await;
    }
}
