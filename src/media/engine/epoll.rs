//! The epoll engine's relay thread: a level-triggered `epoll` set holding the sockets of many
//! calls; per ready socket one `recvfrom` (more queued come back next round) and the pump's
//! `sendto`. The sockets enter the set from the thread that starts a session
//! (`Registrar::Epoll`), before its `Add` is queued.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rustix::event::epoll;

use super::session::{Direct, Relayed};
use super::{Command, HOLD_TICK};

/// Events taken per `epoll_wait`.
const EVENTS: usize = 512;
/// Receive buffer: RTP over a 1500-byte MTU with room to spare; longer datagrams are cut.
const RECV_BUF: usize = super::super::pump::MAX_DATAGRAM;
/// The eventfd's token; sockets have `id << 2 | pump`.
pub(super) const WAKE: u64 = u64::MAX;

/// The relay thread's own state.
pub(super) struct Worker {
    /// Which relay thread: the counter shard it adds to.
    pub(super) index: usize,
    pub(super) epoll: Arc<OwnedFd>,
    pub(super) wake: Arc<File>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) sessions: Arc<AtomicUsize>,
    pub(super) relayed: HashMap<u64, Box<Relayed>>,
    /// Sessions holding back a possible DTMF command: polled every `HOLD_TICK`.
    pub(super) holding: Vec<u64>,
}

impl Worker {
    pub(super) fn run(&mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        let mut buf = vec![0u8; RECV_BUF];
        let tick = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: HOLD_TICK.as_nanos() as _,
        };
        loop {
            events.clear();
            // No timeout unless a session holds DTMF packets back: an idle thread sleeps.
            let timeout = (!self.holding.is_empty()).then_some(&tick);
            if let Err(e) = epoll::wait(
                &*self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout,
            ) {
                if e != rustix::io::Errno::INTR {
                    tracing::error!(error = %e, "media relay epoll_wait failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let mut commands = false;
            for event in &events {
                let data = event.data;
                let token = data.u64();
                if token == WAKE {
                    commands = true;
                    continue;
                }
                let (id, index) = (token >> 2, (token & 3) as usize);
                let Some(session) = self.relayed.get_mut(&id) else {
                    commands = true; // its Add is still in the channel
                    continue;
                };
                if !on_readable(session, id, index, &mut buf, self.index) {
                    let _ = epoll::delete(&*self.epoll, session.socket(index));
                }
                if session.holding() && !self.holding.contains(&id) {
                    self.holding.push(id);
                }
            }
            if commands && !self.commands() {
                return; // the pool failed to start: this thread is not used
            }
            if !self.holding.is_empty() {
                self.poll_held();
            }
        }
    }

    /// Releases the held-back DTMF packets that have waited long enough.
    fn poll_held(&mut self) {
        let now = std::time::Instant::now();
        let relayed = &mut self.relayed;
        self.holding.retain(|id| match relayed.get_mut(id) {
            Some(session) => {
                session.poll_held(*id, now, &mut Direct);
                session.holding()
            }
            None => false,
        });
    }

    /// Reads the command queue; false when it is closed (the thread is not used).
    fn commands(&mut self) -> bool {
        let mut counter = [0u8; 8];
        let _ = (&*self.wake).read(&mut counter); // reset the eventfd
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add(id, mut session)) => {
                    session.apply_control();
                    self.relayed.insert(id, session);
                }
                Ok(Command::Control(id)) => {
                    if let Some(session) = self.relayed.get_mut(&id) {
                        session.apply_control();
                    }
                }
                Ok(Command::Close(id, reply)) => {
                    let Some(mut session) = self.relayed.remove(&id) else {
                        continue;
                    };
                    for socket in session.sockets() {
                        let _ = epoll::delete(&*self.epoll, socket);
                    }
                    session.drain(id, self.index);
                    let reports = session.finish(self.index);
                    self.sessions.fetch_sub(1, Ordering::Relaxed);
                    if let Some(reply) = reply {
                        let _ = reply.send(reports);
                    }
                }
                Ok(Command::Snapshot(id, reply)) => {
                    if let Some(session) = self.relayed.get(&id) {
                        let _ = reply.send(session.snapshot());
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }
}

/// Pump `index`'s socket is readable: one datagram (level-triggered: more come next round),
/// counted in relay thread `thread`'s shard. Returns false when the socket is broken and must
/// leave the epoll set.
fn on_readable(
    session: &mut Relayed,
    id: u64,
    index: usize,
    buf: &mut [u8],
    thread: usize,
) -> bool {
    match session.socket(index).recv_from(buf) {
        Ok((len, source)) => {
            let fate = session.on_received(id, index, &buf[..len], source, &mut Direct);
            session.count(thread, index, fate);
            true
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            true
        }
        Err(e) => session.recv_error(index, &e),
    }
}
