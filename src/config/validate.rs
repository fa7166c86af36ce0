//! Checks that serde cannot express; each error names the offending key.

use std::collections::HashSet;

use super::{Config, ConfigError};
use crate::model::normalize_number;

/// A century: beyond it a retention period is a typo.
const MAX_RETENTION_DAYS: u32 = 36_500;

impl Config {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.sip.inside == self.sip.outside {
            return Err(ConfigError::invalid(
                "sip.outside",
                "must differ from sip.inside",
            ));
        }
        if !(50..=10_000).contains(&self.sip.t1_ms) {
            return Err(ConfigError::invalid("sip.t1_ms", "must be 50..=10000"));
        }
        if !(1024..=65_535).contains(&self.sip.max_message_bytes) {
            return Err(ConfigError::invalid(
                "sip.max_message_bytes",
                "must be 1024..=65535",
            ));
        }
        if let Some(name) = &self.sip.server_header {
            let printable = name.chars().all(|c| !c.is_control());
            if name.trim().is_empty() || !printable || name.len() > 128 {
                return Err(ConfigError::invalid(
                    "sip.server_header",
                    "must be 1..=128 printable characters (no CR, LF or other control)",
                ));
            }
        }
        super::tls::validate_sip(&self.sip)?;
        self.runtime.validate()?;
        let flood = &self.sip.flood;
        if !(100..=60_000).contains(&flood.window_ms) {
            return Err(ConfigError::invalid(
                "sip.flood.window_ms",
                "must be 100..=60000",
            ));
        }
        if flood.requests == 0 {
            return Err(ConfigError::invalid("sip.flood.requests", "must be > 0"));
        }
        if flood.peer_requests_per_call == 0 {
            return Err(ConfigError::invalid(
                "sip.flood.peer_requests_per_call",
                "must be > 0",
            ));
        }
        if flood.ban_secs == 0 {
            return Err(ConfigError::invalid("sip.flood.ban_secs", "must be > 0"));
        }
        if self.database.cdr_queue == 0 {
            return Err(ConfigError::invalid("database.cdr_queue", "must be > 0"));
        }
        if self.database.spool_max_bytes == 0 {
            return Err(ConfigError::invalid(
                "database.spool_max_bytes",
                "must be > 0",
            ));
        }
        // The store opens it (and says what is wrong with a URL it cannot use); the scheme is
        // checked here so that a typo stops `check-config`.
        let url = &self.database.url;
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must be a sqlite: or postgres:// (postgresql://) URL",
            ));
        }
        let [lo, hi] = self.media.port_range;
        if lo < 1024 || lo % 2 != 0 || hi <= lo || hi - lo < 3 {
            return Err(ConfigError::invalid(
                "media.port_range",
                "must be [even low ≥ 1024, high] with room for at least two port pairs",
            ));
        }
        if self.media.timeout_secs == 0 {
            return Err(ConfigError::invalid("media.timeout_secs", "must be > 0"));
        }
        // SIP listens on TCP too: the API cannot share its address (port 0: any free port).
        if self.http.enabled
            && self.http.listen.port() != 0
            && (self.http.listen == self.sip.inside || self.http.listen == self.sip.outside)
        {
            return Err(ConfigError::invalid(
                "http.listen",
                "must differ from sip.inside and sip.outside",
            ));
        }
        for (key, days) in [
            ("retention.recordings_days", self.retention.recordings_days),
            ("retention.cdrs_days", self.retention.cdrs_days),
        ] {
            if !(1..=MAX_RETENTION_DAYS).contains(&days) {
                return Err(ConfigError::invalid(
                    key,
                    format!("must be 1..={MAX_RETENTION_DAYS} days"),
                ));
            }
        }
        if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
            return Err(ConfigError::invalid(
                "http.tls_key",
                "tls_cert and tls_key go together",
            ));
        }
        if self.http.enabled
            && !self.http.listen.ip().is_loopback()
            && self.http.tls_cert.is_none()
            && !self.http.allow_plain_remote
        {
            return Err(ConfigError::invalid(
                "http.listen",
                "beyond loopback the API needs tls_cert and tls_key (or allow_plain_remote = true \
                 behind a TLS proxy)",
            ));
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        if self.recording.dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("recording.dir", "must not be empty"));
        }
        if !(1..=super::MAX_PAUSE_SECS).contains(&self.recording.max_pause_secs) {
            return Err(ConfigError::invalid(
                "recording.max_pause_secs",
                format!("must be 1..={} (an hour)", super::MAX_PAUSE_SECS),
            ));
        }
        if self.recording.min_free_mb > super::MAX_MIN_FREE_MB {
            return Err(ConfigError::invalid(
                "recording.min_free_mb",
                format!("must be at most {} (MiB, 1 TiB)", super::MAX_MIN_FREE_MB),
            ));
        }
        let mut names = HashSet::new();
        let mut numbers = HashSet::new();
        for (i, t) in self.trunks.iter().enumerate() {
            let key = |k: &str| format!("trunks[{i}].{k}");
            if t.name.trim().is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::invalid(
                    key("name"),
                    "must be non-empty letters, digits, '-' or '_'",
                ));
            }
            if !names.insert(t.name.clone()) {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!("duplicate trunk name `{}`", t.name),
                ));
            }
            if t.pbx.is_empty() {
                return Err(ConfigError::invalid(key("pbx"), "needs at least one CIDR"));
            }
            if t.carrier.is_empty() {
                return Err(ConfigError::invalid(
                    key("carrier"),
                    "needs at least one address",
                ));
            }
            if t.numbers.is_empty() {
                return Err(ConfigError::invalid(
                    key("numbers"),
                    "needs at least one number",
                ));
            }
            for n in &t.numbers {
                let norm = normalize_number(n).ok_or_else(|| {
                    ConfigError::invalid(key("numbers"), format!("`{n}` is not a phone number"))
                })?;
                if !numbers.insert(norm) {
                    return Err(ConfigError::Clash {
                        key: key("numbers"),
                        message: format!(
                            "`{n}` is assigned to more than one trunk or listed twice"
                        ),
                    });
                }
            }
            for n in &t.blocked_numbers {
                if normalize_number(n).is_none() {
                    return Err(ConfigError::invalid(
                        key("blocked_numbers"),
                        format!("`{n}` is not a phone number"),
                    ));
                }
            }
            if t.max_concurrent == 0 {
                return Err(ConfigError::invalid(key("max_concurrent"), "must be > 0"));
            }
            if t.max_concurrent_per_caller_id == 0 {
                return Err(ConfigError::invalid(
                    key("max_concurrent_per_caller_id"),
                    "must be > 0",
                ));
            }
            if !(t.max_cps.is_finite() && t.max_cps > 0.0) {
                return Err(ConfigError::invalid(key("max_cps"), "must be > 0"));
            }
            if !(1..=super::MAX_CALL_SECS).contains(&t.max_call_secs) {
                return Err(ConfigError::invalid(
                    key("max_call_secs"),
                    format!("must be 1..={} (a week)", super::MAX_CALL_SECS),
                ));
            }
            if !(t.throttle_share.is_finite() && t.throttle_share > 0.0 && t.throttle_share <= 1.0)
            {
                return Err(ConfigError::invalid(
                    key("throttle_share"),
                    "must be a share in (0, 1]",
                ));
            }
            for (name, seq) in [
                ("pause_dtmf", &t.pause_dtmf),
                ("resume_dtmf", &t.resume_dtmf),
            ] {
                if let Some(seq) = seq {
                    if !super::valid_dtmf_sequence(seq) {
                        return Err(ConfigError::invalid(
                            key(name),
                            format!(
                                "`{seq}` is not 1 to {} DTMF digits (0-9 * # A-D)",
                                super::MAX_DTMF_COMMAND
                            ),
                        ));
                    }
                }
            }
            if let (Some(p), Some(r)) = (&t.pause_dtmf, &t.resume_dtmf) {
                if p.starts_with(r.as_str()) || r.starts_with(p.as_str()) {
                    return Err(ConfigError::invalid(
                        key("resume_dtmf"),
                        "must differ from pause_dtmf, neither beginning the other",
                    ));
                }
            }
            t.rules.validate(&key("rules"))?;
            t.validate_auth(&format!("trunks[{i}]"))?;
            super::tls::validate_trunk(t, &key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[sip]
inside = "127.0.0.1:5060"
outside = "127.0.0.1:5070"

[[trunks]]
name = "demo"
pbx = ["127.0.0.1/32"]
carrier = "127.0.0.1:5080"
inbound_to = "127.0.0.1:5090"
numbers = ["+861012345678"]
"#;

    #[test]
    fn dtmf_commands_and_max_pause_are_checked() {
        let c = Config::from_toml(BASE).unwrap();
        assert_eq!(c.recording.max_pause_secs, 180);
        assert_eq!(c.trunks[0].pause_dtmf, None);
        let with = |extra: &str| Config::from_toml(&format!("{BASE}{extra}\n"));
        let t = with("pause_dtmf = \"*7\"\nresume_dtmf = \"*8\"").unwrap();
        assert_eq!(t.trunks[0].pause_dtmf.as_deref(), Some("*7"));
        for (bad, key) in [
            ("pause_dtmf = \"*x\"", "pause_dtmf"),
            ("pause_dtmf = \"\"", "pause_dtmf"),
            ("resume_dtmf = \"123456789\"", "resume_dtmf"),
            ("pause_dtmf = \"*7\"\nresume_dtmf = \"*7\"", "resume_dtmf"),
            ("pause_dtmf = \"*\"\nresume_dtmf = \"*8\"", "resume_dtmf"),
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
        let text = BASE.replace("[[trunks]]", "[recording]\nmax_pause_secs = 0\n[[trunks]]");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("recording.max_pause_secs"), "{e}");
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml(BASE).unwrap();
        let t = &c.trunks[0];
        assert_eq!(t.max_concurrent, 30);
        assert_eq!(t.carrier.len(), 1);
        assert_eq!(c.sip.t1_ms, 500);
    }

    #[test]
    fn media_engine_is_epoll_unless_io_uring_is_named() {
        use crate::config::MediaEngine;
        assert_eq!(
            Config::from_toml(BASE).unwrap().media.engine,
            MediaEngine::Epoll
        );
        let set = |v: &str| {
            let text = BASE.replace(
                "[[trunks]]",
                &format!("[media]\nengine = \"{v}\"\n[[trunks]]"),
            );
            Config::from_toml(&text)
        };
        assert_eq!(set("io_uring").unwrap().media.engine, MediaEngine::IoUring);
        assert_eq!(set("epoll").unwrap().media.engine, MediaEngine::Epoll);
        assert!(set("uring").is_err(), "an unknown engine is refused");
    }

    #[test]
    fn retention_defaults_and_bounds() {
        let c = Config::from_toml(BASE).unwrap();
        assert_eq!(c.retention.recordings_days, 180);
        assert_eq!(c.retention.cdrs_days, 365);
        let set = |k: &str, v: u32| {
            let text = BASE.replace("[[trunks]]", &format!("[retention]\n{k} = {v}\n[[trunks]]"));
            Config::from_toml(&text)
        };
        assert_eq!(
            set("recordings_days", 30)
                .unwrap()
                .retention
                .recordings_days,
            30
        );
        assert_eq!(set("cdrs_days", 1).unwrap().retention.cdrs_days, 1);
        for (k, v) in [
            ("recordings_days", 0),
            ("cdrs_days", 0),
            ("cdrs_days", 40_000),
        ] {
            let e = set(k, v).unwrap_err().to_string();
            assert!(e.contains(&format!("retention.{k}")), "{e}");
        }
    }

    #[test]
    fn carrier_list_is_accepted() {
        let text = BASE.replace(
            r#"carrier = "127.0.0.1:5080""#,
            r#"carrier = ["127.0.0.1:5080", "127.0.0.2:5080"]"#,
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.trunks[0].carrier.len(), 2);
    }

    #[test]
    fn errors_name_the_key() {
        let text = BASE.replace("numbers = [\"+861012345678\"]", "numbers = [\"abc\"]");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("trunks[0].numbers"), "{e}");

        let text = format!("{BASE}max_cps = 0.0\n");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("trunks[0].max_cps"), "{e}");

        let text = format!("{BASE}timezone = \"Mars/Olympus\"\n");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("timezone"), "{e}");

        let text = format!("{BASE}colour = \"red\"\n");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn rules_and_throttle_keys() {
        let c = Config::from_toml(BASE).unwrap();
        let t = &c.trunks[0];
        assert_eq!((t.throttle_share, t.hangup_on_suspend), (0.5, false));
        assert_eq!(t.throttled(30), 15);
        assert_eq!(t.throttled(1), 1);
        let text = format!(
            "{BASE}throttle_share = 0.25\nhangup_on_suspend = true\n\
             [trunks.rules.error_rate]\nthreshold = 0.2\nstep = \"suspend_trunk\"\n"
        );
        let c = Config::from_toml(&text).unwrap();
        let t = &c.trunks[0];
        assert!(t.hangup_on_suspend);
        assert_eq!(t.throttled(10), 2);
        let e = t.rule(crate::config::RuleId::ErrorRate);
        assert_eq!(
            (e.threshold, e.step),
            (0.2, crate::model::Step::SuspendTrunk)
        );

        let text = format!("{BASE}throttle_share = 0.0\n");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("trunks[0].throttle_share"), "{e}");
        let text = format!("{BASE}[trunks.rules.error_rate]\nwindow = \"1h\"\nmin_sample = 10\nresume_after = \"later\"\n");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("trunks[0].rules.error_rate.resume_after"), "{e}");
    }

    #[test]
    fn recording_keys() {
        let c = Config::from_toml(BASE).unwrap();
        assert_eq!(c.recording.min_free_mb, 512);
        assert_eq!(
            c.recording.on_failure,
            crate::config::OnRecordingFailureInCall::Continue
        );
        let set = |kv: &str| {
            Config::from_toml(
                &BASE.replace("[[trunks]]", &format!("[recording]\n{kv}\n[[trunks]]")),
            )
        };
        let c = set("min_free_mb = 0\non_failure = \"hangup\"").unwrap();
        assert_eq!(c.recording.min_free_mb, 0);
        assert_eq!(
            c.recording.on_failure,
            crate::config::OnRecordingFailureInCall::Hangup
        );
        let e = set("min_free_mb = 2000000").unwrap_err().to_string();
        assert!(e.contains("recording.min_free_mb"), "{e}");
        let e = set("on_failure = \"shrug\"").unwrap_err().to_string();
        assert!(e.contains("on_failure"), "{e}");
    }

    #[test]
    fn http_section() {
        let c = Config::from_toml(BASE).unwrap();
        assert!(c.http.enabled);
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        let text = BASE.replace(
            "[sip]",
            "[http]\nlisten = \"0.0.0.0:9000\"\nenabled = false\n\n[sip]",
        );
        let c = Config::from_toml(&text).unwrap();
        assert!(!c.http.enabled);
        assert_eq!(c.http.listen.port(), 9000);
        let text = BASE.replace("[sip]", "[http]\nlisten = \"nowhere\"\n\n[sip]");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let text = BASE.replace("[sip]", "[http]\nport = 1\n\n[sip]");
        let e = Config::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn shipped_config_is_valid() {
        let text = include_str!("../../config/trunkguard.toml");
        Config::from_toml(text).unwrap();
    }

    #[test]
    fn database_url_is_sqlite_or_postgres() {
        let with_url =
            |url: &str| Config::from_toml(&format!("{BASE}\n[database]\nurl = \"{url}\"\n"));
        for url in [
            "sqlite://data/trunkguard.db",
            "sqlite::memory:",
            "postgres://trunkguard@db.example:5432/trunkguard",
            "postgresql://trunkguard@localhost/trunkguard",
        ] {
            assert_eq!(with_url(url).unwrap().database.url, url);
        }
        for url in ["mysql://db/trunkguard", "data/trunkguard.db", "postgres:/x"] {
            let err = with_url(url).unwrap_err().to_string();
            assert!(err.contains("database.url"), "{url}: {err}");
        }
    }
}
