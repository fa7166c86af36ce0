//! Call recording: decode, timestamp-aligned stereo WAV, crash safety, repair, digest.
pub mod g711;
pub mod g722;
