//! Late audio put where it belongs in a WAV already written (`timeline::Patch`): how many may
//! wait for the header's rewrite, adjacent ones joined into runs, and the positional
//! read-modify-write of one channel.

use std::fs::File;

use super::timeline::Patch;
use super::wav::HEADER_LEN;

/// Bytes of one stereo 16-bit frame.
const FRAME_BYTES: u64 = 4;

/// Patches waiting at most before they are applied without waiting for the flush: a bound on
/// the memory a sender of many tiny late packets can make a call hold.
pub(crate) const MAX_PENDING_PATCHES: usize = 256;

/// Joins each patch to the one before it when it continues it on the same channel (a burst of
/// late packets, in order), so that a run costs one read and one write. Order is kept: a patch
/// that does not continue the previous one starts a new run.
pub(crate) fn coalesce(patches: Vec<Patch>) -> Vec<Patch> {
    let mut runs: Vec<Patch> = Vec::with_capacity(patches.len());
    for p in patches {
        match runs.last_mut() {
            Some(run)
                if run.channel == p.channel && run.pos + run.samples.len() as u64 == p.pos =>
            {
                run.samples.extend_from_slice(&p.samples);
            }
            _ => runs.push(p),
        }
    }
    runs
}

/// Overwrites one channel of frames `patch.pos ..` of a stereo 16-bit WAV, leaving the other.
pub(crate) fn patch_channel(file: &File, patch: &Patch) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let at = HEADER_LEN + patch.pos * FRAME_BYTES;
    let mut frames = vec![0u8; patch.samples.len() * FRAME_BYTES as usize];
    file.read_exact_at(&mut frames, at)?;
    for (frame, s) in frames
        .chunks_exact_mut(FRAME_BYTES as usize)
        .zip(&patch.samples)
    {
        let o = patch.channel * 2;
        frame[o..o + 2].copy_from_slice(&s.to_le_bytes());
    }
    file.write_all_at(&frames, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(pos: u64, channel: usize, samples: &[i16]) -> Patch {
        Patch {
            pos,
            channel,
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn adjacent_patches_of_a_channel_become_one_run_in_order() {
        let runs = coalesce(vec![
            patch(100, 0, &[1, 2]),
            patch(102, 0, &[3]),
            // Other channel, same place: a run of its own.
            patch(103, 1, &[9]),
            // Continues channel 0, but after a channel-1 patch: order kept, not merged back.
            patch(103, 0, &[4]),
            // A gap.
            patch(200, 0, &[5]),
            patch(201, 0, &[6]),
        ]);
        assert_eq!(
            runs,
            vec![
                patch(100, 0, &[1, 2, 3]),
                patch(103, 1, &[9]),
                patch(103, 0, &[4]),
                patch(200, 0, &[5, 6]),
            ]
        );
        assert!(coalesce(Vec::new()).is_empty());
    }
}
