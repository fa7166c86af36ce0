//! SIP: sockets, framing, the normalizing front end, and the RFC 3261 transaction layer.

pub mod digest;
pub mod flood;
pub mod frontend;
pub mod message;
pub mod response;
pub mod shed;
pub mod stats;
pub mod trace;
pub mod transaction;
pub mod transport;
pub mod uri_text;
pub mod validate;
