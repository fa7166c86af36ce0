//! Where a leg's peer is, shared by the two pumps of one kind (`pump`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Where a leg's peer is: published by that leg's pump (it owns the latch), read by the other
/// leg's pump of the same kind before each send, with one atomic load while it has not
/// changed. (A `watch` channel did this in 368 bytes, four per call; issue 16.)
#[derive(Debug)]
pub(crate) struct PeerDest {
    /// Bumped at every change.
    version: AtomicU64,
    addr: Mutex<Option<SocketAddr>>,
}

impl PeerDest {
    pub(crate) fn new(addr: Option<SocketAddr>) -> PeerDest {
        PeerDest {
            version: AtomicU64::new(0),
            addr: Mutex::new(addr),
        }
    }

    pub(crate) fn publish(&self, dest: Option<SocketAddr>) {
        let mut addr = self.addr.lock();
        if *addr != dest {
            *addr = dest;
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The address and the version it is.
    pub(crate) fn read(&self) -> (u64, Option<SocketAddr>) {
        let addr = self.addr.lock();
        (self.version(), *addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_moves_only_when_the_address_changes() {
        let a: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:4000".parse().unwrap();
        let dest = PeerDest::new(None);
        let (v0, none) = dest.read();
        assert_eq!(none, None);
        dest.publish(None);
        assert_eq!(dest.version(), v0, "the same address again is no change");
        dest.publish(Some(a));
        assert_eq!(dest.read(), (v0 + 1, Some(a)));
        dest.publish(Some(a));
        dest.publish(Some(b));
        assert_eq!(dest.read(), (v0 + 2, Some(b)));
        dest.publish(None);
        assert_eq!(dest.read(), (v0 + 3, None));
    }
}
