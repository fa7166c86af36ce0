//! The relay threads: a few plain threads (one per core, at most `MAX_THREADS`), each serving
//! the sockets of many calls, and the pumps of those calls as plain state. Two engines run
//! them, chosen by `[media] engine`:
//! - `epoll` (`epoll.rs`): a level-triggered `epoll` set per thread; per packet one `recvfrom`
//!   and one `sendto`;
//! - `io_uring` (`uring.rs`): a ring per thread with a multishot `recvmsg` armed on every socket
//!   (provided buffers), the round's sends queued and submitted together with the wait for the
//!   next completions: one system call per round instead of two or three per packet. When the
//!   ring cannot be set up (an old kernel, io_uring disabled or filtered), the epoll engine
//!   runs instead (logged).
//!
//! Why threads, not one tokio task per socket: at 50 packets a second per socket nothing
//! batches, so every packet cost a reactor wake-up, a task wake and poll (often a cross-worker
//! unpark), a `recvfrom` and a second one returning `EAGAIN`, then the `sendto`.
//!
//! A session is placed on the least busy thread and stays there: its four pumps (RTP and RTCP of
//! each leg) and sockets live on that thread only (`session::Relayed`), so calls share no lock
//! and a pump needs no synchronisation. The owner talks to the thread through a channel of
//! `Command`s (start, control changed, close), rare events of the signalling, with an `eventfd`
//! to wake the thread for the commands somebody awaits (see `RelayThread::send`). Control itself
//! stays in the session's `watch` channel: the thread applies it when it reads the queue, and
//! before a packet whenever its version moved, so an `update_remote` is applied before the
//! packets after it. The threads live as long as the process.

mod epoll;
mod session;
mod uring;
mod uring_buffers;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use rustix::event::{eventfd, EventfdFlags};
use tokio::sync::oneshot;

pub use crate::config::MediaEngine;

use super::pump::Kind;
use super::{Leg, MediaError};
use session::pump_index;
pub(crate) use session::{Relayed, Reports};

/// Upper bound on relay threads, whatever the core count (one counter shard each).
const MAX_THREADS: usize = super::counters::SHARDS;
/// How often a thread wakes while some session holds back a possible DTMF command
/// (`dtmf_command::HOLD_TIMEOUT` is kept to within this).
const HOLD_TICK: Duration = Duration::from_millis(20);

enum Command {
    Add(u64, Box<Relayed>),
    /// The session's control changed: apply it when the queue is next read (a packet of the
    /// session applies it first anyway: `Relayed::on_received`).
    Control(u64),
    /// Stop relaying; the figures go to `reply` (none when the session was dropped).
    Close(u64, Option<oneshot::Sender<Reports>>),
    /// The figures so far, relaying going on (a session already closed: `reply` is dropped).
    Snapshot(u64, oneshot::Sender<Reports>),
}

/// How a session's sockets reach its thread's set of watched sockets.
enum Registrar {
    /// Added to the epoll set by the thread that starts the session, before its `Add`.
    Epoll(Arc<OwnedFd>),
    /// The ring's owner arms the receives when it reads the `Add` (so `Add` wakes it).
    Ring,
}

struct RelayThread {
    commands: mpsc::Sender<Command>,
    wake: Arc<File>,
    registrar: Registrar,
    sessions: Arc<AtomicUsize>,
}

impl RelayThread {
    /// Queues a command, and wakes the thread only for those somebody waits on (`Close`,
    /// `Snapshot`), and for `Add` on a ring. On epoll, `Add` and `Control` are read when the
    /// thread next looks at its queue, which is always soon enough: the session's sockets are in
    /// the epoll set before its `Add` is sent, and a packet of a session the thread does not
    /// know yet, or one whose control moved (`Relayed::on_received` checks it), is handled only
    /// after the queue has been read. A call cost five or six eventfd writes and relay-thread
    /// wake-ups, each a context switch; now one or two (issue 16).
    fn send(&self, command: Command) {
        let wake = match command {
            Command::Close(..) | Command::Snapshot(..) => true,
            Command::Add(..) => matches!(self.registrar, Registrar::Ring),
            Command::Control(..) => false,
        };
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

/// The relay threads of one engine.
struct Pool {
    /// The engine that runs (epoll when io_uring was asked for and could not be set up).
    engine: MediaEngine,
    threads: Vec<RelayThread>,
    next_id: AtomicU64,
}

/// One pool per engine, started when first needed; the gateway uses the one `start_relay`
/// chose (`SELECTED`), tests may ask for either (`SessionConfig::engine`).
static POOLS: [OnceLock<Result<Pool, String>>; 2] = [OnceLock::new(), OnceLock::new()];
static SELECTED: OnceLock<MediaEngine> = OnceLock::new();

/// Starts the relay threads of `engine` now rather than at the first session (the gateway does
/// it at start, so that their file descriptors are there before any call), and makes it the
/// engine of sessions that name none. Returns the engine that runs: `Epoll` when `IoUring`
/// could not be set up. Idempotent; the first choice stays.
pub fn start_relay(engine: MediaEngine) -> Result<MediaEngine, MediaError> {
    let chosen = *SELECTED.get_or_init(|| engine);
    if chosen != engine {
        tracing::warn!(
            asked = engine.as_str(),
            running = chosen.as_str(),
            "media engine already chosen in this process; keeping it"
        );
    }
    pool(chosen).map(|p| p.engine)
}

fn pool(engine: MediaEngine) -> Result<&'static Pool, MediaError> {
    let slot = match engine {
        MediaEngine::Epoll => &POOLS[0],
        MediaEngine::IoUring => &POOLS[1],
    };
    slot.get_or_init(|| Pool::start(engine).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| MediaError::Runtime(io::Error::other(format!("media relay threads: {e}"))))
}

impl Pool {
    fn start(engine: MediaEngine) -> io::Result<Pool> {
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS);
        if engine == MediaEngine::IoUring {
            match Pool::start_threads(n, MediaEngine::IoUring) {
                Ok(pool) => return Ok(pool),
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring media engine unavailable; the epoll engine relays instead");
                }
            }
        }
        Pool::start_threads(n, MediaEngine::Epoll)
    }

    fn start_threads(n: usize, engine: MediaEngine) -> io::Result<Pool> {
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let wake = Arc::new(File::from(eventfd(
                0,
                EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
            )?));
            let (commands, rx) = mpsc::channel();
            let sessions = Arc::new(AtomicUsize::new(0));
            let name = format!("media-relay-{i}");
            let registrar = match engine {
                MediaEngine::Epoll => {
                    let epoll = Arc::new(rustix::event::epoll::create(
                        rustix::event::epoll::CreateFlags::CLOEXEC,
                    )?);
                    rustix::event::epoll::add(
                        &*epoll,
                        &*wake,
                        rustix::event::epoll::EventData::new_u64(epoll::WAKE),
                        rustix::event::epoll::EventFlags::IN,
                    )?;
                    let mut worker = epoll::Worker {
                        index: i,
                        epoll: Arc::clone(&epoll),
                        wake: Arc::clone(&wake),
                        commands: rx,
                        sessions: Arc::clone(&sessions),
                        relayed: HashMap::new(),
                        holding: Vec::new(),
                    };
                    std::thread::Builder::new()
                        .name(name)
                        .spawn(move || worker.run())?;
                    Registrar::Epoll(epoll)
                }
                MediaEngine::IoUring => {
                    // The ring is made on its own thread (its single issuer); the thread says
                    // whether it could before the pool counts on it. Threads started before a
                    // failure end when their command channel closes (`RelayThread::drop`).
                    let (ready_tx, ready) = mpsc::channel();
                    let (wake2, sessions2) = (Arc::clone(&wake), Arc::clone(&sessions));
                    std::thread::Builder::new().name(name).spawn(
                        move || match uring::Worker::new(i, wake2, rx, sessions2) {
                            Ok(mut worker) => {
                                let _ = ready_tx.send(Ok(()));
                                worker.run();
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                            }
                        },
                    )?;
                    ready
                        .recv()
                        .map_err(|_| io::Error::other("relay thread ended at start"))??;
                    Registrar::Ring
                }
            };
            threads.push(RelayThread {
                commands,
                wake,
                registrar,
                sessions,
            });
        }
        tracing::info!(
            threads = n,
            engine = engine.as_str(),
            "media relay threads started"
        );
        Ok(Pool {
            engine,
            threads,
            next_id: AtomicU64::new(0),
        })
    }
}

impl Drop for RelayThread {
    /// Only the threads of a pool that failed to start all of them are dropped (the pools live
    /// as long as the process): the thread sees its channel closed once woken, and ends.
    fn drop(&mut self) {
        drop(std::mem::replace(&mut self.commands, mpsc::channel().0));
        let _ = (&*self.wake).write(&1u64.to_ne_bytes());
    }
}

/// A session's place on its relay thread. Dropping it without `close` stops the relaying too.
#[derive(Debug)]
pub(crate) struct RelayHandle {
    pool: &'static Pool,
    thread: usize,
    id: u64,
    open: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.engine.as_str())
    }
}

impl RelayHandle {
    /// Hands a session to the least busy relay thread of `engine` (none: the one `start_relay`
    /// chose, or the default) and, on epoll, puts its sockets in that thread's epoll set.
    pub(crate) fn start(
        session: Relayed,
        engine: Option<MediaEngine>,
    ) -> Result<RelayHandle, MediaError> {
        let engine = engine
            .or_else(|| SELECTED.get().copied())
            .unwrap_or_default();
        let pool = pool(engine)?;
        let (index, thread) = pool
            .threads
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.sessions.load(Ordering::Relaxed))
            .ok_or_else(|| MediaError::Runtime(io::Error::other("no media relay thread")))?;
        let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
        if let Registrar::Epoll(epoll) = &thread.registrar {
            register(epoll, &session, id)?;
        }
        thread.sessions.fetch_add(1, Ordering::Relaxed);
        // On epoll, packets may be reported before the thread has read this: it then reads its
        // commands.
        thread.send(Command::Add(id, Box::new(session)));
        Ok(RelayHandle {
            pool,
            thread: index,
            id,
            open: true,
        })
    }

    fn thread(&self) -> Option<&'static RelayThread> {
        self.pool.threads.get(self.thread)
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
            pool: self.pool,
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

/// Puts a session's four sockets in an epoll set (all or none).
fn register(epoll: &OwnedFd, session: &Relayed, id: u64) -> Result<(), MediaError> {
    use rustix::event::epoll as ep;
    let mut registered = Vec::with_capacity(4);
    for leg in Leg::BOTH {
        for kind in Kind::BOTH {
            let index = pump_index(leg, kind);
            let socket = session.socket(index);
            let token = id << 2 | index as u64;
            if let Err(e) = ep::add(
                epoll,
                socket,
                ep::EventData::new_u64(token),
                ep::EventFlags::IN,
            ) {
                for socket in registered {
                    let _ = ep::delete(epoll, socket);
                }
                return Err(MediaError::Runtime(e.into()));
            }
            registered.push(socket);
        }
    }
    Ok(())
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
/// costs the relay thread one command between two rounds, nothing per packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayProbe {
    pool: &'static Pool,
    thread: usize,
    id: u64,
}

impl RelayProbe {
    /// The figures so far; the receiver fails when the session has closed meanwhile.
    pub(crate) fn snapshot(&self) -> oneshot::Receiver<Reports> {
        let (reply, rx) = oneshot::channel();
        if let Some(thread) = self.pool.threads.get(self.thread) {
            thread.send(Command::Snapshot(self.id, reply));
        }
        rx
    }
}
