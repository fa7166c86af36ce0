//! A running session's figures, for the live-call listing: the owner keeps a `MediaProbe`, and
//! a snapshot asks the session's relay thread for its pumps' figures (one command between two
//! `epoll_wait`s: nothing is added per packet), then adds what the owner's side knows (the
//! peers' SDP addresses, the last RTP arrival).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::engine::RelayProbe;
use super::relay::{Activity, Control, LegStats, SessionStats};
use super::Leg;

/// How long a snapshot waits for a busy relay thread.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(1);

/// One leg of a running session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveLeg {
    /// As at the end of a call (`mos` and `one_way` aside): RTP in from this leg's peer (with
    /// loss and jitter), RTP relayed out to it, the latched source, the last payload type.
    pub stats: LegStats,
    /// Where this leg's peer receives RTP, from its latest SDP.
    pub remote: Option<SocketAddr>,
    /// Time since the last RTP packet from this leg's peer (`None`: none yet).
    pub last_packet_age: Option<Duration>,
}

/// Both legs of a running session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveMedia {
    pub inside: LiveLeg,
    pub outside: LiveLeg,
}

impl LiveMedia {
    pub fn leg(&self, leg: Leg) -> &LiveLeg {
        match leg {
            Leg::Inside => &self.inside,
            Leg::Outside => &self.outside,
        }
    }
}

/// Asks a running session for its figures; cheap to clone; outlives the session harmlessly.
#[derive(Debug, Clone)]
pub struct MediaProbe {
    pub(crate) relay: RelayProbe,
    pub(crate) activity: Arc<Activity>,
    pub(crate) control: watch::Receiver<Control>,
}

impl MediaProbe {
    /// The figures now; `None` once the session has closed (or its thread did not answer in
    /// time).
    pub async fn snapshot(&self) -> Option<LiveMedia> {
        let reply = self.relay.snapshot();
        let reports = tokio::time::timeout(SNAPSHOT_WAIT, reply)
            .await
            .ok()?
            .ok()?;
        let mut stats = SessionStats::default();
        for (leg, kind, report) in reports {
            report.merge_into(&mut stats, leg, kind);
        }
        let remote = self.control.borrow().remote;
        let now = Instant::now();
        let live = |leg: Leg, stats: LegStats| LiveLeg {
            stats,
            remote: remote[leg.index()].map(|r| r.rtp),
            last_packet_age: self
                .activity
                .last_rtp(leg)
                .map(|t| now.saturating_duration_since(t)),
        };
        Some(LiveMedia {
            inside: live(Leg::Inside, stats.inside),
            outside: live(Leg::Outside, stats.outside),
        })
    }
}
