//! Rows of the audit and enforcement logs as the tests of their hash chains write them: an
//! officer's recording download, an operator's lift of a suspension.

use chrono::Utc;
use trunkguard::store::{NewAudit, NewEnforcement, SubjectKey};

pub fn audit(i: i64) -> NewAudit {
    NewAudit {
        at: Utc::now(),
        actor: "officer".into(),
        role: Some("compliance".into()),
        method: "GET".into(),
        path: format!("/api/v1/calls/C{i}/recording"),
        query: String::new(),
        action: "calls.recording".into(),
        call_id: Some(format!("C{i}")),
        recording: None,
        client: "127.0.0.1:40000".into(),
        status: 200,
    }
}

pub fn lift(i: i64) -> NewEnforcement {
    NewEnforcement {
        at: Utc::now(),
        action: "lift".into(),
        imposition: i,
        subject: SubjectKey {
            kind: "caller_id".into(),
            trunk: "demo".into(),
            number: "+861012345678".into(),
        },
        step: "suspend_number".into(),
        until: None,
        cause: "operator".into(),
        rule: None,
        anomaly_id: None,
        operator: Some("admin".into()),
        reason: "cleared".into(),
        detail_json: "{}".into(),
    }
}
