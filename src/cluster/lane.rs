//! The admission lane: one thread of its own, with a single-threaded Tokio runtime and its own
//! Redis connection, that runs the `admit` scripts and nothing else.
//!
//! Why: on the main runtime an admission's Redis reply waited for a busy worker to poll the
//! I/O driver (tokio does so every 61 tasks, or when it runs out of work) and then for the
//! connection's task to be scheduled: at 500 calls/s with the two cores full, the added p50 was
//! 0.55 ms and the p99 4.6 ms for a script that takes Redis tens of microseconds (bench/README.md,
//! "Cluster overhead"). The lane's thread is idle between admissions, so it sees the reply as
//! soon as the kernel has it; the admission's own task is woken once, when the answer is ready.
//! Heartbeats, releases and reconciliations keep the main connection: an admission never waits
//! behind a batch of releases on the same socket.
//!
//! The thread lives as long as the `Core` that owns the lane: dropping the lane ends it.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::{connection, lock, ClusterError};

pub(super) struct AdmitLane {
    handle: Handle,
    client: redis::Client,
    timeout: Duration,
    conn: Mutex<ConnectionManager>,
    /// Dropped with the lane: the thread's `block_on` returns and its runtime ends.
    _stop: oneshot::Sender<()>,
}

impl AdmitLane {
    /// Start the lane's thread and its (lazy: no I/O yet) connection.
    pub(super) fn start(
        client: &redis::Client,
        timeout: Duration,
        node_id: &str,
    ) -> Result<AdmitLane, ClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClusterError::Lane)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("admit-{node_id}"))
            .spawn(move || {
                // Runs the spawned admissions until the lane is dropped.
                let _ = runtime.block_on(stopped);
            })
            .map_err(ClusterError::Lane)?;
        let conn = Self::connect(&handle, client, timeout)?;
        Ok(AdmitLane {
            handle,
            client: client.clone(),
            timeout,
            conn: Mutex::new(conn),
            _stop: stop,
        })
    }

    /// A connection manager whose tasks (it spawns them when it connects) run on the lane.
    fn connect(
        handle: &Handle,
        client: &redis::Client,
        timeout: Duration,
    ) -> Result<ConnectionManager, ClusterError> {
        let _on_the_lane = handle.enter();
        connection(client, timeout)
    }

    pub(super) fn conn(&self) -> ConnectionManager {
        lock(&self.conn).clone()
    }

    /// A fresh connection, for when the old one may be stuck on a failed connect.
    pub(super) fn renew(&self) {
        if let Ok(conn) = Self::connect(&self.handle, &self.client, self.timeout) {
            *lock(&self.conn) = conn;
        }
    }

    /// Run `work` on the lane and wait for its answer. A lane that is gone (its thread ended)
    /// is an error like Redis's own, never a panic.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, ClusterError>
    where
        F: std::future::Future<Output = Result<T, ClusterError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.handle.spawn(work).await {
            Ok(answer) => answer,
            Err(e) => Err(ClusterError::Answer(format!("admission lane: {e}"))),
        }
    }
}
