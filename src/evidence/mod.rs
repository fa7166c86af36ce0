//! Evidence: whether what is on disk is what was recorded. Joins the store (the digests kept
//! with each CDR) and the recordings folder, so it stands above both; the API and the command
//! line use it. `package` writes the evidence package (a ZIP with a manifest of digests);
//! `chain` walks the audit and enforcement logs' hash chains. Signed daily manifests (issue
//! 17): `canonical` (the bytes that are hashed), `merkle` (RFC 6962), `manifest` (the signed
//! document and the checks the public key alone allows), `seal` (sealing a day from the store
//! and the files), `seal_task` (the daily seal), `manifest_verify` (a sealed day against the
//! database and the files now), `proof` (one call's inclusion proof in its evidence package).

pub mod canonical;
pub mod chain;
pub mod keys;
pub mod manifest;
pub mod manifest_verify;
pub mod merkle;
pub mod package;
pub mod proof;
pub mod seal;
pub mod seal_task;
pub mod verify;
