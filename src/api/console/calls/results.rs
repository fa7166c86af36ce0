//! The calls found: a table, each call's time a link to its page for those who may read it.

use chrono_tz::Tz;
use maud::{html, Markup};

use super::super::format::{length, local_time};
use super::super::guard::Ctx;
use super::super::i18n::codes::{words, DIRECTIONS, DISPOSITIONS, END_REASONS, REFUSAL_REASONS};
use super::super::i18n::{Lang, T};
use super::sees_calls;
use crate::api::{ApiState, Principal};
use crate::model::Cdr;

/// The reason shown for a call: why it was refused, else why it ended.
fn reason_words(c: &Cdr, lang: Lang) -> String {
    match c.outcome.refusal_reason {
        Some(r) => words(REFUSAL_REASONS, r.as_str(), lang),
        None => words(END_REASONS, c.outcome.end_reason.as_str(), lang),
    }
}

pub(super) fn results(
    state: &ApiState,
    ctx: &Ctx,
    who: &Principal,
    rows: &[Cdr],
    zone: Tz,
) -> Markup {
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
