//! The trunks in force at run time: the one place a change to a trunk (through the API, or by
//! another node of the cluster: `sync.rs`) is validated, stored and applied to admission, the
//! monitor and the KPI rollup. Above `monitor` (it tells the monitor), below `api` and `app` (which use it).

mod book;
pub mod registration;
pub mod sync;

pub(crate) use book::{over_long_secs, OverLongMap};
pub use book::{parse_definition, NumberList, TrunkBook, TrunkError};
