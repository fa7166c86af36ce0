//! CDR assembly and the path to the store; KPI windows, anomaly rules, enforcement ladder and
//! complaints (`Monitor`).

pub mod cdr_csv;
pub mod cdr_spool;
pub mod cdr_writer;
pub mod complaint_csv;
pub mod enforcement;
mod engine;
mod ids;
pub mod kpi;
pub mod outcomes;
pub mod persist;
pub mod recovery;
pub mod report;
pub mod rules;
pub mod service;
pub mod sip_trace_writer;

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
pub(crate) mod testkit;

pub use cdr_writer::{CdrSink, CdrStats, CdrWriter, CdrWriterError, CdrWriterHandle};
pub use engine::{Monitor, MonitorLimits, MonitorOutput, MonitorStats};
