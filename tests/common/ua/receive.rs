//! What the agent waits for, every wait bounded: the next message, the first matching one,
//! the next new request or response (retransmissions skipped, others kept for later), or
//! nothing at all.

use std::time::Duration;

use tokio::time::Instant;

use super::super::msg::Msg;
use super::{Ua, WAIT};

impl Ua {
    /// Receive one datagram from the socket, waiting until `deadline`.
    async fn recv_socket(&self, deadline: Instant) -> Option<Msg> {
        let mut buf = vec![0u8; 65_535];
        match tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, src))) => Some(Msg::parse(&buf[..n], src)),
            Ok(Err(e)) => panic!("{}: recv: {e}", self.name),
            Err(_) => None,
        }
    }

    /// The next message, retransmissions included: the backlog first, then the socket.
    pub async fn recv_timeout(&mut self, d: Duration) -> Option<Msg> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        let m = self.recv_socket(Instant::now() + d).await?;
        self.seen.insert(m.key());
        Some(m)
    }

    /// The first message satisfying `pred` within `d`, retransmissions included; other
    /// new messages are kept for later.
    pub async fn recv_matching(&mut self, d: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + d;
        loop {
            let m = self.recv_socket(deadline).await?;
            let new = self.seen.insert(m.key());
            if pred(&m) {
                return Some(m);
            }
            if new {
                self.backlog.push_back(m);
            }
        }
    }

    /// The first new message (not a retransmission of one seen before) satisfying `pred`.
    pub async fn next_new(&mut self, d: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + d;
        loop {
            let m = self.recv_socket(deadline).await?;
            if !self.seen.insert(m.key()) {
                continue; // a retransmission
            }
            if pred(&m) {
                return Some(m);
            }
            self.backlog.push_back(m);
        }
    }

    fn pending(&self) -> String {
        self.backlog
            .iter()
            .map(|m| format!("  {} ({})", m.start_line(), m.header("CSeq").unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The next new request with this method (retransmissions skipped, other messages kept).
    pub async fn expect_request(&mut self, method: &str) -> Msg {
        self.expect_request_within(method, WAIT).await
    }

    pub async fn expect_request_within(&mut self, method: &str, d: Duration) -> Msg {
        match self.next_new(d, |m| m.method() == Some(method)).await {
            Some(m) => m,
            None => panic!(
                "{}: no {method} within {d:?}; other messages received:\n{}",
                self.name,
                self.pending()
            ),
        }
    }

    /// The next new response with this status (retransmissions skipped, others kept).
    pub async fn expect_response(&mut self, code: u16) -> Msg {
        self.expect_response_within(code, WAIT).await
    }

    pub async fn expect_response_within(&mut self, code: u16, d: Duration) -> Msg {
        match self.next_new(d, |m| m.status() == Some(code)).await {
            Some(m) => m,
            None => panic!(
                "{}: no {code} response within {d:?}; other messages received:\n{}",
                self.name,
                self.pending()
            ),
        }
    }

    /// The next new response to a request with this CSeq method and status.
    pub async fn expect_response_to(&mut self, method: &str, code: u16) -> Msg {
        let found = self
            .next_new(WAIT, |m| {
                m.status() == Some(code) && m.cseq().1.eq_ignore_ascii_case(method)
            })
            .await;
        match found {
            Some(m) => m,
            None => panic!(
                "{}: no {code} to {method} within {WAIT:?}; other messages received:\n{}",
                self.name,
                self.pending()
            ),
        }
    }

    /// Assert that no new message arrives for `d` (retransmissions of earlier ones are
    /// allowed) and that none is waiting in the backlog.
    pub async fn expect_nothing_new(&mut self, d: Duration) {
        assert!(
            self.backlog.is_empty(),
            "{}: unexpected messages:\n{}",
            self.name,
            self.pending()
        );
        if let Some(m) = self.next_new(d, |_| true).await {
            panic!("{}: unexpected message:\n{}", self.name, m.raw);
        }
    }

    /// Assert that nothing at all arrives for `d`, not even a retransmission.
    pub async fn expect_silence(&mut self, d: Duration) {
        assert!(
            self.backlog.is_empty(),
            "{}: unexpected messages:\n{}",
            self.name,
            self.pending()
        );
        if let Some(m) = self.recv_socket(Instant::now() + d).await {
            panic!("{}: expected silence, got:\n{}", self.name, m.raw);
        }
    }

    /// Forget what is waiting (messages the test does not care about).
    pub fn clear_backlog(&mut self) {
        self.backlog.clear();
    }
}
