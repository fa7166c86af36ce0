//! Anomalies and the enforcement ladder over HTTP: `GET /api/v1/anomalies`,
//! `GET /api/v1/enforcement` (the steps in force and the log of a period), and for admins
//! `POST /api/v1/enforcement` (impose a step) and `POST /api/v1/enforcement/{id}/lift`. Orders
//! go to the running monitor (`MonitorHandle`), which applies them to admission at once and
//! writes the append-only log; the operator is the token's name. On a node of a cluster that
//! does not run the monitor, the order is handed to the node that does and the answer waits
//! for it (at most a few seconds: 503 beyond, the order staying queued).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::params::{number_param, text_param, time_param, unique};
use super::ApiState;
use crate::config::parse_duration;
use crate::model::Step;
use crate::model::Subject;
use crate::monitor::enforcement::{EnforcementAction, EnforcementError, Imposition};
use crate::monitor::service::MonitorError;
use crate::store::{AnomalyRow, EnforcementEntry};

/// The period of the steps in force and the log. Unknown parameters are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `period`.
pub struct StepsPeriodParams {
    /// Start (inclusive): RFC 3339 (UTC). Default: 24 hours ago.
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// End (exclusive). Default: now. A period that ends at or before its start is empty.
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
}

/// A period and a subject, for anomalies. Unknown parameters are refused.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by `period`.
pub struct PeriodParams {
    /// Start (inclusive): RFC 3339 or YYYY-MM-DD (UTC). Default: 24 hours ago.
    #[param(schema_with = super::schemas::time)]
    from: Option<String>,
    /// End (exclusive). Default: now.
    #[param(schema_with = super::schemas::time)]
    to: Option<String>,
    /// Anomalies only: one trunk.
    #[param(schema_with = super::schemas::name)]
    trunk: Option<String>,
    /// Anomalies only: one number (caller ID or called number).
    #[param(schema_with = super::schemas::number)]
    number: Option<String>,
}

/// An anomaly with its evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyView {
    pub id: String,
    pub detected_at: DateTime<Utc>,
    pub rule: String,
    /// `trunk`, `caller_id` or `callee`.
    pub subject: String,
    pub trunk: String,
    pub number: String,
    pub window_secs: i64,
    pub observed: f64,
    pub threshold: f64,
    pub sample: i64,
    /// The step imposed for it (`none` when a step was already in force).
    pub step: String,
    pub detail: String,
    /// Calls that show it.
    pub call_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Anomalies {
    pub items: Vec<AnomalyView>,
}

/// A step in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// The step's id (lift it with `POST /api/v1/enforcement/{id}/lift`).
    pub id: String,
    pub subject: String,
    pub trunk: String,
    pub number: String,
    pub step: String,
    pub since: DateTime<Utc>,
    /// Earliest lift (automatic steps also wait until their rule stays clear).
    pub until: Option<DateTime<Utc>>,
    /// `rule` or `operator`.
    pub cause: String,
    pub detail: String,
}

/// A row of the enforcement log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntryView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `impose` or `lift`.
    pub action: String,
    /// The step's id.
    pub imposition: i64,
    pub subject: String,
    pub trunk: String,
    pub number: String,
    pub step: String,
    pub until: Option<DateTime<Utc>>,
    /// `rule` or `operator` (impose); `resumed`, `escalated` or `operator` (lift).
    pub cause: String,
    pub rule: Option<String>,
    pub anomaly_id: Option<String>,
    pub operator: Option<String>,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enforcement {
    pub in_force: Vec<StepView>,
    pub log: Vec<LogEntryView>,
}

/// An operator's order to impose a step. Its schema (`schemas::impose_order`) says which
/// steps go with a number and which without.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImposeOrder {
    pub trunk: String,
    /// A caller ID of the trunk; absent: the trunk itself.
    pub number: Option<String>,
    /// `alert`, `throttle`, `suspend_number` or `suspend_trunk`.
    pub step: String,
    /// How long (90s, 30m, 2h, 7d); absent: until lifted.
    pub duration: Option<String>,
    pub reason: String,
}

/// An operator's order to lift a step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftOrder {
    #[schema(schema_with = super::schemas::reason)]
    pub reason: String,
}

impl utoipa::PartialSchema for ImposeOrder {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schemas::impose_order()
    }
}

impl ToSchema for ImposeOrder {}

/// What an order did.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDone {
    /// The log entries it wrote, as the monitor wrote them.
    pub actions: Vec<serde_json::Value>,
}

#[utoipa::path(
    get,
    path = "/api/v1/anomalies",
    tag = "carrier",
    description = "Anomalies detected in a period, with their evidence. Roles: carrier (its \
                   trunks only), compliance, admin.",
    params(PeriodParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The anomalies, oldest first", body = Anomalies),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role or trunk not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn anomalies(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Anomalies>, ApiError> {
    let p = period(query, true)?;
    if let Some(t) = &p.trunk {
        if !who.sees_trunk(t) {
            return Err(ApiError::Forbidden(format!(
                "token {} may not read trunk {t}",
                who.name
            )));
        }
    }
    let rows = state
        .store()
        .anomalies(p.from, p.to, p.trunk.as_deref(), p.number.as_deref())
        .await?;
    Ok(Json(Anomalies {
        items: rows
            .into_iter()
            .filter(|a| who.sees_trunk(&a.subject.trunk))
            .map(anomaly_view)
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/enforcement",
    tag = "carrier",
    description = "The steps in force now and the enforcement log of a period (append-only: \
                   each step has an impose row and, once lifted, a lift row with the same \
                   imposition). Roles: carrier (its trunks only), compliance, admin.",
    params(StepsPeriodParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Steps in force and the log", body = Enforcement),
        (status = 400, description = "A bad parameter (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    )
)]
pub(crate) async fn enforcement(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Enforcement>, ApiError> {
    let p = period(query, false)?;
    let in_force = state.deps().monitor.in_force().await.map_err(unavailable)?;
    let log = state.store().enforcement_log(p.from, p.to).await?;
    Ok(Json(Enforcement {
        in_force: in_force
            .iter()
            .filter(|i| who.sees_trunk(i.subject.trunk()))
            .map(step_view)
            .collect(),
        log: log
            .into_iter()
            .filter(|e| who.sees_trunk(&e.entry.subject.trunk))
            .map(log_view)
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/enforcement",
    tag = "admin",
    description = "Impose a step on a trunk or one of its caller IDs; it takes effect on the \
                   very next call and is logged with the token's name and the reason. Role: \
                   admin.",
    request_body = ImposeOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Imposed", body = OrderDone),
        (status = 400, description = "A bad field (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such trunk, or the number is not one of its numbers", body = ErrorBody),
        (status = 409, description = "The cluster's monitor leader refused it (its trunks \
                                      changed meanwhile)", body = ErrorBody),
        (status = 503, description = "The monitor (in a cluster: its leader) did not take it \
                                      in time; a handed-over order stays queued", body = ErrorBody),
    )
)]
pub(crate) async fn impose(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<ImposeOrder>, JsonRejection>,
) -> Result<(StatusCode, Json<OrderDone>), ApiError> {
    let Json(o) = body.map_err(ApiError::body)?;
    if o.reason.trim().is_empty() {
        return Err(ApiError::bad("reason", "must say why"));
    }
    let step = Step::from_code(&o.step)
        .ok_or_else(|| ApiError::bad("step", "alert, throttle, suspend_number or suspend_trunk"))?;
    let duration = o
        .duration
        .as_deref()
        .map(|d| {
            // The canonical form only (`schemas::DURATION_PATTERN`): no sign, no leading zero.
            let digits = d.strip_suffix(['s', 'm', 'h', 'd']).unwrap_or("");
            if (1..=7).contains(&digits.len())
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                parse_duration(d)
            } else {
                Err(format!("`{d}` is not a duration like 90s, 30m, 2h or 7d"))
            }
        })
        .transpose()
        .map_err(|e| ApiError::bad("duration", e))?;
    let subject = match &o.number {
        Some(n) => Subject::caller_id(&o.trunk, &number_param("number", n)?),
        None => Subject::trunk_of(&o.trunk),
    };
    let actions = state
        .deps()
        .monitor
        .impose(subject, step, duration, &who.name, &o.reason)
        .await
        .map_err(|e| match e {
            // The order names a trunk or number that is not there (as a path would).
            MonitorError::Enforcement(
                e @ (EnforcementError::UnknownTrunk(_)
                | EnforcementError::NotTheTrunksNumber { .. }),
            ) => ApiError::NotFound(e.to_string()),
            MonitorError::Enforcement(e) => ApiError::bad("step", e.to_string()),
            other => unavailable(other),
        })?;
    Ok((StatusCode::CREATED, Json(done(&actions))))
}

#[utoipa::path(
    post,
    path = "/api/v1/enforcement/{id}/lift",
    tag = "admin",
    description = "Lift a step in force (automatic or manual); logged with the token's name \
                   and the reason. Role: admin.",
    params(("id" = String, Path, description = "The step's id (`in_force[].id`)")),
    request_body = LiftOrder,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Lifted", body = OrderDone),
        (status = 400, description = "A bad field (named in `error.field`)", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No step in force with that id", body = ErrorBody),
        (status = 409, description = "The cluster's monitor leader refused it", body = ErrorBody),
        (status = 503, description = "The monitor (in a cluster: its leader) did not take it \
                                      in time; a handed-over order stays queued", body = ErrorBody),
    )
)]
pub(crate) async fn lift(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<LiftOrder>, JsonRejection>,
) -> Result<Json<OrderDone>, ApiError> {
    let monitor = &state.deps().monitor;
    let not_found = || ApiError::NotFound(format!("no step in force with id {id}"));
    let wanted: u64 = id.parse().map_err(|_| not_found())?;
    let step = monitor
        .in_force()
        .await
        .map_err(unavailable)?
        .into_iter()
        .find(|i| i.id == wanted)
        .ok_or_else(not_found)?;
    let Json(o) = body.map_err(ApiError::body)?;
    if o.reason.trim().is_empty() {
        return Err(ApiError::bad("reason", "must say why"));
    }
    let actions = monitor
        .lift(step.subject.clone(), Some(step.step), &who.name, &o.reason)
        .await
        .map_err(unavailable)?;
    Ok(Json(done(&actions)))
}

fn unavailable(e: MonitorError) -> ApiError {
    match e {
        e @ MonitorError::Rejected { .. } => ApiError::Conflict(e.to_string()),
        e => ApiError::Unavailable(format!("the monitor cannot take it now: {e}")),
    }
}

fn done(actions: &[EnforcementAction]) -> OrderDone {
    OrderDone {
        actions: actions
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .collect(),
    }
}

struct Period {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    trunk: Option<String>,
    number: Option<String>,
}

fn period(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    subject_filters: bool,
) -> Result<Period, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    let now = Utc::now();
    let mut p = Period {
        from: now - Duration::hours(24),
        to: now,
        trunk: None,
        number: None,
    };
    unique(&pairs)?;
    for (key, value) in &pairs {
        match key.as_str() {
            "from" => p.from = time_param("from", value)?,
            "to" => p.to = time_param("to", value)?,
            "trunk" if subject_filters => p.trunk = Some(text_param("trunk", value)?),
            "number" if subject_filters => p.number = Some(number_param("number", value)?),
            other => return Err(ApiError::bad(other, "unknown parameter")),
        }
    }
    Ok(p)
}

fn anomaly_view(a: AnomalyRow) -> AnomalyView {
    AnomalyView {
        id: a.id,
        detected_at: a.detected_at,
        rule: a.rule,
        subject: a.subject.kind,
        trunk: a.subject.trunk,
        number: a.subject.number,
        window_secs: a.window_secs,
        observed: a.observed,
        threshold: a.threshold,
        sample: a.sample,
        step: a.step,
        detail: a.detail,
        call_ids: a.call_ids,
    }
}

fn step_view(i: &Imposition) -> StepView {
    let (cause, detail) = match &i.cause {
        crate::monitor::enforcement::Cause::Rule {
            rule, anomaly_id, ..
        } => ("rule", format!("{rule} (anomaly {anomaly_id})")),
        crate::monitor::enforcement::Cause::Operator { name, reason } => {
            ("operator", format!("{name}: {reason}"))
        }
    };
    StepView {
        id: i.id.to_string(),
        subject: i.subject.kind().to_string(),
        trunk: i.subject.trunk().to_string(),
        number: i.subject.number().unwrap_or("").to_string(),
        step: i.step.code().to_string(),
        since: i.at,
        until: i.until,
        cause: cause.to_string(),
        detail,
    }
}

fn log_view(e: EnforcementEntry) -> LogEntryView {
    let r = e.entry;
    LogEntryView {
        id: e.id,
        at: r.at,
        action: r.action,
        imposition: r.imposition,
        subject: r.subject.kind,
        trunk: r.subject.trunk,
        number: r.subject.number,
        step: r.step,
        until: r.until,
        cause: r.cause,
        rule: r.rule,
        anomaly_id: r.anomaly_id,
        operator: r.operator,
        reason: r.reason,
    }
}
