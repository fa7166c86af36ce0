//! SIP: sockets, framing, the normalizing front end, and the RFC 3261 transaction layer.

pub mod message;
pub mod transaction;
pub mod transport;
