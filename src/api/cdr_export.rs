//! `GET /api/v1/cdrs/export`: the CDRs of a period as one CSV file (`monitor::cdr_csv`), for
//! carriers (their trunks) and compliance. A period may hold millions of rows: the body is
//! streamed, one page of the search at a time, so memory stays at one page whatever the size.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{Duration, Utc};
use utoipa::IntoParams;

use super::auth::Principal;
use super::cdrs::{parse_query, restrict_to_own_trunks};
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::monitor::cdr_csv;
use crate::monitor::kpi::day_start;
use crate::store::{CdrQuery, CdrSearchKey, Store};

/// Rows read (and written to the body) at a time.
pub(crate) const PAGE_ROWS: u32 = 1000;

/// The export's parameters: a period and the search's filters. Unknown parameters, `cursor`
/// and `limit` are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `cdrs::parse_query`.
pub struct CdrExportParams {
    /// INVITE time at or after: RFC 3339 or YYYY-MM-DD (UTC). Default: today 00:00 UTC.
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// INVITE time before: RFC 3339 or YYYY-MM-DD (UTC). Default: `from` plus one day.
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
    /// A trunk (a carrier token limited to trunks may only name its own; default: its own).
    #[param(schema_with = super::schemas::name)]
    trunk: Option<String>,
    /// A caller or callee number.
    #[param(schema_with = super::schemas::number)]
    number: Option<String>,
    /// `answered`, `busy`, `no_answer`, `cancelled`, `rejected`, `failed` or `refused`.
    #[param(schema_with = super::schemas::disposition)]
    disposition: Option<String>,
    /// A refusal or end reason code as stored.
    #[param(schema_with = super::schemas::reason_code)]
    reason: Option<String>,
    /// An anomaly's id: the calls it names.
    #[param(schema_with = super::schemas::anomaly_id)]
    anomaly: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/cdrs/export",
    tag = "carrier",
    description = "The CDRs of a period (default: today, UTC) as CSV (text/csv, streamed; \
                   ordered by invite_at, then id). Roles: carrier (its trunks only: a token limited to trunks that names \
                   another gets 403), compliance. Columns, in order: id, trunk, direction, \
                   caller, callee, invite_at, ringing_at, answer_at, end_at, talk_ms, \
                   final_status, final_reason, q850_cause, hangup_side, disposition, \
                   end_reason, refusal_reason, outside_call_id. Times are UTC RFC 3339 with \
                   milliseconds; an absent value is an empty cell. Should the database fail \
                   mid-file the connection is cut (the file ends without its last line break).",
    params(CdrExportParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role or trunk not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn export(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let mut q = export_query(&pairs)?;
    restrict_to_own_trunks(&mut q, &who)?;
    Ok(csv_response(state.store().clone(), q))
}

/// The CSV file of a search (`q.limit` must be `PAGE_ROWS`), streamed as an attachment.
pub(crate) fn csv_response(store: Store, q: CdrQuery) -> Response {
    let body = Body::from_stream(csv_pages(store, q));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cdrs.csv\"",
            ),
        ],
        body,
    )
        .into_response()
}

/// The search's filters over a period (default: today, UTC), without the caller's paging.
fn export_query(pairs: &[(String, String)]) -> Result<CdrQuery, ApiError> {
    for (key, _) in pairs {
        if key == "cursor" || key == "limit" {
            return Err(ApiError::bad(key, "not a parameter of the export"));
        }
    }
    let mut q = parse_query(pairs)?;
    let from = q.from.unwrap_or_else(|| day_start(Utc::now()));
    let to = q.to.unwrap_or(from + Duration::days(1));
    (q.from, q.to) = (Some(from), Some(to));
    q.limit = PAGE_ROWS;
    Ok(q)
}

/// What the stream carries from one page to the next.
struct Pages {
    store: Store,
    q: CdrQuery,
    header: bool,
    done: bool,
}

type PageError = Box<dyn std::error::Error + Send + Sync>;

/// The CSV file as a stream of chunks, one page each (the first with the header). `q` pages
/// oldest first (its `newest_first` is ignored) `q.limit` rows at a time. The console's export
/// streams its search through this too.
pub(crate) fn csv_pages(
    store: Store,
    q: CdrQuery,
) -> impl futures_util::TryStream<Ok = Bytes, Error = PageError> + Send + 'static {
    let start = Pages {
        store,
        q: CdrQuery {
            newest_first: false,
            ..q
        },
        header: true,
        done: false,
    };
    futures_util::stream::try_unfold(start, |mut p| async move {
        if p.done {
            return Ok(None);
        }
        let rows = p.store.search_cdrs(&p.q).await.map_err(|e| {
            tracing::error!(error = %e, "cdr export: database failed mid-file; connection cut");
            PageError::from(e)
        })?;
        p.done = rows.len() < PAGE_ROWS as usize;
        if let Some(last) = rows.last() {
            p.q.after = Some(CdrSearchKey {
                invite_at: last.attempt.invite_at,
                id: last.attempt.id.clone(),
            });
        }
        let chunk = cdr_csv::to_csv(&rows, std::mem::take(&mut p.header))?;
        Ok(Some((Bytes::from(chunk), p)))
    })
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;

    use super::*;
    use crate::api::params::test_support::*;
    use crate::model::sample_cdr;

    #[test]
    fn the_period_defaults_to_a_day_and_paging_is_ours() {
        let period = [("from", "2026-11-27"), ("to", "2026-11-29")];
        let q = export_query(&pairs(&period)).unwrap();
        assert_eq!(q.to.unwrap() - q.from.unwrap(), Duration::days(2));
        let q = export_query(&pairs(&period[..1])).unwrap();
        assert_eq!(q.to.unwrap() - q.from.unwrap(), Duration::days(1));
        let q = export_query(&[]).unwrap();
        let from = q.from.unwrap();
        assert_eq!(from, day_start(from), "a UTC midnight");
        assert_eq!(q.to.unwrap() - q.from.unwrap(), Duration::days(1));
        // The default start is after this end: an empty period, not an error.
        let q = export_query(&pairs(&[("to", "2000-01-01")])).unwrap();
        assert!(q.to.unwrap() < q.from.unwrap());
        let mut with = period.to_vec();
        with.push(("limit", "5"));
        assert_eq!(field(export_query(&pairs(&with))), "limit");
        with.pop();
        with.push(("cursor", "00"));
        assert_eq!(field(export_query(&pairs(&with))), "cursor");
    }

    #[tokio::test]
    async fn pages_make_one_file_with_one_header() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let n = PAGE_ROWS as usize * 2 + 3;
        let cdrs: Vec<_> = (0..n)
            .map(|i| {
                let mut c = sample_cdr(&format!("c{i:05}"));
                c.attempt.invite_at += chrono::Duration::milliseconds(i as i64);
                c
            })
            .collect();
        store.insert_cdrs(&cdrs).await.unwrap();
        let q = CdrQuery {
            limit: PAGE_ROWS,
            ..CdrQuery::default()
        };
        let chunks: Vec<Bytes> = csv_pages(store, q).try_collect().await.unwrap();
        assert_eq!(chunks.len(), 3);
        let text: String = chunks
            .iter()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let ids: Vec<String> = r.records().map(|r| r.unwrap()[0].to_string()).collect();
        assert_eq!(ids.len(), n);
        let expected: Vec<String> = (0..n).map(|i| format!("c{i:05}")).collect();
        assert_eq!(ids, expected, "each row once, in order");
        assert_eq!(text.matches("invite_at").count(), 1, "one header");
    }
}
