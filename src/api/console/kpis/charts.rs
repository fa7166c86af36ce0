//! The two charts, drawn on the server as SVG: attempts and answered calls per bucket (bars),
//! ASR and NER in percent (lines); each bar and point carries its figures as a title.

use maud::{html, Markup};

use super::super::format::figure;
use super::super::guard::Ctx;
use super::super::i18n::T;
use super::figures::{label, Point};

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;

/// The x position and width of bucket `i` of `n`.
fn slot(i: usize, n: usize) -> (f64, f64) {
    let width = (W - LEFT - 8.0) / n.max(1) as f64;
    (LEFT + width * i as f64, width)
}

fn axis(ctx: &Ctx, points: &[Point], max: f64, unit: &str) -> Markup {
    let plot = H - BOTTOM - TOP;
    let every = points.len().div_ceil(8).max(1);
    html! {
        line x1=(LEFT) y1=(H - BOTTOM) x2=(W - 4.0) y2=(H - BOTTOM) stroke="#6b7480" {}
        line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke="#6b7480" {}
        @for k in 0..=4u32 {
            @let v = max * f64::from(k) / 4.0;
            @let y = H - BOTTOM - plot * f64::from(k) / 4.0;
            line x1=(LEFT - 4.0) y1=(y) x2=(W - 4.0) y2=(y) stroke="#e3e6ea" {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#4a5360" { (figure(Some(v), 0)) (unit) }
        }
        @for (i, p) in points.iter().enumerate() {
            @if i % every == 0 {
                @let (x, w) = slot(i, points.len());
                text x=(x + w / 2.0) y=(H - BOTTOM + 14.0) text-anchor="middle" font-size="11" fill="#4a5360" { (label(&p.start)) }
            }
        }
        text x=(W / 2.0) y=(H - 4.0) text-anchor="middle" font-size="11" fill="#4a5360" { (ctx.t(T::TimeUtc)) }
    }
}

pub(super) fn attempts_chart(ctx: &Ctx, points: &[Point]) -> Markup {
    let max = points.iter().map(|p| p.attempts).max().unwrap_or(0).max(1) as f64;
    // At least 4, so that the five ticks are whole numbers.
    let max = nice(max).max(4.0);
    let plot = H - BOTTOM - TOP;
    html! {
        figure.chart {
            svg #chart-attempts viewBox={ "0 0 " (W) " " (H) } role="img"
                aria-labelledby="chart-attempts-title" {
                title #chart-attempts-title { (ctx.t(T::ChartAttempts)) }
                (axis(ctx, points, max, ""))
                @for (i, p) in points.iter().enumerate() {
                    @let (x, w) = slot(i, points.len());
                    @let ha = plot * p.attempts as f64 / max;
                    @let hb = plot * p.answered as f64 / max;
                    @let bar = (w * 0.35).min(28.0);
                    @let mid = x + w / 2.0;
                    g data-bucket=(p.start) data-attempts=(p.attempts) data-answered=(p.answered) {
                        title { (label(&p.start)) ": " (ctx.t(T::Attempts)) " " (p.attempts) ", " (ctx.t(T::Answered)) " " (p.answered) }
                        rect x=(mid - bar) y=(H - BOTTOM - ha) width=(bar) height=(ha) fill="#0b57a4" {}
                        rect x=(mid) y=(H - BOTTOM - hb) width=(bar) height=(hb) fill="#1d6b34" {}
                    }
                }
            }
            figcaption {
                span.key.blue { "■" } " " (ctx.t(T::Attempts)) "  "
                span.key.green { "■" } " " (ctx.t(T::Answered))
            }
        }
    }
}

pub(super) fn ratio_chart(ctx: &Ctx, points: &[Point]) -> Markup {
    let plot = H - BOTTOM - TOP;
    let path = |f: fn(&Point) -> Option<f64>| -> String {
        let mut d = String::new();
        for (i, p) in points.iter().enumerate() {
            if let Some(v) = f(p) {
                let (x, w) = slot(i, points.len());
                let y = H - BOTTOM - plot * v / 100.0;
                d.push_str(&format!(
                    "{}{:.1},{:.1} ",
                    if d.is_empty() { "M" } else { "L" },
                    x + w / 2.0,
                    y
                ));
            }
        }
        d
    };
    html! {
        figure.chart {
            svg #chart-ratios viewBox={ "0 0 " (W) " " (H) } role="img" aria-labelledby="chart-ratios-title" {
                title #chart-ratios-title { (ctx.t(T::ChartRatios)) }
                (axis(ctx, points, 100.0, "%"))
                path d=(path(Point::asr)) fill="none" stroke="#0b57a4" stroke-width="2" {}
                path d=(path(Point::ner)) fill="none" stroke="#a4161a" stroke-width="2" stroke-dasharray="5 3" {}
                @for (i, p) in points.iter().enumerate() {
                    @let (x, w) = slot(i, points.len());
                    @if let Some(v) = p.asr() {
                        circle cx=(x + w / 2.0) cy=(H - BOTTOM - plot * v / 100.0) r="3.5" fill="#0b57a4" data-asr=(figure(Some(v), 1)) {
                            title { (label(&p.start)) ": ASR " (figure(Some(v), 1)) "%" }
                        }
                    }
                    @if let Some(v) = p.ner() {
                        circle cx=(x + w / 2.0) cy=(H - BOTTOM - plot * v / 100.0) r="3" fill="#a4161a" {
                            title { (label(&p.start)) ": NER " (figure(Some(v), 1)) "%" }
                        }
                    }
                }
            }
            figcaption {
                span.key.blue { "—" } " ASR  "
                span.key.red { "- -" } " NER"
            }
        }
    }
}

/// A round top for an axis (1, 2, 5 × 10ⁿ).
pub(super) fn nice(max: f64) -> f64 {
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(max)
}
