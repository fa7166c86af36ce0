//! What the start reads before anything opens: the recordings folder made absolute, the
//! descriptor budget, the trunks in force.

use crate::app::AppError;
use crate::b2bua::capacity::CallCapacity;
use crate::config::Config;
use crate::store::Store;

/// First of all, so that the recorders, the repair, the API and the purge agree on the
/// recordings folder whatever the working directory; the paths stored (repairs, journal, CDRs)
/// are relative to it (`recording::paths`), so that any node of a cluster finds a file
/// wherever it mounts a shared folder.
pub(super) fn with_absolute_recording_dir(mut config: Config) -> Config {
    if let Ok(abs) = std::path::absolute(&config.recording.dir) {
        config.recording.dir = abs;
    }
    config
}

/// Before any descriptor is opened: the soft `RLIMIT_NOFILE` raised to the hard limit, and the
/// calls it allows computed and logged (`app::descriptors`).
pub(super) fn descriptor_budget() -> CallCapacity {
    crate::app::descriptors::budget()
}

/// The trunks in force: the config file's seed an empty database (the first start); after that
/// the database's are the truth (admins change them at run time) and the file's are ignored.
/// Right after the database opens: admission, the monitor and the KPI rollup all start from
/// the trunks in force.
pub(super) async fn trunks_from_store(store: &Store, config: Config) -> Result<Config, AppError> {
    let seeds: Vec<(String, String)> = config
        .trunks
        .iter()
        .map(|t| t.name.clone())
        .zip(config.trunk_sources.iter().cloned())
        .collect();
    if store
        .seed_trunks(&seeds, "config file", chrono::Utc::now())
        .await?
    {
        tracing::info!(trunks = seeds.len(), "trunks seeded from the config file");
        return Ok(config);
    }
    let stored: Vec<String> = store
        .trunk_definitions()
        .await?
        .into_iter()
        .map(|d| d.definition)
        .collect();
    // Off the runtime: a trunk's `auth_password_file` is read from disk.
    let next = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || config.with_trunk_sources(&stored))
            .await
            .map_err(|e| AppError::Blocking(e.to_string()))??
    };
    let file: Vec<&str> = config.trunks.iter().map(|t| t.name.as_str()).collect();
    let db: Vec<&str> = next.trunks.iter().map(|t| t.name.as_str()).collect();
    if config.trunk_sources != next.trunk_sources {
        tracing::warn!(?file, ?db, "the database's trunks are in force; the config file's [[trunks]] only seed an empty database");
    }
    Ok(next)
}
