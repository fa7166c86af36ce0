//! The schema of a trunk's body (`POST /api/v1/trunks`, `PUT /api/v1/trunks/{name}`): the keys
//! of a `[[trunks]]` table with the exact form of each. The server checks every body against
//! this very schema (`check`) after the config's own parse, so that what the document calls
//! valid and what the server accepts are one set: the schema is written narrower than the
//! config's parsers where they are loose (an IPv4 octet `010`, a port `0`, an hour `+9`), and
//! nothing it allows is refused by them. Two rules no schema can say are left to the server,
//! which answers 409: a number on another trunk or twice in the list once normalized, and a
//! PUT whose `name` is not the path's.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::{DURATION_PATTERN, NUMBER_PATTERN};
use crate::config::{RuleId, RuleScope, RuleWindow};
use crate::model::Step;

const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const HEX: &str = "[0-9a-fA-F]{1,4}";
const PORT: &str =
    "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";

/// Calling hours' start (00:00 to 23:59) and end (00:00 to 24:00), one spelling each.
const START: &str = "([01][0-9]|2[0-3]):[0-5][0-9]";
const END: &str = "(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)";

/// Largest count or sample a rule takes (a whole number beyond any real traffic).
const MAX_COUNT: u64 = 1_000_000_000;

/// Longest call a trunk allows, seconds (`config::validate`, a week).
const MAX_CALL_SECS: u64 = crate::config::MAX_CALL_SECS;

fn ipv4() -> String {
    format!("{OCTET}(\\.{OCTET}){{3}}")
}

/// An IPv6 address in hex groups, `::` compressed or not, or `::ffff:` and an IPv4 address.
fn ipv6() -> String {
    let h = HEX;
    [
        format!("({h}:){{7}}{h}"),
        format!("({h}:){{1,7}}:"),
        format!("({h}:){{1,6}}:{h}"),
        format!("({h}:){{1,5}}(:{h}){{1,2}}"),
        format!("({h}:){{1,4}}(:{h}){{1,3}}"),
        format!("({h}:){{1,3}}(:{h}){{1,4}}"),
        format!("({h}:){{1,2}}(:{h}){{1,5}}"),
        format!("{h}:(:{h}){{1,6}}"),
        format!(":((:{h}){{1,7}}|:)"),
        format!("::ffff:{}", ipv4()),
    ]
    .map(|alt| format!("({alt})"))
    .join("|")
}

/// A DNS name whose last label starts with a letter, or a dotted IPv4 address: what
/// `config::tls::is_server_name` accepts.
pub(crate) fn server_name_pattern() -> String {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let last = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    format!("^({})$|^({label}\\.)*{last}$", ipv4())
}

/// `10.0.0.0/24`, `2001:db8::/32`.
pub(crate) fn cidr_pattern() -> String {
    format!(
        "^({}/(3[0-2]|[12]?[0-9])|({})/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$",
        ipv4(),
        ipv6()
    )
}

/// `192.0.2.1:5060`, `[2001:db8::1]:5060`.
pub(crate) fn socket_pattern() -> String {
    format!("^({}|\\[({})\\]):{PORT}$", ipv4(), ipv6())
}

/// `09:00-12:00,13:30-20:00`: windows, each from a start to a different end.
pub(crate) fn calling_hours_pattern() -> String {
    let window = format!("{START} *- *{END}");
    format!("^ *{window}( *, *{window})* *$")
}

/// A window whose end is its start (`10:00-10:00`): empty, refused.
const EMPTY_WINDOW_PATTERN: &str = "(^|,) *(([01][0-9]|2[0-3]):[0-5][0-9]) *- *\\2 *(,|$)";

fn integer(min: u64, max: u64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

/// One rule's table: its threshold as the rule measures it, the steps its scope allows.
fn rule(rule: RuleId) -> Value {
    let threshold = match rule {
        RuleId::LowAnswerRate | RuleId::ErrorRate | RuleId::NetworkErrors | RuleId::ShortCalls => {
            json!({"type": "number", "minimum": 0, "maximum": 1, "description": "A ratio"})
        }
        RuleId::OverLongCall => {
            json!({"type": "number", "minimum": 1, "description": "Seconds"})
        }
        _ => json!({"type": "integer", "minimum": 0, "maximum": MAX_COUNT,
                     "description": "A count"}),
    };
    let steps: &[Step] = match rule.scope() {
        RuleScope::Callee => &[Step::Alert],
        RuleScope::Trunk => &[Step::Alert, Step::Throttle, Step::SuspendTrunk],
        RuleScope::CallerId => &[
            Step::Alert,
            Step::Throttle,
            Step::SuspendNumber,
            Step::SuspendTrunk,
        ],
    };
    let mut properties = Map::new();
    properties.insert("enabled".into(), json!({"type": "boolean"}));
    properties.insert("threshold".into(), threshold);
    properties.insert("min_sample".into(), integer(0, MAX_COUNT));
    properties.insert(
        "window".into(),
        json!({"type": "string", "enum": RuleWindow::ALL.map(|w| w.code())}),
    );
    properties.insert(
        "step".into(),
        json!({"type": "string", "enum": steps.iter().map(|s| s.code()).collect::<Vec<_>>()}),
    );
    properties.insert(
        "resume_after".into(),
        json!({"type": "string", "pattern": DURATION_PATTERN,
               "description": "How long a step it imposes lasts at least (90s, 30m, 2h, 7d)"}),
    );
    if matches!(
        rule,
        RuleId::OverFrequentNumber | RuleId::OverFrequentCallee
    ) {
        let mut daily = integer(0, MAX_COUNT);
        daily["description"] = json!("The second limit, over 24 h");
        properties.insert("daily_threshold".into(), daily);
    }
    let mut table = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if rule == RuleId::OverFrequentCallee {
        // Admission's callee limit keeps that many attempt times per number: while the rule is
        // on, both limits are 1 to MAX_CALLEE_LIMIT.
        let most = crate::config::MAX_CALLEE_LIMIT;
        table["anyOf"] = json!([
            {"required": ["enabled"], "properties": {"enabled": {"const": false}}},
            {"properties": {
                "threshold": {"minimum": 1, "maximum": most},
                "daily_threshold": {"minimum": 1, "maximum": most},
            }},
        ]);
        table["description"] = json!(format!(
            "While enabled (the default), threshold and daily_threshold are 1 to {most}"
        ));
    }
    table
}

fn rules() -> Value {
    let properties: Map<String, Value> = RuleId::ALL
        .iter()
        .map(|&r| (r.code().to_string(), rule(r)))
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Per rule, the keys that differ from its defaults (README, anomaly rules)",
        "properties": properties,
    })
}

/// A string written into a SIP header: 1..=256 characters, no control character.
fn header_text(description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 256,
           "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$", "description": description})
}

/// The body's schema (the document's `TrunkBody`).
pub(crate) fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(build)
}

fn build() -> Value {
    let number = json!({"type": "string", "pattern": NUMBER_PATTERN,
                        "description": "A phone number (+8610…, 3 to 20 digits)"});
    let socket = json!({"type": "string", "pattern": socket_pattern(),
                        "description": "ip:port (an IPv6 address in brackets)"});
    let encryption = |toward: &str| {
        json!({"type": "string", "enum": ["none", "optional", "required"],
               "description": format!("SRTP (SDES) {toward}: none (plain RTP; an SRTP offer is \
                                       refused 488), optional (the default: in kind) or \
                                       required (a plain offer or answer is refused 488)")})
    };
    let transport = json!({"type": "string", "enum": ["udp", "tcp"],
                           "description": "udp (the default) or tcp"});
    let timezones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    let mut schema = json!({
        "type": "object",
        "description": "A trunk's definition: the keys of a `[[trunks]]` table of the config \
                        file (README), as JSON. Only `name`, `pbx`, `carrier`, `inbound_to` and \
                        `numbers` are required; a key left out takes its default (`null` is \
                        not a value: TOML has none). 409 when one of `numbers` is another \
                        trunk's or listed twice once normalized (`+86 10 1234` is `+86101234`).",
        "additionalProperties": false,
        "required": ["name", "pbx", "carrier", "inbound_to", "numbers"],
        "dependentRequired": {
            "auth_username": ["auth_password"],
            "auth_password": ["auth_username"],
            "auth_realm": ["auth_username"],
            "tls_client_certificate": ["tls_client_key"],
            "tls_client_key": ["tls_client_certificate"],
        },
        "allOf": [
            {
                "if": {"properties": {"register": {"const": true}}, "required": ["register"]},
                "then": {"anyOf": [{"required": ["register_uri"]}, {"required": ["auth_username"]}]},
            },
            {
                // As `config::tls` checks: TLS toward the carrier needs its CA file; the other
                // `tls_*` keys only with it; a client certificate goes with its key.
                "if": {"required": ["carrier_transport"],
                       "properties": {"carrier_transport": {"const": "tls"}}},
                "then": {"required": ["tls_ca_file"]},
                "else": {
                    "properties": {"tls_sips_uri": {"const": false}},
                    "not": {"anyOf": [
                        {"required": ["tls_ca_file"]},
                        {"required": ["tls_server_name"]},
                        {"required": ["tls_client_certificate"]},
                        {"required": ["tls_client_key"]},
                    ]},
                },
            },
        ],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$",
                     "description": "Letters, digits, `-` and `_` (PUT keeps it: 409 otherwise)"},
            "pbx": {"type": "array", "minItems": 1,
                    "items": {"type": "string", "pattern": cidr_pattern(),
                              "description": "A network in CIDR form (10.0.0.0/24)"},
                    "description": "The networks (CIDR) the PBX sends from"},
            "carrier": {"anyOf": [socket, {"type": "array", "minItems": 1, "items": socket}],
                        "description": "The carrier's ip:port, or a list of them"},
            "carrier_transport": {"type": "string", "enum": ["udp", "tcp", "tls"],
                                  "description": "udp (the default), tcp or tls (verified \
                                                  with tls_ca_file)"},
            "inbound_to": {"type": "string", "pattern": socket_pattern(),
                           "description": "Where inbound calls go (ip:port)"},
            "pbx_transport": transport,
            "numbers": {"type": "array", "minItems": 1, "uniqueItems": true, "items": number,
                        "description": "The carrier-assigned numbers (caller IDs out, numbers \
                                        reachable in); none of another trunk's"},
            "max_concurrent": integer(1, u32::MAX.into()),
            "max_concurrent_per_caller_id": integer(1, u32::MAX.into()),
            "max_cps": {"type": "number", "exclusiveMinimum": 0,
                        "description": "New calls per second"},
            "allow_anonymous": {"type": "boolean"},
            "calling_hours": {"type": "string", "pattern": calling_hours_pattern(),
                              "not": {"pattern": EMPTY_WINDOW_PATTERN},
                              "description": "Local windows HH:MM-HH:MM, comma-separated \
                                              (09:00-12:00,13:30-20:00); an end before its \
                                              start wraps midnight, 24:00 ends the day"},
            "timezone": {"type": "string", "enum": timezones,
                         "description": "An IANA time zone (Asia/Shanghai)"},
            "max_call_secs": integer(1, MAX_CALL_SECS),
            "blocked_numbers": {"type": "array", "items": number},
            "throttle_share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                               "description": "A throttled cap's share of the cap"},
            "hangup_on_suspend": {"type": "boolean"},
            "pause_dtmf": {"type": "string", "pattern": "^[0-9*#A-D]{1,8}$",
                           "description": "DTMF the agent keys to pause the recording (*7); \
                                           not relayed to the carrier"},
            "resume_dtmf": {"type": "string", "pattern": "^[0-9*#A-D]{1,8}$",
                            "description": "DTMF that resumes the recording (*8)"},
            "rules": rules(),
            "auth_username": header_text("The user answering the carrier's Digest challenges \
                                          (401/407); goes with auth_password"),
            "auth_password": {"type": "string", "minLength": 1, "writeOnly": true,
                              "description": "Never shown: GET returns `(redacted)` in its \
                                              place, and a PUT that sends `(redacted)` back \
                                              keeps the stored password. (`auth_password_file` \
                                              is a key of the config file only: a path on the \
                                              gateway is no business of the API.)"},
            "auth_realm": header_text("Answer only challenges of this realm"),
            "register": {"type": "boolean",
                         "description": "Keep a registration with the carrier; outbound calls \
                                         are refused 503 Trunk Not Registered without one. \
                                         Needs register_uri or auth_username"},
            "register_expires": integer(1, 86_400),
            "register_uri": {"type": "string", "pattern": crate::config::REGISTER_URI_PATTERN,
                             "maxLength": 256,
                             "description": "The address of record registered \
                                             (sip:user@domain)"},
            "registrar": {"type": "string", "pattern": socket_pattern(),
                          "description": "Where REGISTER goes (ip:port); default the first \
                                          carrier address"},
            "tls_ca_file": {"type": "string", "minLength": 1,
                            "description": "carrier_transport = tls: the CA (PEM file) the \
                                            carrier's certificate must chain to"},
            "tls_server_name": {"type": "string", "maxLength": 253,
                                "pattern": server_name_pattern(),
                                "description": "The name the carrier's certificate must be \
                                                valid for: a DNS name or an IPv4 address \
                                                (default: the carrier's IP address)"},
            "tls_client_certificate": {"type": "string", "minLength": 1,
                                       "description": "Mutual TLS: our certificate chain (PEM \
                                                       file)"},
            "tls_client_key": {"type": "string", "minLength": 1,
                               "description": "Mutual TLS: our private key (PEM file)"},
            "tls_sips_uri": {"type": "boolean",
                             "description": "A sips: Request-URI toward a TLS carrier \
                                             (default sip:…;transport=tls)"},
        }
    });
    // Past what one `json!` can expand (its recursion limit): added to the properties here.
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("pbx_media_encryption".into(), encryption("toward the PBX"));
        properties.insert(
            "carrier_media_encryption".into(),
            encryption("toward the carrier"),
        );
    }
    schema
}

/// The first way `body` is not what the schema allows: the key at fault (`pbx[0]`,
/// `rules.error_rate.threshold`) and what it must be.
pub(crate) fn check(body: &Value) -> Result<(), (String, String)> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    let validator = VALIDATOR
        .get_or_init(|| jsonschema::validator_for(schema()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| {
            (
                "body".to_string(),
                format!("the body's schema is broken: {e}"),
            )
        })?;
    let Some(error) = validator.iter_errors(body).next() else {
        return Ok(());
    };
    let key = key_of(error.instance_path.as_str());
    if key == "auth_password" {
        // The message would quote the value: never a password.
        return Err((key, "must be a non-empty string".to_string()));
    }
    // A pattern's text says little: its neighbour `description` says the form.
    let described = described_by(error.schema_path.as_str());
    let message = match (&error.kind, described) {
        (
            jsonschema::error::ValidationErrorKind::Pattern { .. }
            | jsonschema::error::ValidationErrorKind::Not { .. }
            | jsonschema::error::ValidationErrorKind::AnyOf { .. }
            | jsonschema::error::ValidationErrorKind::Enum { .. },
            Some(form),
        ) => format!("{}: expected {form}", error.instance),
        (jsonschema::error::ValidationErrorKind::Enum { .. }, None) => {
            format!(
                "{} is not one of the values the document lists",
                error.instance
            )
        }
        _ => error.to_string(),
    };
    Err((key, message))
}

/// `/rules/error_rate/threshold` → `rules.error_rate.threshold`; `/pbx/0` → `pbx[0]`.
fn key_of(pointer: &str) -> String {
    let mut key = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(&segment);
        }
    }
    if key.is_empty() {
        "body".into()
    } else {
        key
    }
}

/// The `description` of the schema that holds the keyword at `schema_path`.
fn described_by(schema_path: &str) -> Option<String> {
    let parent = schema_path.rsplit_once('/')?.0;
    schema()
        .pointer(parent)
        .and_then(|s| s.get("description"))
        .and_then(Value::as_str)
        .map(lowercase_first)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunks::parse_definition;

    fn matches(pattern: &str, text: &str) -> bool {
        jsonschema::is_valid(&json!({"pattern": pattern}), &json!(text))
    }

    fn body() -> Value {
        json!({"name": "demo", "pbx": ["10.0.0.0/24"], "carrier": "192.0.2.1:5060",
               "inbound_to": "10.0.0.5:5060", "numbers": ["+861012345678"]})
    }

    /// `body` with `key` set to `value`: whether the schema takes it, and whether the config does.
    fn verdicts(key: &str, value: Value) -> (bool, bool) {
        let mut b = body();
        b[key] = value;
        let text = toml::to_string(&toml::Value::try_from(&b).unwrap()).unwrap();
        (check(&b).is_ok(), parse_definition(&text).is_ok())
    }

    #[test]
    fn addresses_the_schema_allows_are_addresses_the_config_reads() {
        for ok in [
            "10.0.0.0/24",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "2001:db8::/32",
            "::1/128",
            "::/0",
            "fe80::1:2:3:4/64",
            "1:2:3:4:5:6:7:8/128",
            "::ffff:10.0.0.1/128",
        ] {
            assert!(matches(&cidr_pattern(), ok), "{ok}");
            assert_eq!(verdicts("pbx", json!([ok])), (true, true), "{ok}");
        }
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "010.0.0.0/8",
            "10.0.0.0/08",
            "256.0.0.0/8",
            "1:2:3:4:5:6:7:8:9/64",
            "::1/129",
            "",
        ] {
            assert!(!verdicts("pbx", json!([bad])).0, "{bad}");
        }
        for ok in [
            "192.0.2.1:5060",
            "192.0.2.1:65535",
            "[2001:db8::1]:5060",
            "[::1]:1",
        ] {
            assert!(matches(&socket_pattern(), ok), "{ok}");
            assert_eq!(verdicts("carrier", json!(ok)), (true, true), "{ok}");
            assert_eq!(verdicts("carrier", json!([ok, ok])), (true, true), "{ok}");
            assert_eq!(verdicts("inbound_to", json!(ok)), (true, true), "{ok}");
        }
        for bad in [
            "192.0.2.1",
            "192.0.2.1:0",
            "192.0.2.1:05060",
            "192.0.2.1:65536",
            "2001:db8::1:5060",
            "host:5060",
        ] {
            assert!(!verdicts("inbound_to", json!(bad)).0, "{bad}");
        }
        assert!(!verdicts("carrier", json!([])).0);
        assert!(!verdicts("carrier", json!({})).0);
    }

    #[test]
    fn calling_hours_and_time_zones_as_the_config_reads_them() {
        for ok in [
            "09:00-12:00,13:30-20:00",
            "09:00-12:00, 13:30-20:00",
            "00:00-24:00",
            "20:00-08:00",
            " 23:59 - 00:00 ",
        ] {
            assert_eq!(verdicts("calling_hours", json!(ok)), (true, true), "{ok}");
        }
        for bad in [
            "",
            "9:00-17:00",
            "+9:00-17:00",
            "24:00-08:00",
            "10:00-10:00",
            "08:00-12:00,10:00-10:00",
            "09:00-12:00,",
            "25:00-26:00",
        ] {
            assert!(!verdicts("calling_hours", json!(bad)).0, "{bad}");
        }
        assert_eq!(verdicts("timezone", json!("Asia/Shanghai")), (true, true));
        assert_eq!(verdicts("timezone", json!("UTC")), (true, true));
        assert_eq!(verdicts("timezone", json!("Mars/Olympus")), (false, false));
    }

    #[test]
    fn rules_take_the_steps_and_thresholds_their_rule_measures() {
        let ok = [
            json!({"error_rate": {"threshold": 0.3, "window": "1h", "min_sample": 20,
                                  "step": "throttle", "resume_after": "30m"}}),
            json!({"network_errors": {"step": "suspend_trunk"}}),
            json!({"over_frequent_callee": {"enabled": false, "threshold": 0}}),
            json!({"over_frequent_callee": {"threshold": 64, "daily_threshold": 64}}),
            json!({"over_frequent_number": {"threshold": 100, "daily_threshold": 0}}),
            json!({"over_long_call": {"threshold": 1.5}}),
        ];
        for rules in ok {
            assert_eq!(verdicts("rules", rules.clone()), (true, true), "{rules}");
        }
        let bad = [
            json!({"error_rate": {"threshold": 1.5}}),
            json!({"network_errors": {"step": "suspend_number"}}),
            json!({"over_frequent_callee": {"step": "throttle"}}),
            json!({"over_frequent_callee": {"threshold": 0}}),
            json!({"over_frequent_callee": {"enabled": true, "daily_threshold": 65}}),
            json!({"complaint_batch": {"threshold": 2.5}}),
            json!({"error_rate": {"daily_threshold": 3}}),
            json!({"error_rate": {"resume_after": "0m"}}),
            json!({"over_long_call": {"threshold": 0.5}}),
            json!({"colour": {}}),
        ];
        for rules in bad {
            assert!(!verdicts("rules", rules.clone()).0, "{rules}");
        }
    }

    #[test]
    fn refusals_name_the_key_and_the_form() {
        let mut b = body();
        b["pbx"] = json!(["10.0.0.0/24", "010.0.0.0/8"]);
        let (key, message) = check(&b).unwrap_err();
        assert_eq!(key, "pbx[1]");
        assert!(message.contains("a network in CIDR form"), "{message}");
        b = body();
        b["rules"] = json!({"error_rate": {"threshold": 2}});
        let (key, message) = check(&b).unwrap_err();
        assert_eq!(key, "rules.error_rate.threshold");
        assert!(message.contains('1'), "{message}");
        b = body();
        b["max_call_secs"] = json!(MAX_CALL_SECS + 1);
        assert_eq!(check(&b).unwrap_err().0, "max_call_secs");
        assert!(check(&body()).is_ok());
    }
}
