//! Trunks over HTTP (role admin): `GET/POST /api/v1/trunks`, `GET/PUT/DELETE
//! /api/v1/trunks/{name}`, and a trunk's number lists one number at a time
//! (`/api/v1/trunks/{name}/numbers[/{number}]`, `/api/v1/trunks/{name}/blocked[/{number}]`).
//! A body is the trunk's `[[trunks]]` table as a JSON object; it is stored as TOML (the text the
//! config file would hold) and applied to admission at once by the `TrunkBook`. Who changed it
//! is the token's name.
//!
//! This file is the trunk itself (its JSON body and its TOML text); `trunks/number_lists.rs`
//! is its two number lists.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::store::TrunkDefinition;
use crate::trunks::TrunkError;

mod number_lists;

pub(crate) use number_lists::{
    __path_add_blocked, __path_add_number, __path_blocked, __path_numbers, __path_remove_blocked,
    __path_remove_number, add_blocked, add_number, blocked, numbers, remove_blocked, remove_number,
};
pub use number_lists::{NumberListView, NumberOrder};

/// A stored trunk.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrunkView {
    pub name: String,
    /// The trunk's keys as stored (the body that created or last changed it): PUT it back,
    /// changed, to change the trunk. Keys left out take their defaults.
    #[schema(value_type = Object)]
    pub definition: Value,
    pub updated_at: DateTime<Utc>,
    /// The token (or `config file`) that changed it last.
    pub updated_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrunkList {
    /// In creation order.
    pub items: Vec<TrunkView>,
}

/// A trunk's definition (the keys of a `[[trunks]]` table, as JSON): its schema is
/// `schemas::trunk_body`, which the document carries and every body is checked against.
pub struct TrunkBody;

impl utoipa::PartialSchema for TrunkBody {
    /// A stand-in: `openapi::document_json` puts `schemas::trunk_body::schema()` in its place
    /// (utoipa's model has no `not` or `const`).
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .into()
    }
}

impl ToSchema for TrunkBody {}

#[utoipa::path(
    get,
    path = "/api/v1/trunks",
    tag = "admin",
    description = "Every trunk, as stored (the config file seeds them at the first start). Role: admin.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trunks", body = TrunkList),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<TrunkList>, ApiError> {
    let defs = state.deps().trunks.definitions().await.map_err(api_error)?;
    Ok(Json(TrunkList {
        items: defs.iter().map(view).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/trunks",
    tag = "admin",
    description = "Create a trunk: validated with the other trunks (names, PBX networks and \
                   numbers apart), stored, and applied to admission at once. Role: admin.",
    request_body = TrunkBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TrunkView),
        (status = 400, description = "A bad key (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "A trunk of that name exists, or a number is another trunk's or listed twice (named in `error.field`)", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TrunkView>), ApiError> {
    let body = body.map_err(ApiError::bytes)?;
    let definition = definition_from_json(&with_stored_password(&body, None)?)?;
    let book = &state.deps().trunks;
    let trunk = book
        .create(&definition, &who.name)
        .await
        .map_err(api_error)?;
    let stored = book.definition(&trunk.name).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(view(&stored))))
}

#[utoipa::path(
    get,
    path = "/api/v1/trunks/{name}",
    tag = "admin",
    description = "One trunk, as stored. Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trunk", body = TrunkView),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
    )
)]
pub(crate) async fn get_one(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<TrunkView>, ApiError> {
    let stored = state
        .deps()
        .trunks
        .definition(&name)
        .await
        .map_err(api_error)?;
    Ok(Json(view(&stored)))
}

#[utoipa::path(
    put,
    path = "/api/v1/trunks/{name}",
    tag = "admin",
    description = "Replace a trunk's definition (keys left out take their defaults); the name \
                   stays. Applied to admission at once; calls in progress go on. Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    request_body = TrunkBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = TrunkView),
        (status = 400, description = "A bad key (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
        (status = 409, description = "`name` is not the path's, or a number is another trunk's or listed twice", body = ErrorBody),
    )
)]
pub(crate) async fn replace(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TrunkView>, ApiError> {
    let book = &state.deps().trunks;
    // An unknown trunk is a 404 whatever the body.
    let stored = book.definition(&name).await.map_err(api_error)?;
    let body = body.map_err(ApiError::bytes)?;
    let definition = definition_from_json(&with_stored_password(&body, Some(&stored.definition))?)?;
    book.replace(&name, &definition, &who.name)
        .await
        .map_err(api_error)?;
    let stored = book.definition(&name).await.map_err(api_error)?;
    Ok(Json(view(&stored)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/trunks/{name}",
    tag = "admin",
    description = "Delete a trunk: its new calls are refused at once (calls in progress go on). \
                   Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .deps()
        .trunks
        .delete(&name, &who.name)
        .await
        .map_err(api_error)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(api_error(TrunkError::NotFound(name)))
    }
}

fn api_error(e: TrunkError) -> ApiError {
    match e {
        e @ TrunkError::NotFound(_) => ApiError::NotFound(e.to_string()),
        e @ TrunkError::NotListed { .. } => ApiError::NotFound(e.to_string()),
        e @ (TrunkError::Exists(_) | TrunkError::AlreadyListed { .. }) => {
            ApiError::Conflict(e.to_string())
        }
        TrunkError::Invalid { key, message } => ApiError::bad(key, message),
        TrunkError::Clash { key, message } => ApiError::Clash {
            field: key,
            message,
        },
        TrunkError::Store(e) => ApiError::Store(e),
    }
}

/// What GET shows in place of a trunk's `auth_password`: the password never leaves the
/// gateway. A PUT that sends it back unchanged keeps the stored password.
pub const REDACTED_PASSWORD: &str = "(redacted)";

/// The body with `auth_password: "(redacted)"` replaced by the password `stored` holds (a PUT
/// of what GET showed keeps the password); refused where there is none to keep (POST).
fn with_stored_password(body: &[u8], stored: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        // Not JSON: `definition_from_json` says so.
        return Ok(body.to_vec());
    };
    let placeholder = value.get("auth_password").and_then(Value::as_str) == Some(REDACTED_PASSWORD);
    if !placeholder {
        return Ok(body.to_vec());
    }
    let kept = stored
        .and_then(|text| toml::from_str::<toml::Table>(text).ok())
        .and_then(|t| {
            t.get("auth_password")
                .and_then(|p| p.as_str().map(str::to_string))
        });
    let Some(password) = kept else {
        return Err(ApiError::bad(
            "auth_password",
            format!("`{REDACTED_PASSWORD}` stands for a stored password, and there is none: send the password"),
        ));
    };
    value["auth_password"] = Value::String(password);
    serde_json::to_vec(&value).map_err(|e| ApiError::bad("body", e.to_string()))
}

/// A definition as JSON with its password masked.
fn redacted(mut definition: Value) -> Value {
    if let Some(p) = definition.get_mut("auth_password") {
        *p = Value::String(REDACTED_PASSWORD.to_string());
    }
    definition
}

fn view(d: &TrunkDefinition) -> TrunkView {
    TrunkView {
        name: d.name.clone(),
        definition: redacted(definition_to_json(&d.definition)),
        updated_at: d.updated_at,
        updated_by: d.updated_by.clone(),
    }
}

/// A JSON body as the trunk's TOML table. `null` has no TOML spelling: a key is left out for its
/// default.
pub(crate) fn definition_from_json(body: &[u8]) -> Result<String, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("not a JSON object: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad(
            "body",
            "must be a JSON object of the trunk's keys",
        ));
    }
    let value = whole_numbers_as_integers(value);
    if let Some(path) = null_at(&value, "") {
        return Err(ApiError::bad(
            path,
            "null is not a value (leave the key out for its default)",
        ));
    }
    let table = toml::Value::try_from(&value).map_err(|e| ApiError::bad("body", e.to_string()))?;
    let text = toml::to_string(&table).map_err(|e| ApiError::bad("body", e.to_string()))?;
    // The config's parse says what is wrong in its own words; the schema then refuses what the
    // config would take but the document does not allow (its forms are the narrower).
    crate::trunks::parse_definition(&text).map_err(api_error)?;
    super::schemas::trunk_body::check(&value)
        .map_err(|(key, message)| ApiError::bad(key, message))?;
    Ok(text)
}

/// `v` with every float that is a whole number (`805.0`) as that integer: JSON does not tell
/// them apart (nor does the schema's `integer`), TOML does, and a count must be a TOML integer.
/// A float key (`max_cps`) reads an integer as that float.
fn whole_numbers_as_integers(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => items.into_iter().map(whole_numbers_as_integers).collect(),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_numbers_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The path (`rules.error_rate.step`, `numbers[1]`) of the first `null` in `v`.
fn null_at(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::Null => Some(if at.is_empty() {
            "body".into()
        } else {
            at.into()
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            null_at(v, &path)
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| null_at(v, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// A stored TOML table as JSON (the definition was validated when stored; should it not parse
/// now, its text is shown rather than nothing).
pub(crate) fn definition_to_json(text: &str) -> Value {
    match toml::from_str::<toml::Table>(text)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::to_value(t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "stored trunk definition does not read as TOML");
            Value::String(text.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::test_support::*;
    use crate::trunks::parse_definition;

    #[test]
    fn every_key_round_trips_json_toml_json() {
        let body = serde_json::json!({
            "name": "demo",
            "pbx": ["10.0.0.0/24", "10.0.1.5/32"],
            "carrier": ["192.0.2.1:5060", "192.0.2.2:5060"],
            "carrier_transport": "tcp",
            "inbound_to": "10.0.0.5:5060",
            "pbx_transport": "udp",
            "numbers": ["+861012345678", "+861012345679"],
            "max_concurrent": 12,
            "max_concurrent_per_caller_id": 3,
            "max_cps": 2.5,
            "allow_anonymous": true,
            "calling_hours": "09:00-12:00,13:30-20:00",
            "timezone": "Asia/Shanghai",
            "max_call_secs": 7200,
            "blocked_numbers": ["+8613900000009"],
            "throttle_share": 0.25,
            "hangup_on_suspend": true,
            "rules": {
                "error_rate": { "threshold": 0.3, "window": "1h", "min_sample": 20, "step": "throttle" },
                "over_frequent_callee": { "enabled": false }
            }
        });
        let text = definition_from_json(body.to_string().as_bytes()).unwrap();
        let t = parse_definition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(t.carrier.len(), 2);
        assert_eq!(t.pbx.len(), 2);
        assert_eq!(t.carrier_transport, crate::config::TransportKind::Tcp);
        assert_eq!(t.max_cps, 2.5);
        assert_eq!(t.throttle_share, 0.25);
        assert_eq!(t.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(t.calling_hours.ranges.len(), 2);
        assert_eq!(t.blocked_numbers, ["+8613900000009"]);
        assert!(t.allow_anonymous && t.hangup_on_suspend);
        assert_eq!(t.max_call_secs, 7200);
        let rule = t.rule(crate::config::RuleId::ErrorRate);
        assert_eq!(rule.threshold, 0.3);
        assert_eq!(rule.min_sample, 20);
        assert_eq!(rule.step, crate::model::Step::Throttle);
        assert!(!t.rule(crate::config::RuleId::OverFrequentCallee).enabled);
        // What GET shows is the body that was sent, key for key.
        assert_eq!(definition_to_json(&text), body);
        // A whole number written as a float (JSON does not tell them apart) is a count.
        let float_counts = body
            .to_string()
            .replace("\"max_concurrent\":12", "\"max_concurrent\":12.0");
        assert!(float_counts.contains("12.0"), "{float_counts}");
        let t = parse_definition(&definition_from_json(float_counts.as_bytes()).unwrap()).unwrap();
        assert_eq!(t.max_concurrent, 12);
        // A whole number where a float is expected reads as that float.
        let int_cps = body.to_string().replace("2.5", "3");
        let t = parse_definition(&definition_from_json(int_cps.as_bytes()).unwrap()).unwrap();
        assert_eq!(t.max_cps, 3.0);
        // A single carrier address stays one string.
        let one = body.to_string().replace(
            "[\"192.0.2.1:5060\",\"192.0.2.2:5060\"]",
            "\"192.0.2.1:5060\"",
        );
        let text = definition_from_json(one.as_bytes()).unwrap();
        assert_eq!(parse_definition(&text).unwrap().carrier.len(), 1);
        assert_eq!(definition_to_json(&text)["carrier"], "192.0.2.1:5060");
    }

    #[test]
    fn password_is_never_shown_and_kept_on_put_back() {
        let body = serde_json::json!({
            "name": "demo", "pbx": ["10.0.0.0/24"], "carrier": "192.0.2.1:5060",
            "inbound_to": "10.0.0.5:5060", "numbers": ["+861012345678"],
            "auth_username": "gw", "auth_password": "s3cr3t-pw", "auth_realm": "carrier",
        });
        let text = definition_from_json(body.to_string().as_bytes()).unwrap();
        let shown = view(&TrunkDefinition {
            name: "demo".into(),
            definition: text.clone(),
            updated_at: chrono::Utc::now(),
            updated_by: "t".into(),
        });
        let json = serde_json::to_string(&shown).unwrap();
        assert!(!json.contains("s3cr3t-pw"), "{json}");
        assert_eq!(shown.definition["auth_password"], REDACTED_PASSWORD);
        // PUT of what GET showed: the stored password stays.
        let back =
            with_stored_password(shown.definition.to_string().as_bytes(), Some(&text)).unwrap();
        let again = definition_from_json(&back).unwrap();
        let t = parse_definition(&again).unwrap();
        assert_eq!(t.credentials().unwrap().password.expose(), "s3cr3t-pw");
        // POST of the placeholder: no password to keep.
        let e = with_stored_password(shown.definition.to_string().as_bytes(), None).unwrap_err();
        assert_eq!(field(Err::<(), _>(e)), "auth_password");
        // A schema refusal of the password does not echo it.
        let mut bad = body.clone();
        bad["auth_password"] = serde_json::json!("");
        let e = definition_from_json(bad.to_string().as_bytes()).unwrap_err();
        assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
    }

    #[test]
    fn bodies_that_are_no_table_name_the_field() {
        assert_eq!(field(definition_from_json(b"")), "body");
        assert_eq!(field(definition_from_json(b"[1]")), "body");
        assert_eq!(field(definition_from_json(b"{\"name\": null}")), "name");
        assert_eq!(
            field(definition_from_json(
                b"{\"rules\": {\"error_rate\": {\"step\": null}}}"
            )),
            "rules.error_rate.step"
        );
        assert_eq!(
            field(definition_from_json(b"{\"numbers\": [\"+1\", null]}")),
            "numbers[1]"
        );
    }
}
