//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! response types' `ToSchema` derives, served at `/api/v1/openapi.json`. A test checks that it
//! holds every route of the router's table, and nothing else.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{
    audit_log, calls, cdr_export, cdrs, complaints, enforcement, evidence, health, holds,
    manifests, metrics, recording_pause, recordings, reports, sip_trace, trunks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "trunkguard API",
        description = "SIP trunk gateway: live calls, CDRs, call records, metrics. Every \
                       request but /healthz carries `Authorization: Bearer <token>` (created \
                       with `trunkguard token create`). Roles: admin, compliance, carrier (a \
                       carrier token may be limited to some trunks), agent (only pauses and resumes \
                       recordings of live calls). 401: missing, unknown or \
                       revoked token; 403: role or trunk not allowed; 400: bad input, the \
                       parameter named in `error.field`. Every request but /healthz is written \
                       to the audit log."
    ),
    paths(
        health::healthz,
        metrics::metrics,
        document,
        calls::live_calls,
        calls::hangup,
        calls::call_record,
        cdrs::search,
        reports::kpis,
        enforcement::anomalies,
        enforcement::enforcement,
        enforcement::impose,
        enforcement::lift,
        complaints::list,
        complaints::file,
        audit_log::list,
        trunks::list,
        trunks::create,
        trunks::get_one,
        trunks::replace,
        trunks::delete,
        trunks::numbers,
        trunks::add_number,
        trunks::remove_number,
        trunks::blocked,
        trunks::add_blocked,
        trunks::remove_blocked,
        cdr_export::export,
        recordings::download,
        recordings::verify,
        evidence::call_package,
        evidence::search_package,
        manifests::manifest,
        manifests::verify,
        sip_trace::sip_trace,
        holds::place,
        holds::release,
        recording_pause::pause,
        recording_pause::resume,
    ),
    // What an evidence package holds (its manifest and each call's verification): not a JSON
    // answer, so named here for clients that read the package.
    components(schemas(
        evidence::EvidenceManifest,
        evidence::PackedCall,
        crate::evidence::package::PackedFile,
        evidence::Verification,
        evidence::FileVerification,
        crate::evidence::proof::ManifestProof,
        crate::evidence::proof::LeafProof,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "admin", description = "Live calls, trunks and their numbers, enforcement orders (role admin)"),
        (name = "compliance", description = "CDRs and call records (role compliance)"),
        (name = "carrier", description = "Metrics and KPIs (role carrier)"),
        (name = "agent", description = "PCI pause and resume of a live call's recording (role agent or admin)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON, built once.
pub fn document_json() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        let mut doc = serde_json::to_value(&doc).unwrap_or_else(|e| {
            tracing::error!(error = %e, "openapi document does not serialize");
            serde_json::Value::Null
        });
        // The trunk body's exact schema, which utoipa's model cannot hold (`not`, `const`).
        if let Some(slot) = doc.pointer_mut("/components/schemas/TrunkBody") {
            *slot = super::schemas::trunk_body::schema().clone();
        }
        doc
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    description = "This document (OpenAPI 3.1). Any role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The OpenAPI document", body = Object),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn document() -> Json<&'static serde_json::Value> {
    Json(document_json())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::server::{route_table, Access};

    #[test]
    fn document_is_openapi_3_1_with_every_route_and_only_those() {
        let doc = document_json();
        let version = doc["openapi"].as_str().unwrap();
        assert!(version.starts_with("3.1"), "{version}");
        let paths = doc["paths"].as_object().unwrap();
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        let mut documented = BTreeSet::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                documented.insert((method.to_uppercase(), path.clone()));
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
                assert!(op["security"].is_array(), "{method} {path}: no security");
            }
        }
        let routed: BTreeSet<(String, String)> = route_table()
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert_eq!(documented, routed);
        // Public routes say so (an empty requirement); the others need the bearer scheme.
        for r in route_table() {
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            let sec = op["security"].to_string();
            match r.access {
                Access::Public => assert_eq!(sec, "[{}]", "{}", r.path),
                Access::Roles(_) => assert!(sec.contains("bearer"), "{}: {sec}", r.path),
            }
        }
    }

    #[test]
    fn a_cdr_names_the_streams_the_gateway_declined() {
        let doc = document_json();
        let schemas = doc["components"]["schemas"].to_string();
        assert!(schemas.contains("declined_media"), "not in the schemas");
        let mut cdr = crate::model::sample_cdr("c1");
        let view = crate::api::cdrs::CdrView::from(&cdr);
        let json = serde_json::to_value(&view).unwrap();
        assert!(json.get("declined_media").is_none(), "absent when none");
        cdr.outcome.declined_media = vec!["video".into(), "image/t38".into()];
        let json = serde_json::to_value(crate::api::cdrs::CdrView::from(&cdr)).unwrap();
        assert_eq!(
            json["declined_media"],
            serde_json::json!(["video", "image/t38"])
        );
    }
}
