//! `GET /healthz`: liveness (the server answers) and readiness (the database answers, the
//! recording folder's health watcher finds it usable: a directory that takes a probe file, on
//! a file system above `[recording] min_free_mb`). No token; not audited. The recording check
//! reads the watcher's last verdict (at most about half a second old): a probe cannot make
//! the gateway write or fsync anything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    pub checks: HealthChecks,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthChecks {
    pub database: Check,
    pub recording_dir: Check,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub ok: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    fn of<E: std::fmt::Display>(r: Result<(), E>) -> Check {
        match r {
            Ok(()) => Check {
                ok: true,
                error: None,
            },
            Err(e) => Check {
                ok: false,
                error: Some(e.to_string()),
            },
        }
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    description = "Liveness and readiness: 200 when the database answers and the recording \
                   folder is usable (the health watcher's last verdict: writable, above \
                   `min_free_mb`), 503 otherwise, with the failing check's reason.",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = Health),
    )
)]
pub(crate) async fn healthz(State(state): State<ApiState>) -> (StatusCode, Json<Health>) {
    let database = Check::of(state.store().ping().await);
    let recording_dir = Check::of(state.deps().recordings.disk().verdict());
    let ready = database.ok && recording_dir.ok;
    if !ready {
        tracing::warn!(database = ?database.error, recording_dir = ?recording_dir.error, "healthz: not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ready { "ok" } else { "unavailable" }.to_string(),
            checks: HealthChecks {
                database,
                recording_dir,
            },
        }),
    )
}
