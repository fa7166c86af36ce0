//! A trunk's two number lists over HTTP (role admin), one number at a time:
//! `/api/v1/trunks/{name}/numbers[/{number}]` (the caller IDs allowed out, the numbers reachable
//! in) and `/api/v1/trunks/{name}/blocked[/{number}]` (refused as caller or callee).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api_error;
use crate::api::auth::Principal;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::params::number_param;
use crate::api::ApiState;
use crate::trunks::{NumberList, TrunkError};

/// One number to add to a list.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NumberOrder {
    #[schema(schema_with = crate::api::schemas::number)]
    pub number: String,
}

/// A trunk's number list.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberListView {
    pub trunk: String,
    pub items: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/trunks/{name}/numbers",
    tag = "admin",
    description = "The trunk's numbers: the only caller IDs allowed out, the only numbers \
                   reachable in. Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The numbers", body = NumberListView),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
    )
)]
pub(crate) async fn numbers(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<NumberListView>, ApiError> {
    list_of(&state, &name, NumberList::Numbers).await
}

#[utoipa::path(
    post,
    path = "/api/v1/trunks/{name}/numbers",
    tag = "admin",
    description = "Authorize a number on the trunk: the next call with it is admitted. A number \
                   of another trunk is a 400 naming `numbers`. Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    request_body = NumberOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Added; the list now", body = NumberListView),
        (status = 400, description = "A bad number (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
        (status = 409, description = "Listed already, or another trunk's (named in `error.field`)", body = ErrorBody),
    )
)]
pub(crate) async fn add_number(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NumberListView>), ApiError> {
    add_to(
        &state,
        &who,
        &name,
        NumberList::Numbers,
        &body.map_err(ApiError::bytes)?,
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/api/v1/trunks/{name}/numbers/{number}",
    tag = "admin",
    description = "Withdraw a number: the next call with it is refused. Role: admin.",
    params(
        ("name" = String, Path, description = "The trunk's name"),
        ("number" = String, Path, pattern = r"^\+?[ .()-]*([0-9][ .()-]*){3,20}$",
         description = "The number (any spelling that normalizes the same; `schemas::NUMBER_PATTERN`)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed; the list now", body = NumberListView),
        (status = 400, description = "Not a number (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk, or the number is not listed", body = ErrorBody),
        (status = 409, description = "The trunk's last number (a trunk keeps one)", body = ErrorBody),
    )
)]
pub(crate) async fn remove_number(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path((name, number)): Path<(String, String)>,
) -> Result<Json<NumberListView>, ApiError> {
    remove_from(&state, &who, &name, NumberList::Numbers, &number).await
}

#[utoipa::path(
    get,
    path = "/api/v1/trunks/{name}/blocked",
    tag = "admin",
    description = "The trunk's blocked numbers (refused as caller or callee). Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The blocked numbers", body = NumberListView),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
    )
)]
pub(crate) async fn blocked(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<NumberListView>, ApiError> {
    list_of(&state, &name, NumberList::Blocked).await
}

#[utoipa::path(
    post,
    path = "/api/v1/trunks/{name}/blocked",
    tag = "admin",
    description = "Block a number on the trunk: the next call to or from it is refused \
                   (`number_blocked`). Role: admin.",
    params(("name" = String, Path, description = "The trunk's name")),
    request_body = NumberOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Blocked; the list now", body = NumberListView),
        (status = 400, description = "A bad number (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk", body = ErrorBody),
        (status = 409, description = "Blocked already", body = ErrorBody),
    )
)]
pub(crate) async fn add_blocked(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NumberListView>), ApiError> {
    add_to(
        &state,
        &who,
        &name,
        NumberList::Blocked,
        &body.map_err(ApiError::bytes)?,
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/api/v1/trunks/{name}/blocked/{number}",
    tag = "admin",
    description = "Unblock a number. Role: admin.",
    params(
        ("name" = String, Path, description = "The trunk's name"),
        ("number" = String, Path, pattern = r"^\+?[ .()-]*([0-9][ .()-]*){3,20}$",
         description = "The number (any spelling that normalizes the same; `schemas::NUMBER_PATTERN`)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Unblocked; the list now", body = NumberListView),
        (status = 400, description = "Not a number (`number`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk, or the number is not blocked", body = ErrorBody),
    )
)]
pub(crate) async fn remove_blocked(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path((name, number)): Path<(String, String)>,
) -> Result<Json<NumberListView>, ApiError> {
    remove_from(&state, &who, &name, NumberList::Blocked, &number).await
}

async fn list_of(
    state: &ApiState,
    name: &str,
    list: NumberList,
) -> Result<Json<NumberListView>, ApiError> {
    let trunks = state.deps().trunks.trunks().await;
    let trunk = trunks
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| api_error(TrunkError::NotFound(name.to_string())))?;
    Ok(Json(NumberListView {
        trunk: trunk.name.clone(),
        items: list.of(trunk).to_vec(),
    }))
}

async fn add_to(
    state: &ApiState,
    who: &Principal,
    name: &str,
    list: NumberList,
    body: &[u8],
) -> Result<(StatusCode, Json<NumberListView>), ApiError> {
    let book = &state.deps().trunks;
    // An unknown trunk is a 404 whatever the body.
    book.definition(name).await.map_err(api_error)?;
    let order: NumberOrder = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("expected {{\"number\": \"+8610…\"}}: {e}")))?;
    let number = stored_number(&order.number)?;
    let trunk = book
        .add_number(name, list, &number, &who.name)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(NumberListView {
            items: list.of(&trunk).to_vec(),
            trunk: trunk.name,
        }),
    ))
}

async fn remove_from(
    state: &ApiState,
    who: &Principal,
    name: &str,
    list: NumberList,
    number: &str,
) -> Result<Json<NumberListView>, ApiError> {
    let book = &state.deps().trunks;
    book.definition(name).await.map_err(api_error)?;
    number_param("number", number)?;
    let trunk = book
        .remove_number(name, list, number, &who.name)
        .await
        .map_err(api_error)?;
    Ok(Json(NumberListView {
        items: list.of(&trunk).to_vec(),
        trunk: trunk.name,
    }))
}

/// A number as it goes into the trunk's list: normalized, with its `+` when it had one.
fn stored_number(raw: &str) -> Result<String, ApiError> {
    let digits = number_param("number", raw)?;
    let plus = raw.starts_with('+');
    Ok(if plus { format!("+{digits}") } else { digits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_keep_their_plus() {
        assert_eq!(stored_number("+86 10 1234 5678").unwrap(), "+861012345678");
        // The API reads plain numbers only (`schemas::NUMBER_PATTERN`), no URI.
        assert!(stored_number("tel:+861012345678").is_err());
        assert!(stored_number(" +861012345678").is_err());
        assert_eq!(stored_number("01012345678").unwrap(), "01012345678");
        assert!(stored_number("abc").is_err());
    }
}
