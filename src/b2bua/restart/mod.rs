//! After a crash the journal's calls are closed (`monitor::recovery`), but the PBX and the
//! carrier may still hold their dialogs: a call they believe up, an INVITE still waiting. The
//! next start ends them, once the interfaces are up: a BYE on each confirmed leg, a CANCEL for
//! an INVITE we had sent, a final error response for one we had received; and while a late
//! response to such an INVITE can still come, its ACK (and a BYE, for a 2xx).

mod hangup;
mod late;
pub(crate) mod record;

pub use hangup::RestartReport;
pub(crate) use late::LateResponses;

use std::sync::Arc;

use crate::monitor::recovery::Interrupted;
use crate::shutdown::Shutdown;

impl super::B2bua {
    /// End the dialogs of calls interrupted by a crash (see the module documentation). Runs
    /// in the background for at most about 64·T1; the report says what the peers answered.
    pub fn end_interrupted_dialogs(
        &self,
        calls: Vec<Interrupted>,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<RestartReport> {
        tokio::spawn(hangup::end_dialogs(Arc::clone(&self.ctx), calls, shutdown))
    }
}
