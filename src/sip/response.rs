//! Responses built by the gateway itself (RFC 3261 §8.2.6): the header fields a response must
//! echo from its request, a To tag and an empty body. No Server header: a product name tells a
//! scanner what it talks to; `[sip] server_header` has the transaction layer add one.
//!
//! The status is always `StatusCode::Other(code, reason)` so the reason phrase we choose is the
//! one sent (rsip would print "400 BadRequest" for its named variants); compare with `.code()`.

use super::frontend::syntax::has_tag;
use rsip::headers::{self, UntypedHeader};
use rsip::{Header, StatusCode};

/// A response to `req`: all Via, From, To (with `to_tag` added if the To has no tag), Call-ID
/// and CSeq copied, `Content-Length: 0`.
pub fn response_for(
    req: &rsip::Request,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> rsip::Response {
    Echo::of(req).build(status, reason, to_tag, Vec::new())
}

/// The header values a response echoes, as text: the front end fills it from raw bytes when a
/// request could not be parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Echo {
    pub vias: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub call_id: Option<String>,
    pub cseq: Option<String>,
}

impl Echo {
    /// The first From/To/Call-ID/CSeq and every Via of a parsed request.
    pub fn of(req: &rsip::Request) -> Echo {
        let mut echo = Echo::default();
        for h in req.headers.iter() {
            match h {
                Header::Via(v) => echo.vias.push(v.value().to_string()),
                Header::From(v) if echo.from.is_none() => echo.from = Some(v.value().to_string()),
                Header::To(v) if echo.to.is_none() => echo.to = Some(v.value().to_string()),
                Header::CallId(v) if echo.call_id.is_none() => {
                    echo.call_id = Some(v.value().to_string())
                }
                Header::CSeq(v) if echo.cseq.is_none() => echo.cseq = Some(v.value().to_string()),
                _ => {}
            }
        }
        echo
    }

    /// The response; `extra` headers (Allow, Unsupported...) go before Content-Length.
    pub fn build(
        &self,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
        extra: Vec<Header>,
    ) -> rsip::Response {
        let mut h: Vec<Header> = Vec::with_capacity(self.vias.len() + 7 + extra.len());
        h.extend(
            self.vias
                .iter()
                .map(|v| Header::Via(headers::Via::new(v.clone()))),
        );
        if let Some(from) = &self.from {
            h.push(Header::From(headers::From::new(from.clone())));
        }
        if let Some(to) = &self.to {
            let to = match to_tag {
                Some(tag) if !has_tag(to) => format!("{to};tag={tag}"),
                _ => to.clone(),
            };
            h.push(Header::To(headers::To::new(to)));
        }
        if let Some(call_id) = &self.call_id {
            h.push(Header::CallId(headers::CallId::new(call_id.clone())));
        }
        if let Some(cseq) = &self.cseq {
            h.push(Header::CSeq(headers::CSeq::new(cseq.clone())));
        }
        h.extend(extra);
        h.push(Header::ContentLength(headers::ContentLength::from(0u32)));
        // a reason phrase may not carry CR/LF; never let one split the status line
        let reason: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        rsip::Response {
            status_code: StatusCode::Other(status, reason),
            version: rsip::Version::V2,
            headers: h.into(),
            body: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n\
        Via: SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:alice@example.com>;tag=abc\r\n\
        To: <sip:bob@example.com>\r\n\
        Call-ID: 42@example.com\r\n\
        CSeq: 7 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn echoes_and_tags() {
        let req = rsip::Request::try_from(INVITE).unwrap();
        let resp = response_for(&req, 486, "Busy Here", Some("t1"));
        let text = resp.to_string();
        assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"), "{text}");
        assert!(text.contains("Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n"));
        assert!(text.contains("From: <sip:alice@example.com>;tag=abc\r\n"));
        assert!(text.contains("To: <sip:bob@example.com>;tag=t1\r\n"));
        assert!(text.contains("Call-ID: 42@example.com\r\nCSeq: 7 INVITE\r\n"));
        assert!(text.contains("CSeq: 7 INVITE\r\nContent-Length: 0\r\n"));
        assert!(
            !text.contains("Server:"),
            "no product name by default: {text}"
        );
        assert_eq!(resp.status_code.code(), 486);
        // the response parses back
        assert!(rsip::Response::try_from(text.as_str()).is_ok());
    }

    #[test]
    fn existing_tag_is_kept() {
        let req = rsip::Request::try_from(
            INVITE
                .replace("bob@example.com>\r\n", "bob@example.com>;tag=x\r\n")
                .as_str(),
        )
        .unwrap();
        let resp = response_for(&req, 200, "OK", Some("t1"));
        assert!(resp
            .to_string()
            .contains("To: <sip:bob@example.com>;tag=x\r\n"));
        let resp = response_for(&req, 100, "Trying\r\nX: y", None);
        assert!(resp.to_string().starts_with("SIP/2.0 100 Trying  X: y\r\n"));
    }
}
