//! ITU-T G.711: PCMU (μ-law) and PCMA (A-law) to 16-bit linear PCM.
//!
//! Decoding is a lookup in a 256-entry table built at compile time from the G.711 expansion rules
//! (the same values as the classic Sun reference code), so the hot path is one load per sample.
//! The encoders are here for tests and for making test audio; the gateway never transcodes.

const SIGN_BIT: u8 = 0x80;
const QUANT_MASK: u8 = 0x0f;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
/// μ-law bias (33 in 14-bit units, shifted left by 2).
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude μ-law can encode (before the bias is added).
const ULAW_CLIP: i32 = 8159;

const fn ulaw_expand(byte: u8) -> i16 {
    let u = !byte;
    let mut t = (((u & QUANT_MASK) as i32) << 3) + ULAW_BIAS;
    t <<= ((u & SEG_MASK) >> SEG_SHIFT) as i32;
    if u & SIGN_BIT != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_expand(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & QUANT_MASK) as i32) << 4;
    let seg = ((a & SEG_MASK) >> SEG_SHIFT) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & SIGN_BIT != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// Builds a 256-entry table; `alaw` picks the expansion (const fn cannot take a fn pointer).
const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_expand(i as u8)
        } else {
            ulaw_expand(i as u8)
        };
        i += 1;
    }
    table
}

/// μ-law byte → linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = build_table(false);
/// A-law byte → linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = build_table(true);

/// Decodes PCMU bytes, appending one sample per byte to `out`.
pub fn decode_ulaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ULAW_TO_LINEAR[b as usize]));
}

/// Decodes PCMA bytes, appending one sample per byte to `out`.
pub fn decode_alaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ALAW_TO_LINEAR[b as usize]));
}

/// Segment of `value` given the segment end points (8 means "beyond the last segment").
fn segment(value: i32, ends: &[i32; 8]) -> u8 {
    ends.iter().position(|&end| value <= end).unwrap_or(8) as u8
}

/// Linear sample → μ-law byte (G.711 compression).
pub fn encode_ulaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
    let mut pcm = (sample as i32) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7f
    } else {
        0xff
    };
    pcm = pcm.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(pcm, &ENDS);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let u = (seg << 4) | (((pcm >> (seg + 1)) as u8) & QUANT_MASK);
    u ^ mask
}

/// Linear sample → A-law byte (G.711 compression).
pub fn encode_alaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let mut pcm = (sample as i32) >> 3;
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &ENDS);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let quant = if seg < 2 { pcm >> 1 } else { pcm >> seg };
    let a = (seg << SEG_SHIFT) | ((quant as u8) & QUANT_MASK);
    a ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // Reference values from the G.711 expansion table.
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ULAW_TO_LINEAR[0xff], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7f], 0);
        assert_eq!(ULAW_TO_LINEAR[0xfe], 8);
        assert_eq!(ULAW_TO_LINEAR[0x7e], -8);
        assert_eq!(ULAW_TO_LINEAR[0xf0], 120);
        assert_eq!(ULAW_TO_LINEAR[0x70], -120);
        assert_eq!(ULAW_TO_LINEAR[0x0f], -16764);
        assert_eq!(ULAW_TO_LINEAR[0x8f], 16764);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(ALAW_TO_LINEAR[0xd5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xaa], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2a], -32256);
        assert_eq!(ALAW_TO_LINEAR[0xd4], 24);
        assert_eq!(ALAW_TO_LINEAR[0x80], 5504);
        assert_eq!(ALAW_TO_LINEAR[0x00], -5504);
    }

    #[test]
    fn whole_tables_match_an_independent_decoder() {
        // Position-weighted sums of all 256 entries as decoded by another G.711 implementation.
        let weighted = |t: &[i16; 256]| -> i64 {
            t.iter()
                .enumerate()
                .map(|(i, &v)| (i as i64 + 1) * v as i64)
                .sum()
        };
        assert_eq!(weighted(&ULAW_TO_LINEAR), 98_107_392);
        assert_eq!(weighted(&ALAW_TO_LINEAR), 100_139_008);
    }

    #[test]
    fn tables_are_odd_symmetric_and_monotonic() {
        for b in 0..128usize {
            // The sign bit flips the sign and nothing else.
            assert_eq!(ULAW_TO_LINEAR[b], -ULAW_TO_LINEAR[b | 0x80]);
            assert_eq!(ALAW_TO_LINEAR[b ^ 0x80], -ALAW_TO_LINEAR[b]);
        }
        // μ-law: 0x80..0xff runs from the largest positive value down to 0.
        for b in 0x80..0xffusize {
            assert!(ULAW_TO_LINEAR[b] > ULAW_TO_LINEAR[b + 1]);
        }
        let mut alaw: Vec<i16> = ALAW_TO_LINEAR.to_vec();
        alaw.sort_unstable();
        alaw.dedup();
        assert_eq!(alaw.len(), 256, "A-law has no duplicate levels");
    }

    #[test]
    fn round_trip_every_code() {
        for b in 0..=255u8 {
            let x = ULAW_TO_LINEAR[b as usize];
            assert_eq!(ULAW_TO_LINEAR[encode_ulaw(x) as usize], x, "ulaw {b:#04x}");
            let y = ALAW_TO_LINEAR[b as usize];
            assert_eq!(encode_alaw(y), b, "alaw {b:#04x}");
        }
    }

    #[test]
    fn quantization_error_is_small() {
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ULAW_TO_LINEAR[encode_ulaw(x) as usize] as i32;
            let a = ALAW_TO_LINEAR[encode_alaw(x) as usize] as i32;
            let x = x as i32;
            // Logarithmic steps: error at most half a step, ~3.2 % of the magnitude (plus the
            // zero region and the clipped top of μ-law).
            let tol = |v: i32| v.abs() / 16 + 16;
            assert!((u - x).abs() <= tol(x).max(if x.abs() > 32124 { 700 } else { 0 }));
            assert!((a - x).abs() <= tol(x), "alaw {x} -> {a}");
        }
    }

    #[test]
    fn decode_appends() {
        let mut out = vec![1];
        decode_ulaw(&[0xff, 0x80], &mut out);
        decode_alaw(&[0xd5], &mut out);
        assert_eq!(out, vec![1, 0, 32124, 8]);
    }
}
