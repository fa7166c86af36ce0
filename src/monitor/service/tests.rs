use parking_lot::Mutex;

use super::*;
use crate::model::LiveCallView;
use crate::monitor::testkit::{cdr, t0, Outcome, CALLER, TRUNK};
use crate::store::{NewRequest, SubjectKey};

/// Live calls as a test says they are.
#[derive(Default)]
struct FakeCalls {
    per_trunk: Mutex<HashMap<String, u32>>,
    hung_up: Mutex<Vec<(String, Option<String>, EndReason)>>,
}

impl LiveCalls for FakeCalls {
    fn live_calls(&self) -> Vec<LiveCallView> {
        Vec::new()
    }
    fn calls_per_trunk(&self) -> HashMap<String, u32> {
        self.per_trunk.lock().clone()
    }
    fn hang_up(&self, trunk: &str, caller_id: Option<&str>, reason: EndReason) -> usize {
        self.hung_up
            .lock()
            .push((trunk.into(), caller_id.map(str::to_string), reason));
        1
    }
    fn is_running(&self, _id: &str) -> bool {
        false
    }
}

fn trunk(extra: &str) -> TrunkConfig {
    let text = format!(
        "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
         [[trunks]]\nname = \"{TRUNK}\"\npbx = [\"10.0.0.0/24\"]\ncarrier = \"192.0.2.1:5060\"\n\
         inbound_to = \"10.0.0.5:5060\"\nnumbers = [\"+{CALLER}\"]\n{extra}"
    );
    crate::config::Config::from_toml(&text).unwrap().trunks[0].clone()
}

struct Running {
    store: Store,
    policy: Arc<Policy>,
    calls: Arc<FakeCalls>,
    handle: MonitorHandle,
    cdrs: mpsc::Sender<Cdr>,
    _trigger: crate::shutdown::ShutdownTrigger,
}

async fn start(store: Store, extra: &str) -> Running {
    let t = trunk(extra);
    let policy = Arc::new(Policy::new(std::slice::from_ref(&t)));
    let calls = Arc::new(FakeCalls::default());
    let (tx, rx) = mpsc::channel(16);
    let (trigger, shutdown) = crate::shutdown::channel();
    let (handle, _task) = MonitorService::start(
        store.clone(),
        policy.clone(),
        calls.clone(),
        &[t],
        // Reconciliation only when a test asks for it: a periodic one in between would count
        // the same drift twice.
        MonitorSettings {
            reconcile_every: std::time::Duration::from_secs(3600),
            ..MonitorSettings::default()
        },
        rx,
        shutdown,
    )
    .await
    .unwrap();
    Running {
        store,
        policy,
        calls,
        handle,
        cdrs: tx,
        _trigger: trigger,
    }
}

/// Waits (at most 5 s) until `done`.
async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

fn number_step(r: &Running) -> Option<Step> {
    r.policy.restrictions().in_force(TRUNK, Some(CALLER)).number
}

#[tokio::test]
async fn stored_cdrs_fire_a_rule_whose_step_is_applied_then_logged_with_its_anomaly() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let r = start(
        store,
        "hangup_on_suspend = true\n[trunks.rules.error_rate]\nthreshold = 0.5\nmin_sample = 4\n\
         window = \"60s\"\nstep = \"suspend_number\"\nresume_after = \"5m\"\n",
    )
    .await;
    for i in 0..4 {
        let c = cdr(
            &format!("c{i}"),
            CALLER,
            "8613900000001",
            t0(),
            Outcome::Status(404, false),
        );
        r.cdrs.send(c).await.unwrap();
        wait_for(|| r.handle.figures().cdrs_seen == i + 1).await;
        // Not one call early: three 404s are below the minimum sample.
        let expected = (i == 3).then_some(Step::SuspendNumber);
        assert_eq!(number_step(&r), expected, "after CDR {i}");
    }
    assert_eq!(r.handle.figures().cdrs_seen, 4);
    let anomalies = r
        .store
        .anomalies(
            chrono::Utc::now() - chrono::Duration::minutes(1),
            chrono::Utc::now() + chrono::Duration::minutes(1),
            Some(TRUNK),
            Some(CALLER),
        )
        .await
        .unwrap();
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0].rule, "error_rate");
    assert_eq!(anomalies[0].sample, 4);
    assert_eq!(anomalies[0].step, "suspend_number");
    assert!(!anomalies[0].call_ids.is_empty());
    // (The four calls to one callee also raised that callee's alert.)
    let in_force: Vec<_> = r
        .store
        .enforcement_in_force()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.subject.kind == "caller_id")
        .collect();
    assert_eq!(in_force.len(), 1, "{in_force:?}");
    assert_eq!(in_force[0].entry.step, "suspend_number");
    assert_eq!(
        in_force[0].entry.anomaly_id.as_deref(),
        Some(anomalies[0].id.as_str())
    );
    // hangup_on_suspend: the number's live calls were asked to end.
    assert_eq!(
        *r.calls.hung_up.lock(),
        vec![(
            TRUNK.to_string(),
            Some(CALLER.to_string()),
            EndReason::CallerIdSuspended
        )]
    );
}

#[tokio::test]
async fn steps_in_force_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/m.db", dir.path().display());
    let r = start(Store::connect(&url).await.unwrap(), "").await;
    r.handle
        .impose(
            Subject::caller_id(TRUNK, CALLER),
            Step::SuspendNumber,
            None,
            "alice",
            "ticket",
        )
        .await
        .unwrap();
    r.handle
        .impose(
            Subject::trunk_of(TRUNK),
            Step::Throttle,
            None,
            "alice",
            "pacing",
        )
        .await
        .unwrap();
    let lifted = r
        .handle
        .lift(Subject::trunk_of(TRUNK), None, "alice", "done")
        .await
        .unwrap();
    assert_eq!(lifted.len(), 1);
    drop(r);
    // A new process on the same database: the suspension is back before any call, the lifted
    // throttle is not.
    let again = start(Store::connect(&url).await.unwrap(), "").await;
    assert_eq!(number_step(&again), Some(Step::SuspendNumber));
    assert_eq!(
        again.policy.restrictions().in_force(TRUNK, None).trunk,
        None
    );
    let in_force = again.handle.in_force().await.unwrap();
    assert_eq!(in_force.len(), 1);
    assert_eq!(in_force[0].step, Step::SuspendNumber);
}

#[tokio::test]
async fn operator_requests_from_the_table_are_applied_or_rejected_with_the_reason() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let r = start(store, "").await;
    let request = |kind: &str, number: &str, step: &str| NewRequest {
        requested_at: chrono::Utc::now(),
        action: "impose".into(),
        subject: SubjectKey {
            kind: kind.into(),
            trunk: TRUNK.into(),
            number: number.into(),
        },
        step: Some(step.into()),
        duration_secs: Some(600),
        operator: "bob".into(),
        reason: "carrier asked".into(),
    };
    let ok = r
        .store
        .insert_enforcement_request(&request("caller_id", CALLER, "suspend_number"))
        .await
        .unwrap();
    // A called number can only be alerted on.
    let bad = r
        .store
        .insert_enforcement_request(&request("callee", "8613900000001", "suspend_number"))
        .await
        .unwrap();
    r.handle.poll().await.unwrap();
    assert_eq!(number_step(&r), Some(Step::SuspendNumber));
    let ok = r.store.enforcement_request(ok).await.unwrap().unwrap();
    assert_eq!(ok.state, "applied", "{ok:?}");
    assert!(ok.result.unwrap().contains("imposed suspend_number"));
    let bad = r.store.enforcement_request(bad).await.unwrap().unwrap();
    assert_eq!(bad.state, "rejected", "{bad:?}");
    assert!(bad.result.unwrap().contains("called number"));
    assert_eq!(r.handle.figures().requests_handled, 2);
}

#[tokio::test]
async fn reconciliation_reports_a_drift_and_its_end() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let r = start(store, "").await;
    assert_eq!(r.handle.reconcile().await.unwrap(), 0);
    // A live call that holds no lease: counters and calls disagree.
    r.calls.per_trunk.lock().insert(TRUNK.to_string(), 1);
    assert_eq!(r.handle.reconcile().await.unwrap(), -1);
    let f = r.handle.figures();
    assert_eq!((f.concurrency_drift, f.drift_seen), (-1, 1));
    r.calls.per_trunk.lock().clear();
    assert_eq!(r.handle.reconcile().await.unwrap(), 0);
    assert_eq!(r.handle.figures().concurrency_drift, 0);
}

#[tokio::test]
async fn a_restart_refills_the_windows_from_the_stored_calls() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let now = chrono::Utc::now();
    // Four invalid-number calls stored before this process started …
    let before: Vec<Cdr> = (0..4)
        .map(|i| {
            let mut c = cdr(
                &format!("old{i}"),
                CALLER,
                &format!("86139000000{i:02}"),
                now,
                Outcome::Status(404, false),
            );
            c.attempt.invite_at = now - chrono::Duration::seconds(20);
            c.outcome.end_at = now - chrono::Duration::seconds(10);
            c
        })
        .collect();
    store.insert_cdrs(&before).await.unwrap();
    let r = start(
        store,
        "[trunks.rules.error_rate]\nthreshold = 0.5\nmin_sample = 5\nwindow = \"60s\"\n\
         step = \"suspend_number\"\n",
    )
    .await;
    // … count with the next one: five in the window, the rule fires on it.
    assert_eq!(number_step(&r), None);
    let c = cdr(
        "new",
        CALLER,
        "8613900000099",
        now,
        Outcome::Status(404, false),
    );
    r.cdrs.send(c).await.unwrap();
    wait_for(|| r.handle.figures().cdrs_seen == 1).await;
    assert_eq!(number_step(&r), Some(Step::SuspendNumber));
    let a = r
        .store
        .anomalies(
            now - chrono::Duration::minutes(1),
            chrono::Utc::now() + chrono::Duration::minutes(1),
            None,
            Some(CALLER),
        )
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].sample, 5);
}
