//! Per-session watchdog: the media timeout and the one-way-audio check, on a timer, from the
//! last-RTP times the relay tasks leave in two atomics.
//!
//! Timeout: no RTP from either side for the configured time → `MediaEvent::Timeout`, once. Hold
//! (any leg's peer not sendrecv, or c=0.0.0.0) suspends it; the idle time counts again from the
//! resume, and from any change of the timeout itself (arming it on answer starts it afresh).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::quality::OneWayDetector;
use super::relay::{Activity, Control, MediaEvent};
use super::Leg;

const MAX_TICK: Duration = Duration::from_secs(1);
const MIN_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
pub(crate) struct SupervisorReport {
    pub one_way_audio: Option<Leg>,
    pub timed_out: bool,
}

pub(crate) struct Supervisor {
    control: watch::Receiver<Control>,
    activity: Arc<Activity>,
    events: mpsc::Sender<MediaEvent>,
    one_way: OneWayDetector,
    one_way_after: Duration,
}

/// Check often enough that the timeout and the one-way threshold are seen within a quarter of
/// themselves.
fn period(timeout: Option<Duration>, one_way_after: Duration) -> Duration {
    let shortest = timeout.map_or(one_way_after, |t| t.min(one_way_after));
    (shortest / 4).clamp(MIN_TICK, MAX_TICK)
}

fn ticker(timeout: Option<Duration>, one_way_after: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period(timeout, one_way_after));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

impl Supervisor {
    pub(crate) fn new(
        control: watch::Receiver<Control>,
        activity: Arc<Activity>,
        events: mpsc::Sender<MediaEvent>,
        one_way_after: Duration,
    ) -> Supervisor {
        Supervisor {
            control,
            activity,
            events,
            one_way: OneWayDetector::new(one_way_after),
            one_way_after,
        }
    }

    pub(crate) async fn run(mut self) -> SupervisorReport {
        let (mut timeout, mut hold) = {
            let c = self.control.borrow_and_update();
            (c.timeout, c.hold())
        };
        let mut idle_from = Instant::now();
        let mut tick = ticker(timeout, self.one_way_after);
        let mut report = SupervisorReport::default();
        // Reported and not yet accepted by the owner's queue.
        let mut pending: Option<MediaEvent> = None;
        let mut one_way_reported = false;
        loop {
            tokio::select! {
                biased;
                changed = self.control.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let (t, h) = {
                        let c = self.control.borrow_and_update();
                        (c.timeout, c.hold())
                    };
                    if t != timeout {
                        timeout = t;
                        idle_from = Instant::now();
                        tick = ticker(timeout, self.one_way_after);
                    }
                    if hold && !h {
                        idle_from = Instant::now();
                    }
                    if h != hold {
                        tracing::debug!(hold = h, "media hold state");
                    }
                    hold = h;
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let last = [self.activity.last_rtp(Leg::Inside), self.activity.last_rtp(Leg::Outside)];
                    self.one_way.observe(now, last, hold);
                    if let (Some(silent), false) = (self.one_way.flagged(), one_way_reported) {
                        one_way_reported = true;
                        report.one_way_audio = Some(silent);
                        // Advisory: lost if the owner's queue is full.
                        let _ = self.events.try_send(MediaEvent::OneWayAudio { silent });
                    }
                    if let (Some(limit), false, false) = (timeout, hold, report.timed_out) {
                        let since = last.iter().flatten().copied().fold(idle_from, Instant::max);
                        let idle = now.saturating_duration_since(since);
                        if idle >= limit {
                            tracing::warn!(idle_ms = idle.as_millis() as u64, "media timeout");
                            report.timed_out = true;
                            pending = Some(MediaEvent::Timeout { idle });
                        }
                    }
                    // The timeout must reach the owner: retry each tick while its queue is full.
                    if let Some(event) = pending.take() {
                        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
                            pending = Some(event);
                        }
                    }
                }
            }
        }
        report
    }
}
