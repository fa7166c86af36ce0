//! Call quality estimates: a simplified ITU-T G.107 E-model for the MOS, and the one-way-audio
//! detector.
//!
//! E-model, with the G.107 defaults for everything we cannot measure (room noise, sidetone,
//! circuit noise: R0 − Is = 93.2; advantage factor A = 0):
//!
//! ```text
//! R       = 93.2 − Id − Ie,eff
//! Ie,eff  = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)        G.107 §7.2.2
//!           G.711: Ie = 0, Bpl = 25.1 (with packet-loss concealment, G.113 App. I; 4.3
//!           without); BurstR = 1 (random loss); Ppl = loss in percent
//! Id      = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)            (Cole & Rosenbluth's fit of Idd)
//!           d = one-way delay estimate in ms = 20 (packetization) + jitter buffer,
//!           the jitter buffer taken as max(20, 2 × jitter); H = step function
//! MOS     = 1                                   for R ≤ 0
//!         = 1 + 0.035·R + 7e-6·R·(R − 60)·(100 − R)   for 0 < R < 100
//!         = 4.5                                 for R ≥ 100
//! ```
//!
//! Assumptions: endpoints conceal loss (every current phone and SBC does: Bpl 25.1); G.722 is
//! scored like G.711 (the narrowband model has no wideband advantage); network delay beyond the
//! jitter buffer is not measured (no RTCP round trip yet), so the MOS reflects loss and jitter.
//! A perfect G.711 stream scores 4.39.

use std::time::{Duration, Instant};

use super::Leg;

const R0_MINUS_IS: f64 = 93.2;
const IE_G711: f64 = 0.0;
const BPL_G711_PLC: f64 = 25.1;
const BURST_R: f64 = 1.0;
const PACKETIZATION_MS: f64 = 20.0;
const MIN_JITTER_BUFFER_MS: f64 = 20.0;

/// R factor from the loss ratio (0..1) and the RFC 3550 jitter in ms.
pub fn r_factor(loss_ratio: f64, jitter_ms: f64) -> f64 {
    let ppl = (loss_ratio * 100.0).clamp(0.0, 100.0);
    let ie_eff = IE_G711 + (95.0 - IE_G711) * ppl / (ppl / BURST_R + BPL_G711_PLC);
    let jitter_ms = if jitter_ms.is_finite() {
        jitter_ms.max(0.0)
    } else {
        0.0
    };
    let d = PACKETIZATION_MS + (2.0 * jitter_ms).max(MIN_JITTER_BUFFER_MS);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    R0_MINUS_IS - id - ie_eff
}

/// G.107 Annex B mapping from R to MOS (conversational quality, estimated).
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

pub fn estimate_mos(loss_ratio: f64, jitter_ms: f64) -> f64 {
    mos_from_r(r_factor(loss_ratio, jitter_ms))
}

/// Flags a call where one direction stays silent while the other flows for longer than
/// `threshold` (hold excepted). Fed periodically with each leg's last RTP arrival.
#[derive(Debug, Clone)]
pub struct OneWayDetector {
    threshold: Duration,
    /// A direction "flows" if its last packet is at most this old.
    flow_window: Duration,
    since: Option<(Instant, Leg)>,
    flagged: Option<Leg>,
}

impl OneWayDetector {
    pub fn new(threshold: Duration) -> OneWayDetector {
        OneWayDetector {
            threshold,
            flow_window: Duration::from_secs(1).min(threshold),
            since: None,
            flagged: None,
        }
    }

    /// `last_rtp[leg.index()]`: last RTP arrival from that leg's peer.
    pub fn observe(&mut self, now: Instant, last_rtp: [Option<Instant>; 2], hold: bool) {
        let flows = |leg: Leg| {
            last_rtp[leg.index()]
                .is_some_and(|t| now.saturating_duration_since(t) <= self.flow_window)
        };
        let silent = match (flows(Leg::Inside), flows(Leg::Outside)) {
            _ if hold => None,
            (true, false) => Some(Leg::Outside),
            (false, true) => Some(Leg::Inside),
            _ => None,
        };
        self.since = match (silent, self.since) {
            (Some(leg), Some((start, was))) if leg == was => {
                if now.saturating_duration_since(start) >= self.threshold && self.flagged.is_none()
                {
                    self.flagged = Some(leg);
                    tracing::info!(silent_leg = leg.as_str(), "one-way audio");
                }
                Some((start, was))
            }
            (Some(leg), _) => Some((now, leg)),
            (None, _) => None,
        };
    }

    /// The leg whose peer went silent while the other talked, once it has happened.
    pub fn flagged(&self) -> Option<Leg> {
        self.flagged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mos_of_known_conditions() {
        let perfect = estimate_mos(0.0, 0.0);
        // d = 40 ms: Id = 0.96, R = 92.24.
        assert!((perfect - 4.390).abs() < 0.001, "{perfect}");
        // 1 % random loss with PLC: Ie,eff = 95·1/26.1 = 3.64 → R = 88.60 → 4.30.
        let one = estimate_mos(0.01, 0.0);
        assert!((one - 4.303).abs() < 0.001, "{one}");
        // 5 %: Ie,eff = 15.78 → R = 76.46 → 3.88.
        let five = estimate_mos(0.05, 0.0);
        assert!((five - 3.883).abs() < 0.001, "{five}");
        // 100 ms jitter: d = 220 ms, Id = 5.28 + 4.70 → R = 83.22 → 4.14.
        assert!((estimate_mos(0.0, 100.0) - 4.140).abs() < 0.001);
        // Monotonic in loss and in jitter.
        assert!(estimate_mos(0.2, 0.0) < five && five < one && one < perfect);
        assert!(estimate_mos(0.0, 100.0) < estimate_mos(0.0, 30.0));
        // Jitter under 10 ms is absorbed by the minimum buffer.
        assert_eq!(estimate_mos(0.0, 5.0), perfect);
        // Everything lost, absurd jitter: floor, never NaN.
        assert_eq!(estimate_mos(1.0, 10_000.0), 1.0);
        assert_eq!(estimate_mos(0.0, f64::NAN), perfect);
    }

    #[test]
    fn mos_mapping_edges() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(100.0), 4.5);
        assert!((mos_from_r(50.0) - 2.575).abs() < 0.001);
    }

    #[test]
    fn one_way_flagged_after_threshold() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut det = OneWayDetector::new(Duration::from_secs(3));
        // Both flow for 2 s.
        for ms in (0..2000).step_by(250) {
            det.observe(at(ms), [Some(at(ms)), Some(at(ms))], false);
        }
        // Outside peer stops at 2 s; inside keeps talking.
        for ms in (2000..5500).step_by(250) {
            det.observe(at(ms), [Some(at(ms)), Some(at(2000))], false);
        }
        assert_eq!(
            det.flagged(),
            None,
            "silent 2.5 s, within the 1 s window for 1 s"
        );
        for ms in (5500..7000).step_by(250) {
            det.observe(at(ms), [Some(at(ms)), Some(at(2000))], false);
        }
        assert_eq!(det.flagged(), Some(Leg::Outside));
    }

    #[test]
    fn hold_and_total_silence_are_not_one_way() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut det = OneWayDetector::new(Duration::from_secs(2));
        for ms in (0..10_000).step_by(500) {
            // Music on hold one way.
            det.observe(at(ms), [Some(at(ms)), None], true);
        }
        for ms in (10_000..20_000).step_by(500) {
            det.observe(at(ms), [None, None], false);
        }
        // Short one-way stretches that recover.
        for ms in (20_000..40_000).step_by(500) {
            let out = if ms % 3000 < 1500 {
                at(ms)
            } else {
                at(ms - ms % 3000)
            };
            det.observe(at(ms), [Some(at(ms)), Some(out)], false);
        }
        assert_eq!(det.flagged(), None);
    }
}
