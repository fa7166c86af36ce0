//! The calls search (`/console/calls`): a form (GET, so a search is a link one can keep) over the
//! store's CDR search — a number whole or some of its digits (anywhere, at the start, at the
//! end), trunk, direction, period (in the trunk's time zone), outcome, refusal reason, final
//! SIP status, talk time, the anomaly that names them (the anomalies page links here), recording
//! kept, legal hold — newest or oldest first, 50 a page with
//! the API's cursor; and the same search as CSV (`/console/calls/export`, the API's streamed
//! export), and their evidence package (`/console/calls/evidence`, the API's, at most 50 calls).
//! A carrier limited to trunks searches its own only, as in the API; the recording and
//! legal-hold filters are offered only to roles the API lets read them.
//!
//! This file holds the handlers; `calls/query.rs` reads the form into the store's query,
//! `calls/form.rs` draws the form, `calls/results.rs` the table of calls found.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use chrono_tz::Tz;
use maud::html;

use super::guard::{api_allows, Ctx};
use super::i18n::T;
use super::layout::{error_page, frame, html_response, notice};
use crate::api::cdr_export::{csv_response, PAGE_ROWS};
use crate::api::cdrs::{encode_cursor, restrict_to_own_trunks};
use crate::api::evidence::package_of_search;
use crate::api::{ApiError, ApiState, Principal};
use crate::store::CdrSearchKey;

mod form;
mod query;
mod results;
use form::form;
use query::{parse, Search};
use results::results;
pub(crate) use results::urlencoded;

/// Rows a page shows.
const PAGE: u32 = 50;

/// Trunk names and their zones, as this person may see them.
async fn trunk_zones(state: &ApiState, who: &Principal) -> Vec<(String, Tz)> {
    state
        .deps()
        .trunks
        .trunks()
        .await
        .into_iter()
        .filter(|t| who.sees_trunk(&t.name))
        .map(|t| (t.name, t.timezone))
        .collect()
}

/// Whether this person may see recordings and legal holds at all.
fn sees_recordings(state: &ApiState, who: &Principal) -> bool {
    api_allows(state, &Method::GET, super::RECORDING, who.role)
}

fn sees_calls(state: &ApiState, who: &Principal) -> bool {
    api_allows(state, &Method::GET, super::CALL_RECORD, who.role)
}

pub(crate) async fn search(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let trunks = trunk_zones(&state, &who).await;
    let mut s = parse(pairs, &trunks);
    if !sees_recordings(&state, &who) {
        s.query.has_recording = None;
        s.query.on_hold = None;
    }
    let mut q = s.query.clone();
    if let Err(e) = restrict_to_own_trunks(&mut q, &who) {
        return refused(&ctx, &e);
    }
    let (rows, next) = if s.errors.is_empty() {
        q.limit = PAGE + 1;
        match state.store().search_cdrs(&q).await {
            Ok(mut rows) => {
                let next = (rows.len() > PAGE as usize).then(|| {
                    rows.truncate(PAGE as usize);
                    rows.last().map(|last| {
                        encode_cursor(&CdrSearchKey {
                            invite_at: last.attempt.invite_at,
                            id: last.attempt.id.clone(),
                        })
                    })
                });
                (rows, next.flatten())
            }
            Err(e) => return refused(&ctx, &ApiError::Store(e)),
        }
    } else {
        (Vec::new(), None)
    };
    let zone = s.zone.unwrap_or(chrono_tz::UTC);
    let body = html! {
        (form(&state, &ctx, &who, &s, &trunks, zone))
        @if !s.errors.is_empty() {
            (notice(ctx.t(T::FixTheForm), true))
        } @else {
            (results(&state, &ctx, &who, &rows, zone))
            nav.pages aria-label=(ctx.t(T::ResultsCaption)) {
                @if s.query.after.is_some() {
                    a href={ "/console/calls?" (s.link(&["cursor"])) } { (ctx.t(T::FirstPage)) }
                }
                @if let Some(next) = &next {
                    a rel="next" href={ "/console/calls?" (s.link(&["cursor"])) "&cursor=" (next) } {
                        (ctx.t(T::NextPage)) " →"
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        frame(Some(&state), &ctx, ctx.t(T::CallsTitle), body),
    )
}

/// A refusal of the API (a carrier naming another trunk, the store down) as a page.
fn refused(ctx: &Ctx, e: &ApiError) -> Response {
    match e {
        ApiError::Forbidden(_) => error_page(
            ctx.lang,
            StatusCode::FORBIDDEN,
            T::ForbiddenTitle,
            T::ForbiddenText,
        ),
        other => {
            tracing::error!(error = %other, "console: calls search failed");
            error_page(
                ctx.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            )
        }
    }
}

/// `/console/calls/export?…`: the search's calls, oldest first, as the API's CSV.
pub(crate) async fn export(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let trunks = trunk_zones(&state, &who).await;
    let s = parse(pairs, &trunks);
    if !s.errors.is_empty() {
        return error_page(
            ctx.lang,
            StatusCode::BAD_REQUEST,
            T::BadRequestTitle,
            T::FixTheForm,
        );
    }
    let mut q = s.query;
    if !sees_recordings(&state, &who) {
        q.has_recording = None;
        q.on_hold = None;
    }
    if let Err(e) = restrict_to_own_trunks(&mut q, &who) {
        return refused(&ctx, &e);
    }
    q.after = None;
    q.newest_first = false;
    q.limit = PAGE_ROWS;
    csv_response(state.store().clone(), q)
}

/// `/console/calls/evidence?…`: the evidence package of the search's calls (the API's, at most
/// `evidence::MAX_CALLS`), oldest first; beyond that a page saying to narrow the search.
pub(crate) async fn evidence(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let trunks = trunk_zones(&state, &who).await;
    let s = parse(pairs, &trunks);
    if !s.errors.is_empty() {
        return error_page(
            ctx.lang,
            StatusCode::BAD_REQUEST,
            T::BadRequestTitle,
            T::FixTheForm,
        );
    }
    let mut q = s.query.clone();
    if let Err(e) = restrict_to_own_trunks(&mut q, &who) {
        return refused(&ctx, &e);
    }
    let text = s.link(&["cursor", "order"]);
    match package_of_search(&state, &who, q, text).await {
        Ok(response) => response,
        Err(ApiError::BadRequest { .. }) => error_page(
            ctx.lang,
            StatusCode::BAD_REQUEST,
            T::BadRequestTitle,
            T::EvidenceTooMany,
        ),
        Err(ApiError::NotFound(_)) => error_page(
            ctx.lang,
            StatusCode::NOT_FOUND,
            T::NotFoundTitle,
            T::EvidenceNoCall,
        ),
        Err(e) => refused(&ctx, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{NumberMatch, NumberPart};
    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_a_search_and_bad_values_name_their_field() {
        let trunks = vec![
            ("demo".to_string(), chrono_tz::Asia::Shanghai),
            ("other".to_string(), chrono_tz::UTC),
        ];
        let s = parse(
            pairs(&[
                ("number", "+86 5678"),
                ("match", "suffix"),
                ("trunk", "demo"),
                ("direction", "outbound"),
                ("from", "2026-11-27T09:00"),
                ("disposition", "answered"),
                ("recording", "kept"),
                ("status", "200"),
                ("talk_min", "2"),
                ("colour", "red"),
            ]),
            &trunks,
        );
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            s.query.number_part,
            NumberPart::new("865678", NumberMatch::Suffix)
        );
        assert_eq!(s.query.trunks, Some(vec!["demo".to_string()]));
        assert_eq!(s.query.direction.as_deref(), Some("outbound"));
        assert_eq!(
            s.query.from.unwrap().to_rfc3339(),
            "2026-11-27T01:00:00+00:00",
            "read in the trunk's zone"
        );
        assert_eq!(s.query.has_recording, Some(true));
        assert_eq!(s.query.final_status, Some(200));
        assert_eq!(s.query.min_talk_ms, Some(2000));
        assert!(s.query.newest_first);
        assert_eq!(s.zone, Some(chrono_tz::Asia::Shanghai));
        assert!(!s.link(&[]).contains("colour"));

        let whole = parse(pairs(&[("number", "+86 138"), ("match", "whole")]), &trunks);
        assert_eq!(whole.query.number.as_deref(), Some("86138"));
        assert_eq!(whole.zone, Some(chrono_tz::UTC), "trunks in two zones");

        for (k, v) in [
            ("number", "abc"),
            ("direction", "sideways"),
            ("from", "yesterday"),
            ("disposition", "maybe"),
            ("reason", "normal_clearing"),
            ("status", "99"),
            ("talk_min", "-1"),
            ("recording", "maybe"),
            ("anomaly", "x1"),
            ("cursor", "zz"),
        ] {
            let s = parse(pairs(&[(k, v)]), &trunks);
            assert_eq!(s.errors.len(), 1, "{k}={v}");
            assert_eq!(s.errors[0].0, k, "{k}={v}");
        }
        let s = parse(
            pairs(&[("from", "2026-11-28T00:00"), ("to", "2026-11-27T00:00")]),
            &trunks,
        );
        assert_eq!(s.errors, vec![("to", T::BadPeriod)]);
        let s = parse(pairs(&[("anomaly", "1795000000123000")]), &trunks);
        assert_eq!(s.query.anomaly.as_deref(), Some("1795000000123000"));
        let s = parse(pairs(&[("order", "oldest")]), &trunks);
        assert!(!s.query.newest_first);
        assert_eq!(urlencoded("a b/c"), "a%20b%2Fc");
    }
}
