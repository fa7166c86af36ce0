//! The command line (`args.rs`, clap's derive; typed values in `values.rs`) and the subcommands
//! that work on the database beside (or without) the running gateway: KPI reports, operators'
//! enforcement orders, complaint imports, CDR search, recordings, retention, `verify`, the copy
//! of a SQLite database into PostgreSQL (`migrate-sqlite`), the logs' hash chains (`audit verify`),
//! signed daily manifests (`manifest seal|verify`). `main.rs`
//! parses, loads the config and starts the gateway or calls `run`; each subcommand writes its
//! output to the given writer and returns a `CliError` (main turns it into exit status 1).

mod args;
pub mod audit;
pub mod cdr;
pub mod complaints;
pub mod enforce;
pub mod keys;
pub mod manifest;
pub mod migrate;
pub mod recording;
pub mod report;
pub mod retention;
mod run;
pub mod token;
pub mod values;
mod verify;

pub use args::{
    AuditCommand, CdrCommand, Cli, Command, ComplaintsCommand, EnforceCommand, KeysCommand, Period,
    RecordingCommand, RetentionCommand, TokenCommand, Tool,
};
pub use run::{run, run_without_config, runs_without_config};

use crate::evidence::verify::VerifyError;
use crate::monitor::complaint_csv::ComplaintCsvError;
use crate::store::{CopyError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Complaints(#[from] ComplaintCsvError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// `migrate-sqlite` refused or failed: the target is as it was.
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("{0}")]
    Usage(String),
    /// A recording that cannot be handed out as evidence (missing, purged, digest mismatch).
    #[error("{0}")]
    Evidence(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl CliError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> CliError {
        CliError::Io {
            what: what.into(),
            source,
        }
    }
}

/// The trunks in force: the database's once the gateway has seeded it, else the config file's
/// (the gateway seeds the database from them at its first start).
pub async fn trunks_in_force(
    store: &crate::store::Store,
    config: &crate::config::Config,
) -> Result<Vec<crate::config::TrunkConfig>, CliError> {
    let stored: Vec<String> = store
        .trunk_definitions()
        .await?
        .into_iter()
        .map(|d| d.definition)
        .collect();
    if stored.is_empty() {
        return Ok(config.trunks.clone());
    }
    config
        .with_trunk_sources(&stored)
        .map(|c| c.trunks)
        .map_err(|e| CliError::Usage(format!("the database's trunks do not validate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trunks_in_force_are_the_databases_once_seeded() {
        let config = crate::config::Config::from_toml(
            "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
             [[trunks]]\nname = \"file\"\npbx = [\"10.0.0.0/24\"]\ncarrier = \"192.0.2.1:5060\"\n\
             inbound_to = \"10.0.0.5:5060\"\nnumbers = [\"+861012345678\"]\n",
        )
        .unwrap();
        let store = crate::store::Store::connect("sqlite::memory:")
            .await
            .unwrap();
        let names = |t: Vec<crate::config::TrunkConfig>| -> Vec<String> {
            t.into_iter().map(|t| t.name).collect()
        };
        assert_eq!(
            names(trunks_in_force(&store, &config).await.unwrap()),
            ["file"]
        );
        let renamed = config.trunk_sources[0].replace("\"file\"", "\"stored\"");
        store
            .put_trunk("stored", &renamed, "admin", chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(
            names(trunks_in_force(&store, &config).await.unwrap()),
            ["stored"]
        );
    }
}
