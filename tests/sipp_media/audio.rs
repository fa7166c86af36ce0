//! The audio: one second of a tone, G.711-encoded with the gateway's own encoder, and each
//! channel of a recording analysed (Goertzel): its own tone, the other side's, blocks whole and
//! blocks with crosstalk.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) enum G711 {
    Pcmu,
    Pcma,
}

impl G711 {
    pub(super) fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            G711::Pcmu => "PCMU",
            G711::Pcma => "PCMA",
        }
    }

    pub(super) fn encode(self, sample: i16) -> u8 {
        match self {
            G711::Pcmu => encode_ulaw(sample),
            G711::Pcma => encode_alaw(sample),
        }
    }
}

/// One second of a sine at `hz` as raw G.711 (what RTPSTREAM reads: no header). A whole number
/// of cycles, so that SIPp can loop it without a click.
pub(super) fn tone(hz: f64, codec: G711) -> Vec<u8> {
    (0..RATE)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            codec.encode((AMPLITUDE * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// Power of `samples` at `hz` (Goertzel), normalized by length: a full-scale sine of amplitude
/// A gives A²/4.
pub(super) fn power_at(samples: &[i16], hz: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / RATE as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (samples.len() as f64).powi(2)
}

/// What one channel of the recording holds.
#[derive(Debug)]
pub(super) struct ChannelReport {
    /// Power at this channel's own tone and at the other side's, over the whole channel.
    pub(super) own: f64,
    pub(super) other: f64,
    /// 100 ms blocks that are all this channel's tone, undistorted, at the level sent (and
    /// nothing of the other's).
    pub(super) tone_blocks: usize,
    /// 100 ms blocks that carry some of the other side's tone.
    pub(super) crosstalk_blocks: usize,
}

pub(super) fn analyse(channel: &[i16], own_hz: f64, other_hz: f64) -> ChannelReport {
    let full = AMPLITUDE * AMPLITUDE / 4.0;
    let mut tone_blocks = 0;
    let mut crosstalk_blocks = 0;
    for block in channel.chunks_exact(BLOCK) {
        let own = power_at(block, own_hz);
        let other = power_at(block, other_hz);
        // A sine's mean square is twice its Goertzel power: anything else in the block
        // (distortion, as when PCMA is decoded as PCMU) lowers this purity.
        let mean_square =
            block.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / block.len() as f64;
        let purity = 2.0 * own / mean_square.max(1.0);
        // 0.8 to 1.2 of the power: the tone, at the level sent, fills about 90 % of the block
        // or more.
        if own > 0.8 * full && own < 1.2 * full && purity > 0.95 && other < own / 1000.0 {
            tone_blocks += 1;
        }
        if other > full / 1000.0 {
            crosstalk_blocks += 1;
        }
    }
    ChannelReport {
        own: power_at(channel, own_hz),
        other: power_at(channel, other_hz),
        tone_blocks,
        crosstalk_blocks,
    }
}
