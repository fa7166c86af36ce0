use super::*;
use crate::b2bua::call::setup;
use crate::b2bua::restart::hangup::bye;
use crate::model::EndReason;
use crate::sip::message::{self, cseq, from_tag, to_tag};
use crate::sip::transport::{Peer, Proto, Side};

const INVITE: &str = "INVITE sip:+8613900000001@192.0.2.1:5060 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKpbx1;rport\r\n\
    Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKfirst\r\n\
    Max-Forwards: 70\r\n\
    From: \"Agent\" <sip:+861012345678@10.0.0.5>;tag=pbxtag\r\n\
    To: <sip:+8613900000001@192.0.2.1>\r\n\
    Call-ID: pbx-call-1\r\n\
    CSeq: 7 INVITE\r\n\
    Contact: <sip:pbx@10.0.0.5:5060>\r\n\
    Content-Length: 0\r\n\r\n";

fn a_invite() -> rsip::Request {
    rsip::Request::try_from(INVITE.as_bytes()).unwrap()
}

fn peer(addr: &str) -> Peer {
    Peer {
        addr: addr.parse().unwrap(),
        proto: Proto::Udp,
    }
}

fn a_leg() -> Leg {
    setup::a_leg(
        &a_invite(),
        Side::Inside,
        peer("10.0.0.5:5060"),
        "192.0.2.1:5060".parse().unwrap(),
    )
    .unwrap()
}

fn b_leg_and_invite() -> (Leg, rsip::Request) {
    let presented = setup::Presented {
        from_user: "+861012345678",
        to_user: "+8613900000001",
        ruri_user: "+8613900000001",
    };
    let mut b = setup::b_leg(
        Side::Outside,
        peer("203.0.113.7:5060"),
        "198.51.100.1:5060".parse().unwrap(),
        &presented,
        false,
    )
    .unwrap();
    let invite = setup::b_invite(&a_invite(), &mut b);
    (b, invite)
}

fn header(msg: &impl rsip::message::HeadersExt, name: &str) -> Vec<String> {
    msg.headers()
        .iter()
        .map(|h| h.to_string())
        .filter(|h| {
            h.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .collect()
}

#[test]
fn a_record_survives_json_unchanged() {
    let (b, invite) = b_leg_and_invite();
    let record = DialogRecord {
        legs: vec![
            LegRecord::new(&a_leg(), LegRecord::invited(&a_invite())),
            LegRecord::new(&b, LegRecord::inviting(&invite).unwrap()),
        ],
    };
    let json = record.encode().unwrap();
    assert_eq!(DialogRecord::decode(&json).unwrap(), record);
    assert!(json.contains(r#""state":"invited""#), "{json}");
    assert!(json.contains(r#""state":"inviting""#), "{json}");
}

#[test]
fn confirmed_leg_ends_with_a_bye_in_its_dialog_above_the_last_cseq() {
    let mut leg = a_leg();
    leg.local_cseq = 3;
    let record = LegRecord::new(&leg, LegState::Confirmed);
    let bye = bye(&record, leg.local_addr, EndReason::GatewayRestart);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:pbx@10.0.0.5:5060");
    assert_eq!(message::call_id(&bye), Some("pbx-call-1"));
    // We are the PBX's UAS: our To (with our tag) is the BYE's From, its From the BYE's To.
    assert_eq!(from_tag(&bye).as_deref(), Some(leg.local_tag.as_str()));
    assert_eq!(to_tag(&bye).as_deref(), Some("pbxtag"));
    let (seq, method) = cseq(&bye).unwrap();
    assert_eq!(method, Method::Bye);
    assert!(seq > 3 + 1_000, "CSeq {seq}");
    assert!(header(&bye, "Via")[0].contains("192.0.2.1:5060"));
    assert!(!header(&bye, "Reason").is_empty());
}

#[test]
fn a_survivors_bye_names_its_own_address_and_the_nodes_loss() {
    let leg = a_leg();
    let record = LegRecord::new(&leg, LegState::Confirmed);
    let survivor: std::net::SocketAddr = "192.0.2.9:5070".parse().unwrap();
    let bye = bye(&record, survivor, EndReason::NodeLost);
    let via = header(&bye, "Via");
    assert!(via[0].contains("192.0.2.9:5070"), "{via:?}");
    assert!(!via[0].contains("192.0.2.1"), "{via:?}");
    // The dialog is the lost node's: its Call-ID and tags.
    assert_eq!(message::call_id(&bye), Some("pbx-call-1"));
    assert_eq!(from_tag(&bye).as_deref(), Some(leg.local_tag.as_str()));
    assert!(header(&bye, "Reason")[0].contains("node lost"));
}

#[test]
fn cseq_gap_stays_below_two_to_the_31() {
    let mut leg = a_leg();
    leg.local_cseq = (1 << 31) - 5;
    let bye = bye(
        &LegRecord::new(&leg, LegState::Confirmed),
        leg.local_addr,
        EndReason::GatewayRestart,
    );
    let (seq, _) = cseq(&bye).unwrap();
    assert!(seq < (1 << 31), "CSeq {seq}");
}

#[test]
fn inviting_leg_rebuilds_what_its_cancel_needs() {
    let (b, invite) = b_leg_and_invite();
    let record = LegRecord::new(&b, LegRecord::inviting(&invite).unwrap());
    let rebuilt = record.invite_sent().unwrap();
    let cancel = crate::sip::transaction::cancel_for(&rebuilt);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(header(&cancel, "Via"), header(&invite, "Via")[..1].to_vec());
    assert_eq!(header(&cancel, "From"), header(&invite, "From"));
    assert_eq!(header(&cancel, "To"), header(&invite, "To"));
    assert_eq!(message::call_id(&cancel), message::call_id(&invite));
    assert_eq!(
        cseq(&cancel),
        Some((cseq(&invite).unwrap().0, Method::Cancel))
    );
    assert!(record.final_response(500, "x", vec![]).is_none());
}

#[test]
fn invited_leg_gets_a_final_response_to_its_invite() {
    let record = LegRecord::new(&a_leg(), LegRecord::invited(&a_invite()));
    let resp = record
        .final_response(500, "Gateway Restart", vec![])
        .unwrap();
    assert_eq!(resp.status_code.code(), 500);
    assert_eq!(header(&resp, "Via"), header(&a_invite(), "Via"));
    assert_eq!(from_tag(&resp).as_deref(), Some("pbxtag"));
    assert_eq!(to_tag(&resp), Some(record.leg.local_tag.clone()));
    assert_eq!(message::call_id(&resp), Some("pbx-call-1"));
    assert_eq!(cseq(&resp), Some((7, Method::Invite)));
    assert!(record.invite_sent().is_none());
}
