//! A trunk's limits edited in the console (`POST /console/trunks/{name}/limits`, admin): calls
//! at once (per trunk and per caller ID), calls per second, calling hours and their time zone,
//! the longest call, the throttled share, and the two frequency rules' thresholds and windows
//! (`over_frequent_number`: calls per caller ID; `over_frequent_callee`: calls to one number).
//!
//! The form is the trunk's stored definition with these keys replaced (an empty field removes
//! its key: the default applies), sent to the API's own `PUT /api/v1/trunks/{name}` — the same
//! checks, the change applied to admission at once, `updated_by` the signed-in token. The
//! API names one refused key at a time; to show a message beside every bad field, each changed
//! field is first checked alone against the stored definition by the API's own parser
//! (`definition_from_json`, which stores nothing). A refused form comes back with the values as
//! typed and the server's message beside each field it concerns.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, Json};
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::calls::urlencoded;
use super::fields::Field;
use super::guard::Ctx;
use super::i18n::T;
use super::layout::csrf_field;
use super::sign_in::see_other;
use crate::api::trunks::{self as api, definition_from_json};
use crate::api::{ApiError, ApiState, Principal};
use crate::config::{RuleId, RuleWindow, TrunkConfig};

/// What a field holds, for its control and for turning the text typed into JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole number or a decimal: sent as a JSON number when it reads as one.
    Number,
    /// Text, sent as a string.
    Text,
    /// A rule window: one of `RuleWindow`'s codes.
    Window,
}

/// One editable key: its path in the definition, its label and help.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// `max_cps`, `rules.over_frequent_number.threshold` (the API's `error.field` spelling).
    key: &'static str,
    label: T,
    help: T,
    kind: Kind,
}

const fn limit(key: &'static str, label: T, help: T, kind: Kind) -> Limit {
    Limit {
        key,
        label,
        help,
        kind,
    }
}

/// The trunk's own limits.
const LIMITS: &[Limit] = &[
    limit(
        "max_concurrent",
        T::MaxConcurrent,
        T::HelpCount,
        Kind::Number,
    ),
    limit(
        "max_concurrent_per_caller_id",
        T::MaxPerCallerId,
        T::HelpCount,
        Kind::Number,
    ),
    limit("max_cps", T::MaxCps, T::HelpCps, Kind::Number),
    limit(
        "calling_hours",
        T::CallingHours,
        T::HelpCallingHours,
        Kind::Text,
    ),
    limit("timezone", T::TimeZoneLabel, T::HelpTimeZone, Kind::Text),
    limit(
        "max_call_secs",
        T::MaxCallSecs,
        T::HelpCallSecs,
        Kind::Number,
    ),
    limit(
        "throttle_share",
        T::ThrottleShare,
        T::HelpThrottleShare,
        Kind::Number,
    ),
];

/// The frequency rules' keys, per rule.
const FREQUENCY: &[(RuleId, T, [Limit; 3])] = &[
    (
        RuleId::OverFrequentNumber,
        T::FrequencyPerCaller,
        [
            limit(
                "rules.over_frequent_number.threshold",
                T::CallsPerWindow,
                T::HelpCount0,
                Kind::Number,
            ),
            limit(
                "rules.over_frequent_number.window",
                T::WindowLabel,
                T::HelpWindow,
                Kind::Window,
            ),
            limit(
                "rules.over_frequent_number.daily_threshold",
                T::CallsPerDay,
                T::HelpCount0,
                Kind::Number,
            ),
        ],
    ),
    (
        RuleId::OverFrequentCallee,
        T::FrequencyPerCallee,
        [
            limit(
                "rules.over_frequent_callee.threshold",
                T::CallsPerWindow,
                T::HelpCallee,
                Kind::Number,
            ),
            limit(
                "rules.over_frequent_callee.window",
                T::WindowLabel,
                T::HelpWindow,
                Kind::Window,
            ),
            limit(
                "rules.over_frequent_callee.daily_threshold",
                T::CallsPerDay,
                T::HelpCallee,
                Kind::Number,
            ),
        ],
    ),
];

fn every_limit() -> impl Iterator<Item = &'static Limit> {
    LIMITS
        .iter()
        .chain(FREQUENCY.iter().flat_map(|(_, _, keys)| keys.iter()))
}

/// A refused form: the trunk, what was typed per key, the server's message per key, and a
/// message about no one field (a clash with another trunk).
#[derive(Debug, Default)]
pub(crate) struct LimitsRefused {
    pub trunk: String,
    typed: Vec<(&'static str, String)>,
    errors: Vec<(&'static str, String)>,
    general: Option<String>,
}

impl LimitsRefused {
    fn typed(&self, key: &str) -> Option<&str> {
        self.typed
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    fn error(&self, key: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The value at a dotted key of a definition.
fn at<'a>(def: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(def, |v, part| v.get(part))
}

/// A definition's value as the text of a field ('' when absent).
fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// What applies when the field is empty: the trunk's value with its defaults filled in.
fn effective(trunk: Option<&TrunkConfig>, key: &str) -> Option<String> {
    let t = trunk?;
    let rule = |id: RuleId| t.rule(id);
    Some(match key {
        "max_concurrent" => t.max_concurrent.to_string(),
        "max_concurrent_per_caller_id" => t.max_concurrent_per_caller_id.to_string(),
        "max_cps" => t.max_cps.to_string(),
        "timezone" => t.timezone.name().to_string(),
        "max_call_secs" => t.max_call_secs.to_string(),
        "throttle_share" => t.throttle_share.to_string(),
        _ => {
            let (rule_key, field) = key.strip_prefix("rules.")?.split_once('.')?;
            let id = RuleId::ALL.iter().find(|r| r.code() == rule_key)?;
            let r = rule(*id);
            match field {
                "threshold" => r.threshold.to_string(),
                "daily_threshold" => r.daily_threshold?.to_string(),
                "window" => r.window.code().to_string(),
                _ => return None,
            }
        }
    })
}

/// The id of a key's control in a trunk's form.
fn field_id(trunk: &str, key: &str) -> String {
    format!("{trunk}-{}", key.replace('.', "-"))
}

/// The "edit limits" part of a trunk's section: folded unless its form was refused.
pub(crate) fn form(
    ctx: &Ctx,
    name: &str,
    definition: &Value,
    trunk: Option<&TrunkConfig>,
    refused: Option<&LimitsRefused>,
) -> Markup {
    let refused = refused.filter(|r| r.trunk == name);
    let action = format!("/console/trunks/{}/limits", urlencoded(name));
    let control = |l: &Limit| -> Markup {
        let id = field_id(name, l.key);
        let value = refused
            .and_then(|r| r.typed(l.key))
            .map(str::to_string)
            .unwrap_or_else(|| text_of(at(definition, l.key)));
        let placeholder = effective(trunk, l.key);
        let f = Field::new(&id, ctx.t(l.label))
            .help(ctx.t(l.help))
            .server_error(
                ctx.t(T::ServerRefused),
                refused.and_then(|r| r.error(l.key)),
            );
        f.render(html! {
            @match l.kind {
                Kind::Window => {
                    select id=(id) name=(l.key) aria-describedby=[f.described_by()] aria-invalid=[f.invalid()] {
                        option value="" {
                            (T::DefaultValue.fill(ctx.lang, &[("value", placeholder.as_deref().unwrap_or("–"))]))
                        }
                        @for w in RuleWindow::ALL {
                            option value=(w.code()) selected[value == w.code()] { (w.code()) }
                        }
                        // A value typed elsewhere (the API) that is no window: kept, to be refused.
                        @if !value.is_empty() && !RuleWindow::ALL.iter().any(|w| w.code() == value) {
                            option value=(value) selected { (value) }
                        }
                    }
                }
                _ => {
                    input id=(id) name=(l.key) type="text" value=(value)
                        inputmode=[(l.kind == Kind::Number).then_some("decimal")]
                        list=[(l.key == "timezone").then_some("timezones")]
                        placeholder=[placeholder.as_deref()]
                        aria-describedby=[f.described_by()] aria-invalid=[f.invalid()]
                        autocomplete="off";
                }
            }
        })
    };
    html! {
        details.limits open[refused.is_some()] {
            summary { (ctx.t(T::EditLimits)) }
            form.limits method="post" action=(action) data-trunk=(name) {
                (csrf_field(ctx))
                @if let Some(g) = refused.and_then(|r| r.general.as_deref()) {
                    p.field-error role="alert" { (ctx.t(T::ServerRefused)) " " span lang="en" { (g) } }
                }
                fieldset {
                    legend { (ctx.t(T::LimitsLegend)) }
                    div.grid {
                        @for l in LIMITS { (control(l)) }
                    }
                }
                @for (_, title, keys) in FREQUENCY {
                    fieldset {
                        legend { (ctx.t(*title)) }
                        div.grid {
                            @for l in keys { (control(l)) }
                        }
                    }
                }
                p.help { (ctx.t(T::EmptyIsDefault)) }
                div.actions { button type="submit" { (ctx.t(T::SaveLimits)) } }
            }
        }
    }
}

/// The time zones a field may name, once per page (the `timezone` fields' `list`).
pub(crate) fn time_zones() -> Markup {
    html! {
        datalist #timezones {
            @for tz in chrono_tz::TZ_VARIANTS { option value=(tz.name()) {} }
        }
    }
}

/// The text typed for a key as JSON: a number when a number field reads as one (else the text,
/// for the server to refuse in its words).
fn json_of(kind: Kind, text: &str) -> Value {
    if kind == Kind::Number {
        if let Ok(n) = text.parse::<serde_json::Number>() {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

/// `def` with `key` set to `value` (`None`: removed; a rule's table left empty goes too).
fn with_key(mut def: Value, key: &str, value: Option<Value>) -> Value {
    let parts: Vec<&str> = key.split('.').collect();
    set(&mut def, &parts, value);
    def
}

fn set(v: &mut Value, parts: &[&str], value: Option<Value>) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    match parts {
        [] => {}
        [last] => match value {
            Some(value) => {
                obj.insert((*last).to_string(), value);
            }
            None => {
                obj.remove(*last);
            }
        },
        [first, rest @ ..] => {
            if value.is_none() && !obj.contains_key(*first) {
                return;
            }
            let child = obj
                .entry((*first).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            set(child, rest, value);
            if child.as_object().is_some_and(Map::is_empty) {
                obj.remove(*first);
            }
        }
    }
}

/// The form's pairs read against the stored definition: what was typed per key, and the new
/// definition. Keys not in the form are kept as stored.
fn apply(stored: &Value, body: &[u8]) -> (Vec<(&'static str, String)>, Value) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut typed = Vec::new();
    let mut def = stored.clone();
    for l in every_limit() {
        let Some((_, v)) = pairs.iter().find(|(k, _)| k == l.key) else {
            continue;
        };
        let v = v.trim().to_string();
        let value = (!v.is_empty()).then(|| json_of(l.kind, &v));
        def = with_key(def, l.key, value);
        typed.push((l.key, v));
    }
    (typed, def)
}

/// The form key an API refusal concerns (`rules.x.threshold`, `max_cps`), if it is one.
fn key_of_field(field: &str) -> Option<&'static str> {
    every_limit().map(|l| l.key).find(|k| *k == field)
}

/// Each changed key checked alone on the stored definition: the server's message per key.
fn check_each(stored: &Value, typed: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    for (key, text) in typed {
        if text_of(at(stored, key)) == *text {
            continue;
        }
        let kind = every_limit()
            .find(|l| l.key == *key)
            .map_or(Kind::Text, |l| l.kind);
        let value = (!text.is_empty()).then(|| json_of(kind, text));
        let alone = with_key(stored.clone(), key, value);
        if let Err(ApiError::BadRequest { field, message }) =
            definition_from_json(alone.to_string().as_bytes())
        {
            errors.push((key_of_field(&field).unwrap_or(key), message));
        }
    }
    errors
}

/// `POST /console/trunks/{name}/limits`.
pub(crate) async fn save(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let stored = match api::get_one(State(state.clone()), Path(name.clone())).await {
        Ok(Json(t)) => t.definition,
        Err(e) => return super::trunks::failed(&ctx, &e),
    };
    let (typed, def) = apply(&stored, &body);
    let mut refused = LimitsRefused {
        trunk: name.clone(),
        errors: check_each(&stored, &typed),
        typed,
        general: None,
    };
    if refused.errors.is_empty() {
        let order = Bytes::from(def.to_string());
        match api::replace(
            State(state.clone()),
            Extension(who),
            Path(name.clone()),
            Ok(order),
        )
        .await
        {
            Ok(_) => {
                return see_other(
                    &format!("/console/trunks?done=limits#trunk-{}", urlencoded(&name)),
                    &[],
                )
            }
            Err(ApiError::BadRequest { field, message }) => match key_of_field(&field) {
                Some(key) => refused.errors.push((key, message)),
                None => refused.general = Some(format!("{field}: {message}")),
            },
            Err(ApiError::Clash { field, message }) => {
                refused.general = Some(format!("{field}: {message}"))
            }
            Err(e) => return super::trunks::failed(&ctx, &e),
        }
    }
    tracing::info!(trunk = %name, refused = refused.errors.len(), "console: trunk limits refused");
    super::trunks::render_refused_limits(&state, &ctx, refused).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored() -> Value {
        json!({"name": "demo", "pbx": ["10.0.0.0/24"], "carrier": "192.0.2.1:5060",
               "inbound_to": "10.0.0.5:5060", "numbers": ["+861012345678"],
               "max_cps": 5, "rules": {"over_frequent_number": {"threshold": 10}}})
    }

    #[test]
    fn the_form_replaces_its_keys_and_an_empty_field_removes_one() {
        let body = b"csrf=x&max_concurrent=12&max_cps=&calling_hours=09%3A00-18%3A00\
                     &rules.over_frequent_number.threshold=&rules.over_frequent_callee.window=5m";
        let (typed, def) = apply(&stored(), body);
        assert_eq!(def["max_concurrent"], json!(12));
        assert!(def.get("max_cps").is_none(), "empty: the default");
        assert_eq!(def["calling_hours"], "09:00-18:00");
        assert!(
            def["rules"].get("over_frequent_number").is_none(),
            "an emptied rule table goes"
        );
        assert_eq!(def["rules"]["over_frequent_callee"]["window"], "5m");
        assert_eq!(def["numbers"], json!(["+861012345678"]), "other keys kept");
        assert_eq!(typed.len(), 5);
        definition_from_json(def.to_string().as_bytes()).expect("a valid definition");
    }

    #[test]
    fn each_bad_field_gets_the_servers_message() {
        let body = b"max_concurrent=0&max_cps=fast&calling_hours=9-5&timezone=Asia%2FShanghai\
                     &rules.over_frequent_callee.threshold=100";
        let (typed, _) = apply(&stored(), body);
        let errors = check_each(&stored(), &typed);
        let keys: Vec<&str> = errors.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "max_concurrent",
                "max_cps",
                "calling_hours",
                "rules.over_frequent_callee.threshold"
            ],
            "{errors:?}"
        );
        assert!(errors.iter().all(|(_, m)| !m.is_empty()));
        // Unchanged values are not checked again.
        let (typed, _) = apply(&stored(), b"max_cps=5");
        assert!(check_each(&stored(), &typed).is_empty());
    }

    #[test]
    fn every_key_is_one_the_api_takes() {
        let schema = crate::api::schemas::trunk_body::schema();
        for l in every_limit() {
            let mut s = schema;
            for part in l.key.split('.') {
                s = &s["properties"][part];
            }
            assert!(s.is_object(), "{} is not in the trunk's schema", l.key);
        }
        assert_eq!(field_id("demo", "rules.a.b"), "demo-rules-a-b");
    }
}
