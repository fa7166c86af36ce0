use chrono::Duration;

use super::*;
use crate::model::{Side, TraceDirection, TraceTransport, TracedMessage};
use crate::store::testing::on_each_backend;

fn trace(call_id: &str, at: DateTime<Utc>) -> SipTrace {
    SipTrace {
        call_id: call_id.to_string(),
        messages: vec![TracedMessage {
            at,
            leg: Side::Inside,
            direction: TraceDirection::In,
            local: "127.0.0.1:5060".parse().unwrap(),
            peer: "127.0.0.2:5062".parse().unwrap(),
            transport: TraceTransport::Udp,
            retransmission: false,
            message: "INVITE sip:1@x SIP/2.0\r\nCall-ID: a\r\n\r\n".into(),
        }],
        dropped_messages: 0,
        dropped_bytes: 0,
    }
}

#[tokio::test]
async fn a_trace_is_stored_read_back_and_purged_unless_held() {
    on_each_backend(|store| async move {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let (old, held, new) = (
            trace("old", t0),
            trace("held", t0),
            trace("new", t0 + Duration::days(10)),
        );
        let rows: Vec<_> = [&old, &held, &new]
            .iter()
            .map(|t| StoredSipTrace::encode(t).unwrap())
            .collect();
        store.insert_sip_traces(&rows).await.unwrap();
        // Stored again (same call): replaced, not doubled.
        store.insert_sip_traces(&rows[..1]).await.unwrap();
        assert_eq!(read(&store, "old").await.unwrap(), Some(old.clone()));
        assert_eq!(read(&store, "none").await.unwrap(), None);

        store
            .place_hold("held", "officer", "case 1", t0)
            .await
            .unwrap();
        let cutoff = t0 + Duration::days(1);
        assert_eq!(
            store.delete_expired_sip_traces(cutoff, 100).await.unwrap(),
            1
        );
        assert_eq!(read(&store, "old").await.unwrap(), None);
        assert_eq!(read(&store, "held").await.unwrap(), Some(held));
        assert_eq!(read(&store, "new").await.unwrap(), Some(new));
        assert_eq!(
            store.delete_expired_sip_traces(cutoff, 100).await.unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn a_stored_row_that_is_no_trace_is_an_error_naming_the_call() {
    on_each_backend(|store| async move {
        let row = StoredSipTrace {
            cdr_id: "bad".into(),
            invite_at: Utc::now(),
            messages: 1,
            trace: b"not gzip".to_vec(),
        };
        store.insert_sip_traces(&[row]).await.unwrap();
        let err = read(&store, "bad").await.unwrap_err();
        assert!(err.to_string().contains("call bad"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_traces_spanning_chunks_keeps_the_last_trace_of_each_call() {
    on_each_backend(|store| async move {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // 600 calls (more than one statement's rows), call 7 given twice in the same batch:
        // the later trace is the one kept, as upserting one by one would leave.
        let mut traces: Vec<SipTrace> = (0..600)
            .map(|i| trace(&format!("C{i}"), t0 + Duration::seconds(i)))
            .collect();
        let mut again = trace("C7", t0 + Duration::hours(1));
        again.messages[0].message = "BYE sip:1@x SIP/2.0\r\nCall-ID: a\r\n\r\n".into();
        traces.push(again.clone());
        let rows: Vec<_> = traces
            .iter()
            .map(|t| StoredSipTrace::encode(t).unwrap())
            .collect();
        store.insert_sip_traces(&rows).await.unwrap();
        assert_eq!(read(&store, "C7").await.unwrap(), Some(again));
        for i in [0, 249, 250, 599] {
            let id = format!("C{i}");
            assert_eq!(
                read(&store, &id).await.unwrap(),
                Some(traces[i].clone()),
                "{id}"
            );
        }
    })
    .await;
}
