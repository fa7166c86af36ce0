//! An admin's actions: a live call hung up, a step imposed and lifted, a number added to a trunk
//! and the next call with it admitted.

use super::*;

#[tokio::test]
async fn an_admin_hangs_up_a_live_call_and_imposes_and_lifts_a_step() {
    let mut s = scene().await;
    let mut c = Client::new(&s.base);
    assert_eq!(c.sign_in(&s.admin).await.location(), "/console/");
    assert_eq!(c.get("/console/").await.location(), "/console/live");

    // A live call, listed with its legs, hung up from the page: both sides get a BYE.
    let call = s.h.establish().await;
    let page = c.get("/console/live").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let id = s.h.gw.registry().list()[0].id.clone();
    assert!(
        page.text.contains(&format!("data-call=\"{id}\"")),
        "{}",
        page.text
    );
    let rows = c.get("/console/live/rows").await;
    assert_eq!(rows.headers["x-console-fragment"], "1");
    assert!(rows.text.contains(&id) && !rows.text.contains("<html"));
    let csrf = page.csrf();
    let hang = format!("/console/live/{id}/hangup");
    assert_eq!(c.post(&hang, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.h.gw.registry().len(),
        1,
        "a form without its token hangs nothing up"
    );
    let done = c.post(&hang, &[("csrf", &csrf)]).await;
    assert_eq!(done.location(), "/console/live?done=hung");
    let bye = s.h.pbx.expect_request("BYE").await;
    s.h.pbx.reply(&bye, 200, None).await;
    let bye = s.h.carrier.expect_request("BYE").await;
    s.h.carrier.reply(&bye, 200, None).await;
    drop(call);
    s.h.assert_idle().await;
    let after = c.get("/console/live").await;
    assert!(
        after.text.contains("No call is in progress."),
        "{}",
        after.text
    );

    // Impose: the API's refusal shown next to its field, then the step, then the next call
    // from that caller ID refused; lift: the same.
    let page = c.get("/console/enforcement").await;
    let csrf = page.csrf();
    let form = |reason: &'static str| {
        vec![
            ("trunk", "test"),
            ("number", common::CALLER),
            ("step", "suspend_number"),
            ("duration", "2h"),
            ("reason", reason),
        ]
    };
    let mut without_token = form("ticket 1");
    let refused = c.post("/console/enforcement", &without_token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    without_token.push(("csrf", &csrf));
    let mut no_reason = form(" ");
    no_reason.push(("csrf", &csrf));
    let bad = c.post("/console/enforcement", &no_reason).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(
        bad.text.contains("id=\"impose-reason-error\""),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains(common::CALLER),
        "the form keeps what was typed"
    );
    // A number that is not the trunk's, a trunk that is not there (the API's 404): the form
    // again, the field at fault marked.
    for (key, value, marked) in [
        ("number", "+861099999999", "impose-number-error"),
        ("trunk", "nope", "impose-trunk-error"),
    ] {
        let elsewhere: Vec<(&str, &str)> = without_token
            .iter()
            .map(|&(k, v)| if k == key { (k, value) } else { (k, v) })
            .collect();
        let refused = c.post("/console/enforcement", &elsewhere).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
        assert!(
            refused.text.contains(&format!("id=\"{marked}\"")),
            "{key}: {}",
            refused.text
        );
        if key == "number" {
            assert!(
                refused.text.contains(value),
                "the form keeps what was typed"
            );
        }
    }
    let ok = c.post("/console/enforcement", &without_token).await;
    assert_eq!(
        ok.location(),
        "/console/enforcement?done=imposed",
        "{}",
        ok.text
    );
    let page = c.get("/console/enforcement?done=imposed").await;
    assert!(page.text.contains("The step is in force."));
    let step = page
        .text
        .split("data-step=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a step in force")
        .to_string();
    let invite =
        s.h.pbx
            .invite(
                s.h.inside(),
                &common::InviteSpec::new(common::CALLER, common::CALLEE2),
            )
            .await;
    s.h.pbx.expect_response(100).await;
    let no = s.h.pbx.expect_response(403).await;
    assert_eq!(no.reason(), "Caller ID Suspended");
    s.h.pbx.ack_non2xx(&invite, &no).await;

    let lift = format!("/console/enforcement/{step}/lift");
    let bad = c.post(&lift, &[("reason", ""), ("csrf", &csrf)]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Say why."));
    let ok = c
        .post(&lift, &[("reason", "resolved"), ("csrf", &csrf)])
        .await;
    assert_eq!(ok.location(), "/console/enforcement?done=lifted");
    let page = c.get("/console/enforcement").await;
    assert!(page.text.contains("No step is in force."), "{}", page.text);
    let mut call = s.h.establish().await;
    s.h.hang_up_from_pbx(&mut call.pbx).await;

    // A carrier reads the steps of its trunks, without the forms.
    let mut carrier = Client::new(&s.base);
    carrier.sign_in(&s.carrier).await;
    let page = carrier.get("/console/enforcement").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("impose-form") && !page.text.contains("/lift"));
    assert_eq!(
        carrier
            .post("/console/enforcement", &without_token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        carrier.get("/console/live").await.status,
        StatusCode::FORBIDDEN
    );
    let rows = audit(&s, "console.calls.hangup").await;
    let statuses: Vec<(u16, Option<&str>)> = rows
        .iter()
        .map(|r| (r.status, r.call_id.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        vec![(403, Some(id.as_str())), (303, Some(id.as_str()))]
    );
    s.h.finish().await;
}

#[tokio::test]
async fn an_admin_adds_a_number_and_the_next_call_with_it_is_admitted() {
    let mut s = scene().await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.admin).await;
    let page = c.get("/console/trunks").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("data-trunk=\"test\""));
    let csrf = page.csrf();
    let new = "+861012340000";

    // Refusals next to the field: not a number, on the list already.
    let bad = c
        .post(
            "/console/trunks/test/numbers",
            &[("number", "abc"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Use digits"), "{}", bad.text);
    let twice = c
        .post(
            "/console/trunks/test/numbers",
            &[("number", common::CALLER), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.text.contains("on the list already"));

    // Before: refused; added from the page: admitted.
    let refused =
        s.h.pbx
            .invite(s.h.inside(), &common::InviteSpec::new(new, common::CALLEE))
            .await;
    s.h.pbx.expect_response(100).await;
    let no = s.h.pbx.expect_response(403).await;
    s.h.pbx.ack_non2xx(&refused, &no).await;
    let ok = c
        .post(
            "/console/trunks/test/numbers",
            &[("number", new), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.location(), "/console/trunks?done=added", "{}", ok.text);
    let page = c.get("/console/trunks?done=added").await;
    assert!(page.text.contains("861012340000"), "{}", page.text);
    let invite =
        s.h.pbx
            .invite(s.h.inside(), &common::InviteSpec::new(new, common::CALLEE))
            .await;
    s.h.pbx.expect_response(100).await;
    let c_invite = s.h.carrier_gets_invite().await;
    s.h.carrier.reply(&c_invite, 486, Some("busy")).await;
    let busy = s.h.pbx.expect_response(486).await;
    s.h.pbx.ack_non2xx(&invite, &busy).await;
    s.h.carrier.expect_request("ACK").await;

    // Blocked from the page: the next call to that number is refused.
    let ok = c
        .post(
            "/console/trunks/test/blocked",
            &[("number", common::CALLEE2), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.location(), "/console/trunks?done=added");
    let invite =
        s.h.pbx
            .invite(
                s.h.inside(),
                &common::InviteSpec::new(common::CALLER, common::CALLEE2),
            )
            .await;
    s.h.pbx.expect_response(100).await;
    let no = s.h.pbx.expect_response(403).await;
    assert_eq!(no.reason(), "Number Blocked");
    s.h.pbx.ack_non2xx(&invite, &no).await;

    // Removed: gone from the page and from admission.
    let gone = c
        .post(
            "/console/trunks/test/numbers/remove",
            &[("number", new), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(gone.location(), "/console/trunks?done=removed");
    let again = c
        .post(
            "/console/trunks/test/numbers/remove",
            &[("number", new), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.text.contains("not on the list"));
    assert_eq!(
        c.post("/console/trunks/test/numbers", &[("number", new)])
            .await
            .status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let rows = audit(&s, "console.trunks.numbers.add").await;
    assert!(rows
        .iter()
        .all(|r| r.actor == "root" && r.role.as_deref() == Some("admin")));
    s.h.finish().await;
}
