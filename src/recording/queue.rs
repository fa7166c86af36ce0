//! A call's packet queue from the relay to its recording worker: bounded, never blocking, and
//! only as large as what is queued.
//!
//! Why not `std::sync::mpsc::sync_channel`: it allocates and initialises its whole bound at
//! creation, 1,024 slots of ~72 bytes (about 10 s of audio), so every answered call paid 72 KiB
//! and its page faults for a queue that holds two or three packets at a time (the worker
//! drains it every tick); at 3,000 calls that was 216 MiB (issue 16). Here the queue is a
//! `VecDeque` that grows to the largest burst it has held, under a lock taken once per packet
//! by the relay and once per tick by the worker, which swaps the whole queue for its own empty
//! one and reads the batch without the lock. Steady state allocates nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::packet::RecPacket;

/// A batch buffer that grew past this during a backlog is given back once the backlog is over
/// (a tick holds two or three packets; each slot is ~64 bytes, and every call holds one buffer).
const KEEP_CAPACITY: usize = 16;

#[derive(Debug)]
struct Shared {
    queue: Mutex<VecDeque<RecPacket>>,
    capacity: usize,
    closed: AtomicBool,
}

/// Why a packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds `capacity` packets: the worker is behind.
    Full,
    /// The recording is closed.
    Closed,
}

/// The relay's end. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct PacketSender {
    shared: Arc<Shared>,
}

/// The worker's end. Dropping it closes the queue.
#[derive(Debug)]
pub(crate) struct PacketReceiver {
    shared: Arc<Shared>,
}

/// A queue holding at most `capacity` packets (at least one).
pub(crate) fn packet_queue(capacity: usize) -> (PacketSender, PacketReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        capacity: capacity.max(1),
        closed: AtomicBool::new(false),
    });
    (
        PacketSender {
            shared: Arc::clone(&shared),
        },
        PacketReceiver { shared },
    )
}

impl PacketSender {
    pub(crate) fn try_push(&self, pkt: RecPacket) -> Result<(), Refused> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        let mut queue = self.shared.queue.lock();
        if queue.len() >= self.shared.capacity {
            return Err(Refused::Full);
        }
        queue.push_back(pkt);
        Ok(())
    }
}

impl PacketReceiver {
    /// Everything queued so far, moved into `batch` (which must be empty) in one lock.
    pub(crate) fn take_all(&self, batch: &mut VecDeque<RecPacket>) {
        debug_assert!(batch.is_empty());
        if batch.capacity() > KEEP_CAPACITY {
            batch.shrink_to(KEEP_CAPACITY);
        }
        std::mem::swap(&mut *self.shared.queue.lock(), batch);
    }

    /// Refuses every later packet and drops what is queued.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let dropped = std::mem::take(&mut *self.shared.queue.lock());
        drop(dropped);
    }
}

impl Drop for PacketReceiver {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Leg;
    use bytes::Bytes;
    use std::time::Instant;

    fn pkt(sequence: u16) -> RecPacket {
        RecPacket {
            leg: Leg::Inside,
            arrival: Instant::now(),
            payload_type: 0,
            marker: false,
            sequence,
            timestamp: 160 * sequence as u32,
            ssrc: 1,
            payload: Bytes::from_static(&[0xff; 160]),
        }
    }

    #[test]
    fn bounded_in_order_and_closed() {
        let (tx, rx) = packet_queue(3);
        for seq in 0..3 {
            assert_eq!(tx.try_push(pkt(seq)), Ok(()));
        }
        assert_eq!(tx.clone().try_push(pkt(3)), Err(Refused::Full));
        let mut batch = VecDeque::new();
        rx.take_all(&mut batch);
        let seqs: Vec<u16> = batch.drain(..).map(|p| p.sequence).collect();
        assert_eq!(seqs, [0, 1, 2]);
        // Room again once taken.
        assert_eq!(tx.try_push(pkt(4)), Ok(()));
        drop(rx);
        assert_eq!(tx.try_push(pkt(5)), Err(Refused::Closed));
    }

    #[test]
    fn a_backlog_buffer_is_given_back() {
        let (tx, rx) = packet_queue(1024);
        for seq in 0..1000 {
            tx.try_push(pkt(seq)).unwrap();
        }
        let mut batch = VecDeque::new();
        rx.take_all(&mut batch);
        assert_eq!(batch.len(), 1000);
        batch.clear();
        // The big buffer went to the worker's side; the next swap shrinks it first.
        tx.try_push(pkt(1000)).unwrap();
        rx.take_all(&mut batch);
        assert_eq!(batch.len(), 1);
        batch.clear();
        rx.take_all(&mut batch);
        assert!(batch.capacity() <= KEEP_CAPACITY, "{}", batch.capacity());
    }
}
