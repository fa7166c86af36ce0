//! The route table: every route of the API with its method, path, who may call it, the audit
//! action and its handler; and the lookups the guards make in it.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};

use crate::api::auth::Role;
use crate::api::{
    audit_log, calls, cdr_export, cdrs, complaints, enforcement, evidence, health, holds,
    manifests, metrics, openapi, recording_pause, recordings, reports, sip_trace, trunks, ApiState,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token (`/healthz`); not audited.
    Public,
    /// A token with one of these roles; every request audited.
    Roles(&'static [Role]),
}

/// One route of the API.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    /// As axum and OpenAPI write it (`/api/v1/calls/{id}`).
    pub path: &'static str,
    pub access: Access,
    /// The audit log's name for the operation.
    pub action: &'static str,
}

const ADMIN: &[Role] = &[Role::Admin];
const COMPLIANCE: &[Role] = &[Role::Compliance];
const COMPLIANCE_CARRIER: &[Role] = &[Role::Compliance, Role::Carrier];
const CARRIER_ADMIN: &[Role] = &[Role::Carrier, Role::Admin];
const ANY_ROLE: &[Role] = &[Role::Admin, Role::Compliance, Role::Carrier];
/// PCI pause/resume: the agent's desktop, or an admin.
const AGENT_ADMIN: &[Role] = &[Role::Agent, Role::Admin];

fn spec(method: Method, path: &'static str, access: Access, action: &'static str) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        action,
    }
}

/// Every route with its handler.
pub(super) fn routes() -> Vec<(RouteSpec, MethodRouter<ApiState>)> {
    use Access::{Public, Roles};
    vec![
        (
            spec(Method::GET, "/healthz", Public, "health"),
            get(health::healthz),
        ),
        (
            spec(Method::GET, "/metrics", Roles(CARRIER_ADMIN), "metrics"),
            get(metrics::metrics),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/openapi.json",
                Roles(ANY_ROLE),
                "openapi",
            ),
            get(openapi::document),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/live",
                Roles(ADMIN),
                "calls.live",
            ),
            get(calls::live_calls),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/calls/live/{id}/hangup",
                Roles(ADMIN),
                "calls.hangup",
            ),
            post(calls::hangup),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}",
                Roles(COMPLIANCE),
                "calls.get",
            ),
            get(calls::call_record),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/cdrs",
                Roles(COMPLIANCE_CARRIER),
                "cdrs.search",
            ),
            get(cdrs::search),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/reports/kpis",
                Roles(COMPLIANCE_CARRIER),
                "reports.kpis",
            ),
            get(reports::kpis),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/anomalies",
                Roles(ANY_ROLE),
                "anomalies.list",
            ),
            get(enforcement::anomalies),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/enforcement",
                Roles(ANY_ROLE),
                "enforcement.list",
            ),
            get(enforcement::enforcement),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/enforcement",
                Roles(ADMIN),
                "enforcement.impose",
            ),
            post(enforcement::impose),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/enforcement/{id}/lift",
                Roles(ADMIN),
                "enforcement.lift",
            ),
            post(enforcement::lift),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/complaints",
                Roles(COMPLIANCE_CARRIER),
                "complaints.list",
            ),
            get(complaints::list),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/complaints",
                Roles(COMPLIANCE_CARRIER),
                "complaints.file",
            ),
            post(complaints::file),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/audit",
                Roles(COMPLIANCE),
                "audit.list",
            ),
            get(audit_log::list),
        ),
        (
            spec(Method::GET, "/api/v1/trunks", Roles(ADMIN), "trunks.list"),
            get(trunks::list),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/trunks",
                Roles(ADMIN),
                "trunks.create",
            ),
            post(trunks::create),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/trunks/{name}",
                Roles(ADMIN),
                "trunks.get",
            ),
            get(trunks::get_one),
        ),
        (
            spec(
                Method::PUT,
                "/api/v1/trunks/{name}",
                Roles(ADMIN),
                "trunks.replace",
            ),
            put(trunks::replace),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/trunks/{name}",
                Roles(ADMIN),
                "trunks.delete",
            ),
            delete(trunks::delete),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/trunks/{name}/numbers",
                Roles(ADMIN),
                "trunks.numbers.list",
            ),
            get(trunks::numbers),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/trunks/{name}/numbers",
                Roles(ADMIN),
                "trunks.numbers.add",
            ),
            post(trunks::add_number),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/trunks/{name}/numbers/{number}",
                Roles(ADMIN),
                "trunks.numbers.remove",
            ),
            delete(trunks::remove_number),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/trunks/{name}/blocked",
                Roles(ADMIN),
                "trunks.blocked.list",
            ),
            get(trunks::blocked),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/trunks/{name}/blocked",
                Roles(ADMIN),
                "trunks.blocked.add",
            ),
            post(trunks::add_blocked),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/trunks/{name}/blocked/{number}",
                Roles(ADMIN),
                "trunks.blocked.remove",
            ),
            delete(trunks::remove_blocked),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/cdrs/export",
                Roles(COMPLIANCE_CARRIER),
                "cdrs.export",
            ),
            get(cdr_export::export),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/recording",
                Roles(COMPLIANCE),
                "recordings.download",
            ),
            get(recordings::download),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/calls/{id}/recording/pause",
                Roles(AGENT_ADMIN),
                "recordings.pause",
            ),
            post(recording_pause::pause),
        ),
        (
            spec(
                Method::POST,
                "/api/v1/calls/{id}/recording/resume",
                Roles(AGENT_ADMIN),
                "recordings.resume",
            ),
            post(recording_pause::resume),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/recording/verify",
                Roles(COMPLIANCE),
                "recordings.verify",
            ),
            get(recordings::verify),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/evidence",
                Roles(COMPLIANCE),
                "evidence.call",
            ),
            get(evidence::call_package),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/evidence",
                Roles(COMPLIANCE),
                "evidence.search",
            ),
            get(evidence::search_package),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/manifests/{day}",
                Roles(COMPLIANCE_CARRIER),
                "manifests.get",
            ),
            get(manifests::manifest),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/manifests/{day}/verify",
                Roles(COMPLIANCE),
                "manifests.verify",
            ),
            get(manifests::verify),
        ),
        (
            spec(
                Method::GET,
                "/api/v1/calls/{id}/sip",
                Roles(COMPLIANCE_CARRIER),
                "calls.sip_trace",
            ),
            get(sip_trace::sip_trace),
        ),
        (
            spec(
                Method::PUT,
                "/api/v1/calls/{id}/hold",
                Roles(COMPLIANCE),
                "holds.place",
            ),
            put(holds::place),
        ),
        (
            spec(
                Method::DELETE,
                "/api/v1/calls/{id}/hold",
                Roles(COMPLIANCE),
                "holds.release",
            ),
            delete(holds::release),
        ),
    ]
}

/// The route table (method, path, access, action), in registration order.
pub fn route_table() -> Vec<RouteSpec> {
    routes().into_iter().map(|(s, _)| s).collect()
}

/// The route matching a request (HEAD is served by GET routes).
pub(crate) fn lookup<'a>(
    table: &'a [RouteSpec],
    method: &Method,
    path: &str,
) -> Option<&'a RouteSpec> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table.iter().find(|r| r.path == path && r.method == *method)
}

/// The value of `{name}` in `path` under the route `template` (segments aligned).
pub(crate) fn path_param(template: &str, path: &str, name: &str) -> Option<String> {
    let want = format!("{{{name}}}");
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == want)
        .map(|(_, v)| v.to_string())
}

pub(crate) type RouteTable = Arc<Vec<RouteSpec>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_unique_and_params_align() {
        let table = route_table();
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
        assert_eq!(
            path_param("/api/v1/calls/{id}", "/api/v1/calls/abc", "id").as_deref(),
            Some("abc")
        );
        assert_eq!(path_param("/api/v1/cdrs", "/api/v1/cdrs", "id"), None);
        assert!(lookup(&table, &Method::HEAD, "/api/v1/cdrs").is_some());
        assert!(lookup(&table, &Method::DELETE, "/api/v1/cdrs").is_none());
    }
}
