//! ITU-T G.722 decoder, 64 kbit/s mode (mode 1): one byte → two 16 kHz samples.
//!
//! Written from the G.722 block diagrams (sub-band ADPCM: a 6-bit lower band and a 2-bit higher
//! band, each with its own adaptive quantizer and pole/zero predictor, recombined by the 24-tap
//! receive QMF). Integer arithmetic follows the recommendation's fixed-point rules, so the output
//! matches other bit-exact decoders (checked against a reference stream in the tests).
//!
//! No crate fits: the G.722 crates on crates.io either pull in a whole media framework or need a
//! newer compiler than this project's `rust-version`.
//!
//! The decoder is stateful (ADPCM), so packets of one stream must be fed in order; a new stream
//! (SSRC change, re-anchor) should get a fresh decoder.

/// The 12 distinct QMF coefficients (the filter is symmetric: 24 taps).
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Lower band: inverse quantizer for the 6-bit code (64 kbit/s), block 5L.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Lower band: inverse quantizer of the 4-bit code that drives adaptation, block 2L.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Lower band: 4-bit code → index into `WL`.
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Lower band: log scale factor multipliers.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Higher band: inverse quantizer of the 2-bit code.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Higher band: 2-bit code → index into `WH`.
const RH2: [usize; 4] = [2, 1, 2, 1];
/// Higher band: log scale factor multipliers.
const WH: [i32; 3] = [0, -214, 798];
/// Inverse log table used by both scale factor computations.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

fn sat16(x: i32) -> i32 {
    x.clamp(i16::MIN as i32, i16::MAX as i32)
}

/// Sign of a 16-bit value as the recommendation tests it (arithmetic shift: 0 or -1).
fn sign(x: i32) -> i32 {
    x >> 15
}

/// State of one sub-band: predictor, its delay lines and the quantizer scale.
#[derive(Debug, Clone, Default)]
struct Band {
    /// Predicted signal (sp + sz).
    s: i32,
    sp: i32,
    sz: i32,
    /// Reconstructed signal, now and two samples back.
    r: [i32; 3],
    /// Pole predictor coefficients a1, a2 (index 0 unused).
    a: [i32; 3],
    /// Partially reconstructed signal p = sz + d, now and two back.
    p: [i32; 3],
    /// Quantized difference signal, now and six back.
    d: [i32; 7],
    /// Zero predictor coefficients b1..b6 (index 0 unused).
    b: [i32; 7],
    /// Log scale factor and the linear scale factor derived from it.
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Band {
            det,
            ..Band::default()
        }
    }

    /// Scale factor adaptation (blocks 3L/3H: LOGSCL and SCALEL/SCALEH).
    fn adapt_scale(&mut self, wl: i32, nb_max: i32, shift_base: i32) {
        self.nb = (((self.nb * 127) >> 7) + wl).clamp(0, nb_max);
        let idx = ((self.nb >> 6) & 31) as usize;
        let shift = shift_base - (self.nb >> 11);
        let v = if shift < 0 {
            ILB[idx] << -shift
        } else {
            ILB[idx] >> shift
        };
        self.det = v << 2;
    }

    /// Block 4: reconstruction, predictor coefficient update and the next prediction.
    fn update(&mut self, d: i32) {
        self.d[0] = d;
        self.r[0] = sat16(self.s + d);
        self.p[0] = sat16(self.sz + d);

        // UPPOL2: second pole coefficient.
        let (sg0, sg1, sg2) = (sign(self.p[0]), sign(self.p[1]), sign(self.p[2]));
        let wd1 = sat16(self.a[1] << 2);
        let wd2 = (if sg0 == sg1 { -wd1 } else { wd1 }).min(32767);
        let mut a2 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 };
        a2 += (self.a[2] * 32512) >> 15;
        let a2 = a2.clamp(-12288, 12288);

        // UPPOL1: first pole coefficient, limited by the new a2 for stability.
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let mut a1 = sat16(wd1 + ((self.a[1] * 32640) >> 15));
        let limit = sat16(15360 - a2);
        a1 = a1.clamp(-limit, limit);

        // UPZERO: sixth-order zero predictor, sign-sign LMS with leakage.
        let step = if d == 0 { 0 } else { 128 };
        let sgd = sign(d);
        let mut bp = [0i32; 7];
        for ((bp, &d), &b) in bp.iter_mut().zip(&self.d).zip(&self.b).skip(1) {
            let wd = if sign(d) == sgd { step } else { -step };
            *bp = sat16(wd + ((b * 32640) >> 15));
        }

        // DELAYA: shift the delay lines.
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
        }
        self.a[1] = a1;
        self.a[2] = a2;

        // FILTEP, FILTEZ, PREDIC: the next prediction.
        let wd1 = (self.a[1] * sat16(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * sat16(self.r[2] + self.r[2])) >> 15;
        self.sp = sat16(wd1 + wd2);
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat16(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat16(sz);
        self.s = sat16(self.sp + self.sz);
    }
}

/// A G.722 (64 kbit/s) decoder for one RTP stream.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    /// Receive QMF delay line.
    x: [i32; 24],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> Self {
        G722Decoder {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
        }
    }

    /// Decodes `payload`, appending two 16 kHz samples per byte to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.reserve(payload.len() * 2);
        self.decode_pairs(payload, |a, b| {
            out.push(a);
            out.push(b);
        });
    }

    /// Decodes `payload`, handing each byte's two 16 kHz samples to `each`, in order.
    pub fn decode_pairs(&mut self, payload: &[u8], mut each: impl FnMut(i16, i16)) {
        for &code in payload {
            let (a, b) = self.decode_byte(code);
            each(a, b);
        }
    }

    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        let ilow = (code & 0x3f) as usize;
        let ihigh = (code >> 6) as usize;

        // Lower band: the full 6-bit code reconstructs the signal, its top 4 bits drive the
        // adaptation (so encoder and decoder adapt the same way at any bit rate).
        let low = &mut self.low;
        let rlow = (low.s + ((low.det * QM6[ilow]) >> 15)).clamp(-16384, 16383);
        let ilow4 = ilow >> 2;
        let dlow = (low.det * QM4[ilow4]) >> 15;
        low.adapt_scale(WL[RL42[ilow4]], 18432, 8);
        low.update(dlow);

        let high = &mut self.high;
        let dhigh = (high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + high.s).clamp(-16384, 16383);
        high.adapt_scale(WH[RH2[ihigh]], 22528, 10);
        high.update(dhigh);

        // Receive QMF: two new inputs, two output samples.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let mut xout1 = 0;
        let mut xout2 = 0;
        for (i, &c) in QMF.iter().enumerate() {
            xout2 += self.x[2 * i] * c;
            xout1 += self.x[2 * i + 1] * QMF[11 - i];
        }
        (sat16(xout1 >> 11) as i16, sat16(xout2 >> 11) as i16)
    }
}

#[cfg(test)]
pub(crate) mod encoder;

#[cfg(test)]
mod tests {
    use super::encoder::G722Encoder;
    use super::*;

    fn tone(freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 16000.0).sin()) as i16)
            .collect()
    }

    /// A reference stream: 0.1 s of a 440 Hz + 3 kHz mix encoded by an independent G.722
    /// implementation, and that implementation's decoded output.
    const REF_ENCODED: &[u8] = include_bytes!("testdata/g722_ref.g722");
    const REF_DECODED: &[u8] = include_bytes!("testdata/g722_ref.s16le");

    #[test]
    fn matches_reference_decoder_bit_exactly() {
        let mut dec = G722Decoder::new();
        let mut out = Vec::new();
        dec.decode(REF_ENCODED, &mut out);
        let expected: Vec<i16> = REF_DECODED
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(out.len(), expected.len());
        assert_eq!(out, expected);
    }

    #[test]
    fn round_trip_keeps_a_tone() {
        let input = tone(1000.0, 8000.0, 3200);
        let mut enc = G722Encoder::new();
        let coded = enc.encode(&input);
        assert_eq!(coded.len(), input.len() / 2);
        let mut out = Vec::new();
        G722Decoder::new().decode(&coded, &mut out);
        assert_eq!(out.len(), input.len());
        // The codec delays the signal by the two QMFs (22 samples); compare after settling.
        let delay = 22;
        let (mut err, mut sig) = (0f64, 0f64);
        for i in 800..3000 {
            let d = out[i + delay] as f64 - input[i] as f64;
            err += d * d;
            sig += (input[i] as f64).powi(2);
        }
        let snr_db = 10.0 * (sig / err).log10();
        assert!(snr_db > 20.0, "SNR {snr_db:.1} dB");
    }

    #[test]
    fn silence_stays_quiet() {
        let coded = G722Encoder::new().encode(&vec![0i16; 1600]);
        let mut out = Vec::new();
        G722Decoder::new().decode(&coded, &mut out);
        assert!(out.iter().all(|s| s.abs() < 64));
    }
}
