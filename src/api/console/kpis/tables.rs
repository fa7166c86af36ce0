//! The report as tables: every caller ID of the period with a link to its own charts, and every
//! row of the report as the API gives it.

use maud::{html, Markup};
use serde_json::Value;

use super::super::anomalies::subject;
use super::super::calls::urlencoded;
use super::super::format::figure;
use super::super::guard::Ctx;
use super::super::i18n::T;
use super::figures::{caller_totals, label};
use super::without;

/// Each caller ID of the period with its totals and a link to its own charts.
pub(super) fn per_caller(ctx: &Ctx, rows: &[Value], pairs: &[(String, String)]) -> Markup {
    let t = |k: T| ctx.t(k);
    let totals = caller_totals(rows);
    let base = without(pairs, "number");
    html! {
        @if !totals.is_empty() {
            div.table-wrap {
                table.callers {
                    caption { (t(T::PerCallerTitle)) }
                    thead {
                        tr {
                            th scope="col" { (t(T::CallerIdLabel)) }
                            th scope="col" { (t(T::TrunkLabel)) }
                            th scope="col" { (t(T::Attempts)) }
                            th scope="col" { (t(T::Answered)) }
                            th scope="col" { "ASR %" }
                            th scope="col" { "NER %" }
                            th scope="col" { (t(T::ChartsLabel)) }
                        }
                    }
                    tbody {
                        @for c in &totals {
                            tr data-caller=(c.number) {
                                td.number { (c.number) }
                                td { (c.trunk) }
                                td.figure { (c.point.attempts) }
                                td.figure { (c.point.answered) }
                                td.figure { (figure(c.point.asr(), 1)) }
                                td.figure { (figure(c.point.ner(), 1)) }
                                td {
                                    a href={ "/console/kpis?" (base) @if !base.is_empty() { "&" } "number=" (urlencoded(&c.number)) }
                                        aria-label=(T::ChartsOfCaller.fill(ctx.lang, &[("number", &c.number)])) {
                                        (t(T::ChartsLabel))
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

pub(super) fn table(ctx: &Ctx, rows: &[Value]) -> Markup {
    let t = |k: T| ctx.t(k);
    let pct = |v: &Value| figure(v.as_f64().map(|x| x * 100.0), 1);
    html! {
        div.table-wrap {
            table.kpis {
                caption { (t(T::KpisTable)) }
                thead {
                    tr {
                        th scope="col" { (t(T::BucketLabel)) " (UTC)" }
                        th scope="col" { (t(T::SubjectLabel)) }
                        th scope="col" { (t(T::Attempts)) }
                        th scope="col" { (t(T::Answered)) }
                        th scope="col" { "ASR %" }
                        th scope="col" { "NER %" }
                        th scope="col" { "ACD (s)" }
                        th scope="col" { (t(T::InvalidRate)) }
                        th scope="col" { (t(T::ShortCalls)) }
                        th scope="col" { (t(T::ComplaintsPer1000)) }
                    }
                }
                tbody {
                    @for r in rows {
                        @let offered = r["offered"].as_u64().unwrap_or(0);
                        @let invalid = r["invalid_number"].as_u64().unwrap_or(0);
                        tr {
                            td.time { (label(r["bucket_start"].as_str().unwrap_or(""))) }
                            td { (subject(r["subject"].as_str().unwrap_or(""), r["trunk"].as_str().unwrap_or(""), r["number"].as_str().unwrap_or(""), ctx.lang)) }
                            td.figure { (r["attempts"].as_u64().unwrap_or(0)) }
                            td.figure { (r["answered"].as_u64().unwrap_or(0)) }
                            td.figure { (pct(&r["asr"])) }
                            td.figure { (pct(&r["ner"])) }
                            td.figure { (figure(r["acd_secs"].as_f64(), 1)) }
                            td.figure { (figure((offered > 0).then(|| invalid as f64 / offered as f64 * 100.0), 1)) "%" }
                            td.figure { (r["short_calls"].as_u64().unwrap_or(0)) }
                            td.figure { (figure(r["complaints_per_1000_answered"].as_f64(), 1)) }
                        }
                    }
                }
            }
        }
    }
}
