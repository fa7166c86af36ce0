//! The calls search (`/console/calls`): a form (GET, so a search is a link one can keep) over the
//! store's CDR search — a number whole or some of its digits (anywhere, at the start, at the
//! end), trunk, direction, period (in the trunk's time zone), outcome, refusal reason, final
//! SIP status, talk time, the anomaly that names them (the anomalies page links here), recording
//! kept, legal hold — newest or oldest first, 50 a page with
//! the API's cursor; and the same search as CSV (`/console/calls/export`, the API's streamed
//! export), and their evidence package (`/console/calls/evidence`, the API's, at most 50 calls).
//! A carrier limited to trunks searches its own only, as in the API; the recording and
//! legal-hold filters are offered only to roles the API lets read them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use chrono_tz::Tz;
use maud::{html, Markup};

use super::format::{length, local_time, parse_input_time};
use super::guard::{api_allows, Ctx};
use super::i18n::codes::{words, DIRECTIONS, DISPOSITIONS, END_REASONS, REFUSAL_REASONS};
use super::i18n::{Lang, T};
use super::layout::{error_page, frame, html_response, notice};
use crate::api::cdr_export::{csv_response, PAGE_ROWS};
use crate::api::cdrs::{decode_cursor, encode_cursor, restrict_to_own_trunks};
use crate::api::evidence::package_of_search;
use crate::api::{ApiError, ApiState, Principal};
use crate::model::{Cdr, Direction, Disposition, RefusalReason};
use crate::store::{CdrQuery, CdrSearchKey, NumberMatch, NumberPart};

mod form;
use form::form;

/// Rows a page shows.
const PAGE: u32 = 50;

/// The form as sent (kept to fill it in again) and what it asks for.
#[derive(Debug, Default)]
struct Search {
    /// (name, value) of every field given, in the form's order.
    raw: Vec<(String, String)>,
    query: CdrQuery,
    /// (field, message) for each value that could not be read.
    errors: Vec<(&'static str, T)>,
    /// The zone the period is read in and times are shown in.
    zone: Option<Tz>,
}

impl Search {
    fn value(&self, name: &str) -> &str {
        self.raw
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn error(&self, field: &str) -> Option<T> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| *t)
    }

    /// The query string of this search without paging (for the export and the first page).
    fn link(&self, drop: &[&str]) -> String {
        let kept: Vec<(&str, &str)> = self
            .raw
            .iter()
            .filter(|(k, v)| !v.is_empty() && !drop.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// The names the form sends, in order (anything else is ignored).
const FIELDS: &[&str] = &[
    "number",
    "match",
    "trunk",
    "direction",
    "from",
    "to",
    "disposition",
    "reason",
    "status",
    "talk_min",
    "talk_max",
    "anomaly",
    "recording",
    "hold",
    "order",
    "cursor",
];

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

/// The zone of a page: the chosen trunk's; else the one zone all its trunks share; else UTC.
fn zone_of(trunks: &[(String, Tz)], chosen: Option<&str>) -> Tz {
    if let Some(tz) = chosen.and_then(|c| trunks.iter().find(|(n, _)| n == c).map(|(_, tz)| *tz)) {
        return tz;
    }
    match trunks.first() {
        Some((_, tz)) if trunks.iter().all(|(_, t)| t == tz) => *tz,
        _ => chrono_tz::UTC,
    }
}

fn parse(pairs: Vec<(String, String)>, trunks: &[(String, Tz)]) -> Search {
    let mut s = Search {
        query: CdrQuery {
            limit: PAGE,
            newest_first: true,
            ..CdrQuery::default()
        },
        ..Search::default()
    };
    for name in FIELDS {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == name) {
            s.raw.push((name.to_string(), v.trim().to_string()));
        }
    }
    let zone = zone_of(trunks, Some(s.value("trunk")).filter(|t| !t.is_empty()));
    s.zone = Some(zone);
    let raw = s.raw.clone();
    for (name, value) in &raw {
        if value.is_empty() {
            continue;
        }
        let q = &mut s.query;
        let bad = match name.as_str() {
            "number" => {
                let digits: String = value
                    .chars()
                    .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
                    .collect();
                let at = match s
                    .raw
                    .iter()
                    .find(|(k, _)| k == "match")
                    .map(|(_, v)| v.as_str())
                {
                    Some("prefix") => Some(NumberMatch::Prefix),
                    Some("suffix") => Some(NumberMatch::Suffix),
                    Some("whole") => None,
                    _ => Some(NumberMatch::Anywhere),
                };
                match at {
                    Some(at) => match NumberPart::new(&digits, at) {
                        Some(part) => {
                            q.number_part = Some(part);
                            None
                        }
                        None => Some(T::BadNumber),
                    },
                    None => match crate::model::normalize_number(value) {
                        Some(n) => {
                            q.number = Some(n);
                            None
                        }
                        None => Some(T::BadNumber),
                    },
                }
            }
            "trunk" => {
                q.trunks = Some(vec![value.clone()]);
                None
            }
            "direction" => match value.parse::<Direction>() {
                Ok(d) => {
                    q.direction = Some(d.as_str().to_string());
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            "from" | "to" => match parse_input_time(value, zone) {
                Some(t) => {
                    if name == "from" {
                        q.from = Some(t);
                    } else {
                        q.to = Some(t);
                    }
                    None
                }
                None => Some(T::BadTime),
            },
            "disposition" => match value.parse::<Disposition>() {
                Ok(d) => {
                    q.disposition = Some(d.as_str().to_string());
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            "reason" => match value.parse::<RefusalReason>() {
                Ok(r) => {
                    q.reason = Some(r.as_str().to_string());
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            "status" => match value.parse::<u16>() {
                Ok(n) if (100..=699).contains(&n) => {
                    q.final_status = Some(n);
                    None
                }
                _ => Some(T::BadStatus),
            },
            "talk_min" | "talk_max" => match value.parse::<u32>() {
                Ok(secs) => {
                    let ms = i64::from(secs) * 1000;
                    if name == "talk_min" {
                        q.min_talk_ms = Some(ms);
                    } else {
                        q.max_talk_ms = Some(ms + 999);
                    }
                    None
                }
                Err(_) => Some(T::BadSeconds),
            },
            "anomaly" => {
                if CdrQuery::is_anomaly_id(value) {
                    q.anomaly = Some(value.clone());
                    None
                } else {
                    Some(T::BadAnomalyId)
                }
            }
            "recording" => match value.as_str() {
                "kept" => {
                    q.has_recording = Some(true);
                    None
                }
                "none" => {
                    q.has_recording = Some(false);
                    None
                }
                _ => Some(T::BadChoice),
            },
            "hold" => match value.as_str() {
                "on" => {
                    q.on_hold = Some(true);
                    None
                }
                "off" => {
                    q.on_hold = Some(false);
                    None
                }
                _ => Some(T::BadChoice),
            },
            "order" => {
                q.newest_first = value != "oldest";
                None
            }
            "cursor" => match decode_cursor(value) {
                Ok(k) => {
                    q.after = Some(k);
                    None
                }
                Err(_) => Some(T::BadChoice),
            },
            _ => None,
        };
        if let Some(t) = bad {
            s.errors.push((field_name(name), t));
        }
    }
    if let (Some(from), Some(to)) = (s.query.from, s.query.to) {
        if to <= from {
            s.errors.push(("to", T::BadPeriod));
        }
    }
    s
}

/// The static name of a form field (errors keep it).
fn field_name(name: &str) -> &'static str {
    FIELDS.iter().find(|f| **f == name).copied().unwrap_or("")
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

/// The reason shown for a call: why it was refused, else why it ended.
fn reason_words(c: &Cdr, lang: Lang) -> String {
    match c.outcome.refusal_reason {
        Some(r) => words(REFUSAL_REASONS, r.as_str(), lang),
        None => words(END_REASONS, c.outcome.end_reason.as_str(), lang),
    }
}

fn results(state: &ApiState, ctx: &Ctx, who: &Principal, rows: &[Cdr], zone: Tz) -> Markup {
    let t = |k: T| ctx.t(k);
    let lang = ctx.lang;
    let linked = sees_calls(state, who);
    html! {
        @if rows.is_empty() {
            p.empty role="status" { (t(T::NoCalls)) }
        } @else {
            div.table-wrap {
                table.calls {
                    caption { (t(T::ResultsCaption)) }
                    thead {
                        tr {
                            th scope="col" { (T::ColTimeIn.fill(lang, &[("zone", zone.name())])) }
                            th scope="col" { (t(T::DirectionLabel)) }
                            th scope="col" { (t(T::ColCaller)) }
                            th scope="col" { (t(T::ColCallee)) }
                            th scope="col" { (t(T::TrunkLabel)) }
                            th scope="col" { (t(T::ColTalk)) }
                            th scope="col" { (t(T::ColOutcome)) }
                            th scope="col" { (t(T::ColReason)) }
                        }
                    }
                    tbody {
                        @for c in rows {
                            tr {
                                td.time {
                                    @let when = local_time(c.attempt.invite_at, zone);
                                    @if linked {
                                        a href={ "/console/calls/" (urlencoded(&c.attempt.id)) }
                                            aria-label=(T::OpenCall.fill(lang, &[("id", &c.attempt.id)])) { (when) }
                                    } @else {
                                        (when)
                                    }
                                }
                                td { (words(DIRECTIONS, c.attempt.direction.as_str(), lang)) }
                                td.number { (c.attempt.caller.as_deref().unwrap_or("–")) }
                                td.number { (c.attempt.callee.as_deref().unwrap_or("–")) }
                                td { (c.attempt.trunk.as_deref().unwrap_or("–")) }
                                td.figure { (length(c.outcome.talk_ms)) }
                                td { (words(DISPOSITIONS, c.outcome.disposition.as_str(), lang)) }
                                td { (reason_words(c, lang)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A call id as one path segment.
pub(crate) fn urlencoded(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
