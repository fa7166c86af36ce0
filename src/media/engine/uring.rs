//! The io_uring engine's relay thread: one ring per thread (single issuer, task work deferred to
//! the thread's own waits), a multishot `recvmsg` armed on each socket of its sessions,
//! selecting buffers from a provided-buffer ring; the sends a round's packets make are queued
//! (`Queued`, copies in `SendSlots`) and submitted together with the wait for the next
//! completions. A round is one `io_uring_enter`, whatever the number of packets, where the epoll
//! engine makes one `recvfrom` and one `sendto` per packet and an `epoll_wait` per round.
//!
//! Lifetimes: a socket's receive holds the socket in the kernel (a reference of its own) until
//! it ends, so closing a session cancels its receives and closes its sockets (returning the
//! ports) only once each has posted its last completion; sends queued toward a socket are
//! submitted before it closes (`finish_closed`). A receive the buffers ran out for (`ENOBUFS`)
//! or that ended otherwise is armed again after the round, once the buffers are back; a socket
//! that keeps failing is given up like on epoll (`Relayed::recv_error`). Sends go out with
//! `MSG_DONTWAIT`: a full socket buffer drops the datagram, as `sendto` does, and a send slot
//! is never held waiting.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use tokio::sync::oneshot;

use super::super::counters::{DropReason, Fate};
use super::super::egress::Egress;
use super::session::{Outlet, Relayed, Reports};
use super::uring_buffers::{decode_sockaddr, BufRing, SendSlots, BUFFER_GROUP, SOCKADDR_LEN};
use super::{Command, HOLD_TICK};

/// Submission queue entries; more sends in a round are submitted in several goes.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: above what can be outstanding (every provided buffer filled, every
/// send slot in flight, a cancel per socket of a few hundred closing sessions), so that it does
/// not overflow.
const CQ_ENTRIES: u32 = 8192;
/// Provided receive buffers: a round's receives take at most this many; beyond, a socket's
/// receive ends with `ENOBUFS` (its datagrams wait in the socket) and is armed again.
const BUFFERS: u16 = 256;
/// A buffer: the kernel's `io_uring_recvmsg_out` header, the source address and the datagram
/// (cut like the epoll engine's at `MAX_DATAGRAM`).
const BUF_LEN: usize = 16 + SOCKADDR_LEN + super::super::pump::MAX_DATAGRAM;
/// Send slots: a round's sends plus those of the round before (complete once submitted).
const SEND_SLOTS: u16 = 1024;

/// user_data tags (top two bits); a receive's is its token `id << 2 | pump`.
const TAG_MASK: u64 = 3 << 62;
const TAG_RECV: u64 = 0;
const TAG_SEND: u64 = 1 << 62;
const TAG_WAKE: u64 = 2 << 62;
/// A cancel, carrying the token of the receive it cancels.
const TAG_CANCEL: u64 = 3 << 62;

/// The round's sends, queued: the `Outlet` of this engine.
struct SendQueue {
    slots: SendSlots,
    /// Entries for the next submission (sends, receives to arm, cancels).
    pending: Vec<squeue::Entry>,
    /// The slot of the latest send queued: the datagram the pump just relayed.
    last: Option<u16>,
    /// Sends refused for want of a slot, logged at the first.
    starved: u64,
    /// Entries in `pending` that complete as they are submitted (sends with `MSG_DONTWAIT`,
    /// cancels): the wait counts their completions on top of the one it waits for.
    inline: usize,
}

/// A send toward one peer socket, queued.
struct Queued<'a> {
    queue: &'a mut SendQueue,
    fd: RawFd,
    owner: u64,
}

impl Outlet for SendQueue {
    type Egress<'a> = Queued<'a>;

    fn toward<'a>(&'a mut self, socket: &'a UdpSocket, id: u64, index: usize) -> Queued<'a> {
        Queued {
            queue: self,
            fd: socket.as_raw_fd(),
            owner: id << 2 | index as u64,
        }
    }
}

impl Egress for Queued<'_> {
    fn send_to(&mut self, data: &[u8], dest: SocketAddr) -> io::Result<usize> {
        let Some(taken) = self.queue.slots.take(data, dest, self.owner) else {
            self.queue.starved += 1;
            if self.queue.starved == 1 {
                tracing::warn!(
                    len = data.len(),
                    "io_uring media relay: no send slot free (or datagram too long); dropped"
                );
            }
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let entry = opcode::Send::new(Fd(self.fd), taken.data, taken.len)
            .dest_addr(taken.addr)
            .dest_addr_len(taken.addr_len)
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(TAG_SEND | u64::from(taken.slot));
        self.queue.pending.push(entry);
        self.queue.inline += 1;
        self.queue.last = Some(taken.slot);
        Ok(data.len())
    }
}

/// A session on a ring: which of its four receives are armed.
struct OnRing {
    relayed: Box<Relayed>,
    /// Bit per pump: its receive is armed (a completion with `MORE` or none yet).
    armed: u8,
    /// Bit per pump: its socket is given up.
    broken: u8,
    /// Closing: the reply waits for the last receive to end.
    closing: Option<Option<oneshot::Sender<Reports>>>,
}

/// The relay thread's own state. Field order matters: the ring is closed before the buffers
/// it fills are freed.
pub(super) struct Worker {
    ring: IoUring,
    bufs: BufRing,
    sends: SendQueue,
    /// Which relay thread: the counter shard it adds to.
    index: usize,
    wake: Arc<File>,
    commands: mpsc::Receiver<Command>,
    sessions: Arc<AtomicUsize>,
    on_ring: HashMap<u64, OnRing>,
    /// Sessions holding back a possible DTMF command: polled every `HOLD_TICK`.
    holding: Vec<u64>,
    cqes: Vec<cqueue::Entry>,
    /// Receives to arm again after the round (their buffers are back by then).
    rearm: Vec<u64>,
    /// Closing sessions whose receives have all ended.
    finished: Vec<u64>,
    /// The receives' message header: only the name length matters (multishot).
    msghdr: Box<libc::msghdr>,
    commands_due: bool,
}

impl Worker {
    /// Sets up the ring (this thread is its single issuer), its buffers and the wake-up poll;
    /// an error means this kernel or sandbox does not serve the engine.
    pub(super) fn new(
        index: usize,
        wake: Arc<File>,
        commands: mpsc::Receiver<Command>,
        sessions: Arc<AtomicUsize>,
    ) -> io::Result<Worker> {
        let ring: IoUring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_submit_all()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)?;
        if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
            return Err(io::Error::other("io_uring lacks EXT_ARG or NODROP"));
        }
        let bufs = BufRing::new(&ring.submitter(), BUFFERS, BUF_LEN)?;
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_namelen = SOCKADDR_LEN as libc::socklen_t;
        let mut worker = Worker {
            ring,
            bufs,
            sends: SendQueue {
                slots: SendSlots::new(SEND_SLOTS),
                pending: Vec::with_capacity(usize::from(SEND_SLOTS) * 2),
                last: None,
                starved: 0,
                inline: 0,
            },
            index,
            wake,
            commands,
            sessions,
            on_ring: HashMap::new(),
            holding: Vec::new(),
            cqes: Vec::with_capacity(CQ_ENTRIES as usize),
            rearm: Vec::new(),
            finished: Vec::new(),
            msghdr,
            commands_due: false,
        };
        worker.arm_wake();
        worker.submit(false)?;
        Ok(worker)
    }

    pub(super) fn run(&mut self) {
        loop {
            if let Err(e) = self.submit(true) {
                tracing::error!(error = %e, "media relay io_uring_enter failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            self.reap();
            if !self.rearm.is_empty() {
                self.rearm();
            }
            if std::mem::take(&mut self.commands_due) && !self.commands() {
                return; // the pool failed to start: this thread is not used
            }
            if !self.holding.is_empty() {
                self.poll_held();
            }
            if !self.finished.is_empty() {
                self.finish_closed();
            }
        }
    }

    /// Hands the queued entries to the kernel and, with `wait`, waits for a completion (at most
    /// `HOLD_TICK` while some session holds DTMF back) beyond those of the sends and cancels
    /// just submitted, which complete during the submission: one system call per round, not
    /// a second one returning at once with the sends' completions. The waits run the deferred
    /// task work: the receives themselves happen here, in this thread.
    fn submit(&mut self, wait: bool) -> io::Result<()> {
        let want = 1 + std::mem::take(&mut self.sends.inline);
        let pending = &mut self.sends.pending;
        while !pending.is_empty() {
            let pushed = {
                let mut sq = self.ring.submission();
                let n = (sq.capacity() - sq.len()).min(pending.len());
                // SAFETY: each entry points at memory that outlives its operation: send slots
                // (freed at their completion), the message header (the worker's), sockets kept
                // open until their receives end and their sends are submitted.
                if unsafe { sq.push_multiple(&pending[..n]) }.is_err() {
                    0
                } else {
                    n
                }
            };
            pending.drain(..pushed);
            if !pending.is_empty() {
                self.ring.submit()?; // room for the rest
            }
        }
        let result = if !wait {
            self.ring.submit()
        } else if self.holding.is_empty() {
            self.ring.submit_and_wait(want)
        } else {
            let tick = Timespec::from(HOLD_TICK);
            let args = SubmitArgs::new().timespec(&tick);
            self.ring.submitter().submit_with_args(want, &args)
        };
        match result {
            Ok(_) => Ok(()),
            // The tick passed, a signal, or completions to reap first (the CQ is full).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Takes every completion there is and handles it; the buffers go back to the kernel.
    fn reap(&mut self) {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion());
        for cqe in &cqes {
            let data = cqe.user_data();
            match data & TAG_MASK {
                TAG_RECV => self.on_recv(data, cqe.result(), cqe.flags()),
                TAG_SEND => self.on_send((data & 0xffff) as u16, cqe.result()),
                TAG_WAKE => {
                    self.commands_due = true;
                    if !cqueue::more(cqe.flags()) {
                        self.arm_wake();
                    }
                }
                _ => self.on_cancelled(data & !TAG_MASK, cqe.result()),
            }
        }
        self.cqes = cqes;
        self.bufs.publish();
    }

    /// A receive completion: a datagram in a buffer (handled by the pump, the buffer given
    /// back), or the receive's end.
    fn on_recv(&mut self, token: u64, result: i32, flags: u32) {
        let (id, index) = (token >> 2, (token & 3) as usize);
        let bit = 1u8 << index;
        let buffer = cqueue::buffer_select(flags);
        let Some(session) = self.on_ring.get_mut(&id) else {
            if let Some(bid) = buffer {
                self.bufs.recycle(bid);
            }
            return;
        };
        if let Some(bid) = buffer {
            // A datagram that completes while the session closes came during the call: handled
            // like any (recorded, counted), as what the sockets still hold is at the close.
            if result >= 0 {
                let msg = self
                    .bufs
                    .filled(bid, result as usize)
                    .and_then(|buf| RecvMsgOut::parse(buf, &self.msghdr).ok());
                let source = msg.as_ref().and_then(|msg| {
                    decode_sockaddr(msg.name_data(), msg.incoming_name_len() as usize)
                });
                if let (Some(msg), Some(source)) = (&msg, source) {
                    self.sends.last = None;
                    let relayed = &mut session.relayed;
                    let data = msg.payload_data();
                    let fate = relayed.on_received(id, index, data, source, &mut self.sends);
                    match (fate, self.sends.last) {
                        // Counted when the send completes, as relayed or send_failed.
                        (Fate::Relayed { rtp, .. }, Some(slot)) => {
                            self.sends.slots.count_at_completion(slot, rtp);
                        }
                        _ => relayed.count(self.index, index, fate),
                    }
                    if relayed.holding() && !self.holding.contains(&id) {
                        self.holding.push(id);
                    }
                }
            }
            self.bufs.recycle(bid);
        }
        if result < 0 {
            let errno = -result;
            // ENOBUFS: out of buffers this round (armed again below); ECANCELED: closing.
            if errno != libc::ENOBUFS && errno != libc::ECANCELED && session.closing.is_none() {
                let error = io::Error::from_raw_os_error(errno);
                if !session.relayed.recv_error(index, &error) {
                    session.broken |= bit;
                }
            }
        }
        if !cqueue::more(flags) {
            session.armed &= !bit;
            if session.closing.is_some() {
                if session.armed == 0 {
                    self.finished.push(id);
                }
            } else if session.broken & bit == 0 {
                self.rearm.push(token);
            }
        }
    }

    /// A send completed: its slot is free; the pump and the counters learn of a failure.
    fn on_send(&mut self, slot: u16, result: i32) {
        let Some(meta) = self.sends.slots.release(slot) else {
            return;
        };
        let (id, index) = (meta.owner >> 2, (meta.owner & 3) as usize);
        let Some(session) = self.on_ring.get_mut(&id) else {
            return;
        };
        let relayed = &mut session.relayed;
        if result >= 0 {
            if let Some(rtp) = meta.counted {
                let bytes = meta.bytes as usize;
                relayed.count(self.index, index, Fate::Relayed { bytes, rtp });
            }
            return;
        }
        relayed.send_failed_late(index, meta.bytes as usize);
        if meta.counted.is_some() {
            relayed.count(self.index, index, Fate::Dropped(DropReason::SendFailed));
        }
    }

    /// A cancel completed. One that found its receive already running (`EALREADY`) is asked
    /// again while that receive is still armed.
    fn on_cancelled(&mut self, token: u64, result: i32) {
        if result != -libc::EALREADY {
            return;
        }
        let (id, index) = (token >> 2, (token & 3) as usize);
        if let Some(session) = self.on_ring.get(&id) {
            if session.closing.is_some() && session.armed & (1 << index) != 0 {
                self.cancel(token);
            }
        }
    }

    fn arm_wake(&mut self) {
        let entry = opcode::PollAdd::new(Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(TAG_WAKE);
        self.sends.pending.push(entry);
    }

    fn arm(&mut self, token: u64, fd: RawFd) {
        let entry = opcode::RecvMsgMulti::new(Fd(fd), &*self.msghdr, BUFFER_GROUP)
            .build()
            .user_data(TAG_RECV | token);
        self.sends.pending.push(entry);
    }

    fn cancel(&mut self, token: u64) {
        let entry = opcode::AsyncCancel::new(TAG_RECV | token)
            .build()
            .user_data(TAG_CANCEL | token);
        self.sends.pending.push(entry);
        self.sends.inline += 1;
    }

    /// Arms again the receives that ended this round (not those of closing sessions or broken
    /// sockets).
    fn rearm(&mut self) {
        let tokens = std::mem::take(&mut self.rearm);
        for &token in &tokens {
            let (id, index) = (token >> 2, (token & 3) as usize);
            let Some(session) = self.on_ring.get_mut(&id) else {
                continue;
            };
            let bit = 1u8 << index;
            if session.closing.is_some() || session.armed & bit != 0 || session.broken & bit != 0 {
                continue;
            }
            session.armed |= bit;
            let fd = session.relayed.socket(index).as_raw_fd();
            self.arm(token, fd);
        }
        self.rearm = tokens;
        self.rearm.clear();
    }

    /// Releases the held-back DTMF packets that have waited long enough.
    fn poll_held(&mut self) {
        let now = std::time::Instant::now();
        let (on_ring, sends) = (&mut self.on_ring, &mut self.sends);
        self.holding.retain(|id| match on_ring.get_mut(id) {
            Some(session) if session.closing.is_none() => {
                session.relayed.poll_held(*id, now, sends);
                session.relayed.holding()
            }
            _ => false,
        });
    }

    /// Closes the sessions whose receives have all ended: their sockets close (the ports go
    /// back) once the sends queued toward them are submitted and their completions counted.
    fn finish_closed(&mut self) {
        if let Err(e) = self.submit(false) {
            tracing::error!(error = %e, "media relay io_uring_enter failed");
            return; // tried again after the next round
        }
        self.reap();
        for id in std::mem::take(&mut self.finished) {
            let Some(mut session) = self.on_ring.remove(&id) else {
                continue;
            };
            // Its receives are all ended: what the sockets still hold is read directly.
            session.relayed.drain(id, self.index);
            let reports = session.relayed.finish(self.index);
            self.sessions.fetch_sub(1, Ordering::Relaxed);
            if let Some(Some(reply)) = session.closing {
                let _ = reply.send(reports);
            }
        }
    }

    /// Reads the command queue; false when it is closed (the thread is not used).
    fn commands(&mut self) -> bool {
        let mut counter = [0u8; 8];
        let _ = (&*self.wake).read(&mut counter); // reset the eventfd
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add(id, mut session)) => {
                    session.apply_control();
                    let fds: [RawFd; 4] =
                        std::array::from_fn(|index| session.socket(index).as_raw_fd());
                    for (index, fd) in fds.into_iter().enumerate() {
                        self.arm(id << 2 | index as u64, fd);
                    }
                    let on_ring = OnRing {
                        relayed: session,
                        armed: 0b1111,
                        broken: 0,
                        closing: None,
                    };
                    self.on_ring.insert(id, on_ring);
                }
                Ok(Command::Control(id)) => {
                    if let Some(session) = self.on_ring.get_mut(&id) {
                        session.relayed.apply_control();
                    }
                }
                Ok(Command::Close(id, reply)) => {
                    let Some(session) = self.on_ring.get_mut(&id) else {
                        continue;
                    };
                    if session.closing.is_some() {
                        continue;
                    }
                    session.closing = Some(reply);
                    let armed = session.armed;
                    if armed == 0 {
                        self.finished.push(id);
                    }
                    for index in 0..4u64 {
                        if armed & (1 << index) != 0 {
                            self.cancel(id << 2 | index);
                        }
                    }
                }
                Ok(Command::Snapshot(id, reply)) => {
                    // A closing session has no live figures (as on epoll).
                    if let Some(session) = self.on_ring.get(&id).filter(|s| s.closing.is_none()) {
                        let _ = reply.send(session.relayed.snapshot());
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // No receive may take a buffer once the memory is about to go.
        let _ = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP);
    }
}
