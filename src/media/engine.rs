//! The relay threads: a few plain threads (one per core, at most `MAX_THREADS`), each with its
//! own level-triggered `epoll` set holding the sockets of many calls, and the pumps of those
//! calls as plain state.
//!
//! Why not one tokio task per socket: at 50 packets a second per socket nothing batches, so every
//! packet cost a reactor wake-up, a task wake and poll (often a cross-worker unpark), a `recvfrom`
//! and a second one returning `EAGAIN`, then the `sendto`. Here one `epoll_wait` returns the
//! sockets of every call that has a packet waiting, and each costs one `recvfrom` (level-
//! triggered: a socket with more queued comes back in the next round) and one `sendto`; a busy
//! thread does not sleep between packets at all.
//!
//! A session is placed on the least busy thread and stays there: its four pumps (RTP and RTCP of
//! each leg) and sockets live on that thread only, so calls share no lock and a pump needs no
//! synchronisation. The owner talks to the thread through a channel of `Command`s (start, control
//! changed, close), rare events of the signalling, with an `eventfd` to wake the thread for the
//! commands somebody awaits (close, snapshot; see `RelayThread::send`). Control itself stays in
//! the session's `watch` channel: the thread applies it when it reads the queue, and before a
//! packet whenever its version moved, so an `update_remote` is applied before the packets after it.
//! The threads live as long as the process.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use rustix::event::{epoll, eventfd, EventfdFlags};
use tokio::sync::{oneshot, watch};

use super::counters::MediaCounters;
use super::pump::{Kind, State};
use super::pump_report::PumpReport;
use super::relay::{Control, LegSockets};
use super::{Leg, MediaError};

/// Upper bound on relay threads, whatever the core count (one counter shard each).
const MAX_THREADS: usize = super::counters::SHARDS;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 512;
/// Receive buffer: RTP over a 1500-byte MTU with room to spare; longer datagrams are cut.
const RECV_BUF: usize = 2048;
/// Receive errors in a row after which the socket is taken as broken.
const MAX_RECV_ERRORS: u32 = 100;
/// The eventfd's token; sockets have `id << 2 | pump`.
const WAKE: u64 = u64::MAX;
/// How often a thread wakes while some session holds back a possible DTMF command
/// (`dtmf_command::HOLD_TIMEOUT` is kept to within this).
const HOLD_TICK: Duration = Duration::from_millis(20);

/// What a closed session hands back (or a snapshot gives): each pump's figures.
pub(crate) type Reports = Vec<(Leg, Kind, PumpReport)>;

/// Where pump (leg, kind) sits in a session's array, and in the low bits of its token.
fn pump_index(leg: Leg, kind: Kind) -> usize {
    kind.index() * 2 + leg.index()
}

/// A session as its relay thread holds it.
pub(crate) struct Relayed {
    /// Inside, outside.
    sockets: [LegSockets; 2],
    control: watch::Receiver<Control>,
    /// By `pump_index`.
    pumps: [State; 4],
    errors: [u32; 4],
    /// The gateway's media counters (none in tests of the relay alone).
    counters: Option<Arc<MediaCounters>>,
}

impl Relayed {
    pub(crate) fn new(
        sockets: [LegSockets; 2],
        control: watch::Receiver<Control>,
        pumps: [State; 4],
        counters: Option<Arc<MediaCounters>>,
    ) -> Relayed {
        debug_assert!(pumps
            .iter()
            .enumerate()
            .all(|(i, p)| pump_index(p.leg(), p.kind()) == i));
        Relayed {
            sockets,
            control,
            pumps,
            errors: [0; 4],
            counters,
        }
    }

    fn apply_control(&mut self) {
        let control = self.control.borrow_and_update();
        for pump in &mut self.pumps {
            pump.apply(&control);
        }
    }

    /// Pump `index`'s socket is readable: one datagram (level-triggered: more come next round),
    /// counted in relay thread `thread`'s shard. Returns false when the socket is broken and
    /// must leave the epoll set.
    fn on_readable(&mut self, index: usize, buf: &mut [u8], thread: usize) -> bool {
        let pump = &self.pumps[index];
        let (leg, kind) = (pump.leg(), pump.kind());
        let own = self.sockets[leg.index()].socket(kind);
        match own.recv_from(buf) {
            Ok((len, source)) => {
                self.errors[index] = 0;
                if self.control.has_changed().unwrap_or(false) {
                    self.apply_control();
                }
                let peer = self.sockets[leg.other().index()].socket(kind);
                let fate = self.pumps[index].on_datagram(&buf[..len], source, peer);
                if let Some(counters) = &self.counters {
                    counters.count(thread, kind, leg, fate);
                }
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
            Err(e) => {
                self.errors[index] += 1;
                let span = self.pumps[index].span();
                tracing::debug!(parent: span, leg = leg.as_str(), kind = kind.as_str(), error = %e, "media receive error");
                if self.errors[index] >= MAX_RECV_ERRORS {
                    tracing::error!(parent: span, leg = leg.as_str(), kind = kind.as_str(), error = %e, "media socket broken; relay stopped");
                    return false;
                }
                true
            }
        }
    }

    /// Whether the inside RTP pump holds back a possible DTMF command (the thread then wakes
    /// to release it on time).
    fn holding(&self) -> bool {
        self.pumps[pump_index(Leg::Inside, Kind::Rtp)].holding()
    }

    /// Releases held-back DTMF packets whose time is up.
    fn poll_held(&mut self, now: std::time::Instant) {
        let peer = self.sockets[Leg::Outside.index()].socket(Kind::Rtp);
        self.pumps[pump_index(Leg::Inside, Kind::Rtp)].poll(now, peer);
    }

    /// The figures so far; relaying goes on.
    fn snapshot(&self) -> Reports {
        self.pumps
            .iter()
            .map(|p| (p.leg(), p.kind(), p.snapshot()))
            .collect()
    }

    fn finish(self, thread: usize) -> Reports {
        let Relayed {
            sockets,
            pumps,
            counters,
            ..
        } = self;
        let reports: Reports = pumps
            .into_iter()
            .map(|p| (p.leg(), p.kind(), p.finish()))
            .collect();
        drop(sockets); // the ports are back in the pool before the owner hears of it
        if let Some(counters) = counters {
            // Loss is known for good only at the end (a late packet may still fill a gap).
            for (leg, kind, report) in &reports {
                if *kind == Kind::Rtp {
                    counters.count_lost(thread, *leg, report.lost());
                }
            }
        }
        reports
    }
}

enum Command {
    Add(u64, Box<Relayed>),
    /// The session's control changed: apply it when the queue is next read (a packet of the
    /// session applies it first anyway: `Relayed::on_readable`).
    Control(u64),
    /// Stop relaying; the figures go to `reply` (none when the session was dropped).
    Close(u64, Option<oneshot::Sender<Reports>>),
    /// The figures so far, relaying going on (a session already closed: `reply` is dropped).
    Snapshot(u64, oneshot::Sender<Reports>),
}

struct RelayThread {
    commands: mpsc::Sender<Command>,
    wake: Arc<File>,
    epoll: Arc<OwnedFd>,
    sessions: Arc<AtomicUsize>,
}

impl RelayThread {
    /// Queues a command, and wakes the thread only for those somebody waits on (`Close`,
    /// `Snapshot`). `Add` and `Control` are read when the thread next looks at its queue, which
    /// is always soon enough: the session's sockets are in the epoll set before its `Add` is
    /// sent, and a packet of a session the thread does not know yet, or one whose control moved
    /// (`Relayed::on_readable` checks it), is handled only after the queue has been read. A call
    /// cost five or six eventfd writes and relay-thread wake-ups, each a context switch; now one,
    /// at its close (issue 16).
    fn send(&self, command: Command) {
        let wake = matches!(command, Command::Close(..) | Command::Snapshot(..));
        if self.commands.send(command).is_err() {
            tracing::error!("media relay thread gone");
            return;
        }
        if wake {
            if let Err(e) = (&*self.wake).write(&1u64.to_ne_bytes()) {
                tracing::error!(error = %e, "cannot wake the media relay thread");
            }
        }
    }
}

struct Engine {
    threads: Vec<RelayThread>,
    next_id: AtomicU64,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// Starts the relay threads now rather than at the first session (the gateway does it at start,
/// so that their file descriptors are there before any call). Idempotent.
pub fn start_relay() -> Result<(), MediaError> {
    engine().map(|_| ())
}

fn engine() -> Result<&'static Engine, MediaError> {
    ENGINE
        .get_or_init(|| Engine::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| MediaError::Runtime(io::Error::other(format!("media relay threads: {e}"))))
}

impl Engine {
    fn start() -> io::Result<Engine> {
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let epoll = Arc::new(epoll::create(epoll::CreateFlags::CLOEXEC)?);
            let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            epoll::add(
                &*epoll,
                &wake,
                epoll::EventData::new_u64(WAKE),
                epoll::EventFlags::IN,
            )?;
            let wake = Arc::new(File::from(wake));
            let (commands, rx) = mpsc::channel();
            let sessions = Arc::new(AtomicUsize::new(0));
            let mut worker = Worker {
                index: i,
                epoll: Arc::clone(&epoll),
                wake: Arc::clone(&wake),
                commands: rx,
                sessions: Arc::clone(&sessions),
                relayed: HashMap::new(),
                holding: Vec::new(),
            };
            std::thread::Builder::new()
                .name(format!("media-relay-{i}"))
                .spawn(move || worker.run())?;
            threads.push(RelayThread {
                commands,
                wake,
                epoll,
                sessions,
            });
        }
        tracing::debug!(threads = n, "media relay threads started");
        Ok(Engine {
            threads,
            next_id: AtomicU64::new(0),
        })
    }
}

/// A session's place on its relay thread. Dropping it without `close` stops the relaying too.
#[derive(Debug)]
pub(crate) struct RelayHandle {
    thread: usize,
    id: u64,
    open: bool,
}

impl RelayHandle {
    /// Hands a session to the least busy relay thread and puts its sockets in that thread's
    /// epoll set.
    pub(crate) fn start(session: Relayed) -> Result<RelayHandle, MediaError> {
        let engine = engine()?;
        let (index, thread) = engine
            .threads
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.sessions.load(Ordering::Relaxed))
            .ok_or_else(|| MediaError::Runtime(io::Error::other("no media relay thread")))?;
        let id = engine.next_id.fetch_add(1, Ordering::Relaxed);
        let mut registered = Vec::with_capacity(4);
        let mut failed = None;
        'register: for leg in Leg::BOTH {
            for kind in Kind::BOTH {
                let socket = session.sockets[leg.index()].socket(kind);
                let token = id << 2 | pump_index(leg, kind) as u64;
                match epoll::add(
                    &*thread.epoll,
                    socket,
                    epoll::EventData::new_u64(token),
                    epoll::EventFlags::IN,
                ) {
                    Ok(()) => registered.push(socket),
                    Err(e) => {
                        failed = Some(e);
                        break 'register;
                    }
                }
            }
        }
        if let Some(e) = failed {
            for socket in registered {
                let _ = epoll::delete(&*thread.epoll, socket);
            }
            return Err(MediaError::Runtime(e.into()));
        }
        thread.sessions.fetch_add(1, Ordering::Relaxed);
        // Packets may be reported before the thread has read this: it then reads its commands.
        thread.send(Command::Add(id, Box::new(session)));
        Ok(RelayHandle {
            thread: index,
            id,
            open: true,
        })
    }

    fn thread(&self) -> Option<&'static RelayThread> {
        ENGINE.get()?.as_ref().ok()?.threads.get(self.thread)
    }

    /// The session's control changed.
    pub(crate) fn control_changed(&self) {
        if let Some(thread) = self.thread() {
            thread.send(Command::Control(self.id));
        }
    }

    /// A handle that asks for the session's figures while it runs.
    pub(crate) fn probe(&self) -> RelayProbe {
        RelayProbe {
            thread: self.thread,
            id: self.id,
        }
    }

    /// Stop relaying; the figures come on the receiver once the sockets are closed.
    pub(crate) fn close(mut self) -> oneshot::Receiver<Reports> {
        let (reply, rx) = oneshot::channel();
        self.open = false;
        if let Some(thread) = self.thread() {
            thread.send(Command::Close(self.id, Some(reply)));
        }
        rx
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if self.open {
            if let Some(thread) = self.thread() {
                thread.send(Command::Close(self.id, None));
            }
        }
    }
}

/// Where a session runs, for asking its figures from elsewhere (a live-call listing). Asking
/// costs the relay thread one command between two `epoll_wait`s, nothing per packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayProbe {
    thread: usize,
    id: u64,
}

impl RelayProbe {
    /// The figures so far; the receiver fails when the session has closed meanwhile.
    pub(crate) fn snapshot(&self) -> oneshot::Receiver<Reports> {
        let (reply, rx) = oneshot::channel();
        if let Some(thread) = ENGINE
            .get()
            .and_then(|e| e.as_ref().ok())
            .and_then(|e| e.threads.get(self.thread))
        {
            thread.send(Command::Snapshot(self.id, reply));
        }
        rx
    }
}

/// The relay thread's own state.
struct Worker {
    /// Which relay thread: the counter shard it adds to.
    index: usize,
    epoll: Arc<OwnedFd>,
    wake: Arc<File>,
    commands: mpsc::Receiver<Command>,
    sessions: Arc<AtomicUsize>,
    relayed: HashMap<u64, Box<Relayed>>,
    /// Sessions holding back a possible DTMF command: polled every `HOLD_TICK`.
    holding: Vec<u64>,
}

impl Worker {
    fn run(&mut self) {
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
                if !session.on_readable(index, &mut buf, self.index) {
                    let pump = &session.pumps[index];
                    let socket = session.sockets[pump.leg().index()].socket(pump.kind());
                    let _ = epoll::delete(&*self.epoll, socket);
                }
                if session.holding() && !self.holding.contains(&id) {
                    self.holding.push(id);
                }
            }
            if commands {
                self.commands();
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
                session.poll_held(now);
                session.holding()
            }
            None => false,
        });
    }

    fn commands(&mut self) {
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
                    let Some(session) = self.relayed.remove(&id) else {
                        continue;
                    };
                    for sockets in &session.sockets {
                        for kind in Kind::BOTH {
                            let _ = epoll::delete(&*self.epoll, sockets.socket(kind));
                        }
                    }
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
                Err(_) => break,
            }
        }
    }
}
