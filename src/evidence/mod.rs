//! Evidence: whether what is on disk is what was recorded. Joins the store (the digests kept
//! with each CDR) and the recordings folder, so it stands above both; the API and the command
//! line use it. `package` writes the evidence package (a ZIP with a manifest of digests);
//! `chain` walks the audit and enforcement logs' hash chains.

pub mod chain;
pub mod keys;
pub mod package;
pub mod verify;
