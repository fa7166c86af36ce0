//! One call's page (`/console/calls/{id}`), from the API's record of it
//! (`GET /api/v1/calls/{id}`): what happened in plain words, the details, both legs' quality,
//! the DTMF digits, the recording (a player fed by the API's Range-capable download, its digest
//! and "verify now"), the legal hold with its history and forms, and the anomalies and
//! enforcement that cite the call. Times are in the trunk's time zone, named.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::calls::urlencoded;
use super::format::{figure, length, time_in};
use super::guard::{api_allows, Ctx};
use super::i18n::codes::{
    words, DIRECTIONS, DISPOSITIONS, END_REASONS, ENFORCEMENT_ACTIONS, HANGUP_SIDES, LEGS,
    REFUSAL_REASONS, STEPS,
};
use super::i18n::{Lang, T};
use super::layout::{csrf_field, error_page, frame, html_response, notice};
use crate::api::calls::{call_record, CallRecord, RecordingView};
use crate::api::{ApiError, ApiState, Principal};
use crate::store::{AuditFilter, AuditRow};

mod ladder;
mod recording;
use ladder::ladder;
use recording::recording;

/// The audit rows a call's page shows (the oldest first; the API's audit log has them all).
const TRAIL_ROWS: u32 = 200;

/// What a page shows beyond the record: a result of an action on it.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// The verify answer (`RecordingCheck` as JSON).
    pub verify: Option<Value>,
    /// A notice under the heading (text, alert).
    pub message: Option<(T, bool)>,
    /// An error next to the hold form's reason.
    pub hold_error: Option<T>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    /// `held` or `released` after a hold form.
    done: Option<String>,
}

fn extras_of(q: Result<Query<PageQuery>, QueryRejection>) -> Extras {
    let done = q.ok().and_then(|Query(q)| q.done);
    Extras {
        message: match done.as_deref() {
            Some("held") => Some((T::HoldPlaced, false)),
            Some("released") => Some((T::HoldReleased, false)),
            _ => None,
        },
        ..Extras::default()
    }
}

pub(crate) async fn page(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let extras = extras_of(q);
    render(&state, &ctx, &who, &id, extras, StatusCode::OK).await
}

/// The call's page with `extras`, answered with `status`.
pub(crate) async fn render(
    state: &ApiState,
    ctx: &Ctx,
    who: &Principal,
    id: &str,
    extras: Extras,
    status: StatusCode,
) -> Response {
    let record = match call_record(State(state.clone()), Path(id.to_string())).await {
        Ok(axum::Json(r)) => r,
        Err(e) => return api_refusal(ctx, &e),
    };
    let zone = match record.cdr.attempt.trunk.as_deref() {
        Some(name) => state
            .deps()
            .trunks
            .trunks()
            .await
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.timezone)
            .unwrap_or(chrono_tz::UTC),
        None => chrono_tz::UTC,
    };
    let sees_recording = api_allows(state, &Method::GET, super::RECORDING, who.role);
    // The call's audit trail (who opened it, listened, downloaded), for roles that may read
    // the audit log.
    let trail = if api_allows(state, &Method::GET, super::AUDIT, who.role) {
        let filter = AuditFilter {
            call_id: Some(record.cdr.attempt.id.clone()),
            limit: TRAIL_ROWS,
            ..AuditFilter::default()
        };
        match state.store().audit_entries(&filter).await {
            Ok(rows) => Some(rows),
            Err(e) => return api_refusal(ctx, &ApiError::Store(e)),
        }
    } else {
        None
    };
    let may_hold = api_allows(state, &Method::PUT, super::HOLD, who.role);
    // The SIP ladder, as the API gives it to this role; none stored is said on the page.
    let trace = match crate::api::sip_trace::visible_trace(state, who, id).await {
        Ok(trace) => Some(trace),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return api_refusal(ctx, &e),
    };
    let title = format!("{} {}", ctx.t(T::CallTitle), record.cdr.attempt.id);
    let body = html! {
        p { a href="/console/calls" { "← " (ctx.t(T::BackToSearch)) } }
        @if let Some((text, alert)) = extras.message {
            (notice(ctx.t(text), alert))
        }
        (summary(ctx, &record, zone))
        @if api_allows(state, &Method::GET, super::EVIDENCE, who.role) {
            p.evidence {
                a.button #evidence href={ "/console/calls/" (urlencoded(&record.cdr.attempt.id)) "/evidence" } download {
                    (ctx.t(T::EvidencePackage))
                }
            }
        }
        @if sees_recording {
            (recording(ctx, &record, zone, extras.verify.as_ref()))
        }
        @if may_hold {
            (hold(ctx, &record, zone, extras.hold_error))
        }
        (legs(ctx, &record))
        (ladder(ctx, trace.as_ref()))
        (dtmf(ctx, &record, zone))
        (details(ctx, &record, zone))
        (anomalies(ctx, &record, zone))
        @if let Some(rows) = &trail {
            (audit_trail(ctx, rows, zone))
        }
    };
    html_response(status, frame(Some(state), ctx, &title, body))
}

/// An API refusal as a page.
pub(crate) fn api_refusal(ctx: &Ctx, e: &ApiError) -> Response {
    let lang = ctx.lang;
    match e {
        ApiError::NotFound(_) => error_page(
            lang,
            StatusCode::NOT_FOUND,
            T::NotFoundTitle,
            T::NotFoundText,
        ),
        ApiError::Forbidden(_) | ApiError::Unauthorized(_) => error_page(
            lang,
            StatusCode::FORBIDDEN,
            T::ForbiddenTitle,
            T::ForbiddenText,
        ),
        other => {
            tracing::error!(error = %other, "console: a call's page could not be made");
            error_page(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                T::UnavailableTitle,
                T::UnavailableText,
            )
        }
    }
}

fn or_dash(s: Option<&str>) -> &str {
    s.unwrap_or("–")
}

fn summary(ctx: &Ctx, r: &CallRecord, zone: Tz) -> Markup {
    let lang = ctx.lang;
    let a = &r.cdr.attempt;
    let o = &r.cdr.outcome;
    let unknown = ctx.t(T::Unknown);
    let status = format!("{} {}", o.final_status, o.final_reason);
    let call = T::SaysCall.fill(
        lang,
        &[
            (
                "direction",
                &capitalized(&words(DIRECTIONS, a.direction.as_str(), lang)),
            ),
            ("caller", a.caller.as_deref().unwrap_or(unknown)),
            ("callee", a.callee.as_deref().unwrap_or(unknown)),
            ("trunk", a.trunk.as_deref().unwrap_or(unknown)),
            ("time", &time_in(a.invite_at, zone)),
        ],
    );
    let outcome = if let Some(reason) = o.refusal_reason {
        T::SaysRefused.fill(
            lang,
            &[
                ("reason", &words(REFUSAL_REASONS, reason.as_str(), lang)),
                ("status", &status),
            ],
        )
    } else if let Some(answer) = a.answer_at {
        T::SaysAnswered.fill(
            lang,
            &[
                ("ring", &length((answer - a.invite_at).num_milliseconds())),
                ("talk", &length(o.talk_ms)),
            ],
        )
    } else {
        T::SaysNotAnswered.fill(
            lang,
            &[
                (
                    "outcome",
                    &words(DISPOSITIONS, o.disposition.as_str(), lang),
                ),
                ("status", &status),
            ],
        )
    };
    let ended = (a.answer_at.is_some() && o.refusal_reason.is_none()).then(|| {
        let reason = words(END_REASONS, o.end_reason.as_str(), lang);
        match o.hangup_side {
            Some(side) => T::SaysEnded.fill(
                lang,
                &[
                    ("reason", &reason),
                    ("side", &words(HANGUP_SIDES, side.as_str(), lang)),
                ],
            ),
            None => T::SaysEndedNoSide.fill(lang, &[("reason", &reason)]),
        }
    });
    html! {
        section aria-labelledby="what" {
            h2 #what { (ctx.t(T::WhatHappened)) }
            p.summary { (call) }
            p.summary { (outcome) }
            @if let Some(ended) = ended {
                p.summary { (ended) }
            }
        }
    }
}

/// The first letter in upper case (English sentences start with the direction).
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn details(ctx: &Ctx, r: &CallRecord, zone: Tz) -> Markup {
    let a = &r.cdr.attempt;
    let o = &r.cdr.outcome;
    let at = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| time_in(t, zone));
    let load = match (a.trunk_active, a.caller_active) {
        (None, None) => None,
        (t, c) => Some(format!(
            "{} / {}",
            t.map(|n| n.to_string()).unwrap_or_else(|| "–".into()),
            c.map(|n| n.to_string()).unwrap_or_else(|| "–".into())
        )),
    };
    let rows: Vec<(T, Option<String>)> = vec![
        (T::CallIdLabel, Some(a.id.clone())),
        (T::InsideCallId, a.inside_call_id.clone()),
        (T::OutsideCallId, a.outside_call_id.clone()),
        (T::SourceLabel, Some(a.source.clone())),
        (T::PresentedFrom, a.presented_from.clone()),
        (T::PaiLabel, a.pai.clone()),
        (T::InviteAt, at(Some(a.invite_at))),
        (T::RingingAt, at(a.ringing_at)),
        (T::AnswerAt, at(a.answer_at)),
        (T::EndAt, at(Some(o.end_at))),
        (
            T::FinalStatus,
            Some(format!("{} {}", o.final_status, o.final_reason)),
        ),
        (T::Q850Label, o.q850_cause.map(|c| c.to_string())),
        (T::LoadLabel, load),
    ];
    html! {
        section aria-labelledby="details" {
            h2 #details { (ctx.t(T::Details)) }
            dl.details {
                @for (label, value) in &rows {
                    dt { (ctx.t(*label)) }
                    dd { (or_dash(value.as_deref())) }
                }
            }
        }
    }
}

fn yes_no(ctx: &Ctx, b: bool) -> &'static str {
    ctx.t(if b { T::Yes } else { T::No })
}

fn legs(ctx: &Ctx, r: &CallRecord) -> Markup {
    let lang = ctx.lang;
    html! {
        section aria-labelledby="legs" {
            h2 #legs { (ctx.t(T::LegsTitle)) }
            @if r.media.is_empty() {
                p { (ctx.t(T::NoMedia)) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::LegLabel)) }
                                th scope="col" { (ctx.t(T::MosLabel)) }
                                th scope="col" { (ctx.t(T::PacketsIn)) }
                                th scope="col" { (ctx.t(T::PacketsOut)) }
                                th scope="col" { (ctx.t(T::LostLabel)) }
                                th scope="col" { (ctx.t(T::JitterLabel)) }
                                th scope="col" { (ctx.t(T::MaxJitterLabel)) }
                                th scope="col" { (ctx.t(T::GapLabel)) }
                                th scope="col" { (ctx.t(T::OneWayLabel)) }
                            }
                        }
                        tbody {
                            @for l in &r.media {
                                tr data-leg=(l.leg) {
                                    th scope="row" { (words(LEGS, &l.leg, lang)) }
                                    td.figure { (figure(l.mos, 2)) }
                                    td.figure { (l.packets_in) }
                                    td.figure { (l.packets_out) }
                                    td.figure { (l.lost) }
                                    td.figure { (figure(l.jitter_ms, 1)) }
                                    td.figure { (figure(l.max_jitter_ms, 1)) }
                                    td.figure { (l.longest_gap_ms) }
                                    td { (yes_no(ctx, l.one_way)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn dtmf(ctx: &Ctx, r: &CallRecord, zone: Tz) -> Markup {
    let lang = ctx.lang;
    html! {
        section aria-labelledby="dtmf" {
            h2 #dtmf { (ctx.t(T::DtmfTitle)) }
            @if r.dtmf.is_empty() {
                p { (ctx.t(T::NoDtmf)) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::ColTime)) }
                                th scope="col" { (ctx.t(T::LegLabel)) }
                                th scope="col" { (ctx.t(T::DigitLabel)) }
                                th scope="col" { (ctx.t(T::DurationMsLabel)) }
                            }
                        }
                        tbody {
                            @for d in &r.dtmf {
                                tr {
                                    td { (time_in(d.at, zone)) }
                                    td { (words(LEGS, &d.leg, lang)) }
                                    td.digit { (d.digit) }
                                    td.figure { (d.duration_ms) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn hold(ctx: &Ctx, r: &CallRecord, zone: Tz, error: Option<T>) -> Markup {
    let id = urlencoded(&r.cdr.attempt.id);
    let active = r.holds.iter().find(|h| h.active);
    html! {
        section aria-labelledby="hold" {
            h2 #hold { (ctx.t(T::HoldTitle)) }
            @match active {
                Some(h) => {
                    p.notice #hold-state data-held="true" {
                        (T::OnHold.fill(ctx.lang, &[("time", &time_in(h.placed_at, zone)), ("who", &h.placed_by), ("reason", &h.reason)]))
                    }
                    form.stacked method="post" action={ "/console/calls/" (id) "/hold/release" } {
                        (csrf_field(ctx))
                        label for="release-reason" { (ctx.t(T::ReleaseReason)) }
                        input #release-reason type="text" name="reason" maxlength="2000";
                        button type="submit" { (ctx.t(T::ReleaseHold)) }
                    }
                }
                None => {
                    p #hold-state data-held="false" { (ctx.t(T::NotOnHold)) }
                    form.stacked #hold-form method="post" action={ "/console/calls/" (id) "/hold" } {
                        (csrf_field(ctx))
                        label for="hold-reason" { (ctx.t(T::HoldReason)) }
                        input #hold-reason type="text" name="reason" maxlength="2000" required
                            aria-describedby={ "hold-help" @if error.is_some() { " hold-error" } }
                            aria-invalid=[error.map(|_| "true")];
                        p #hold-help .help { (ctx.t(T::HoldReasonHelp)) }
                        @if let Some(e) = error {
                            p #hold-error .field-error { (ctx.t(e)) }
                        }
                        button type="submit" { (ctx.t(T::PlaceHold)) }
                    }
                }
            }
            @if !r.holds.is_empty() {
                div.table-wrap {
                    table {
                        caption { (ctx.t(T::HoldHistory)) }
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::PlacedAt)) }
                                th scope="col" { (ctx.t(T::PlacedBy)) }
                                th scope="col" { (ctx.t(T::HoldReason)) }
                                th scope="col" { (ctx.t(T::ReleasedAt)) }
                                th scope="col" { (ctx.t(T::ReleasedBy)) }
                            }
                        }
                        tbody {
                            @for h in &r.holds {
                                tr {
                                    td { (time_in(h.placed_at, zone)) }
                                    td { (h.placed_by) }
                                    td { (h.reason) }
                                    td { (h.released_at.map(|t| time_in(t, zone)).unwrap_or_else(|| "–".into())) }
                                    td {
                                        (or_dash(h.released_by.as_deref()))
                                        @if let Some(why) = &h.release_reason { ": " (why) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn anomalies(ctx: &Ctx, r: &CallRecord, zone: Tz) -> Markup {
    let lang: Lang = ctx.lang;
    html! {
        section aria-labelledby="anomalies" {
            h2 #anomalies { (ctx.t(T::AnomaliesTitle)) }
            @if r.anomalies.is_empty() {
                p { (ctx.t(T::NoneYet)) }
            } @else {
                div.table-wrap {
                    table {
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::DetectedAt)) }
                                th scope="col" { (ctx.t(T::RuleLabel)) }
                                th scope="col" { (ctx.t(T::SubjectLabel)) }
                                th scope="col" { (ctx.t(T::ObservedLabel)) }
                                th scope="col" { (ctx.t(T::ThresholdLabel)) }
                                th scope="col" { (ctx.t(T::StepLabel)) }
                            }
                        }
                        tbody {
                            @for a in &r.anomalies {
                                tr {
                                    td { (time_in(a.detected_at, zone)) }
                                    td { code { (a.rule) } }
                                    td { (a.trunk) " " (a.number) }
                                    td.figure { (figure(Some(a.observed), 3)) }
                                    td.figure { (figure(Some(a.threshold), 3)) }
                                    td { (words(STEPS, &a.step, lang)) }
                                }
                            }
                        }
                    }
                }
                @if !r.enforcement.is_empty() {
                    h3 { (ctx.t(T::EnforcementTitle)) }
                    div.table-wrap {
                        table {
                            thead {
                                tr {
                                    th scope="col" { (ctx.t(T::ColTime)) }
                                    th scope="col" { (ctx.t(T::ActionLabel)) }
                                    th scope="col" { (ctx.t(T::StepLabel)) }
                                    th scope="col" { (ctx.t(T::SubjectLabel)) }
                                    th scope="col" { (ctx.t(T::UntilLabel)) }
                                    th scope="col" { (ctx.t(T::OperatorLabel)) }
                                }
                            }
                            tbody {
                                @for e in &r.enforcement {
                                    tr {
                                        td { (time_in(e.at, zone)) }
                                        td { (words(ENFORCEMENT_ACTIONS, &e.action, lang)) }
                                        td { (words(STEPS, &e.step, lang)) }
                                        td { (e.trunk) " " (e.number) }
                                        td { (e.until.map(|t| time_in(t, zone)).unwrap_or_else(|| "–".into())) }
                                        td { (or_dash(e.operator.as_deref())) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn audit_trail(ctx: &Ctx, rows: &[AuditRow], zone: Tz) -> Markup {
    html! {
        section aria-labelledby="trail" {
            h2 #trail { (ctx.t(T::TrailTitle)) }
            p.help { (ctx.t(T::TrailHelp)) }
            @if rows.is_empty() {
                p { (ctx.t(T::NoneYet)) }
            } @else {
                div.table-wrap {
                    table.trail {
                        thead {
                            tr {
                                th scope="col" { (ctx.t(T::ColTime)) }
                                th scope="col" { (ctx.t(T::WhoLabel)) }
                                th scope="col" { (ctx.t(T::ActionLabel)) }
                                th scope="col" { (ctx.t(T::HttpStatus)) }
                            }
                        }
                        tbody {
                            @for r in rows {
                                tr {
                                    td.time { (time_in(r.entry.at, zone)) }
                                    td { (r.entry.actor) @if let Some(role) = &r.entry.role { " (" (role) ")" } }
                                    td { code { (r.entry.action) } }
                                    td.figure { (r.entry.status) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
