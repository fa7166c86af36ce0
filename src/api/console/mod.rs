//! The web console: pages for people, served by the API's listener at `/console/` (`/` leads
//! there). Server-rendered HTML (maud) with a little vanilla JavaScript for the recording player;
//! every asset is compiled into the binary (`assets.rs`), nothing is fetched from elsewhere.
//!
//! It stands on the API: its pages are allowed to whoever the API allows the route they show
//! (`Rule::As`: a carrier may never open a call's page or its recording, whatever it types,
//! because the API never lets a carrier read `GET /api/v1/calls/{id}`), they call the API's own
//! handlers and store queries, and every request is a row of the same audit log (actor, role,
//! action, call). What the API has no notion of lives here: sessions (`session.rs`: a token
//! signs in once, the browser keeps an HttpOnly SameSite=Strict cookie), the CSRF token of every
//! form (`guard.rs`), the two languages (`i18n.rs`) and the pages.
//!
//! Files: `guard.rs` (the middleware: session, token check, role, CSRF, audit, headers),
//! `layout.rs` (the page frame, error pages), `sign_in.rs`, `calls.rs` (search and export),
//! `call_page.rs` (one call), `call_actions.rs` (its recording, verify, evidence package, legal hold),
//! `live.rs` (live calls, hang-up), `enforcement.rs` (steps in force, impose, lift),
//! `trunks.rs` (trunks, their numbers and blocked numbers), `trunk_limits.rs` (a trunk's limits
//! edited), `kpis.rs` (the carrier's charts, per trunk and per caller ID), `anomalies.rs` (the
//! anomalies with their evidence, leading to their calls), `fields.rs` (what every form shares:
//! a field's label, help and message), `format.rs` (times in the trunk's zone, lengths),
//! `assets.rs` (CSS, JS).

mod anomalies;
mod assets;
mod call_actions;
mod call_page;
mod calls;
mod enforcement;
mod fields;
mod format;
mod guard;
pub mod i18n;
mod kpis;
mod layout;
mod live;
pub mod session;
mod sign_in;
mod trunk_limits;
mod trunks;

use axum::http::Method;
use axum::response::Redirect;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use super::ApiState;

/// Who may use a console route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A static asset: no session, not audited.
    Asset,
    /// No session needed (sign-in, the language switch); audited.
    Anyone,
    /// Any signed-in person.
    SignedIn,
    /// A signed-in person whose role the API lets call this route (method, path).
    As(Method, &'static str),
}

/// One route of the console.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleRoute {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
    /// The audit log's name for it (`console.…`).
    pub action: &'static str,
}

fn route(method: Method, path: &'static str, rule: Rule, action: &'static str) -> ConsoleRoute {
    ConsoleRoute {
        method,
        path,
        rule,
        action,
    }
}

/// The API routes the console's pages stand on.
const CALL_RECORD: &str = "/api/v1/calls/{id}";
const CDR_SEARCH: &str = "/api/v1/cdrs";
const CDR_EXPORT: &str = "/api/v1/cdrs/export";
const RECORDING: &str = "/api/v1/calls/{id}/recording";
const VERIFY: &str = "/api/v1/calls/{id}/recording/verify";
const HOLD: &str = "/api/v1/calls/{id}/hold";
const EVIDENCE: &str = "/api/v1/calls/{id}/evidence";
const EVIDENCE_SEARCH: &str = "/api/v1/evidence";
const AUDIT: &str = "/api/v1/audit";
const LIVE: &str = "/api/v1/calls/live";
const HANGUP: &str = "/api/v1/calls/live/{id}/hangup";
const ENFORCEMENT: &str = "/api/v1/enforcement";
const LIFT: &str = "/api/v1/enforcement/{id}/lift";
const TRUNKS: &str = "/api/v1/trunks";
const KPIS: &str = "/api/v1/reports/kpis";
const ANOMALIES: &str = "/api/v1/anomalies";

/// Every console route with its handler.
fn routes() -> Vec<(ConsoleRoute, MethodRouter<ApiState>)> {
    use Rule::{Anyone, As, Asset, SignedIn};
    vec![
        (
            route(
                Method::GET,
                "/console/assets/{file}",
                Asset,
                "console.asset",
            ),
            get(assets::serve),
        ),
        (
            route(
                Method::GET,
                "/console/sign-in",
                Anyone,
                "console.sign_in.page",
            ),
            get(sign_in::page),
        ),
        (
            route(Method::POST, "/console/sign-in", Anyone, "console.sign_in"),
            post(sign_in::sign_in),
        ),
        (
            route(
                Method::GET,
                "/console/lang/{code}",
                Anyone,
                "console.language",
            ),
            get(sign_in::language),
        ),
        (
            route(
                Method::POST,
                "/console/sign-out",
                SignedIn,
                "console.sign_out",
            ),
            post(sign_in::sign_out),
        ),
        (
            route(Method::GET, "/console/", SignedIn, "console.home"),
            get(sign_in::home),
        ),
        (
            route(
                Method::GET,
                "/console/calls",
                As(Method::GET, CDR_SEARCH),
                "console.calls.search",
            ),
            get(calls::search),
        ),
        (
            route(
                Method::GET,
                "/console/calls/export",
                As(Method::GET, CDR_EXPORT),
                "console.calls.export",
            ),
            get(calls::export),
        ),
        (
            route(
                Method::GET,
                "/console/calls/evidence",
                As(Method::GET, EVIDENCE_SEARCH),
                "console.evidence.search",
            ),
            get(calls::evidence),
        ),
        (
            route(
                Method::GET,
                "/console/calls/{id}/evidence",
                As(Method::GET, EVIDENCE),
                "console.evidence.call",
            ),
            get(call_actions::evidence),
        ),
        (
            route(
                Method::GET,
                "/console/calls/{id}",
                As(Method::GET, CALL_RECORD),
                "console.calls.get",
            ),
            get(call_page::page),
        ),
        (
            route(
                Method::GET,
                "/console/calls/{id}/recording",
                As(Method::GET, RECORDING),
                "console.recordings.play",
            ),
            get(call_actions::recording),
        ),
        (
            route(
                Method::GET,
                "/console/calls/{id}/verify",
                As(Method::GET, VERIFY),
                "console.recordings.verify",
            ),
            get(call_actions::verify),
        ),
        (
            route(
                Method::POST,
                "/console/calls/{id}/hold",
                As(Method::PUT, HOLD),
                "console.holds.place",
            ),
            post(call_actions::place_hold),
        ),
        (
            route(
                Method::POST,
                "/console/calls/{id}/hold/release",
                As(Method::DELETE, HOLD),
                "console.holds.release",
            ),
            post(call_actions::release_hold),
        ),
        (
            route(
                Method::GET,
                "/console/live",
                As(Method::GET, LIVE),
                "console.calls.live",
            ),
            get(live::page),
        ),
        (
            route(
                Method::GET,
                "/console/live/rows",
                As(Method::GET, LIVE),
                "console.calls.live.rows",
            ),
            get(live::rows_fragment),
        ),
        (
            route(
                Method::POST,
                "/console/live/{id}/hangup",
                As(Method::POST, HANGUP),
                "console.calls.hangup",
            ),
            post(live::hangup),
        ),
        (
            route(
                Method::GET,
                "/console/enforcement",
                As(Method::GET, ENFORCEMENT),
                "console.enforcement.list",
            ),
            get(enforcement::page),
        ),
        (
            route(
                Method::POST,
                "/console/enforcement",
                As(Method::POST, ENFORCEMENT),
                "console.enforcement.impose",
            ),
            post(enforcement::impose),
        ),
        (
            route(
                Method::POST,
                "/console/enforcement/{id}/lift",
                As(Method::POST, LIFT),
                "console.enforcement.lift",
            ),
            post(enforcement::lift),
        ),
        (
            route(
                Method::GET,
                "/console/kpis",
                As(Method::GET, KPIS),
                "console.reports.kpis",
            ),
            get(kpis::page),
        ),
        (
            route(
                Method::GET,
                "/console/kpis/export",
                As(Method::GET, KPIS),
                "console.reports.kpis.export",
            ),
            get(kpis::export),
        ),
        (
            route(
                Method::GET,
                "/console/anomalies",
                As(Method::GET, ANOMALIES),
                "console.anomalies.list",
            ),
            get(anomalies::page),
        ),
        (
            route(
                Method::POST,
                "/console/trunks/{name}/limits",
                As(Method::PUT, "/api/v1/trunks/{name}"),
                "console.trunks.limits",
            ),
            post(trunk_limits::save),
        ),
        (
            route(
                Method::GET,
                "/console/trunks",
                As(Method::GET, TRUNKS),
                "console.trunks.list",
            ),
            get(trunks::page),
        ),
        (
            route(
                Method::POST,
                "/console/trunks/{name}/numbers",
                As(Method::POST, "/api/v1/trunks/{name}/numbers"),
                "console.trunks.numbers.add",
            ),
            post(trunks::add_number),
        ),
        (
            route(
                Method::POST,
                "/console/trunks/{name}/numbers/remove",
                As(Method::DELETE, "/api/v1/trunks/{name}/numbers/{number}"),
                "console.trunks.numbers.remove",
            ),
            post(trunks::remove_number),
        ),
        (
            route(
                Method::POST,
                "/console/trunks/{name}/blocked",
                As(Method::POST, "/api/v1/trunks/{name}/blocked"),
                "console.trunks.blocked.add",
            ),
            post(trunks::add_blocked),
        ),
        (
            route(
                Method::POST,
                "/console/trunks/{name}/blocked/remove",
                As(Method::DELETE, "/api/v1/trunks/{name}/blocked/{number}"),
                "console.trunks.blocked.remove",
            ),
            post(trunks::remove_blocked),
        ),
    ]
}

/// The console's route table, in registration order.
pub(crate) fn route_table() -> Vec<ConsoleRoute> {
    routes().into_iter().map(|(r, _)| r).collect()
}

/// The console's routes behind its guard, `/` leading to it, and an HTML 404 for any other
/// path under `/console/`.
pub(crate) fn router(state: ApiState) -> Router<ApiState> {
    let mut router = Router::new();
    for (spec, handler) in routes() {
        router = router.route(spec.path, handler);
    }
    router
        .layer(axum::extract::DefaultBodyLimit::max(
            super::server::MAX_BODY_BYTES,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state, guard::guard))
        // Outside the guard: they show nothing.
        .route("/console/{*rest}", axum::routing::any(guard::unknown_page))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/", get(|| async { Redirect::to("/console/") }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::server::{lookup, route_table as api_routes};

    #[test]
    fn each_page_stands_on_an_api_route_and_paths_are_unique() {
        let api = api_routes();
        let table = route_table();
        for (i, r) in table.iter().enumerate() {
            assert!(r.path.starts_with("/console/"), "{}", r.path);
            assert!(r.action.starts_with("console."), "{}", r.action);
            if let Rule::As(m, p) = &r.rule {
                assert!(
                    lookup(&api, m, p).is_some(),
                    "{} {} stands on {m} {p}, which the API does not have",
                    r.method,
                    r.path
                );
            }
            for other in &table[i + 1..] {
                assert!(
                    !(r.method == other.method && r.path == other.path),
                    "{} {} twice",
                    r.method,
                    r.path
                );
            }
            assert!(
                r.method == Method::GET || r.method == Method::POST,
                "forms only GET and POST"
            );
        }
    }
}
