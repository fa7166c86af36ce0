//! The recording's WAV file as it is written: stereo 16-bit PCM, samples appended through a
//! small write buffer, the header's two sizes rewritten in place on `flush`.
//!
//! What hound's writer (used before) did, minus what cost memory or system calls per call: its
//! sample buffer grew to the largest batch ever written and stayed (kilobytes a call after a
//! backlog), its 8 KiB `BufWriter` was flushed by every seek, and a header update was four
//! `lseek`s and two writes. Here every write is positional (`pwrite`: no file offset to keep),
//! samples are encoded straight into a 4 KiB buffer, and a header update is one 40-byte write.
//! The bytes on disk are the same as hound's: a 44-byte RIFF/`fmt `/`data` header
//! (`PCMWAVEFORMAT`), then little-endian interleaved samples.
//!
//! Crash safety is unchanged: after `flush` the header describes every sample written, so a
//! process killed later leaves a file that plays up to that point (`repair` extends the header
//! over what was written after it).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes of the header: the samples start here.
pub(crate) const HEADER_LEN: u64 = 44;
/// Bytes per sample (16-bit) and per stereo frame.
const SAMPLE_BYTES: u32 = 2;
const CHANNELS: u16 = 2;
/// The write buffer: at 8 kHz a write about every 0.13 s (hound's 8 KiB with its seeks made
/// more system calls per second than this does with half the memory).
pub(crate) const WRITE_BUFFER: usize = 4 * 1024;

/// A WAV file being written. Dropped without `finalize` (a write failure, a worker's panic), it
/// still writes what it buffered and the header, ignoring errors, as hound's writer did.
pub(crate) struct WavWriter {
    file: Arc<File>,
    sample_rate: u32,
    buf: Vec<u8>,
    /// Sample bytes in the file and in `buf`.
    data_bytes: u64,
    /// Set once the last flush is done (`finalize`): nothing for `drop` to write.
    finalized: bool,
}

impl WavWriter {
    /// Writes the header (for no samples yet) at the start of `file`.
    pub(crate) fn create(file: Arc<File>, sample_rate: u32) -> io::Result<WavWriter> {
        file.write_all_at(&header(sample_rate, 0), 0)?;
        Ok(WavWriter {
            file,
            sample_rate,
            buf: Vec::new(),
            data_bytes: 0,
            finalized: false,
        })
    }

    /// Appends interleaved samples (left, right, left, …); written when the buffer is full.
    pub(crate) fn write_samples(&mut self, samples: &[i16]) -> io::Result<()> {
        let added = samples.len() as u64 * u64::from(SAMPLE_BYTES);
        if data_len_field(self.data_bytes + added).is_none() {
            return Err(io::Error::other("WAV data past 4 GiB"));
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(WRITE_BUFFER);
        }
        let per_fill = WRITE_BUFFER / SAMPLE_BYTES as usize;
        let mut rest = samples;
        while !rest.is_empty() {
            let room = per_fill - self.buf.len() / SAMPLE_BYTES as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            // Sized once, then filled two bytes a sample: a loop the compiler vectorizes (a
            // push per sample checked the capacity each time: 3.5 % of the gateway's CPU with
            // RTP, bench/README.md session 16).
            let from = self.buf.len();
            self.buf.resize(from + now.len() * SAMPLE_BYTES as usize, 0);
            for (bytes, s) in self.buf[from..]
                .chunks_exact_mut(SAMPLE_BYTES as usize)
                .zip(now)
            {
                bytes.copy_from_slice(&s.to_le_bytes());
            }
            self.data_bytes += now.len() as u64 * u64::from(SAMPLE_BYTES);
            rest = later;
            if self.buf.len() == WRITE_BUFFER {
                self.write_buffer()?;
            }
        }
        Ok(())
    }

    /// Puts the buffered samples in the file (not the header).
    pub(crate) fn write_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = HEADER_LEN + self.data_bytes - self.buf.len() as u64;
        // Emptied even when the write fails: the caller stops writing this file then, and the
        // header is made to match what reached the disk (`repair::fix_wav_header`).
        let written = self.file.write_all_at(&self.buf, at);
        self.buf.clear();
        written
    }

    /// Writes the buffered samples, then the header's sizes for every sample so far: the file
    /// is a valid WAV of all that was written.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.write_buffer()?;
        // `write_samples` keeps the sizes within 32 bits.
        let data_len = data_len_field(self.data_bytes).unwrap_or(0);
        // Bytes 4..44 in one write: the RIFF size, the format chunk (the same bytes again) and
        // the data size.
        self.file
            .write_all_at(&header(self.sample_rate, data_len)[4..], 4)
    }

    /// The last flush; the file is complete.
    pub(crate) fn finalize(mut self) -> io::Result<()> {
        self.finalized = true;
        self.flush()
    }

    /// Sample bytes written so far (buffered ones included).
    #[cfg(test)]
    pub(crate) fn data_bytes(&self) -> u64 {
        self.data_bytes
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        if !self.finalized {
            let _ = self.flush();
        }
    }
}

/// `data_bytes` as the header's 32-bit data size, if the RIFF size (that plus 36) fits too.
fn data_len_field(data_bytes: u64) -> Option<u32> {
    let len = u32::try_from(data_bytes).ok()?;
    len.checked_add(HEADER_LEN as u32 - 8)?;
    Some(len)
}

/// The 44-byte header of a stereo 16-bit PCM WAV holding `data_len` sample bytes.
fn header(sample_rate: u32, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = CHANNELS * SAMPLE_BYTES as u16;
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(data_len + HEADER_LEN as u32 - 8).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&(SAMPLE_BYTES as u16 * 8).to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    fn temp_file() -> (tempfile::TempDir, Arc<File>, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        (dir, Arc::new(file), path)
    }

    /// What hound wrote for the same samples: header first, samples appended, `flush` at the
    /// end (as the recorder's writer did, through an 8 KiB `BufWriter`).
    fn hound_bytes(rate: u32, batches: &[Vec<i16>]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let mut wav = hound::WavWriter::new(&mut cursor, spec).unwrap();
            wav.flush().unwrap();
            for batch in batches {
                let mut w = wav.get_i16_writer(batch.len() as u32);
                for &s in batch {
                    w.write_sample(s);
                }
                w.flush().unwrap();
            }
            wav.finalize().unwrap();
        }
        cursor.into_inner()
    }

    #[test]
    fn same_bytes_as_hound_and_readable() {
        for rate in [8_000, 16_000] {
            // Batches of every size around the buffer's, so that writes straddle it.
            let batches: Vec<Vec<i16>> = (0..40u16)
                .map(|i| {
                    let n = usize::from(i) * 97 % 3000 * 2;
                    (0..n)
                        .map(|k| (k as i16).wrapping_mul(31) ^ i as i16)
                        .collect()
                })
                .collect();
            let (_dir, file, path) = temp_file();
            let mut wav = WavWriter::create(Arc::clone(&file), rate).unwrap();
            for b in &batches {
                wav.write_samples(b).unwrap();
            }
            wav.finalize().unwrap();
            let ours = std::fs::read(&path).unwrap();
            assert_eq!(ours, hound_bytes(rate, &batches), "rate {rate}");
            let reader = hound::WavReader::open(&path).unwrap();
            assert_eq!(reader.spec().sample_rate, rate);
            let total: usize = batches.iter().map(Vec::len).sum();
            assert_eq!(reader.len() as usize, total);
        }
    }

    #[test]
    fn flush_makes_the_file_valid_and_drop_writes_the_rest() {
        let (_dir, file, path) = temp_file();
        let mut wav = WavWriter::create(Arc::clone(&file), 8_000).unwrap();
        // A fresh file is a valid empty WAV.
        assert_eq!(hound::WavReader::open(&path).unwrap().len(), 0);
        wav.write_samples(&[1, 2, 3, 4]).unwrap();
        // Buffered: not in the file yet, and the header still says empty.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN);
        wav.flush().unwrap();
        let got: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [1, 2, 3, 4]);
        wav.write_samples(&[5, 6]).unwrap();
        assert_eq!(wav.data_bytes(), 12);
        drop(wav);
        let got: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
        // Positional writes: the descriptor's own offset is left alone (the patches and the
        // digest use the same file).
        let mut f = &*file;
        assert_eq!(f.stream_position().unwrap(), 0);
        let mut head = [0u8; 4];
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"RIFF");
    }

    #[test]
    fn the_buffer_is_allocated_at_the_first_samples_and_stays_its_size() {
        let (_dir, file, _path) = temp_file();
        let mut wav = WavWriter::create(file, 8_000).unwrap();
        assert_eq!(wav.buf.capacity(), 0);
        wav.write_samples(&vec![7; 20_000]).unwrap();
        assert_eq!(wav.buf.capacity(), WRITE_BUFFER);
        assert!(wav.buf.len() < WRITE_BUFFER);
        assert_eq!(wav.data_bytes(), 40_000);
    }

    #[test]
    fn header_sizes_overflow_is_an_error_not_a_wrap() {
        assert_eq!(data_len_field(0), Some(0));
        assert_eq!(
            data_len_field(u64::from(u32::MAX - 36)),
            Some(u32::MAX - 36)
        );
        assert_eq!(data_len_field(u64::from(u32::MAX - 35)), None);
        assert_eq!(data_len_field(1 << 33), None);
    }
}
