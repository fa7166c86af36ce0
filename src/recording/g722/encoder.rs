//! G.722 encoder (64 kbit/s), for tests only: it makes G.722 test streams. It shares the band
//! state and block 4 with the decoder, so the two adapt in lockstep as the recommendation requires.

use super::{sat16, Band, QM2, QM4, QMF, RH2, RL42, WH, WL};

/// Lower band quantizer decision levels (block 1L), scaled by `det >> 12`.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// Lower band code for a negative / positive difference in interval i.
const ILN: [u8; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [u8; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];

pub(crate) struct G722Encoder {
    low: Band,
    high: Band,
    x: [i32; 24],
}

impl G722Encoder {
    pub(crate) fn new() -> Self {
        G722Encoder {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
        }
    }

    /// Encodes 16 kHz samples (an even count) into one byte per pair.
    pub(crate) fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        pcm.chunks_exact(2)
            .map(|pair| self.encode_pair(pair[0], pair[1]))
            .collect()
    }

    fn encode_pair(&mut self, s0: i16, s1: i16) -> u8 {
        // Transmit QMF: split into lower and higher band.
        self.x.copy_within(2.., 0);
        self.x[22] = s0 as i32;
        self.x[23] = s1 as i32;
        let (mut sumodd, mut sumeven) = (0, 0);
        for (i, &c) in QMF.iter().enumerate() {
            sumodd += self.x[2 * i] * c;
            sumeven += self.x[2 * i + 1] * QMF[11 - i];
        }
        let xlow = (sumeven + sumodd) >> 14;
        let xhigh = (sumeven - sumodd) >> 14;

        let low = &mut self.low;
        let el = sat16(xlow - low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let i = (1..30)
            .find(|&i| wd < (Q6[i] * low.det) >> 12)
            .unwrap_or(30);
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        let ril = (ilow >> 2) as usize;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.adapt_scale(WL[RL42[ril]], 18432, 8);
        low.update(dlow);

        let high = &mut self.high;
        let eh = sat16(xhigh - high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
        high.adapt_scale(WH[RH2[ihigh as usize]], 22528, 10);
        high.update(dhigh);

        (ihigh << 6) | ilow
    }
}
