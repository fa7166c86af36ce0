//! A trunk's table (`[[trunks]]`): its peers, numbers, limits, transport and media encryption
//! toward each side, and the throttle share its concurrency cap gives a limited line.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Udp,
    Tcp,
    /// `carrier_transport` only: TLS to the carrier, verified with the trunk's `tls_*` keys.
    Tls,
}

/// SRTP on one side of a trunk (`pbx_media_encryption`, `carrier_media_encryption`); the
/// gateway terminates it per leg with its own SDES keys (docs/architecture.md, "SRTP").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaEncryption {
    /// Plain RTP on that leg: an SRTP (SAVP) offer from it is refused 488, and it is offered
    /// plain RTP.
    None,
    /// The default: that leg is answered in kind (SRTP to an SRTP offer, plain to a plain one)
    /// and offered what the other side offered. Plain calls behave as without SRTP support;
    /// SRTP calls, refused before, are now carried and recorded decrypted.
    #[default]
    Optional,
    /// Always SRTP on that leg: a plain offer from it is refused 488, it is offered SRTP, and
    /// a plain answer from it ends the call (`srtp_required`).
    Required,
}

impl MediaEncryption {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaEncryption::None => "none",
            MediaEncryption::Optional => "optional",
            MediaEncryption::Required => "required",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// Addresses (CIDR) allowed to send calls on the inside.
    pub pbx: Vec<IpNet>,
    /// Where outbound calls go; inbound calls are accepted from these addresses.
    #[serde(deserialize_with = "one_or_many")]
    pub carrier: Vec<SocketAddr>,
    #[serde(default)]
    pub carrier_transport: TransportKind,
    /// Where inbound calls for this trunk's numbers are sent.
    pub inbound_to: SocketAddr,
    #[serde(default)]
    pub pbx_transport: TransportKind,
    /// SRTP toward the PBX (inside leg): `none`, `optional` (default) or `required`.
    #[serde(default)]
    pub pbx_media_encryption: MediaEncryption,
    /// SRTP toward the carrier (outside leg): `none`, `optional` (default) or `required`.
    #[serde(default)]
    pub carrier_media_encryption: MediaEncryption,
    /// Carrier-assigned numbers: the only caller IDs allowed out, the only numbers reachable in.
    pub numbers: Vec<String>,
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: u32,
    #[serde(default = "default_max_concurrent_per_caller_id")]
    pub max_concurrent_per_caller_id: u32,
    #[serde(default = "default_max_cps")]
    pub max_cps: f64,
    #[serde(default)]
    pub allow_anonymous: bool,
    #[serde(default = "default_calling_hours")]
    pub calling_hours: CallingHours,
    #[serde(default = "default_timezone")]
    pub timezone: chrono_tz::Tz,
    #[serde(default = "default_max_call_secs")]
    pub max_call_secs: u64,
    #[serde(default)]
    pub blocked_numbers: Vec<String>,
    /// A throttled subject's concurrency cap becomes this share of its configured cap (≥ 1).
    #[serde(default = "default_throttle_share")]
    pub throttle_share: f64,
    /// When the trunk is suspended, end its live calls too (not only refuse new ones).
    #[serde(default)]
    pub hangup_on_suspend: bool,
    /// `[trunks.rules.<rule>]`: anomaly rules; every key optional.
    #[serde(default)]
    pub rules: RulesConfig,
    /// DTMF sequence the agent keys to pause the call's recording (PCI), e.g. `*7`; not
    /// relayed to the carrier. None: no DTMF command.
    #[serde(default)]
    pub pause_dtmf: Option<String>,
    /// DTMF sequence that resumes the recording, e.g. `*8`.
    #[serde(default)]
    pub resume_dtmf: Option<String>,
    /// Digest authentication toward the carrier (`trunk_auth.rs`): the user answering its
    /// 401/407 challenges, with `auth_password` or `auth_password_file` (read at load).
    #[serde(default)]
    pub auth_username: Option<String>,
    #[serde(default)]
    pub auth_password: Option<Secret>,
    #[serde(default)]
    pub auth_password_file: Option<PathBuf>,
    /// Answer only challenges of this realm (a challenge of another realm ends the call as
    /// a failed authentication): credentials are not handed to whoever asks.
    #[serde(default)]
    pub auth_realm: Option<String>,
    /// Keep a registration with the carrier (`trunks::registration`); outbound calls are
    /// refused `503 Trunk Not Registered` while there is none.
    #[serde(default)]
    pub register: bool,
    /// Seconds asked for in each REGISTER; the registrar's grant is followed.
    #[serde(default = "trunk_auth::default_register_expires")]
    pub register_expires: u32,
    /// The address of record registered (To/From); default `sip:USER@REGISTRAR`.
    #[serde(default)]
    pub register_uri: Option<String>,
    /// Where REGISTER goes; default the first `carrier` address.
    #[serde(default)]
    pub registrar: Option<SocketAddr>,
    /// `auth_password_file`'s content, read at load.
    #[serde(skip)]
    pub(crate) password_from_file: Option<Secret>,
    /// `carrier_transport = "tls"`: the CA certificates (PEM) the carrier's certificate must
    /// chain to (required then).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// The name the carrier's certificate must be valid for; default its IP address.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// Mutual TLS: the certificate chain and key (PEM) the gateway shows the carrier.
    #[serde(default)]
    pub tls_client_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_client_key: Option<PathBuf>,
    /// A `sips:` Request-URI toward a TLS carrier (default: `sip:…;transport=tls`).
    #[serde(default)]
    pub tls_sips_uri: bool,
}

/// Longest DTMF command sequence.
pub const MAX_DTMF_COMMAND: usize = 8;

/// Whether `s` can be a DTMF command: 1 to 8 of `0-9 * # A-D`.
pub fn valid_dtmf_sequence(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DTMF_COMMAND
        && s.bytes().all(|b| b"0123456789*#ABCD".contains(&b))
}

impl TrunkConfig {
    /// A rule of this trunk with its defaults filled in.
    pub fn rule(&self, rule: RuleId) -> RuleConfig {
        self.rules.rule(rule)
    }

    /// A concurrency cap cut by `throttle_share`, never below one call.
    pub fn throttled(&self, cap: u32) -> u32 {
        let share = if self.throttle_share.is_finite() {
            self.throttle_share.clamp(0.0, 1.0)
        } else {
            default_throttle_share()
        };
        ((cap as f64 * share).floor() as u32).max(1)
    }
}

fn one_or_many<'de, D>(d: D) -> Result<Vec<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(SocketAddr),
        Many(Vec<SocketAddr>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(v) => v,
    })
}
