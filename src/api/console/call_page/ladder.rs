//! The call's SIP ladder: three columns — PBX, gateway, carrier — and one arrow per message in
//! the order it crossed the wire, with its time since the first message and its start line
//! (the method or the status); each row opens (`details`/`summary`: the keyboard and screen
//! readers handle it, no script) to the full message as it crossed. From the API's trace
//! (`GET /api/v1/calls/{id}/sip`).

use maud::{html, Markup};

use super::super::guard::Ctx;
use super::super::i18n::T;
use crate::model::{Side, SipTrace, TraceDirection, TracedMessage};

/// Where the arrow of a message goes, and which way.
fn arrow(m: &TracedMessage) -> (&'static str, &'static str, T, T) {
    match (m.leg, m.direction) {
        (Side::Inside, TraceDirection::In) => ("inside", "→", T::LadderPbx, T::LadderGateway),
        (Side::Inside, TraceDirection::Out) => ("inside", "←", T::LadderGateway, T::LadderPbx),
        (Side::Outside, TraceDirection::Out) => {
            ("outside", "→", T::LadderGateway, T::LadderCarrier)
        }
        (Side::Outside, TraceDirection::In) => ("outside", "←", T::LadderCarrier, T::LadderGateway),
    }
}

/// Seconds since the first message, to the millisecond.
fn offset(first: chrono::DateTime<chrono::Utc>, m: &TracedMessage) -> String {
    let us = (m.at - first).num_microseconds().unwrap_or(0);
    format!("+{:.3} s", us as f64 / 1_000_000.0)
}

/// `None`: no trace is stored for the call (the reason is said instead).
pub(super) fn ladder(ctx: &Ctx, trace: Option<&SipTrace>) -> Markup {
    html! {
        section aria-labelledby="sip" {
            h2 #sip { (ctx.t(T::SipLadderTitle)) }
            @match trace {
                None => p.empty { (ctx.t(T::SipLadderNone)) },
                Some(trace) => (rows(ctx, trace)),
            }
        }
    }
}

fn rows(ctx: &Ctx, trace: &SipTrace) -> Markup {
    let Some(first) = trace.messages.first().map(|m| m.at) else {
        return html! { p.empty { (ctx.t(T::SipLadderNone)) } };
    };
    html! {
        div.ladder-lanes aria-hidden="true" {
            span { (ctx.t(T::LadderPbx)) }
            span { (ctx.t(T::LadderGateway)) }
            span { (ctx.t(T::LadderCarrier)) }
        }
        ol.ladder {
            @for m in &trace.messages {
                @let (leg, arrow_text, from, to) = arrow(m);
                li class={ "msg " (leg) } {
                    details {
                        summary {
                            span.offset { (offset(first, m)) }
                            span class={ "arrow " (leg) } {
                                span.sr { (ctx.t(from)) " " }
                                span aria-hidden="true" { (arrow_text) }
                                span.sr { " " (ctx.t(to)) }
                            }
                            span.line {
                                code { (m.first_line()) }
                                @if m.retransmission {
                                    " " span.retransmission { (ctx.t(T::Retransmission)) }
                                }
                            }
                        }
                        p.wire {
                            (m.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)) " · "
                            (m.peer) " · " (format!("{:?}", m.transport).to_uppercase())
                        }
                        pre.sip { (m.message) }
                    }
                }
            }
        }
        @if trace.dropped_messages > 0 {
            p.empty {
                (T::SipLadderDropped.fill(ctx.lang, &[
                    ("count", &trace.dropped_messages.to_string()),
                    ("bytes", &trace.dropped_bytes.to_string()),
                ]))
            }
        }
    }
}
