//! CDR assembly and the path to the store; later KPI windows, anomaly rules, enforcement.

pub mod call_media;
pub mod cdr;
pub mod cdr_writer;
pub mod complaint_csv;
pub mod q850;
pub mod recovery;

pub use cdr::{Cdr, Direction, Disposition, HangupSide};
pub use cdr_writer::{CdrSink, CdrStats, CdrWriter, CdrWriterError, CdrWriterHandle};
