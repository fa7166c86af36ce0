use chrono::Duration;

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::{self, on_each_backend};

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
}

fn token(name: &str, hash: &str) -> NewApiToken {
    NewApiToken {
        name: name.into(),
        role: "carrier".into(),
        trunks: vec!["demo".into(), "other".into()],
        token_sha256: hash.into(),
        created_at: t0(),
    }
}

fn audit(actor: &str, call: Option<&str>, at: DateTime<Utc>) -> NewAudit {
    NewAudit {
        at,
        actor: actor.into(),
        role: Some("compliance".into()),
        method: "GET".into(),
        path: "/api/v1/calls/C1".into(),
        query: String::new(),
        action: "calls.get".into(),
        call_id: call.map(str::to_string),
        recording: None,
        client: "127.0.0.1:40000".into(),
        status: 200,
    }
}

#[tokio::test]
async fn tokens_round_trip_names_are_unique_and_revocation_sticks() {
    on_each_backend(|store| async move {
        assert!(store.create_api_token(&token("acme", "h1")).await.unwrap());
        assert!(!store.create_api_token(&token("acme", "h2")).await.unwrap());
        let row = store.api_token_by_hash("h1").await.unwrap().unwrap();
        assert_eq!(row.token, token("acme", "h1"));
        assert_eq!(row.revoked_at, None);
        assert!(store.api_token_by_hash("h2").await.unwrap().is_none());

        let at = t0() + Duration::hours(1);
        assert!(store.revoke_api_token("acme", at).await.unwrap());
        assert!(!store.revoke_api_token("acme", at).await.unwrap());
        assert!(!store.revoke_api_token("nobody", at).await.unwrap());
        let row = store.api_token_by_hash("h1").await.unwrap().unwrap();
        assert_eq!(row.revoked_at, Some(at));
        // A revoked token keeps its name.
        assert!(!store.create_api_token(&token("acme", "h3")).await.unwrap());
        assert_eq!(store.api_tokens().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn unknown_role_is_refused_by_the_schema() {
    on_each_backend(|store| async move {
        let mut t = token("x", "h");
        t.role = "root".into();
        assert!(store.create_api_token(&t).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn audit_log_is_append_only_and_filters() {
    on_each_backend(|store| async move {
        let t = t0();
        let a = store
            .append_audit(&audit("alice", Some("C1"), t))
            .await
            .unwrap();
        store
            .append_audit(&audit("bob", None, t + Duration::seconds(1)))
            .await
            .unwrap();
        store
            .append_audit(&audit("alice", None, t + Duration::seconds(2)))
            .await
            .unwrap();
        assert_eq!(store.count_audit().await.unwrap(), 3);

        let all = store
            .audit_entries(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].entry, audit("alice", Some("C1"), t));
        let alice = store
            .audit_entries(&AuditFilter {
                actor: Some("alice".into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(alice.len(), 2);
        let call = store
            .audit_entries(&AuditFilter {
                call_id: Some("C1".into()),
                from: Some(t),
                to: Some(t + Duration::seconds(1)),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(call.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a]);
        let after = store
            .audit_entries(&AuditFilter {
                after_id: Some(a),
                limit: 1,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].entry.actor, "bob");
        let by_action = |action: &'static str| AuditFilter {
            action: Some(action.into()),
            limit: 10,
            ..AuditFilter::default()
        };
        assert_eq!(
            store
                .audit_entries(&by_action("calls.get"))
                .await
                .unwrap()
                .len(),
            3
        );
        assert!(store
            .audit_entries(&by_action("cdrs.search"))
            .await
            .unwrap()
            .is_empty());

        let update = testing::execute(&store, "UPDATE audit_log SET actor = 'mallory'", &[]).await;
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = testing::execute(&store, "DELETE FROM audit_log", &[]).await;
        assert!(delete.unwrap_err().to_string().contains("append-only"));
        if store.backend() == crate::store::Backend::Postgres {
            let truncate = testing::execute(&store, "TRUNCATE audit_log", &[]).await;
            assert!(truncate.unwrap_err().to_string().contains("append-only"));
        }
        assert_eq!(store.count_audit().await.unwrap(), 3);
    })
    .await;
}
