//! The database locked by another process (`BEGIN EXCLUSIVE`) while calls end: their CDRs go to
//! the on-disk spool; the gateway is then killed (SIGKILL) with the database still locked and a
//! call still up. After a restart every call has exactly one CDR: the spooled ones stored, the
//! call that was up closed as interrupted (its journal entry was in the spool too).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::binary::{busy_call, db_in, harness, spool_in, Setup};
use common::{InviteSpec, CALLER};
use sqlx::{Connection, SqliteConnection};

const BUSY_CALLS: usize = 5;
/// Polls of 100 ms while waiting for the spool (bounded; a hang fails).
const POLLS: usize = 600;

fn callee(i: usize) -> String {
    format!("+86139000001{i:02}")
}

/// Spool lines holding a final CDR, and whether `call_id`'s answered journal entry is there.
fn spooled(spool: &Path, call_id: &str) -> (usize, bool) {
    let text = std::fs::read_to_string(spool).unwrap_or_default();
    let finals = text
        .lines()
        .filter(|l| l.contains(r#""kind":"cdr""#))
        .count();
    let answered = text.lines().any(|l| {
        l.contains(r#""kind":"journal""#)
            && l.contains(call_id)
            && !l.contains(r#""answer_at":null"#)
    });
    (finals, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdrs_of_a_locked_database_survive_a_sigkill_each_stored_once() {
    let Setup {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
        mut gw,
    } = Setup::start().await;
    let db = db_in(&dir);
    let spool = spool_in(&dir);

    // Another process takes the database's write lock and keeps it.
    let mut locker = SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("connect");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .expect("lock");

    // Calls the carrier refuses: they end while the database is locked.
    let mut call_ids = HashSet::new();
    for i in 0..BUSY_CALLS {
        call_ids.insert(busy_call(&mut pbx, &mut carrier, addrs.inside, &callee(i)).await);
    }
    // And one answered call still up when the gateway dies.
    let invite = pbx
        .invite(addrs.inside, &InviteSpec::new(CALLER, &callee(99)))
        .await;
    let up_call = invite.call_id.clone();
    call_ids.insert(up_call.clone());
    pbx.expect_response(100).await;
    common::answer_and_ack(&mut pbx, &mut carrier, &invite, "up").await;

    // The writer gives up on the locked database and spools (after two attempts of 5 s each).
    let mut polls = 0;
    loop {
        let (finals, answered) = spooled(&spool, &up_call);
        if finals == BUSY_CALLS && answered {
            break;
        }
        polls += 1;
        assert!(
            polls < POLLS,
            "the spool never held the calls ({finals} final CDRs, answered journal: {answered}); log:\n{}",
            gw.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.kill();
    sqlx::query("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("unlock");
    locker.close().await.expect("close");

    let mut gw = harness::Gateway::start(dir.path(), &config);
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), BUSY_CALLS + 1, "{cdrs:#?}");
    harness::assert_one_cdr_per_call(&cdrs, &call_ids);
    for cdr in &cdrs {
        let expected = if cdr.attempt.inside_call_id.as_deref() == Some(up_call.as_str()) {
            "gateway_restart"
        } else {
            "busy"
        };
        assert_eq!(cdr.outcome.end_reason.as_str(), expected, "{cdr:#?}");
    }
    assert_eq!(
        std::fs::metadata(&spool).expect("spool file").len(),
        0,
        "spool emptied"
    );
}
