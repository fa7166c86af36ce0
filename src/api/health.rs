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
    /// A cluster node's view of the cluster (absent on a single node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterCheck>,
    /// The trunks that register with their carrier (`register = true`; absent when none).
    /// Informational: an unregistered trunk refuses its own outbound calls, the gateway stays
    /// ready for the others.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registrations: Vec<RegistrationCheck>,
}

/// One trunk's registration with its carrier.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationCheck {
    pub trunk: String,
    pub registered: bool,
    /// When the registrar's grant runs out (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last REGISTER's final status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn registrations(policy: &crate::policy::Policy) -> Vec<RegistrationCheck> {
    let now = chrono::Utc::now();
    policy
        .registrations()
        .all()
        .into_iter()
        .map(|(trunk, s)| RegistrationCheck {
            registered: s.registered(now),
            expires_at: s.registered_until.filter(|_| s.registered(now)),
            last_status: s.last_status,
            error: s.last_error,
            trunk,
        })
        .collect()
}

/// A cluster node's state: ready while the shared admission state is up, or while it is down
/// with `on_shared_state_down = "local"` (calls still flow, under the divided caps); not ready
/// while it is down with `refuse` (every call is refused).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterCheck {
    pub ok: bool,
    pub node_id: String,
    /// `up` (admissions against the shared state) or `down` (on_shared_state_down applies).
    pub state: String,
    /// Live nodes last seen, this one included.
    pub live_nodes: u32,
    /// Leases in the shared state this node's calls hold.
    pub leases_held: usize,
    /// `refuse` or `local`.
    pub on_shared_state_down: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ClusterCheck {
    fn of(shared: &crate::cluster::SharedAdmission) -> ClusterCheck {
        let s = shared.status();
        let up = s.state == "up";
        ClusterCheck {
            ok: up || s.on_shared_state_down == "local",
            node_id: s.node_id,
            state: s.state.to_string(),
            live_nodes: s.live_nodes,
            leases_held: s.leases_held,
            on_shared_state_down: s.on_shared_state_down.to_string(),
            error: s.error,
        }
    }
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
                   `min_free_mb`) and, on a cluster node, the shared admission state is up (or \
                   down with `on_shared_state_down = \"local\"`), 503 otherwise, with the \
                   failing check's reason. `checks.cluster` names the node and its cluster state; \
                   `checks.registrations` each registering trunk's state (informational).",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = Health),
    )
)]
pub(crate) async fn healthz(State(state): State<ApiState>) -> (StatusCode, Json<Health>) {
    let database = Check::of(state.store().ping().await);
    let recording_dir = Check::of(state.deps().recordings.disk().verdict());
    let cluster = state.deps().cluster.as_ref().map(ClusterCheck::of);
    let cluster_ok = cluster.as_ref().is_none_or(|c| c.ok);
    let ready = database.ok && recording_dir.ok && cluster_ok;
    if !ready {
        let cluster_error = cluster.as_ref().and_then(|c| c.error.as_deref());
        tracing::warn!(database = ?database.error, recording_dir = ?recording_dir.error, cluster = ?cluster_error, "healthz: not ready");
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
                cluster,
                registrations: registrations(&state.deps().policy),
            },
        }),
    )
}
