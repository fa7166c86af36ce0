//! Payload types and the per-leg decoder that turns RTP payloads into samples at the file rate.

use super::g711;
use super::g722::G722Decoder;

/// A codec as negotiated in SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    /// RFC 4733 events: skipped (the relay logs the digits).
    TelephoneEvent,
    /// RFC 3389 comfort noise: silence suppression, recorded as silence.
    ComfortNoise,
    /// Anything else: kept as RTP in the pcap beside the WAV. Holds the encoding name.
    Other(String),
}

impl Codec {
    /// The SDP encoding name.
    pub fn name(&self) -> &str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::TelephoneEvent => "telephone-event",
            Codec::ComfortNoise => "CN",
            Codec::Other(name) => name,
        }
    }

    /// From an `a=rtpmap` encoding name (`PCMU/8000`, `opus/48000/2`…), case-insensitive.
    pub fn from_rtpmap(rtpmap: &str) -> Codec {
        let name = rtpmap.split('/').next().unwrap_or("").trim();
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Codec::Pcmu,
            "PCMA" => Codec::Pcma,
            "G722" => Codec::G722,
            "TELEPHONE-EVENT" => Codec::TelephoneEvent,
            "CN" => Codec::ComfortNoise,
            _ => Codec::Other(name.to_string()),
        }
    }

    /// Whether the recorder turns this codec's payload into audio.
    pub fn is_audio_decodable(&self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma | Codec::G722)
    }

    /// WAV sample rate for a call whose main codec is this one.
    pub fn file_rate(&self) -> u32 {
        if *self == Codec::G722 {
            16_000
        } else {
            8_000
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Payload type → codec for one call: the RFC 3551 static types, overridden by `a=rtpmap`.
/// Only the call's own mappings are kept (a handful); every other type reads a table shared by
/// all calls (a table per call cost 124 small strings and ~6 KiB, built at each answer).
#[derive(Debug, Clone, Default)]
pub struct PayloadMap {
    /// `a=rtpmap` mappings, at most one per payload type.
    mapped: Vec<(u8, Codec)>,
}

/// What a payload type means without an `a=rtpmap`: 0 PCMU, 8 PCMA, 9 G722, 13 CN, and
/// `PT<n>` for the others.
fn unmapped(payload_type: u8) -> &'static Codec {
    static TABLE: std::sync::LazyLock<Vec<Codec>> = std::sync::LazyLock::new(|| {
        (0u8..128)
            .map(|pt| match pt {
                0 => Codec::Pcmu,
                8 => Codec::Pcma,
                9 => Codec::G722,
                13 => Codec::ComfortNoise,
                _ => Codec::Other(format!("PT{pt}")),
            })
            .collect()
    });
    &TABLE[(payload_type & 0x7f) as usize]
}

impl PayloadMap {
    /// Static payload types only (0 PCMU, 8 PCMA, 9 G722, 13 CN).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the mapping of one `a=rtpmap:PT ENCODING/CLOCK[/CHANNELS]` line; a later line for
    /// the same payload type replaces the earlier one.
    pub fn with_rtpmap(mut self, payload_type: u8, rtpmap: &str) -> Self {
        let pt = payload_type & 0x7f;
        let codec = Codec::from_rtpmap(rtpmap);
        match self.mapped.iter_mut().find(|(p, _)| *p == pt) {
            Some(entry) => entry.1 = codec,
            None => self.mapped.push((pt, codec)),
        }
        self
    }

    pub fn codec(&self, payload_type: u8) -> &Codec {
        let pt = payload_type & 0x7f;
        self.mapped
            .iter()
            .find(|(p, _)| *p == pt)
            .map_or_else(|| unmapped(pt), |(_, codec)| codec)
    }
}

/// The kinds of payload that become audio (a `Copy` tag for the jitter buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioKind {
    Pcmu,
    Pcma,
    G722,
}

impl AudioKind {
    pub(crate) fn of(codec: &Codec) -> Option<AudioKind> {
        match codec {
            Codec::Pcmu => Some(AudioKind::Pcmu),
            Codec::Pcma => Some(AudioKind::Pcma),
            Codec::G722 => Some(AudioKind::G722),
            _ => None,
        }
    }
}

/// Decoding state of one leg: G.722 is stateful and must see one stream in order. It holds no
/// buffer: samples go straight into the caller's (the recording worker's, shared by its calls;
/// a 640-sample buffer per leg was 2.5 KiB a call, issue 16).
pub(crate) struct LegDecoder {
    /// Made at the first G.722 packet (320 bytes; most legs are G.711).
    g722: Option<Box<G722Decoder>>,
    /// Last 8 kHz sample, carried over packets for the 8 → 16 kHz interpolation.
    last: i16,
}

impl LegDecoder {
    pub(crate) fn new() -> Self {
        LegDecoder {
            g722: None,
            last: 0,
        }
    }

    /// A new stream starts (SSRC change or re-anchor): forget the ADPCM state.
    pub(crate) fn reset(&mut self) {
        if let Some(g722) = self.g722.as_mut() {
            **g722 = G722Decoder::new();
        }
        self.last = 0;
    }

    /// Decodes one payload into `out` (cleared first) at `file_rate`: `payload.len()` RTP clock
    /// ticks (8 kHz) of audio for all three codecs, i.e. `payload.len() * file_rate / 8000`
    /// samples.
    pub(crate) fn decode(
        &mut self,
        kind: AudioKind,
        payload: &[u8],
        file_rate: u32,
        out: &mut Vec<i16>,
    ) {
        out.clear();
        self.decode_append(kind, payload, file_rate, out);
    }

    /// `decode`, appending to what `out` holds.
    pub(crate) fn decode_append(
        &mut self,
        kind: AudioKind,
        payload: &[u8],
        file_rate: u32,
        out: &mut Vec<i16>,
    ) {
        let table = match kind {
            AudioKind::Pcmu => &g711::ULAW_TO_LINEAR,
            AudioKind::Pcma => &g711::ALAW_TO_LINEAR,
            AudioKind::G722 => {
                let g722 = self.g722.get_or_insert_with(Box::default);
                if file_rate == 16_000 {
                    return g722.decode(payload, out);
                }
                // Down-sample by 2, averaging the two samples of each byte as a crude low-pass.
                out.reserve(payload.len());
                return g722
                    .decode_pairs(payload, |a, b| out.push(((a as i32 + b as i32) / 2) as i16));
            }
        };
        if file_rate == 8_000 {
            out.extend(payload.iter().map(|&b| table[b as usize]));
            return;
        }
        // Up-sample by 2 with linear interpolation (a narrowband leg in a wideband file).
        out.reserve(payload.len() * 2);
        for &b in payload {
            let s = table[b as usize];
            out.push(((self.last as i32 + s as i32) / 2) as i16);
            out.push(s);
            self.last = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_map_static_and_dynamic() {
        let map = PayloadMap::new()
            .with_rtpmap(101, "telephone-event/8000")
            .with_rtpmap(111, "opus/48000/2");
        assert_eq!(map.codec(0), &Codec::Pcmu);
        assert_eq!(map.codec(8), &Codec::Pcma);
        assert_eq!(map.codec(9), &Codec::G722);
        assert_eq!(map.codec(13), &Codec::ComfortNoise);
        assert_eq!(map.codec(101), &Codec::TelephoneEvent);
        assert_eq!(map.codec(111), &Codec::Other("opus".into()));
        assert_eq!(map.codec(18), &Codec::Other("PT18".into()));
        assert!(!map.codec(111).is_audio_decodable());
        // Payload types are 7 bits: the marker bit does not make another type.
        assert_eq!(map.codec(101 | 0x80), &Codec::TelephoneEvent);
        assert_eq!(map.codec(0x80), &Codec::Pcmu);
        // An rtpmap overrides a static type; a later one for the same type replaces it.
        let remapped = PayloadMap::new()
            .with_rtpmap(0, "PCMA/8000")
            .with_rtpmap(96, "PCMU/8000")
            .with_rtpmap(96, "G722/8000");
        assert_eq!(remapped.codec(0), &Codec::Pcma);
        assert_eq!(remapped.codec(96), &Codec::G722);
        assert_eq!(remapped.codec(8), &Codec::Pcma);
        assert_eq!(Codec::G722.file_rate(), 16_000);
        assert_eq!(Codec::from_rtpmap("pcma/8000"), Codec::Pcma);
    }

    #[test]
    fn decodes_to_the_file_rate() {
        let mut d = LegDecoder::new();
        let mut out = Vec::new();
        d.decode(AudioKind::Pcmu, &[0x80; 160], 8_000, &mut out);
        assert_eq!(out.len(), 160);
        d.decode(AudioKind::Pcma, &[0xd5; 160], 16_000, &mut out);
        assert_eq!(out.len(), 320);
        assert_eq!(out[319], 8);
        d.decode(AudioKind::G722, &[0xff; 160], 16_000, &mut out);
        assert_eq!(out.len(), 320);
        d.decode(AudioKind::G722, &[0xff; 160], 8_000, &mut out);
        assert_eq!(out.len(), 160);
    }

    /// What the decoder gave when it had its own buffer: G.722 decoded at 16 kHz, then halved
    /// by averaging pairs; G.711 doubled by interpolating with the last sample.
    #[test]
    fn decodes_as_through_a_native_buffer_and_appends() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let mut native = Vec::new();
        G722Decoder::new().decode(&payload, &mut native);
        let halved: Vec<i16> = native
            .chunks_exact(2)
            .map(|p| ((p[0] as i32 + p[1] as i32) / 2) as i16)
            .collect();
        let mut d = LegDecoder::new();
        let mut out = vec![7, 7];
        d.decode_append(AudioKind::G722, &payload, 8_000, &mut out);
        assert_eq!(out[..2], [7, 7], "appended after what was there");
        assert_eq!(out[2..], halved[..]);
        // A new stream starts the ADPCM state afresh.
        d.reset();
        d.decode(AudioKind::G722, &payload, 16_000, &mut out);
        assert_eq!(out, native);

        let mut last = 0i32;
        let doubled: Vec<i16> = payload
            .iter()
            .flat_map(|&b| {
                let s = g711::ULAW_TO_LINEAR[b as usize];
                let mid = ((last + s as i32) / 2) as i16;
                last = s as i32;
                [mid, s]
            })
            .collect();
        d.decode(AudioKind::Pcmu, &payload, 16_000, &mut out);
        assert_eq!(out, doubled);
    }
}
