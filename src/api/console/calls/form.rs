//! The calls search's form: every filter with its label, the value sent back in, and the
//! error next to a field that could not be read; the rarer filters folded under "more filters"
//! unless one of them is set.

use chrono_tz::Tz;
use maud::{html, Markup};

use super::super::format::{input_time, parse_input_time};
use super::super::guard::api_allows;
use super::super::guard::Ctx;
use super::super::i18n::codes::{words, DIRECTIONS, DISPOSITIONS, REFUSAL_REASONS};
use super::super::i18n::T;
use super::{sees_recordings, Search};
use crate::api::{ApiState, Principal};
use crate::model::{Direction, Disposition, RefusalReason};
use axum::http::Method;

pub(super) fn form(
    state: &ApiState,
    ctx: &Ctx,
    who: &Principal,
    s: &Search,
    trunks: &[(String, Tz)],
    zone: Tz,
) -> Markup {
    let t = |k: T| ctx.t(k);
    let lang = ctx.lang;
    let field_error = |name: &str| -> Markup {
        html! {
            @if let Some(e) = s.error(name) {
                p.field-error id={ (name) "-error" } { (t(e)) }
            }
        }
    };
    let invalid = |name: &str| s.error(name).map(|_| "true");
    let described = |name: &str, help: Option<&str>| -> String {
        let mut ids = Vec::new();
        if let Some(h) = help {
            ids.push(h.to_string());
        }
        if s.error(name).is_some() {
            ids.push(format!("{name}-error"));
        }
        ids.join(" ")
    };
    let selected = |name: &str, value: &str| s.value(name) == value;
    let period_value = |name: &str| -> String {
        let v = s.value(name);
        // Shown back as typed; a parsed value in the page's zone when it was another form.
        match parse_input_time(v, zone) {
            Some(t) if !v.contains('T') => input_time(t, zone),
            _ => v.to_string(),
        }
    };
    let sees_rec = sees_recordings(state, who);
    let more_open = [
        "status",
        "talk_min",
        "talk_max",
        "recording",
        "hold",
        "order",
    ]
    .iter()
    .any(|f| !matches!(s.value(f), "" | "newest"));
    html! {
        form.search method="get" action="/console/calls" role="search" {
            fieldset {
                legend { (t(T::SearchLegend)) }
                div.grid {
                    div.field {
                        label for="number" { (t(T::NumberLabel)) }
                        input #number name="number" type="text" inputmode="tel" value=(s.value("number"))
                            aria-describedby=(described("number", Some("number-help")))
                            aria-invalid=[invalid("number")] autocomplete="off";
                        p #number-help .help { (t(T::NumberHelp)) }
                        (field_error("number"))
                    }
                    div.field {
                        label for="match" { (t(T::MatchLabel)) }
                        select #match name="match" {
                            @for (v, k) in [("anywhere", T::MatchAnywhere), ("suffix", T::MatchSuffix), ("prefix", T::MatchPrefix), ("whole", T::MatchWhole)] {
                                option value=(v) selected[selected("match", v)] { (t(k)) }
                            }
                        }
                    }
                    div.field {
                        label for="trunk" { (t(T::TrunkLabel)) }
                        select #trunk name="trunk" {
                            option value="" { (t(T::Any)) }
                            @for (name, _) in trunks {
                                option value=(name) selected[selected("trunk", name)] { (name) }
                            }
                        }
                    }
                    div.field {
                        label for="direction" { (t(T::DirectionLabel)) }
                        select #direction name="direction" aria-invalid=[invalid("direction")] {
                            option value="" { (t(T::Any)) }
                            @for d in [Direction::Outbound, Direction::Inbound] {
                                option value=(d.as_str()) selected[selected("direction", d.as_str())] {
                                    (words(DIRECTIONS, d.as_str(), lang))
                                }
                            }
                        }
                        (field_error("direction"))
                    }
                    div.field {
                        label for="from" { (t(T::FromLabel)) }
                        input #from name="from" type="datetime-local" value=(period_value("from"))
                            aria-describedby=(described("from", Some("zone-help"))) aria-invalid=[invalid("from")];
                        (field_error("from"))
                    }
                    div.field {
                        label for="to" { (t(T::ToLabel)) }
                        input #to name="to" type="datetime-local" value=(period_value("to"))
                            aria-describedby=(described("to", Some("zone-help"))) aria-invalid=[invalid("to")];
                        (field_error("to"))
                    }
                    div.field {
                        label for="disposition" { (t(T::DispositionLabel)) }
                        select #disposition name="disposition" aria-invalid=[invalid("disposition")] {
                            option value="" { (t(T::Any)) }
                            @for d in Disposition::ALL {
                                option value=(d.as_str()) selected[selected("disposition", d.as_str())] {
                                    (words(DISPOSITIONS, d.as_str(), lang))
                                }
                            }
                        }
                        (field_error("disposition"))
                    }
                    div.field {
                        label for="reason" { (t(T::ReasonLabel)) }
                        select #reason name="reason" aria-invalid=[invalid("reason")] {
                            option value="" { (t(T::Any)) }
                            @for r in RefusalReason::ALL {
                                option value=(r.as_str()) selected[selected("reason", r.as_str())] {
                                    (words(REFUSAL_REASONS, r.as_str(), lang))
                                }
                            }
                        }
                        (field_error("reason"))
                    }
                }
                details open[more_open] {
                    summary { (t(T::MoreFilters)) }
                    div.grid {
                        div.field {
                            label for="status" { (t(T::StatusLabel)) }
                            input #status name="status" type="text" inputmode="numeric" maxlength="3"
                                value=(s.value("status")) aria-invalid=[invalid("status")]
                                aria-describedby=(described("status", None));
                            (field_error("status"))
                        }
                        div.field {
                            label for="talk_min" { (t(T::TalkMin)) }
                            input #talk_min name="talk_min" type="number" min="0" step="1"
                                value=(s.value("talk_min")) aria-invalid=[invalid("talk_min")]
                                aria-describedby=(described("talk_min", None));
                            (field_error("talk_min"))
                        }
                        div.field {
                            label for="talk_max" { (t(T::TalkMax)) }
                            input #talk_max name="talk_max" type="number" min="0" step="1"
                                value=(s.value("talk_max")) aria-invalid=[invalid("talk_max")]
                                aria-describedby=(described("talk_max", None));
                            (field_error("talk_max"))
                        }
                        @if sees_rec {
                            div.field {
                                label for="recording" { (t(T::RecordingFilter)) }
                                select #recording name="recording" {
                                    option value="" { (t(T::Any)) }
                                    option value="kept" selected[selected("recording", "kept")] { (t(T::RecordingKept)) }
                                    option value="none" selected[selected("recording", "none")] { (t(T::RecordingNone)) }
                                }
                            }
                            div.field {
                                label for="hold" { (t(T::HoldFilter)) }
                                select #hold name="hold" {
                                    option value="" { (t(T::Any)) }
                                    option value="on" selected[selected("hold", "on")] { (t(T::HoldOn)) }
                                    option value="off" selected[selected("hold", "off")] { (t(T::HoldOff)) }
                                }
                            }
                        }
                        div.field {
                            label for="order" { (t(T::OrderLabel)) }
                            select #order name="order" {
                                option value="newest" selected[selected("order", "newest")] { (t(T::NewestFirst)) }
                                option value="oldest" selected[selected("order", "oldest")] { (t(T::OldestFirst)) }
                            }
                        }
                    }
                }
                p #zone-help .help { (T::TimesIn.fill(lang, &[("zone", zone.name())])) }
                div.actions {
                    button type="submit" { (t(T::SearchButton)) }
                    a.button.secondary href="/console/calls" { (t(T::ClearButton)) }
                    @if s.errors.is_empty() {
                        a.button.secondary href={ "/console/calls/export?" (s.link(&["cursor", "order"])) } download {
                            (t(T::ExportCsv))
                        }
                        @if api_allows(state, &Method::GET, super::super::EVIDENCE_SEARCH, who.role) {
                            a.button.secondary #evidence-search href={ "/console/calls/evidence?" (s.link(&["cursor", "order"])) } download {
                                (t(T::EvidenceOfThese))
                            }
                        }
                    }
                }
            }
        }
    }
}
