//! The trunks in force and their changes at run time (`TrunkBook`), shared by the gateway and the
//! HTTP API. A change is one trunk's `[[trunks]]` TOML table: parsed, validated with the other
//! trunks, stored, then applied to admission, the monitor and the KPI rollup at once. Changes go
//! one at a time (one lock), so a check ("no trunk of that name yet") holds for its change.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::cluster::bus::{Change, ChangeBus};
use crate::config::{Config, ConfigError, RuleId, TrunkConfig};
use crate::monitor::service::MonitorHandle;
use crate::policy::Policy;
use crate::store::{Store, StoreError, TrunkDefinition};

#[derive(Debug, thiserror::Error)]
pub enum TrunkError {
    #[error("no trunk named `{0}`")]
    NotFound(String),
    #[error("a trunk named `{0}` exists already")]
    Exists(String),
    #[error("`{number}` is in `{key}` already")]
    AlreadyListed { key: String, number: String },
    #[error("`{number}` is not in `{key}`")]
    NotListed { key: String, number: String },
    /// The definition does not parse or validate; `key` is the trunk's key at fault (`max_cps`,
    /// `rules.error_rate.threshold`…).
    #[error("trunk key `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// The definition is valid alone but clashes with the trunks in force (a number another
    /// trunk has, or listed twice) or with the trunk it replaces (another name).
    #[error("trunk key `{key}`: {message}")]
    Clash { key: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TrunkError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> TrunkError {
        TrunkError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Over-long-call threshold (seconds) per trunk, read by the CDR writer's KPI rollup.
pub(crate) type OverLongMap = Arc<RwLock<HashMap<String, u64>>>;

/// What a change expects to find.
#[derive(Debug, Clone, Copy)]
enum Expect<'a> {
    /// Create or replace.
    Any,
    /// Create only.
    New,
    /// Replace only this trunk (the definition must keep its name).
    Existing(&'a str),
}

pub struct TrunkBook {
    /// The config in force (trunks as the database holds them).
    config: tokio::sync::Mutex<Config>,
    store: Store,
    policy: Arc<Policy>,
    monitor: MonitorHandle,
    over_long: OverLongMap,
    /// In a cluster: where a change is announced to the other nodes (`attach_bus`).
    bus: OnceLock<ChangeBus>,
}

impl TrunkBook {
    pub(crate) fn new(
        config: Config,
        store: Store,
        policy: Arc<Policy>,
        monitor: MonitorHandle,
        over_long: OverLongMap,
    ) -> TrunkBook {
        TrunkBook {
            config: tokio::sync::Mutex::new(config),
            store,
            policy,
            monitor,
            over_long,
            bus: OnceLock::new(),
        }
    }

    /// In a cluster: every change made here is announced on `bus`, and the other nodes reload
    /// (`reload`). Once; a second bus is ignored.
    pub fn attach_bus(&self, bus: ChangeBus) {
        let _ = self.bus.set(bus);
    }

    /// Reads the trunks from the database again and applies them when they differ from the ones
    /// in force (another node changed them): as a change made here is applied. Returns whether
    /// they differed. Definitions that do not validate (a node of a newer version stored them)
    /// are refused and the trunks in force stay.
    pub async fn reload(&self) -> Result<bool, TrunkError> {
        let mut config = self.config.lock().await;
        self.reload_locked(&mut config).await
    }

    /// `reload` with the lock held. Every change starts with it, so that it is validated against
    /// (and edits) what the database holds now, other nodes' changes included.
    async fn reload_locked(&self, config: &mut Config) -> Result<bool, TrunkError> {
        let stored: Vec<String> = self
            .store
            .trunk_definitions()
            .await?
            .into_iter()
            .map(|d| d.definition)
            .collect();
        if stored == config.trunk_sources {
            return Ok(false);
        }
        let next = validated(config, stored).await?;
        self.apply_trunks(&next.trunks).await;
        let names: Vec<&str> = next.trunks.iter().map(|t| t.name.as_str()).collect();
        tracing::info!(trunks = ?names, "trunks reloaded from the database (changed by another node)");
        *config = next;
        Ok(true)
    }

    /// Tells the other nodes (when in a cluster) that the trunks changed; after the commit.
    async fn announce(&self) {
        if let Some(bus) = self.bus.get() {
            // A failure is logged by the bus; the others find the change at their re-check.
            let _ = bus.publish(Change::Trunks).await;
        }
    }

    /// The trunks in force, in order.
    pub async fn trunks(&self) -> Vec<TrunkConfig> {
        self.config.lock().await.trunks.clone()
    }

    /// Every stored definition (TOML text, who changed it last and when), in creation order.
    pub async fn definitions(&self) -> Result<Vec<TrunkDefinition>, TrunkError> {
        Ok(self.store.trunk_definitions().await?)
    }

    /// One stored definition.
    pub async fn definition(&self, name: &str) -> Result<TrunkDefinition, TrunkError> {
        self.definitions()
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| TrunkError::NotFound(name.to_string()))
    }

    /// Creates or replaces a trunk from its TOML table.
    pub async fn put(&self, definition: &str, by: &str) -> Result<TrunkConfig, TrunkError> {
        self.change(definition, by, Expect::Any).await
    }

    /// Creates a trunk; `Exists` when one of that name is there already.
    pub async fn create(&self, definition: &str, by: &str) -> Result<TrunkConfig, TrunkError> {
        self.change(definition, by, Expect::New).await
    }

    /// Replaces trunk `name`; the definition must keep the name (no renaming).
    pub async fn replace(
        &self,
        name: &str,
        definition: &str,
        by: &str,
    ) -> Result<TrunkConfig, TrunkError> {
        self.change(definition, by, Expect::Existing(name)).await
    }

    /// Changes trunk `name` by editing its TOML table (numbers, blocked numbers…).
    pub async fn edit<F>(&self, name: &str, by: &str, edit: F) -> Result<TrunkConfig, TrunkError>
    where
        F: FnOnce(&mut toml::Table) -> Result<(), TrunkError>,
    {
        let mut config = self.config.lock().await;
        self.reload_locked(&mut config).await?;
        let i = position(&config, name)?;
        let mut table: toml::Table = toml::from_str(&config.trunk_sources[i])
            .map_err(|e| TrunkError::invalid("definition", e.message().to_string()))?;
        edit(&mut table)?;
        let definition = toml::to_string(&table)
            .map_err(|e| TrunkError::invalid("definition", e.to_string()))?;
        let changed = self
            .apply(&mut config, &definition, by, Expect::Existing(name))
            .await;
        drop(config);
        if changed.is_ok() {
            self.announce().await;
        }
        changed
    }

    /// Adds `number` to one of trunk `name`'s number lists (`AlreadyListed` when a number that
    /// normalizes the same is there).
    pub async fn add_number(
        &self,
        name: &str,
        list: NumberList,
        number: &str,
        by: &str,
    ) -> Result<TrunkConfig, TrunkError> {
        let key = list.key();
        self.edit(name, by, |table| {
            let entries = number_array(table, key)?;
            if entries.iter().any(|v| same_number(v, number)) {
                return Err(TrunkError::AlreadyListed {
                    key: key.to_string(),
                    number: number.to_string(),
                });
            }
            entries.push(toml::Value::String(number.to_string()));
            Ok(())
        })
        .await
    }

    /// Removes `number` (and any entry that normalizes the same) from one of trunk `name`'s
    /// number lists (`NotListed` when it is not there).
    pub async fn remove_number(
        &self,
        name: &str,
        list: NumberList,
        number: &str,
        by: &str,
    ) -> Result<TrunkConfig, TrunkError> {
        let key = list.key();
        self.edit(name, by, |table| {
            let entries = number_array(table, key)?;
            let before = entries.len();
            entries.retain(|v| !same_number(v, number));
            if entries.len() == before {
                return Err(TrunkError::NotListed {
                    key: key.to_string(),
                    number: number.to_string(),
                });
            }
            if entries.is_empty() && list == NumberList::Numbers {
                // Valid alone, refused by the trunk's state: 409 at the API, not 400.
                return Err(TrunkError::Clash {
                    key: key.to_string(),
                    message: format!("`{number}` is the trunk's last number: a trunk keeps one"),
                });
            }
            Ok(())
        })
        .await
    }

    /// Removes a trunk: new calls on it are refused at once (calls in progress go on); false
    /// when there is none of that name.
    pub async fn delete(&self, name: &str, by: &str) -> Result<bool, TrunkError> {
        let mut config = self.config.lock().await;
        self.reload_locked(&mut config).await?;
        let Some(i) = config.trunks.iter().position(|t| t.name == name) else {
            return Ok(false);
        };
        let mut sources = config.trunk_sources.clone();
        sources.remove(i);
        let next = validated(&config, sources).await?;
        self.store.delete_trunk(name).await?;
        self.apply_trunks(&next.trunks).await;
        *config = next;
        tracing::info!(trunk = %name, by, "trunk deleted");
        drop(config);
        self.announce().await;
        Ok(true)
    }

    async fn change(
        &self,
        definition: &str,
        by: &str,
        expect: Expect<'_>,
    ) -> Result<TrunkConfig, TrunkError> {
        let mut config = self.config.lock().await;
        self.reload_locked(&mut config).await?;
        let changed = self.apply(&mut config, definition, by, expect).await;
        drop(config);
        if changed.is_ok() {
            self.announce().await;
        }
        changed
    }

    /// Validate `definition` with the other trunks, store it, apply it (the lock is held).
    async fn apply(
        &self,
        config: &mut Config,
        definition: &str,
        by: &str,
        expect: Expect<'_>,
    ) -> Result<TrunkConfig, TrunkError> {
        let new = parse_definition(definition)?;
        let existing = config.trunks.iter().position(|t| t.name == new.name);
        match (expect, existing) {
            (Expect::New, Some(_)) => return Err(TrunkError::Exists(new.name)),
            (Expect::Existing(name), _) if name != new.name => {
                return Err(TrunkError::Clash {
                    key: "name".into(),
                    message: format!("must stay `{name}` (a trunk is not renamed)"),
                })
            }
            (Expect::Existing(name), None) => return Err(TrunkError::NotFound(name.to_string())),
            _ => {}
        }
        let mut sources = config.trunk_sources.clone();
        match existing {
            Some(i) => sources[i] = definition.to_string(),
            None => sources.push(definition.to_string()),
        }
        let next = validated(config, sources).await?;
        self.store
            .put_trunk(&new.name, definition, by, chrono::Utc::now())
            .await?;
        self.apply_trunks(&next.trunks).await;
        *config = next;
        tracing::info!(trunk = %new.name, by, "trunk stored and applied");
        Ok(new)
    }

    async fn apply_trunks(&self, trunks: &[TrunkConfig]) {
        self.policy.replace_trunks(trunks);
        *self.over_long.write() = over_long_secs(trunks);
        if let Err(e) = self.monitor.replace_trunks(trunks.to_vec()).await {
            tracing::error!(error = %e, "monitor did not take the new trunks");
        }
    }
}

/// A trunk's lists of numbers an admin changes one number at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberList {
    /// `numbers`: the caller IDs allowed out, the numbers reachable in.
    Numbers,
    /// `blocked_numbers`: numbers refused either way.
    Blocked,
}

impl NumberList {
    pub fn key(self) -> &'static str {
        match self {
            NumberList::Numbers => "numbers",
            NumberList::Blocked => "blocked_numbers",
        }
    }

    /// The list of a trunk in force.
    pub fn of(self, trunk: &TrunkConfig) -> &[String] {
        match self {
            NumberList::Numbers => &trunk.numbers,
            NumberList::Blocked => &trunk.blocked_numbers,
        }
    }
}

/// The array under `key` (an absent key is an empty list).
fn number_array<'a>(
    table: &'a mut toml::Table,
    key: &str,
) -> Result<&'a mut Vec<toml::Value>, TrunkError> {
    match table
        .entry(key.to_string())
        .or_insert_with(|| toml::Value::Array(Vec::new()))
    {
        toml::Value::Array(entries) => Ok(entries),
        _ => Err(TrunkError::invalid(key, "is not a list")),
    }
}

/// Whether a stored entry is the same number as `number` (both normalized).
fn same_number(entry: &toml::Value, number: &str) -> bool {
    let norm = |n: &str| crate::model::normalize_number(n);
    entry
        .as_str()
        .and_then(norm)
        .is_some_and(|e| Some(e) == norm(number))
}

fn position(config: &Config, name: &str) -> Result<usize, TrunkError> {
    config
        .trunks
        .iter()
        .position(|t| t.name == name)
        .ok_or_else(|| TrunkError::NotFound(name.to_string()))
}

/// The over-long-call threshold of each trunk, for the KPI rollup.
pub(crate) fn over_long_secs(trunks: &[TrunkConfig]) -> HashMap<String, u64> {
    trunks
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.rule(RuleId::OverLongCall).threshold as u64,
            )
        })
        .collect()
}

/// One trunk's TOML table as a `TrunkConfig`; an error names the key at fault.
pub fn parse_definition(text: &str) -> Result<TrunkConfig, TrunkError> {
    toml::from_str(text).map_err(|e| TrunkError::Invalid {
        key: error_key(text, &e),
        message: e.message().to_string(),
    })
}

/// The key a TOML error is about: the field a "missing/unknown field `x`" message names, else
/// the key on the line the error points at; prefixed with its `[table]` header.
fn error_key(text: &str, e: &toml::de::Error) -> String {
    let start = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    // The header of the table the error is in: its own line when it points at one.
    let header = if line.starts_with('[') {
        Some(line)
    } else {
        before
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
    };
    let section = header
        .map(|h| h.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        .unwrap_or_default();
    let named = ["missing field `", "unknown field `"].iter().find_map(|p| {
        let rest = e.message().split(p).nth(1)?;
        rest.split('`').next().map(str::to_string)
    });
    let key = named.or_else(|| {
        line.split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !line.starts_with('['))
    });
    match (section.is_empty(), key) {
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{section}.{k}"),
        (false, None) => section,
        (true, None) => "definition".to_string(),
    }
}

/// A validation error of the whole config as one about this trunk: `trunks[2].max_cps` →
/// `max_cps` (the other trunks are in force already; a clash names the key too).
/// `config` with its trunks replaced by `sources`, validated; off the runtime, since a trunk's
/// `auth_password_file` is read from disk.
async fn validated(config: &Config, sources: Vec<String>) -> Result<Config, TrunkError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || config.with_trunk_sources(&sources))
        .await
        .map_err(|e| TrunkError::invalid("definition", format!("validation stopped: {e}")))?
        .map_err(config_error)
}

fn config_error(e: ConfigError) -> TrunkError {
    // `trunks[2].max_cps` → `max_cps`.
    let trunk_key = |key: String| match key.split_once("].") {
        Some((head, rest)) if head.starts_with("trunks[") => rest.to_string(),
        _ => key,
    };
    match e {
        ConfigError::Invalid { key, message } => TrunkError::Invalid {
            key: trunk_key(key),
            message,
        },
        ConfigError::Clash { key, message } => TrunkError::Clash {
            key: trunk_key(key),
            message,
        },
        ConfigError::Parse { path, message } => TrunkError::Invalid { key: path, message },
        ConfigError::Read { path, source } => TrunkError::invalid(path, source.to_string()),
        e @ ConfigError::WorldWritable { .. } => TrunkError::invalid("config", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name = \"demo\"\npbx = [\"127.0.0.1/32\"]\ncarrier = \"127.0.0.1:5080\"\n\
                        inbound_to = \"127.0.0.1:5090\"\nnumbers = [\"+861012345678\"]\n";

    fn key_of(text: &str) -> String {
        match parse_definition(text) {
            Err(TrunkError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid definition, got {other:?}"),
        }
    }

    #[test]
    fn parse_errors_name_the_key() {
        assert!(parse_definition(BASE).is_ok());
        assert_eq!(key_of(&format!("{BASE}colour = \"red\"\n")), "colour");
        assert_eq!(
            key_of(&BASE.replace("pbx = [\"127.0.0.1/32\"]\n", "")),
            "pbx"
        );
        assert_eq!(
            key_of(&format!("{BASE}timezone = \"Mars/Olympus\"\n")),
            "timezone"
        );
        assert_eq!(
            key_of(&format!("{BASE}calling_hours = \"9 to 5\"\n")),
            "calling_hours"
        );
        assert_eq!(
            key_of(&format!("{BASE}max_concurrent = -1\n")),
            "max_concurrent"
        );
        assert_eq!(
            key_of(&format!(
                "{BASE}\n[rules.error_rate]\nthreshold = \"high\"\n"
            )),
            "rules.error_rate.threshold"
        );
        assert_eq!(
            key_of(&format!("{BASE}\n[rules.error_rate]\ncolour = 1\n")),
            "rules.error_rate.colour"
        );
    }

    #[test]
    fn validation_errors_name_the_trunks_key() {
        let e = config_error(ConfigError::invalid("trunks[3].max_cps", "must be > 0"));
        assert!(
            matches!(e, TrunkError::Invalid { ref key, .. } if key == "max_cps"),
            "{e}"
        );
        let e = config_error(ConfigError::Clash {
            key: "trunks[3].numbers".into(),
            message: "taken".into(),
        });
        assert!(
            matches!(e, TrunkError::Clash { ref key, .. } if key == "numbers"),
            "{e}"
        );
        let e = config_error(ConfigError::invalid(
            "trunks[0].rules.error_rate.threshold",
            "x",
        ));
        assert!(
            matches!(e, TrunkError::Invalid { ref key, .. } if key == "rules.error_rate.threshold"),
            "{e}"
        );
    }
}
