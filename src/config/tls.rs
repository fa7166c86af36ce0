//! The TLS keys of `[sip]` (listeners) and of a trunk (`carrier_transport = "tls"`): which go
//! together, each error naming the key. The files themselves are read where they are used (the
//! listeners at start, a carrier's at each connection), and say which file is wrong.

use super::{ConfigError, SipConfig, TransportKind, TrunkConfig};

pub(super) fn validate_sip(sip: &SipConfig) -> Result<(), ConfigError> {
    let listens = sip.inside_tls.is_some() || sip.outside_tls.is_some();
    for (key, set) in [
        ("sip.tls_certificate", sip.tls_certificate.is_some()),
        ("sip.tls_key", sip.tls_key.is_some()),
    ] {
        if listens && !set {
            return Err(ConfigError::invalid(
                key,
                "needed with sip.inside_tls or sip.outside_tls (PEM file)",
            ));
        }
        if !listens && set {
            return Err(ConfigError::invalid(
                key,
                "set without sip.inside_tls or sip.outside_tls: nothing would use it",
            ));
        }
    }
    let plain = [sip.inside, sip.outside];
    for (key, addr) in [
        ("sip.inside_tls", sip.inside_tls),
        ("sip.outside_tls", sip.outside_tls),
    ] {
        if let Some(addr) = addr {
            if addr.port() != 0 && plain.contains(&addr) {
                return Err(ConfigError::invalid(
                    key,
                    "must differ from sip.inside and sip.outside (TCP listens there)",
                ));
            }
        }
    }
    if let (Some(a), Some(b)) = (sip.inside_tls, sip.outside_tls) {
        if a == b && a.port() != 0 {
            return Err(ConfigError::invalid(
                "sip.outside_tls",
                "must differ from sip.inside_tls",
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_trunk(
    t: &TrunkConfig,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if t.pbx_transport == TransportKind::Tls {
        return Err(ConfigError::invalid(
            key("pbx_transport"),
            "must be udp or tcp: a PBX speaks TLS by connecting to sip.inside_tls",
        ));
    }
    if t.carrier_transport != TransportKind::Tls {
        let set = [
            ("tls_ca_file", t.tls_ca_file.is_some()),
            ("tls_server_name", t.tls_server_name.is_some()),
            ("tls_client_certificate", t.tls_client_certificate.is_some()),
            ("tls_client_key", t.tls_client_key.is_some()),
            ("tls_sips_uri", t.tls_sips_uri),
        ];
        if let Some((k, _)) = set.iter().find(|(_, set)| *set) {
            return Err(ConfigError::invalid(
                key(k),
                "only with carrier_transport = \"tls\"",
            ));
        }
        return Ok(());
    }
    for (k, path) in [
        ("tls_ca_file", &t.tls_ca_file),
        ("tls_client_certificate", &t.tls_client_certificate),
        ("tls_client_key", &t.tls_client_key),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::invalid(key(k), "must not be empty"));
        }
    }
    if t.tls_ca_file.is_none() {
        return Err(ConfigError::invalid(
            key("tls_ca_file"),
            "needed with carrier_transport = \"tls\": the CA (PEM) the carrier's certificate \
             must chain to",
        ));
    }
    if t.tls_client_certificate.is_some() != t.tls_client_key.is_some() {
        return Err(ConfigError::invalid(
            key("tls_client_key"),
            "tls_client_certificate and tls_client_key go together",
        ));
    }
    if let Some(name) = &t.tls_server_name {
        if !is_server_name(name) || rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            return Err(ConfigError::invalid(
                key("tls_server_name"),
                format!("`{name}` is not a DNS name (its last label a name) or an IPv4 address"),
            ));
        }
    }
    Ok(())
}

/// A name to verify a certificate for: a DNS name (labels of letters, digits and inner
/// hyphens, the last one starting with a letter) or a dotted IPv4 address, 253 bytes at most.
/// The API's trunk schema says the same as a pattern (`api::schemas::trunk_body`).
pub(crate) fn is_server_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let octet = |l: &&str| {
        !l.is_empty()
            && l.len() <= 3
            && l.bytes().all(|b| b.is_ascii_digit())
            && (l.len() == 1 || !l.starts_with('0'))
            && l.parse::<u16>().is_ok_and(|v| v <= 255)
    };
    if labels.len() == 4 && labels.iter().all(octet) {
        return true;
    }
    let label = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.iter().all(label)
        && labels
            .last()
            .is_some_and(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, TransportKind};

    const SIP: &str = "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n";
    const TRUNK: &str = r#"
[[trunks]]
name = "demo"
pbx = ["127.0.0.1/32"]
carrier = "127.0.0.1:5081"
inbound_to = "127.0.0.1:5090"
numbers = ["+861012345678"]
"#;

    fn load(sip_extra: &str, trunk_extra: &str) -> Result<Config, String> {
        Config::from_toml(&format!("{SIP}{sip_extra}\n{TRUNK}{trunk_extra}\n"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn media_encryption_per_side() {
        use crate::config::MediaEncryption;
        let c = load("", "").unwrap();
        assert_eq!(c.trunks[0].pbx_media_encryption, MediaEncryption::Optional);
        assert_eq!(
            c.trunks[0].carrier_media_encryption,
            MediaEncryption::Optional
        );
        let c = load(
            "",
            "pbx_media_encryption = \"none\"\ncarrier_media_encryption = \"required\"",
        )
        .unwrap();
        assert_eq!(c.trunks[0].pbx_media_encryption, MediaEncryption::None);
        assert_eq!(
            c.trunks[0].carrier_media_encryption,
            MediaEncryption::Required
        );
        let e = load("", "carrier_media_encryption = \"srtp\"").unwrap_err();
        assert!(e.contains("carrier_media_encryption"), "{e}");
        assert!(e.contains("none") && e.contains("required"), "{e}");
    }

    #[test]
    fn listeners_need_certificate_and_key() {
        let both =
            "inside_tls = \"127.0.0.1:5061\"\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"";
        let c = load(both, "").unwrap();
        assert_eq!(c.sip.inside_tls, Some("127.0.0.1:5061".parse().unwrap()));
        assert_eq!(c.sip.outside_tls, None);

        let e = load("outside_tls = \"127.0.0.1:5071\"\ntls_key = \"k.pem\"", "").unwrap_err();
        assert!(e.contains("sip.tls_certificate"), "{e}");
        let e = load("tls_certificate = \"c.pem\"\ntls_key = \"k.pem\"", "").unwrap_err();
        assert!(e.contains("sip.tls_certificate"), "{e}");
        let clash = "outside_tls = \"127.0.0.1:5070\"\ntls_certificate = \"c\"\ntls_key = \"k\"";
        let e = load(clash, "").unwrap_err();
        assert!(e.contains("sip.outside_tls"), "{e}");
    }

    #[test]
    fn a_tls_trunk_needs_its_ca_and_keys_that_go_together() {
        let tls = "carrier_transport = \"tls\"\ntls_ca_file = \"ca.pem\"";
        let c = load("", tls).unwrap();
        let t = &c.trunks[0];
        assert_eq!(t.carrier_transport, TransportKind::Tls);
        assert!(!t.tls_sips_uri);
        let c = load(
            "",
            &format!("{tls}\ntls_server_name = \"sip.carrier.example\"\ntls_sips_uri = true\ntls_client_certificate = \"me.pem\"\ntls_client_key = \"me.key\""),
        )
        .unwrap();
        assert_eq!(
            c.trunks[0].tls_server_name.as_deref(),
            Some("sip.carrier.example")
        );

        let e = load("", "carrier_transport = \"tls\"").unwrap_err();
        assert!(e.contains("trunks[0].tls_ca_file"), "{e}");
        let e = load("", &format!("{tls}\ntls_client_certificate = \"me.pem\"")).unwrap_err();
        assert!(e.contains("trunks[0].tls_client_key"), "{e}");
        for bad in [
            "not a name!",
            "1.2.3",
            "256.1.1.1",
            "a..b",
            "-a.example",
            "a.1x",
            "",
        ] {
            let e = load("", &format!("{tls}\ntls_server_name = \"{bad}\"")).unwrap_err();
            assert!(e.contains("trunks[0].tls_server_name"), "{bad}: {e}");
        }
        for good in ["10.0.0.1", "sip.carrier-a.example", "localhost", "a1.b2.c"] {
            load("", &format!("{tls}\ntls_server_name = \"{good}\"")).unwrap();
        }
        let e = load("", "carrier_transport = \"tls\"\ntls_ca_file = \"\"").unwrap_err();
        assert!(e.contains("trunks[0].tls_ca_file"), "{e}");
        let e = load("", "tls_ca_file = \"ca.pem\"").unwrap_err();
        assert!(e.contains("trunks[0].tls_ca_file"), "{e}");
        let e = load("", "tls_sips_uri = true").unwrap_err();
        assert!(e.contains("trunks[0].tls_sips_uri"), "{e}");
        let e = load("", "pbx_transport = \"tls\"").unwrap_err();
        assert!(e.contains("trunks[0].pbx_transport"), "{e}");
    }
}
