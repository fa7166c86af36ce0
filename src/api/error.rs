//! The API's errors and their JSON body: `{"error": {"code": ..., "message": ..., "field": ...}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, a token we do not know, or a revoked one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token whose role or trunks do not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The path exists, not with this method; carries the methods it has.
    #[error("method not allowed here (allowed: {0})")]
    MethodNotAllowed(String),
    /// Bad input; `field` names the parameter.
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request body over `server::MAX_BODY_BYTES`.
    #[error("{0}")]
    TooLarge(String),
    /// Something the gateway could not do now (the monitor stopped, the audit log refused).
    #[error("{0}")]
    Unavailable(String),
    /// What is to be created exists already (a trunk's name, a listed number).
    #[error("{0}")]
    Conflict(String),
    /// A value valid alone that clashes with what is stored (a number another trunk has);
    /// `field` names it.
    #[error("{field}: {message}")]
    Clash { field: String, message: String },
}

impl ApiError {
    pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A JSON body that could not be read: 413 when over the size limit, else 400 naming `body`.
    pub(crate) fn body(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body over {} bytes",
                super::server::MAX_BODY_BYTES
            ))
        } else {
            ApiError::bad("body", rejection.body_text())
        }
    }

    /// A raw body that could not be read: 413 when over the size limit, else 400 naming `body`.
    pub(crate) fn bytes(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body over {} bytes",
                super::server::MAX_BODY_BYTES
            ))
        } else {
            ApiError::bad("body", rejection.body_text())
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) | ApiError::Clash { .. } => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Store(_) => "internal",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Conflict(_) | ApiError::Clash { .. } => "conflict",
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`, `bad_request`,
    /// `too_large`, `internal`, `unavailable` or `conflict`.
    pub code: String,
    pub message: String,
    /// The parameter at fault (400; 409 when a value clashes with what is stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // The database's message stays in the log, not in the answer.
            ApiError::Store(e) => {
                tracing::error!(error = %e, "api: store error");
                "internal error".to_string()
            }
            ApiError::BadRequest { message, .. } | ApiError::Clash { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::BadRequest { field, .. } | ApiError::Clash { field, .. } => {
                Some(field.clone())
            }
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
                field,
            },
        };
        let allow = match &self {
            ApiError::MethodNotAllowed(methods) => axum::http::HeaderValue::from_str(methods).ok(),
            _ => None,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(allow) = allow {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Unknown paths: 404 with the same JSON body.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".to_string())
}
