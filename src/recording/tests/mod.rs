//! Recording tests that go through the pool, the worker and the files. Shared helpers here.

mod call;
mod crash;
mod failure;
mod group_commit;
mod no_media;
mod patches;
mod perf;
mod placement;
mod rounds;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::g711;
use super::g722::encoder::G722Encoder;
use super::{Codec, Leg, PayloadMap, RecPacket, RecorderOptions, RecordingPool, RecordingSpec};

/// Options for tests: big queues (a test pushes a whole call at once) and a short tick.
pub(crate) fn test_options() -> RecorderOptions {
    RecorderOptions {
        workers: 1,
        queue_packets: 16_384,
        tick: Duration::from_millis(5),
        ..RecorderOptions::default()
    }
}

pub(crate) fn pool_in(dir: &Path, opts: RecorderOptions) -> RecordingPool {
    RecordingPool::start(dir, opts).unwrap()
}

pub(crate) fn day() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-06T07:08:09Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn spec(
    call_id: &str,
    t0: Instant,
    codec: Codec,
    payloads: PayloadMap,
) -> RecordingSpec {
    RecordingSpec {
        call_id: call_id.to_string(),
        started_at: day(),
        started: t0,
        payloads,
        codec,
    }
}

/// One leg's audio source: a sine tone, cut into 20 ms RTP packets.
pub(crate) struct Source {
    pub leg: Leg,
    pub freq: f64,
    pub pt: u8,
    pub codec: Codec,
    pub ssrc: u32,
    pub ts0: u32,
}

impl Source {
    /// A PCMU tone (payload type 0) of `freq` Hz, its timestamps from `ts0`.
    pub fn pcmu(leg: Leg, freq: f64, ssrc: u32, ts0: u32) -> Self {
        Source {
            leg,
            freq,
            pt: 0,
            codec: Codec::Pcmu,
            ssrc,
            ts0,
        }
    }

    /// Encoded payload of packet `n` (20 ms each, continuous tone across packets).
    pub fn payload(&self, n: u64, g722: &mut G722Encoder) -> Bytes {
        let rate = if self.codec == Codec::G722 {
            16_000
        } else {
            8_000
        };
        let per = rate / 50;
        let pcm: Vec<i16> = (0..per)
            .map(|i| {
                let t = (n * per + i) as f64 / rate as f64;
                (8000.0 * (2.0 * std::f64::consts::PI * self.freq * t).sin()) as i16
            })
            .collect();
        Bytes::from(match self.codec {
            Codec::Pcmu => pcm.iter().map(|&s| g711::encode_ulaw(s)).collect(),
            Codec::Pcma => pcm.iter().map(|&s| g711::encode_alaw(s)).collect(),
            Codec::G722 => g722.encode(&pcm),
            _ => vec![0x42; 80],
        })
    }

    /// Packet `n` arriving `at` after `t0`, with its nominal timestamp.
    pub fn packet(&self, t0: Instant, n: u64, at: Duration, g722: &mut G722Encoder) -> RecPacket {
        RecPacket {
            leg: self.leg,
            arrival: t0 + at,
            payload_type: self.pt,
            marker: n == 0,
            sequence: n as u16,
            timestamp: self.ts0.wrapping_add(n as u32 * 160),
            ssrc: self.ssrc,
            payload: self.payload(n, g722),
        }
    }
}

/// The two channels of a WAV file, as f64.
pub(crate) fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f64>, Vec<f64>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let all: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    let left = all.iter().step_by(2).map(|&s| s as f64).collect();
    let right = all.iter().skip(1).step_by(2).map(|&s| s as f64).collect();
    (spec, left, right)
}

/// Amplitude of the `freq` component of `x` (Goertzel), in sample units.
pub(crate) fn tone_level(x: &[f64], rate: f64, freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}

pub(crate) fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// `x[from..to]` with times in seconds.
pub(crate) fn span(x: &[f64], rate: f64, from: f64, to: f64) -> &[f64] {
    &x[(from * rate) as usize..(to * rate) as usize]
}

/// Waits (up to 5 s) until `f` holds.
pub(crate) fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A snapshot of a file being written (as a player opening it would see it).
pub(crate) fn snapshot(
    path: &Path,
    to: &Path,
) -> Option<hound::WavReader<std::io::BufReader<std::fs::File>>> {
    std::fs::copy(path, to).ok()?;
    hound::WavReader::open(to).ok()
}
