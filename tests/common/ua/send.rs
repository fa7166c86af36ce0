//! What the agent sends: raw text, requests built from a spec or a dialog (INVITE, CANCEL, ACK,
//! BYE, in-dialog requests) and responses to what it received.

use std::net::SocketAddr;

use super::super::msg::Msg;
use super::{reason_for, sdp, token, Dialog, InviteSpec, Sent, Ua};

impl Ua {
    pub async fn send_raw(&self, to: SocketAddr, text: &str) {
        self.sock
            .send_to(text.as_bytes(), to)
            .await
            .unwrap_or_else(|e| panic!("{}: send to {to}: {e}", self.name));
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.addr)
    }

    /// Build and send a request; headers in `extra` are added verbatim, `body` with its type.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        to: SocketAddr,
        method: &str,
        uri: &str,
        from: &str,
        to_hdr: &str,
        call_id: &str,
        cseq: u32,
        branch: &str,
        extra: &[String],
        body: Option<(&str, &str)>,
        max_forwards: u32,
    ) -> Sent {
        let via = self.via(branch);
        let mut t = format!(
            "{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: {max_forwards}\r\n\
             From: {from}\r\nTo: {to_hdr}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        );
        if matches!(method, "INVITE" | "UPDATE" | "SUBSCRIBE") {
            t.push_str(&format!("Contact: <sip:{}>\r\n", self.addr));
        }
        for h in extra {
            t.push_str(h);
            t.push_str("\r\n");
        }
        let body_text = match body {
            Some((ct, b)) => {
                t.push_str(&format!("Content-Type: {ct}\r\n"));
                b
            }
            None => "",
        };
        t.push_str(&format!(
            "Content-Length: {}\r\n\r\n{body_text}",
            body_text.len()
        ));
        self.send_raw(to, &t).await;
        Sent {
            text: t,
            to,
            method: method.to_string(),
            uri: uri.to_string(),
            via,
            branch: branch.to_string(),
            call_id: call_id.to_string(),
            from: from.to_string(),
            to_hdr: to_hdr.to_string(),
            cseq,
        }
    }

    /// A new INVITE to `gw` (an interface of the gateway).
    pub async fn invite(&self, gw: SocketAddr, spec: &InviteSpec) -> Sent {
        let host = gw.ip();
        let from = match &spec.from_value {
            Some(v) => format!("{v};tag={}", token("ft")),
            None => format!("<sip:{}@{}>;tag={}", spec.from, self.addr.ip(), token("ft")),
        };
        let to_hdr = format!("<sip:{}@{host}>", spec.to);
        let uri = format!("sip:{}@{gw}", spec.to);
        let mut extra = Vec::new();
        if let Some(pai) = &spec.pai {
            extra.push(format!(
                "P-Asserted-Identity: <sip:{pai}@{}>",
                self.addr.ip()
            ));
        }
        if let Some(p) = &spec.privacy {
            extra.push(format!("Privacy: {p}"));
        }
        extra.extend(spec.extra.iter().cloned());
        self.request(
            gw,
            "INVITE",
            &uri,
            &from,
            &to_hdr,
            &format!("{}@{}", token("call"), self.addr.ip()),
            1,
            &format!("z9hG4bK{}", token("b")),
            &extra,
            spec.sdp.as_deref().map(|s| ("application/sdp", s)),
            spec.max_forwards.unwrap_or(70),
        )
        .await
    }

    /// Send a request again, byte for byte (a retransmission).
    pub async fn resend(&self, sent: &Sent) {
        self.send_raw(sent.to, &sent.text).await;
    }

    /// CANCEL of an INVITE we sent (§9.1: same Request-URI, Call-ID, From, To, CSeq number and
    /// top Via branch).
    pub async fn cancel(&self, invite: &Sent) -> Sent {
        let t = format!(
            "CANCEL {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
            invite.uri, invite.via, invite.from, invite.to_hdr, invite.call_id, invite.cseq
        );
        self.send_raw(invite.to, &t).await;
        Sent {
            text: t,
            method: "CANCEL".into(),
            ..invite.clone()
        }
    }

    /// ACK for a non-2xx final response: part of the INVITE transaction (same branch).
    pub async fn ack_non2xx(&self, invite: &Sent, resp: &Msg) {
        let t = format!(
            "ACK {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            invite.uri,
            invite.via,
            invite.from,
            resp.must("To"),
            invite.call_id,
            invite.cseq
        );
        self.send_raw(invite.to, &t).await;
    }

    /// A request within a dialog with the next CSeq (ACK: the INVITE's CSeq; use `ack`).
    pub async fn in_dialog(
        &self,
        dlg: &mut Dialog,
        method: &str,
        body: Option<(&str, &str)>,
    ) -> Sent {
        dlg.cseq += 1;
        self.in_dialog_with(dlg, method, dlg.cseq, &[], body).await
    }

    /// A re-INVITE within the dialog offering the test SDP with `direction` (sendonly…).
    pub async fn reinvite(&self, dlg: &mut Dialog, direction: &str) -> Sent {
        let offer = sdp(direction);
        self.in_dialog(dlg, "INVITE", Some(("application/sdp", &offer)))
            .await
    }

    pub async fn in_dialog_with(
        &self,
        dlg: &Dialog,
        method: &str,
        cseq: u32,
        extra: &[String],
        body: Option<(&str, &str)>,
    ) -> Sent {
        self.request(
            dlg.peer,
            method,
            &dlg.target,
            &dlg.local,
            &dlg.remote,
            &dlg.call_id,
            cseq,
            &format!("z9hG4bK{}", token("b")),
            extra,
            body,
            70,
        )
        .await
    }

    /// ACK for a 2xx to the dialog's INVITE (or to a re-INVITE with CSeq `cseq`): a new
    /// transaction of its own (§13.2.2.4).
    pub async fn ack(&self, dlg: &Dialog, cseq: u32) -> Sent {
        self.in_dialog_with(dlg, "ACK", cseq, &[], None).await
    }

    pub async fn bye(&self, dlg: &mut Dialog) -> Sent {
        self.in_dialog(dlg, "BYE", None).await
    }

    /// Answer a request: Via, From, To (plus `tag` when it has none), Call-ID and CSeq
    /// copied; our Contact on 101–299 responses that carry a tag; `extra` headers verbatim; an
    /// SDP body when given.
    pub async fn reply_with(
        &self,
        req: &Msg,
        code: u16,
        tag: Option<&str>,
        extra: &[&str],
        sdp_body: Option<&str>,
    ) -> String {
        let mut t = format!("SIP/2.0 {code} {}\r\n", reason_for(code));
        for via in req.headers("Via") {
            t.push_str(&format!("Via: {via}\r\n"));
        }
        t.push_str(&format!("From: {}\r\n", req.must("From")));
        let to = req.must("To");
        match tag {
            Some(tag) if req.to_tag().is_none() => t.push_str(&format!("To: {to};tag={tag}\r\n")),
            _ => t.push_str(&format!("To: {to}\r\n")),
        }
        t.push_str(&format!(
            "Call-ID: {}\r\nCSeq: {}\r\n",
            req.call_id(),
            req.must("CSeq")
        ));
        if (101..300).contains(&code) && tag.is_some() {
            t.push_str(&format!("Contact: <sip:{}>\r\n", self.addr));
        }
        for h in extra {
            t.push_str(h);
            t.push_str("\r\n");
        }
        let body = match sdp_body {
            Some(b) => {
                t.push_str("Content-Type: application/sdp\r\n");
                b
            }
            None => "",
        };
        t.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.send_raw(req.src, &t).await;
        t
    }

    pub async fn reply(&self, req: &Msg, code: u16, tag: Option<&str>) -> String {
        self.reply_with(req, code, tag, &[], None).await
    }
}
