//! Admission's own connections to Redis: plain request/response connections, each used by one
//! admission at a time, inline in the admitting task. The request is written and its answer
//! read on the task's own socket, so the answer wakes the admitting task straight from the
//! reactor. Through the multiplexed `ConnectionManager` the request goes over a channel to the
//! manager's driver task, which writes it, reads the answer and hands it back over a oneshot:
//! two more task wake-ups per admission, often on the other worker of a loaded machine
//! (measured in bench/README.md, session 13).
//!
//! A connection is taken from the idle list or opened (at most `MAX_OPEN` at once; beyond
//! that the caller uses the manager), carries one script (`EVALSHA`; on `NOSCRIPT` redis-rs's
//! `ScriptInvocation` loads it and retries on the same connection), and goes back to the idle
//! list only once its answer was read whole. A request that failed, timed out or was cancelled
//! drops its connection with it: no connection is reused with an answer still pending.
//! Answers are bounded (`MAX_ANSWER`); the caller bounds the whole by `op_timeout`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use combine::parser::combinator::AnySendSyncPartialState;
use combine::stream::decoder::Decoder;
use combine::stream::PointerOffset;
use redis::aio::ConnectionLike;
use redis::{Cmd, ConnectionAddr, FromRedisValue, RedisFuture, ScriptInvocation, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{lock, ClusterError};

/// Connections open at once at most: admissions in flight at once beyond it use the manager.
pub(super) const MAX_OPEN: usize = 8;
/// The most bytes one answer may take: an admission's is a few dozen, a script's SHA-1 40.
const MAX_ANSWER: u64 = 64 * 1024;
/// An idle connection unused this long is closed by the worker (`trim_and_warm`) rather than
/// reused: a server's `timeout` may have closed it, and an admission should not find out.
const MAX_IDLE: Duration = Duration::from_secs(10);

/// The parser's state between reads: redis-rs's own RESP parser, streaming.
type RespDecoder = Decoder<AnySendSyncPartialState, PointerOffset<[u8]>>;

/// Where and how admission connects: the `redis_url`'s plain TCP address, database and
/// credentials.
pub(super) struct Direct {
    host: String,
    port: u16,
    db: i64,
    username: Option<String>,
    password: Option<String>,
    idle: Mutex<Vec<Conn>>,
    open: Arc<AtomicUsize>,
}

/// A connection to use: an idle one, or room to open one more (counted already).
pub(super) enum Taken {
    Idle(Conn),
    Open(Opening),
}

/// One connection counted in `open` until dropped.
pub(super) struct Opening(Arc<AtomicUsize>);

impl Drop for Opening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) struct Conn {
    stream: TcpStream,
    decoder: RespDecoder,
    db: i64,
    idle_since: Instant,
    _counted: Opening,
}

impl Direct {
    /// The direct path for `client`'s address, if it is plain TCP (TLS and Unix sockets keep
    /// to the manager).
    pub(super) fn of(client: &redis::Client) -> Option<Direct> {
        let info = client.get_connection_info();
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return None;
        };
        let settings = info.redis_settings();
        Some(Direct {
            host: host.clone(),
            port: *port,
            db: settings.db(),
            username: settings.username().map(str::to_string),
            password: settings.password().map(str::to_string),
            idle: Mutex::new(Vec::new()),
            open: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// A connection for one request; `None` while `MAX_OPEN` are busy (use the manager).
    pub(super) fn take(&self) -> Option<Taken> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Some(Taken::Idle(conn));
        }
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let opening = Opening(Arc::clone(&self.open));
        (open < MAX_OPEN).then_some(Taken::Open(opening))
    }

    /// Run one script on a connection taken with `take` (opened first if need be); the
    /// connection goes back to the idle list only after a whole answer.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        taken: Taken,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        let mut conn = match taken {
            Taken::Idle(conn) => conn,
            Taken::Open(opening) => self.connect(opening).await?,
        };
        let answer = inv.invoke_async(&mut conn).await;
        // A server error (a script's error, NOSCRIPT after the reload) leaves the connection in
        // step; a broken connection fails with an I/O or parse error and is dropped.
        match answer {
            Ok(v) => {
                self.put_back(conn);
                Ok(v)
            }
            Err(e) if matches!(e.kind(), redis::ErrorKind::Server(_)) => {
                self.put_back(conn);
                Err(ClusterError::Redis(e))
            }
            Err(e) => Err(ClusterError::Redis(e)),
        }
    }

    fn put_back(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        lock(&self.idle).push(conn);
    }

    /// Close every idle connection (Redis failed: they may all be dead).
    pub(super) fn clear(&self) {
        lock(&self.idle).clear();
    }

    /// Close the idle connections unused for `MAX_IDLE`, and open one when none is left, so
    /// that the next admission need not connect first. Called by the worker after a beat.
    pub(super) async fn trim_and_warm(&self) -> Result<(), ClusterError> {
        lock(&self.idle).retain(|c| c.idle_since.elapsed() < MAX_IDLE);
        if self.open.load(Ordering::Relaxed) > 0 {
            return Ok(());
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        let conn = self.connect(Opening(Arc::clone(&self.open))).await?;
        self.put_back(conn);
        Ok(())
    }

    async fn connect(&self, counted: Opening) -> Result<Conn, ClusterError> {
        let addr = format!("{}:{}", self.host, self.port);
        let stream =
            TcpStream::connect(addr.as_str())
                .await
                .map_err(|source| ClusterError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
        stream
            .set_nodelay(true)
            .map_err(|source| ClusterError::Connect { addr, source })?;
        let mut conn = Conn {
            stream,
            decoder: Decoder::new(),
            db: self.db,
            idle_since: Instant::now(),
            _counted: counted,
        };
        if let Some(password) = &self.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &self.username {
                auth.arg(user);
            }
            auth.arg(password);
            let () = auth.query_async(&mut conn).await?;
        }
        if self.db != 0 {
            let () = redis::cmd("SELECT")
                .arg(self.db)
                .query_async(&mut conn)
                .await?;
        }
        Ok(conn)
    }
}

impl Conn {
    async fn read(&mut self) -> redis::RedisResult<Value> {
        let mut bounded = (&mut self.stream).take(MAX_ANSWER);
        redis::parse_redis_value_async(&mut self.decoder, &mut bounded).await
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.stream.write_all(&cmd.get_packed_command()).await?;
            self.read().await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.stream
                .write_all(&pipeline.get_packed_pipeline())
                .await?;
            let mut answers = Vec::with_capacity(count);
            for i in 0..offset + count {
                let value = self.read().await?;
                if i >= offset {
                    answers.push(value);
                }
            }
            Ok(answers)
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}
