//! A call's dialog state for its journal row (`call_journal.dialogs_json`), encoded when the row
//! is written. The b2bua journals a call at each step of its set-up (start, answer, recording
//! opened), a few milliseconds apart, and the CDR writer keeps only the latest entry of a call
//! in its batch (and none once the call's CDR is in it): encoding every entry's JSON on the
//! call's task cost 2–3 % of the gateway's instructions for rows that were never written
//! (bench/README.md, session 13). The shape of the JSON is the b2bua's (`b2bua::restart`); here
//! it is opaque.

use std::sync::Arc;

/// What makes the JSON: the b2bua's record of the call's legs.
pub trait DialogsJson: Send + Sync {
    /// The JSON; None if it cannot be encoded (the row then has none).
    fn json(&self) -> Option<String>;
}

/// JSON made already (read back from the spool, tests).
impl DialogsJson for String {
    fn json(&self) -> Option<String> {
        Some(self.clone())
    }
}

/// The dialogs of one journal entry, encoded on demand (each time: the writer asks once).
#[derive(Clone)]
pub struct Dialogs(Arc<dyn DialogsJson>);

impl Dialogs {
    pub fn new(dialogs: impl DialogsJson + 'static) -> Dialogs {
        Dialogs(Arc::new(dialogs))
    }

    pub fn json(&self) -> Option<String> {
        self.0.json()
    }
}

impl From<String> for Dialogs {
    fn from(json: String) -> Dialogs {
        Dialogs::new(json)
    }
}

/// Equal when they encode alike (the journal compares entries by what they store).
impl PartialEq for Dialogs {
    fn eq(&self, other: &Dialogs) -> bool {
        self.json() == other.json()
    }
}

impl std::fmt::Debug for Dialogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Dialogs").field(&self.json()).finish()
    }
}
