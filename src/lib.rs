//! trunkguard: a SIP trunk gateway (B2BUA) and call-recording compliance monitor.
//! See docs/architecture.md for how the parts fit together.

pub mod api;
pub mod app;
pub mod b2bua;
pub mod bounded;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod evidence;
#[doc(hidden)]
pub mod fuzz;
pub mod media;
pub mod model;
pub mod monitor;
pub mod policy;
pub mod recording;
pub mod retention;
pub mod shutdown;
pub mod sip;
pub mod store;
pub mod trunks;
