//! Live calls (`/console/live`, admin): the API's live list (`GET /api/v1/calls/live`) as a
//! table, each leg with its RTP figures so far, and a hang-up button per call (the API's
//! hang-up: BYE on both legs, or CANCEL while ringing; end reason `operator_hangup`). The table
//! refreshes itself every few seconds without a reload: console.js asks `/console/live/rows`
//! for the rows alone (marked `X-Console-Fragment`) and puts them in place.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;

use super::calls::urlencoded;
use super::format::{figure, length, time_in};
use super::guard::Ctx;
use super::i18n::codes::{words, DIRECTIONS};
use super::i18n::T;
use super::layout::{csrf_field, frame, html_response, notice};
use super::sign_in::see_other;
use crate::api::calls::{hangup as api_hangup, live_calls, LiveCallView, LiveMediaView};
use crate::api::{ApiError, ApiState};

/// How often the page asks for fresh rows (ms).
const REFRESH_MS: u32 = 3000;

/// The header that marks a fragment (a page that is not one means the session ended).
pub const FRAGMENT_HEADER: &str = "x-console-fragment";

async fn zones(state: &ApiState) -> Vec<(String, Tz)> {
    state
        .deps()
        .trunks
        .trunks()
        .await
        .into_iter()
        .map(|t| (t.name, t.timezone))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LiveQuery {
    /// `hung` or `gone` after the hang-up form.
    done: Option<String>,
}

pub(crate) async fn page(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    q: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let done = q.ok().and_then(|Query(q)| q.done);
    let rows = rows(&state, &ctx).await;
    let body = html! {
        @match done.as_deref() {
            Some("hung") => (notice(ctx.t(T::HungUp), false)),
            Some("gone") => (notice(ctx.t(T::AlreadyEnded), false)),
            _ => {}
        }
        p.help { (ctx.t(T::LiveHelp)) }
        div.table-wrap {
            table.live {
                caption { (ctx.t(T::LiveTitle)) }
                thead {
                    tr {
                        th scope="col" { (ctx.t(T::StartedLabel)) }
                        th scope="col" { (ctx.t(T::TrunkLabel)) }
                        th scope="col" { (ctx.t(T::DirectionLabel)) }
                        th scope="col" { (ctx.t(T::ColCaller)) }
                        th scope="col" { (ctx.t(T::ColCallee)) }
                        th scope="col" { (ctx.t(T::ColTalk)) }
                        th scope="col" { (ctx.t(T::AgentLeg)) }
                        th scope="col" { (ctx.t(T::CustomerLeg)) }
                        th scope="col" { span.sr { (ctx.t(T::HangUp)) } }
                    }
                }
                tbody #live-rows data-refresh="/console/live/rows" data-every=(REFRESH_MS) aria-live="polite" {
                    (rows)
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        frame(Some(&state), &ctx, ctx.t(T::LiveTitle), body),
    )
}

/// `/console/live/rows`: the table's rows alone.
pub(crate) async fn rows_fragment(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let mut r = html_response(StatusCode::OK, rows(&state, &ctx).await);
    r.headers_mut()
        .insert(FRAGMENT_HEADER, HeaderValue::from_static("1"));
    r
}

async fn rows(state: &ApiState, ctx: &Ctx) -> Markup {
    let axum::Json(live) = live_calls(State(state.clone())).await;
    let zones = zones(state).await;
    let zone_of = |trunk: &str| {
        zones
            .iter()
            .find(|(n, _)| n == trunk)
            .map(|(_, z)| *z)
            .unwrap_or(chrono_tz::UTC)
    };
    html! {
        @if live.items.is_empty() {
            tr { td colspan="9" { (ctx.t(T::NoLiveCalls)) } }
        }
        @for c in &live.items {
            (row(ctx, c, zone_of(&c.trunk)))
        }
    }
}

fn row(ctx: &Ctx, c: &LiveCallView, zone: Tz) -> Markup {
    let leg = |side: &str| {
        c.legs
            .iter()
            .find(|l| l.side == side)
            .and_then(|l| l.media.as_ref())
    };
    html! {
        tr data-call=(c.id) {
            td.time { (time_in(c.started_at, zone)) }
            td { (c.trunk) }
            td { (words(DIRECTIONS, &c.direction, ctx.lang)) }
            td.number { (c.caller.as_deref().unwrap_or("–")) }
            td.number { (c.callee.as_deref().unwrap_or("–")) }
            td.figure {
                @if c.answered_at.is_some() { (length(c.talk_ms)) } @else { (ctx.t(T::Ringing)) }
            }
            td { (leg_figures(ctx, leg("inside"))) }
            td { (leg_figures(ctx, leg("outside"))) }
            td {
                form method="post" action={ "/console/live/" (urlencoded(&c.id)) "/hangup" } {
                    (csrf_field(ctx))
                    button type="submit" aria-label=(T::HangUpCall.fill(ctx.lang, &[("id", &c.id)])) {
                        (ctx.t(T::HangUp))
                    }
                }
            }
        }
    }
}

fn leg_figures(ctx: &Ctx, m: Option<&LiveMediaView>) -> String {
    match m {
        None => "–".to_string(),
        Some(m) if m.last_packet_age_ms.is_none() => {
            T::LegFiguresSilent.fill(ctx.lang, &[("codec", m.codec.as_deref().unwrap_or("–"))])
        }
        Some(m) => T::LegFigures.fill(
            ctx.lang,
            &[
                ("in", &m.packets_in.to_string()),
                ("out", &m.packets_out.to_string()),
                ("lost", &m.lost.to_string()),
                ("jitter", &figure(m.jitter_ms, 1)),
                ("codec", m.codec.as_deref().unwrap_or("–")),
                (
                    "age",
                    &m.last_packet_age_ms
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "–".into()),
                ),
            ],
        ),
    }
}

/// `POST /console/live/{id}/hangup`: the API's hang-up, then back to the list.
pub(crate) async fn hangup(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match api_hangup(State(state), Path(id)).await {
        Ok(_) => see_other("/console/live?done=hung", &[]),
        Err(ApiError::NotFound(_)) => see_other("/console/live?done=gone", &[]),
        Err(e) => {
            tracing::error!(error = %e, "console: hang-up failed");
            see_other("/console/live", &[])
        }
    }
}
