//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3).

use rsip::Method;

use super::table::{spread, ShardKey};
use crate::model::Side;
use crate::sip::message::{self, MAGIC_COOKIE};

/// Server transactions: the top Via's branch and sent-by, and the method, with ACK folded into
/// INVITE so that the ACK for a non-2xx final matches its INVITE. Requests from RFC 2543
/// elements (no magic cookie) fall back to Call-ID, CSeq number, From tag and Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub side: Side,
    pub id: String,
    /// The method's name (rsip's Method is not Hash).
    pub method: String,
}

impl ServerKey {
    pub fn for_request(side: Side, req: &rsip::Request) -> Option<ServerKey> {
        let via = message::top_via_value(req)?;
        let method = match req.method {
            Method::Ack => "INVITE".to_string(),
            ref m => m.to_string(),
        };
        let sent_by = message::via_sent_by(via)?.to_ascii_lowercase();
        let id = match message::via_param(via, "branch").map(str::to_string) {
            Some(b) if b.starts_with(MAGIC_COOKIE) => format!("{b}|{sent_by}"),
            other => {
                let (seq, _) = message::cseq(req)?;
                format!(
                    "2543|{}|{}|{}|{}|{}",
                    message::call_id(req)?,
                    seq,
                    message::from_tag(req).unwrap_or_default(),
                    sent_by,
                    other.unwrap_or_default()
                )
            }
        };
        Some(ServerKey { side, id, method })
    }

    /// The INVITE transaction a CANCEL refers to.
    pub fn invite_of_cancel(&self) -> ServerKey {
        ServerKey {
            side: self.side,
            id: self.id.clone(),
            method: "INVITE".to_string(),
        }
    }
}

/// The method is left out: a CANCEL (and an ACK) must land in its INVITE's shard.
impl ShardKey for ServerKey {
    fn shard_hash(&self) -> u64 {
        spread(self.side as u64, self.id.as_bytes())
    }
}

/// Client transactions: the branch we generated and the CSeq method (CANCEL shares its
/// INVITE's branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub side: Side,
    pub branch: String,
    pub method: String,
}

impl ClientKey {
    pub fn for_response(side: Side, resp: &rsip::Response) -> Option<ClientKey> {
        let branch = message::branch(resp)?;
        let (_, method) = message::cseq(resp)?;
        Some(ClientKey {
            side,
            branch,
            method: method.to_string(),
        })
    }
}

/// The method is left out: a CANCEL shares its INVITE's branch, and its shard.
impl ShardKey for ClientKey {
    fn shard_hash(&self) -> u64 {
        spread(self.side as u64, self.branch.as_bytes())
    }
}
