use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::model::{sample_cdr, Cdr, EndReason};
use crate::store::testing::{self, on_each_backend};
use crate::store::CdrWrite;

fn at(offset_s: i64) -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at + Duration::seconds(offset_s)
}

/// A call in progress on `node`, journaled at `offset_s`.
fn journal(id: &str, node: Option<&str>, offset_s: i64) -> CdrWrite {
    let mut cdr: Cdr = sample_cdr(id);
    cdr.outcome.end_reason = EndReason::InProgress;
    cdr.recording = None;
    cdr.attempt.node = node.map(str::to_string);
    CdrWrite::Journal {
        cdr,
        recording_part: Some(format!("{id}.wav.part")),
        dialogs: None,
        at: at(offset_s),
    }
}

fn claim<'a>(node: Option<&'a str>, closer: &'a str, now_s: i64) -> JournalClaim<'a> {
    JournalClaim {
        node,
        closer,
        journaled_before: at(now_s),
        now: at(now_s),
        stale_before: at(now_s - 60),
    }
}

fn ids(claimed: &Claimed) -> Vec<String> {
    claimed
        .calls
        .iter()
        .map(|c| c.as_ref().unwrap().cdr.attempt.id.clone())
        .collect()
}

async fn journal_of(store: &Store) {
    store
        .apply_cdr_writes(&[
            journal("a-2", Some("gw-a"), 2),
            journal("a-1", Some("gw-a"), 1),
            journal("b-1", Some("gw-b"), 1),
            journal("single", None, 1),
        ])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_node_claims_only_its_own_calls_and_each_call_once() {
    on_each_backend(|store| async move {
        journal_of(&store).await;
        let mut nodes = store.journaled_nodes().await.unwrap();
        nodes.sort();
        assert_eq!(
            nodes,
            [None, Some("gw-a".to_string()), Some("gw-b".to_string())]
        );

        // A survivor claims gw-a's calls: oldest first, nothing of gw-b's or the single node's.
        let by_b = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-b", 10))
            .await
            .unwrap();
        assert_eq!(ids(&by_b), ["a-1", "a-2"]);
        assert!(by_b.held_elsewhere.is_empty());
        let call = by_b.calls[0].as_ref().unwrap();
        assert_eq!(call.cdr.attempt.node.as_deref(), Some("gw-a"));
        assert_eq!(call.recording_part.as_deref(), Some("a-1.wav.part"));

        // gw-a restarting meanwhile gets none of them, and learns who holds them.
        let by_a = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-a", 11))
            .await
            .unwrap();
        assert!(by_a.calls.is_empty());
        let mut held: Vec<_> = by_a.held_elsewhere.into_iter().collect();
        held.sort();
        assert_eq!(held, ["a-1", "a-2"]);

        // Another survivor's sweep gets none either; the first closer may claim again (its
        // own restart after a crash mid-way).
        let by_c = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-c", 12))
            .await
            .unwrap();
        assert!(by_c.calls.is_empty());
        let again = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-b", 12))
            .await
            .unwrap();
        assert_eq!(ids(&again), ["a-1", "a-2"]);

        // A single node's rows (node NULL) are claimed by NULL only.
        let single = store
            .claim_journaled_calls(claim(None, "", 10))
            .await
            .unwrap();
        assert_eq!(ids(&single), ["single"]);
    })
    .await;
}

#[tokio::test]
async fn a_stale_claim_is_taken_over_and_later_calls_are_left_alone() {
    on_each_backend(|store| async move {
        journal_of(&store).await;
        store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-b", 10))
            .await
            .unwrap();
        // gw-b died before storing the CDRs: after the stale time another node takes them.
        let late = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-c", 10 + 61))
            .await
            .unwrap();
        assert_eq!(ids(&late), ["a-1", "a-2"]);

        // Only rows journaled up to the cutoff: gw-a's new incarnation journals later.
        store
            .apply_cdr_writes(&[journal("a-new", Some("gw-a"), 100)])
            .await
            .unwrap();
        let mut cutoff = claim(Some("gw-a"), "gw-d", 200);
        cutoff.journaled_before = at(99);
        let got = store.claim_journaled_calls(cutoff).await.unwrap();
        assert_eq!(ids(&got), ["a-1", "a-2"]);
        let left = testing::fetch_text(
            &store,
            "SELECT closing_by FROM call_journal WHERE id = $1",
            &["a-new"],
        )
        .await
        .unwrap();
        assert_eq!(
            left,
            [None],
            "a call journaled after the cutoff is not claimed"
        );

        // The final CDR ends the row whoever claimed it.
        store
            .apply_cdr_writes(&[CdrWrite::Cdr(sample_cdr("a-1"))])
            .await
            .unwrap();
        let got = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-d", 200))
            .await
            .unwrap();
        assert_eq!(ids(&got), ["a-2", "a-new"]);
    })
    .await;
}

#[tokio::test]
async fn a_new_entry_keeps_the_claim_and_the_node() {
    on_each_backend(|store| async move {
        journal_of(&store).await;
        store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-b", 10))
            .await
            .unwrap();
        // An entry of the same call arriving late (the spool of the lost node): the closer
        // keeps it.
        store
            .apply_cdr_writes(&[journal("a-1", Some("gw-a"), 5)])
            .await
            .unwrap();
        let by_c = store
            .claim_journaled_calls(claim(Some("gw-a"), "gw-c", 12))
            .await
            .unwrap();
        assert!(by_c.calls.is_empty());
        let node = testing::fetch_text(
            &store,
            "SELECT node FROM call_journal WHERE id = $1",
            &["a-1"],
        )
        .await
        .unwrap();
        assert_eq!(node, [Some("gw-a".to_string())]);
    })
    .await;
}
