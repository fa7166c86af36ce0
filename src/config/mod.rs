//! The TOML configuration: typed sections, defaults, and validation whose messages name the key.

mod calling_hours;
mod cluster;
mod evidence;
mod flood;
mod rules;
mod runtime;
mod tls;
mod trunk;
mod trunk_auth;
mod validate;

pub use calling_hours::{CallingHours, TimeRange};
pub use cluster::{ClusterConfig, OnSharedStateDown};
pub use evidence::EvidenceConfig;
pub use flood::FloodConfig;
pub use rules::{
    parse_duration, Cmp, RuleConfig, RuleId, RuleOverride, RuleScope, RuleWindow, RulesConfig,
    MAX_CALLEE_LIMIT,
};
pub use runtime::RuntimeConfig;
pub use trunk::{
    valid_dtmf_sequence, MediaEncryption, TransportKind, TrunkConfig, MAX_DTMF_COMMAND,
};
pub use trunk_auth::{Credentials, Registration, Secret, REGISTER_URI_PATTERN};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// Everything that can go wrong while loading the configuration. Every message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// Two trunks (or two entries of one list) claim the same number: each is valid alone.
    #[error("config key `{key}`: {message}")]
    Clash { key: String, message: String },
    /// The file could be changed by anyone on the machine: not trusted.
    #[error("config file {path} is writable by every user (mode {mode:o}): chmod o-w it")]
    WorldWritable { path: String, mode: u32 },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `Debug` is written out below: `trunk_sources` holds the trunks' TOML text, passwords
/// included, and is shown only as a count.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub recording: RecordingConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub trunks: Vec<TrunkConfig>,
    /// `[cluster]`: a member of a cluster sharing admission state in Redis; absent, one node.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// `[evidence]`: the signing key and the sealed manifests' folder.
    #[serde(default)]
    pub evidence: EvidenceConfig,
    /// `[runtime]`: the async runtime's threads.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Each `[[trunks]]` table as TOML text, in order: what seeds the database's trunks at the
    /// first start (after that the database holds them and admins change them at run time).
    #[serde(skip)]
    pub trunk_sources: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("sip", &self.sip)
            .field("database", &self.database)
            .field("media", &self.media)
            .field("recording", &self.recording)
            .field("http", &self.http)
            .field("retention", &self.retention)
            .field("trunks", &self.trunks)
            .field("cluster", &self.cluster)
            .field("evidence", &self.evidence)
            .field("runtime", &self.runtime)
            .field(
                "trunk_sources",
                &format_args!("<{} trunk tables>", self.trunk_sources.len()),
            )
            .finish()
    }
}

/// `[http]`: the HTTP API (`src/api/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the API at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Address and port of the API.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: the API speaks HTTPS (both or neither).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP on an address beyond loopback (tokens would cross the network in clear) is
    /// refused unless this says a TLS proxy or a private network stands in front.
    #[serde(default)]
    pub allow_plain_remote: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: default_http_listen(),
            tls_cert: None,
            tls_key: None,
            allow_plain_remote: false,
        }
    }
}

/// `[retention]`: how long recordings and CDRs are kept (by the call's INVITE time); a daily
/// purge deletes what has expired, except calls on legal hold (`src/retention/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Recording files are deleted this many days after the call (the row stays, marked purged).
    #[serde(default = "default_recordings_days")]
    pub recordings_days: u32,
    /// CDRs (with their media, DTMF and recording rows) are deleted this many days after the
    /// call. A recording never outlives its CDR: the shorter of the two applies to it.
    #[serde(default = "default_cdrs_days")]
    pub cdrs_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            recordings_days: default_recordings_days(),
            cdrs_days: default_cdrs_days(),
        }
    }
}

/// `[media]`: where the gateway anchors RTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// RTP address offered to the PBXs.
    #[serde(default = "default_media_address")]
    pub inside_address: std::net::IpAddr,
    /// RTP address offered to the carriers.
    #[serde(default = "default_media_address")]
    pub outside_address: std::net::IpAddr,
    /// Inclusive range of UDP ports for RTP (even) and RTCP (odd).
    #[serde(default = "default_port_range")]
    pub port_range: [u16; 2],
    /// No RTP from either side for this long (hold excepted) ends the call.
    #[serde(default = "default_media_timeout_secs")]
    pub timeout_secs: u64,
    /// How the relay threads move packets (docs/architecture.md, "Media").
    #[serde(default)]
    pub engine: MediaEngine,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            inside_address: default_media_address(),
            outside_address: default_media_address(),
            port_range: default_port_range(),
            timeout_secs: default_media_timeout_secs(),
            engine: MediaEngine::default(),
        }
    }
}

/// `[media] engine`: how the relay threads receive and send (`media::engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaEngine {
    /// An epoll set per thread; one `recvfrom` and one `sendto` per packet.
    #[default]
    Epoll,
    /// A ring per thread: multishot receives into provided buffers, the round's sends submitted
    /// at once. Falls back to `Epoll` (logged) where io_uring cannot be set up.
    IoUring,
}

impl MediaEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaEngine::Epoll => "epoll",
            MediaEngine::IoUring => "io_uring",
        }
    }
}

/// `[recording]`: where and how calls are recorded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    #[serde(default = "default_recording_dir")]
    pub dir: std::path::PathBuf,
    /// Refuse a call (503) when its recording cannot be started.
    #[serde(default = "default_true")]
    pub required: bool,
    #[serde(default)]
    pub record_early_media: bool,
    /// Free space (MiB) the folder's file system must keep: below it the disk counts as full
    /// (new calls meet `required`) so that the recordings in progress can still finish.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// What happens to a call whose recording fails once recorded media has started (the file
    /// cannot be opened at the answer, or a write fails mid-call).
    #[serde(default)]
    pub on_failure: OnRecordingFailureInCall,
    /// Keep every SIP message of both legs with each call (stored compressed with its CDR,
    /// deleted with its recording by the retention purge).
    #[serde(default = "default_true")]
    pub sip_trace: bool,
    /// Longest PCI pause of a call's recording: a pause left open resumes by itself after it.
    #[serde(default = "default_max_pause_secs")]
    pub max_pause_secs: u64,
}

fn default_max_pause_secs() -> u64 {
    180
}

/// Upper bound of `[recording] max_pause_secs` (an hour).
pub const MAX_PAUSE_SECS: u64 = 3600;

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            dir: default_recording_dir(),
            required: true,
            record_early_media: false,
            min_free_mb: default_min_free_mb(),
            on_failure: OnRecordingFailureInCall::default(),
            sip_trace: true,
            max_pause_secs: default_max_pause_secs(),
        }
    }
}

/// `[recording] on_failure`: a call under way cannot be refused any more when its recording
/// fails; it goes on unrecorded (the CDR, the log and `/metrics` say so) or is ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRecordingFailureInCall {
    /// Go on unrecorded.
    #[default]
    Continue,
    /// BYE both legs (end reason `recording_failed`).
    Hangup,
}

impl OnRecordingFailureInCall {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRecordingFailureInCall::Continue => "continue",
            OnRecordingFailureInCall::Hangup => "hangup",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSources {
    /// Say nothing: a scanner learns nothing about us.
    Drop,
    /// Answer 403.
    Reject,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// PBX-facing interface (UDP and TCP).
    pub inside: SocketAddr,
    /// Carrier-facing interface (UDP and TCP).
    pub outside: SocketAddr,
    #[serde(default = "default_unknown_sources")]
    pub unknown_sources: UnknownSources,
    /// RFC 3261 T1 in milliseconds (timers A, B, E, F, G, H, J derive from it).
    #[serde(default = "default_t1_ms")]
    pub t1_ms: u64,
    /// Largest SIP message accepted, in bytes (UDP datagram or TCP frame).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How long live calls may go on after SIGTERM before both legs get BYE.
    #[serde(default = "default_drain_timeout_secs")]
    pub drain_timeout_secs: u64,
    /// Longest an outgoing INVITE may ring unanswered before the gateway gives up (like
    /// RFC 3261 timer C): the far end gets CANCEL, the caller 408.
    #[serde(default = "default_ring_timeout_secs")]
    pub ring_timeout_secs: u64,
    /// Retry-After seconds on 503 refusals.
    #[serde(default = "default_retry_after_secs")]
    pub retry_after_secs: u32,
    /// Overload control: a new INVITE that waited in the UDP socket's queue longer than this
    /// is refused 503 `overload` before anything is taken (in-dialog requests never are).
    /// 0 turns it off. Default 200 ms, under T1: see `b2bua::overload`.
    #[serde(default = "default_max_queue_delay_ms")]
    pub max_queue_delay_ms: u64,
    /// Overload control's rate: while the UDP queue stands later than this, new calls are
    /// admitted at a rate that keeps it there and only the excess is refused 503 `overload`.
    /// 0: the hard limit (`max_queue_delay_ms`) alone. Default 50 ms.
    #[serde(default = "default_target_queue_delay_ms")]
    pub target_queue_delay_ms: u64,
    /// `[sip.flood]`: per-source request budget and ban.
    #[serde(default)]
    pub flood: FloodConfig,
    /// `Server` header on the gateway's responses and `User-Agent` on its requests. None by
    /// default: naming the product tells a scanner what it talks to.
    #[serde(default)]
    pub server_header: Option<String>,
    /// SIP over TLS toward the PBXs: the listener's address (none by default).
    #[serde(default)]
    pub inside_tls: Option<SocketAddr>,
    /// SIP over TLS toward the carriers: the listener's address (none by default). A carrier
    /// reached over TLS (`carrier_transport = "tls"`) is told this address in Via and Contact.
    #[serde(default)]
    pub outside_tls: Option<SocketAddr>,
    /// The TLS listeners' certificate chain (PEM, leaf first) and private key: needed with
    /// `inside_tls` or `outside_tls`.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_database_url")]
    pub url: String,
    /// Capacity of the in-memory CDR queue between signalling and the database writer.
    #[serde(default = "default_cdr_queue")]
    pub cdr_queue: usize,
    /// Where CDRs wait while the database refuses them (`monitor::cdr_spool`). Default: `spool`
    /// next to the database file; none for an in-memory database.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// The spool's size cap in bytes; beyond it batches wait in memory.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
            cdr_queue: default_cdr_queue(),
            spool_dir: None,
            spool_max_bytes: default_spool_max_bytes(),
        }
    }
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_media_address() -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
}
fn default_port_range() -> [u16; 2] {
    [20000, 29999]
}
fn default_media_timeout_secs() -> u64 {
    30
}
/// 512 MiB: about four and a half call-hours of 8 kHz stereo WAV (32 kB/s), room for the calls in
/// progress to finish once new ones are refused.
fn default_min_free_mb() -> u64 {
    512
}
/// Longest call a trunk may allow (`max_call_secs`): a week. Beyond it the value is a typo, and
/// a deadline that far off would overflow the clock.
pub const MAX_CALL_SECS: u64 = 7 * 24 * 3600;
/// Above 1 TiB the floor is a typo (bytes for MiB, say) rather than a policy.
pub(crate) const MAX_MIN_FREE_MB: u64 = 1 << 20;
fn default_recording_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("data/recordings")
}
fn default_recordings_days() -> u32 {
    180
}
fn default_cdrs_days() -> u32 {
    365
}
fn default_true() -> bool {
    true
}
fn default_unknown_sources() -> UnknownSources {
    UnknownSources::Drop
}
fn default_t1_ms() -> u64 {
    500
}
fn default_max_message_bytes() -> usize {
    16 * 1024
}
fn default_drain_timeout_secs() -> u64 {
    30
}
fn default_ring_timeout_secs() -> u64 {
    180
}
fn default_max_queue_delay_ms() -> u64 {
    200
}
fn default_target_queue_delay_ms() -> u64 {
    // 50 refused calls a saturated host still carried (a queue standing 50–100 ms is harmless
    // to SIP: T1 is 500 ms); 100 kept more goodput at 2× and 4× (bench/README.md, session 12).
    100
}
fn default_retry_after_secs() -> u32 {
    5
}
fn default_database_url() -> String {
    "sqlite://data/trunkguard.db".to_string()
}
fn default_cdr_queue() -> usize {
    10_000
}
fn default_spool_max_bytes() -> u64 {
    1 << 30
}
fn default_max_concurrent() -> u32 {
    30
}
fn default_max_concurrent_per_caller_id() -> u32 {
    10
}
fn default_max_cps() -> f64 {
    10.0
}
fn default_calling_hours() -> CallingHours {
    CallingHours::always()
}
fn default_timezone() -> chrono_tz::Tz {
    chrono_tz::Tz::UTC
}
fn default_max_call_secs() -> u64 {
    7200
}
fn default_throttle_share() -> f64 {
    0.5
}

impl Config {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        };
        // Whoever can write the config decides who may call and where calls go.
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .map_err(read_error)?
                .permissions()
                .mode()
        };
        if mode & 0o002 != 0 {
            return Err(ConfigError::WorldWritable {
                path: path.display().to_string(),
                mode: mode & 0o7777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parse and validate TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let parse_error = |e: &dyn std::fmt::Display| ConfigError::Parse {
            path: "<text>".to_string(),
            message: e.to_string(),
        };
        let mut config: Config = toml::from_str(text).map_err(|e| parse_error(&e))?;
        let table: toml::Table = toml::from_str(text).map_err(|e| parse_error(&e))?;
        config.trunk_sources = match table.get("trunks") {
            Some(toml::Value::Array(trunks)) => trunks
                .iter()
                .map(|t| toml::to_string(t).map_err(|e| parse_error(&e)))
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        config.validate()?;
        config.load_password_files()?;
        Ok(config)
    }

    /// Reads every trunk's `auth_password_file` (blocking I/O: at load, and in
    /// `spawn_blocking` when the trunks change at run time).
    fn load_password_files(&mut self) -> Result<(), ConfigError> {
        for (i, t) in self.trunks.iter_mut().enumerate() {
            t.load_password_file(&format!("trunks[{i}]"))?;
        }
        Ok(())
    }

    /// This config with its trunks replaced by `sources` (each a trunk's TOML table, as stored
    /// in the database), validated as a whole: names unique, PBX networks apart, every key.
    pub fn with_trunk_sources(&self, sources: &[String]) -> Result<Config, ConfigError> {
        let mut trunks = Vec::with_capacity(sources.len());
        for (i, text) in sources.iter().enumerate() {
            let t: TrunkConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
                path: format!("trunks[{i}]"),
                message: e.to_string(),
            })?;
            trunks.push(t);
        }
        let mut next = self.clone();
        next.trunks = trunks;
        next.trunk_sources = sources.to_vec();
        next.validate()?;
        next.load_password_files()?;
        Ok(next)
    }

    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }
}
