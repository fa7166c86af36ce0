//! The calls search's form: every filter with its label, the value sent back in, and the
//! error next to a field that could not be read; the rarer filters folded under "more filters"
//! unless one of them is set.

use chrono_tz::Tz;
use maud::{html, Markup};

use super::super::fields::Field;
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
    // Each field by its name (its control's id too), with its label and the message of a value
    // that could not be read.
    let f = |name: &'static str, label: T| Field::new(name, t(label)).error(s.error(name).map(t));
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
        "anomaly",
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
                    @let number = f("number", T::NumberLabel).help(t(T::NumberHelp));
                    (number.render(html! {
                        input #number name="number" type="text" inputmode="tel" value=(s.value("number"))
                            aria-describedby=[number.described_by()] aria-invalid=[number.invalid()] autocomplete="off";
                    }))
                    @let m = f("match", T::MatchLabel);
                    (m.render(html! {
                        select #match name="match" {
                            @for (v, k) in [("anywhere", T::MatchAnywhere), ("suffix", T::MatchSuffix), ("prefix", T::MatchPrefix), ("whole", T::MatchWhole)] {
                                option value=(v) selected[selected("match", v)] { (t(k)) }
                            }
                        }
                    }))
                    @let trunk = f("trunk", T::TrunkLabel);
                    (trunk.render(html! {
                        select #trunk name="trunk" {
                            option value="" { (t(T::Any)) }
                            @for (name, _) in trunks {
                                option value=(name) selected[selected("trunk", name)] { (name) }
                            }
                        }
                    }))
                    @let direction = f("direction", T::DirectionLabel);
                    (direction.render(html! {
                        select #direction name="direction" aria-invalid=[direction.invalid()]
                            aria-describedby=[direction.described_by()] {
                            option value="" { (t(T::Any)) }
                            @for d in [Direction::Outbound, Direction::Inbound] {
                                option value=(d.as_str()) selected[selected("direction", d.as_str())] {
                                    (words(DIRECTIONS, d.as_str(), lang))
                                }
                            }
                        }
                    }))
                    @for (name, label) in [("from", T::FromLabel), ("to", T::ToLabel)] {
                        @let period = f(name, label).described_also("zone-help");
                        (period.render(html! {
                            input id=(name) name=(name) type="datetime-local" value=(period_value(name))
                                aria-describedby=[period.described_by()] aria-invalid=[period.invalid()];
                        }))
                    }
                    @let disposition = f("disposition", T::DispositionLabel);
                    (disposition.render(html! {
                        select #disposition name="disposition" aria-invalid=[disposition.invalid()]
                            aria-describedby=[disposition.described_by()] {
                            option value="" { (t(T::Any)) }
                            @for d in Disposition::ALL {
                                option value=(d.as_str()) selected[selected("disposition", d.as_str())] {
                                    (words(DISPOSITIONS, d.as_str(), lang))
                                }
                            }
                        }
                    }))
                    @let reason = f("reason", T::ReasonLabel);
                    (reason.render(html! {
                        select #reason name="reason" aria-invalid=[reason.invalid()]
                            aria-describedby=[reason.described_by()] {
                            option value="" { (t(T::Any)) }
                            @for r in RefusalReason::ALL {
                                option value=(r.as_str()) selected[selected("reason", r.as_str())] {
                                    (words(REFUSAL_REASONS, r.as_str(), lang))
                                }
                            }
                        }
                    }))
                }
                details open[more_open] {
                    summary { (t(T::MoreFilters)) }
                    div.grid {
                        @let status = f("status", T::StatusLabel);
                        (status.render(html! {
                            input #status name="status" type="text" inputmode="numeric" maxlength="3"
                                value=(s.value("status")) aria-invalid=[status.invalid()]
                                aria-describedby=[status.described_by()];
                        }))
                        @for (name, label) in [("talk_min", T::TalkMin), ("talk_max", T::TalkMax)] {
                            @let talk = f(name, label);
                            (talk.render(html! {
                                input id=(name) name=(name) type="number" min="0" step="1"
                                    value=(s.value(name)) aria-invalid=[talk.invalid()]
                                    aria-describedby=[talk.described_by()];
                            }))
                        }
                        @let anomaly = f("anomaly", T::AnomalyIdLabel).help(t(T::AnomalyIdHelp));
                        (anomaly.render(html! {
                            input #anomaly name="anomaly" type="text" inputmode="numeric" maxlength="40"
                                value=(s.value("anomaly")) aria-invalid=[anomaly.invalid()]
                                aria-describedby=[anomaly.described_by()];
                        }))
                        @if sees_rec {
                            @let rec = f("recording", T::RecordingFilter);
                            (rec.render(html! {
                                select #recording name="recording" {
                                    option value="" { (t(T::Any)) }
                                    option value="kept" selected[selected("recording", "kept")] { (t(T::RecordingKept)) }
                                    option value="none" selected[selected("recording", "none")] { (t(T::RecordingNone)) }
                                }
                            }))
                            @let hold = f("hold", T::HoldFilter);
                            (hold.render(html! {
                                select #hold name="hold" {
                                    option value="" { (t(T::Any)) }
                                    option value="on" selected[selected("hold", "on")] { (t(T::HoldOn)) }
                                    option value="off" selected[selected("hold", "off")] { (t(T::HoldOff)) }
                                }
                            }))
                        }
                        @let order = f("order", T::OrderLabel);
                        (order.render(html! {
                            select #order name="order" {
                                option value="newest" selected[selected("order", "newest")] { (t(T::NewestFirst)) }
                                option value="oldest" selected[selected("order", "oldest")] { (t(T::OldestFirst)) }
                            }
                        }))
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
