//! A call's recording on its page: the facts (state, length, size, codec, stored digest), the
//! player (the browser's audio element on the API's Range-capable download, ±10 s, speed, which
//! channel to hear, the waveform), the "verify now" button and the verification's result.

use chrono_tz::Tz;
use maud::{html, Markup};
use serde_json::Value;

use super::super::super::calls::PauseView;
use super::super::calls::urlencoded;
use super::super::format::{length, size, time_in};
use super::super::guard::Ctx;
use super::super::i18n::codes::{words, RECORDING_STATES};
use super::super::i18n::T;
use super::{or_dash, CallRecord, RecordingView};
use crate::model::PauseEnd;

pub(super) fn recording(ctx: &Ctx, r: &CallRecord, zone: Tz, verify: Option<&Value>) -> Markup {
    let id = urlencoded(&r.cdr.attempt.id);
    html! {
        section.recording aria-labelledby="rec" {
            h2 #rec { (ctx.t(T::RecordingTitle)) }
            @match &r.recording {
                None => p { (ctx.t(T::NoRecording)) },
                Some(rec) => {
                    (recording_facts(ctx, rec))
                    @if let Some(purged) = rec.purged_at {
                        p.notice { (T::RecordingPurged.fill(ctx.lang, &[("time", &time_in(purged, zone))])) }
                    } @else if rec.sha256.is_none() {
                        p { (ctx.t(T::NoRecordingFile)) }
                    } @else {
                        (player(ctx, &id, rec))
                        form.inline method="get" action={ "/console/calls/" (id) "/verify" } {
                            button type="submit" { (ctx.t(T::VerifyNow)) }
                        }
                        @if let Some(v) = verify {
                            (verification(ctx, v, zone))
                        }
                    }
                }
            }
        }
    }
}

fn recording_facts(ctx: &Ctx, rec: &RecordingView) -> Markup {
    let lang = ctx.lang;
    html! {
        dl.details {
            dt { (ctx.t(T::RecStatusLabel)) }
            dd { (words(RECORDING_STATES, rec.status.as_str(), lang)) }
            dt { (ctx.t(T::RecLengthLabel)) }
            dd #rec-length data-ms=(rec.duration_ms) { (length(rec.duration_ms)) }
            dt { (ctx.t(T::RecSizeLabel)) }
            dd { (size(rec.size_bytes)) }
            dt { (ctx.t(T::CodecLabel)) }
            dd { (or_dash(rec.codec.as_deref())) }
            dt { (ctx.t(T::StoredDigest)) }
            dd.digest { code { (or_dash(rec.sha256.as_deref())) } }
            @if let Some(note) = &rec.note {
                dt { (ctx.t(T::NoteLabel)) }
                dd { (note) }
            }
            @if !rec.pauses.is_empty() {
                dt { (ctx.t(T::PausesLabel)) }
                dd {
                    ul #rec-pauses {
                        @for p in &rec.pauses {
                            li data-start-ms=(p.start_ms) data-end-ms=(p.end_ms) { (pause_row(ctx, p)) }
                        }
                    }
                }
            }
        }
    }
}

/// One PCI pause: where in the file, who paused, how it ended.
fn pause_row(ctx: &Ctx, p: &PauseView) -> String {
    let lang = ctx.lang;
    let ended = match (p.ended, &p.resumed_by) {
        (PauseEnd::Resumed, Some(who)) => T::PauseResumedBy.fill(lang, &[("who", who)]),
        (PauseEnd::Resumed, None) => T::PauseResumedBy.fill(lang, &[("who", "-")]),
        (PauseEnd::MaxPause, _) => ctx.t(T::PauseMaxPause).to_string(),
        (PauseEnd::CallEnded, _) => ctx.t(T::PauseCallEnded).to_string(),
    };
    T::PauseRow.fill(
        lang,
        &[
            ("start", &length(p.start_ms)),
            ("end", &length(p.end_ms)),
            ("who", &p.paused_by),
            ("ended", &ended),
        ],
    )
}

/// The player: the browser's audio element on the API's download (Range: seeking loads only
/// what is played), ±10 s, speed, and which channel to hear (console.js, Web Audio).
fn player(ctx: &Ctx, id: &str, rec: &RecordingView) -> Markup {
    let src = format!("/console/calls/{id}/recording");
    html! {
        div.player data-player role="group" aria-label=(ctx.t(T::PlayerLabel)) {
            audio #audio controls preload="metadata" src=(src) data-duration-ms=(rec.duration_ms) {}
            @if rec.size_bytes <= WAVEFORM_MAX_BYTES {
                figure.waveform {
                    canvas #waveform width="1200" height="160" data-src=(src)
                        role="img" aria-label=(ctx.t(T::WaveformLabel)) {}
                    figcaption { (ctx.t(T::WaveformCaption)) }
                }
            }
            div.controls {
                button #play type="button" data-play=(ctx.t(T::Play)) data-pause=(ctx.t(T::Pause)) {
                    (ctx.t(T::Play))
                }
                button type="button" data-seek="-10" { "−10 s" span.sr { " " (ctx.t(T::Back10)) } }
                button type="button" data-seek="10" { "+10 s" span.sr { " " (ctx.t(T::Forward10)) } }
                label for="speed" { (ctx.t(T::SpeedLabel)) }
                select #speed {
                    @for s in ["0.5", "0.75", "1", "1.25", "1.5", "2"] {
                        option value=(s) selected[s == "1"] { (s) "×" }
                    }
                }
                label for="level" { (ctx.t(T::LevelLabel)) }
                meter #level min="0" max="1" value="0" {}
            }
            fieldset.channels {
                legend { (ctx.t(T::ListenTo)) }
                @for (value, key) in [("both", T::ChannelBoth), ("agent", T::ChannelAgent), ("customer", T::ChannelCustomer)] {
                    label {
                        input type="radio" name="channel" value=(value) checked[value == "both"];
                        " " (ctx.t(key))
                    }
                }
            }
            p { a href=(src) download { (ctx.t(T::DownloadWav)) } }
        }
    }
}

fn verification(ctx: &Ctx, v: &Value, zone: Tz) -> Markup {
    let ok = v["ok"].as_bool().unwrap_or(false);
    let checked = v["checked_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| time_in(t.with_timezone(&chrono::Utc), zone));
    let problem = v["wav"]["problem"].as_str();
    html! {
        div.verification.(if ok { "ok" } else { "mismatch" }) role="status" #verification data-result=(v["result"].as_str().unwrap_or("")) {
            p { strong { (ctx.t(if ok { T::VerifyOk } else { T::VerifyMismatch })) } }
            dl.details {
                dt { (ctx.t(T::ComputedDigest)) }
                dd.digest { code { (v["wav"]["computed_sha256"].as_str().unwrap_or("–")) } }
                @if let Some(p) = problem {
                    dt { (ctx.t(T::ProblemLabel)) }
                    dd { (p) }
                }
                dt { (ctx.t(T::CheckedAt)) }
                dd { (checked.unwrap_or_else(|| "–".into())) }
            }
        }
    }
}

/// Recordings up to this size get a waveform (drawn in the browser from the whole file).
const WAVEFORM_MAX_BYTES: i64 = 16 * 1024 * 1024;
