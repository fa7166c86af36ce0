//! Call recording: decode, timestamp-aligned stereo WAV, crash safety, repair, digest.
pub mod codec;
pub mod digest;
pub mod error;
pub mod g711;
pub mod g722;
pub mod packet;
pub(crate) mod pcap;
pub(crate) mod timeline;
