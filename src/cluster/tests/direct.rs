//! Admission's own connections (`direct.rs`) against a scripted server (what it is sent, what
//! it answers, when it breaks) and against the real Redis (a database other than 0, a late
//! answer never taken for the next admission's).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::cluster::direct::{Direct, Taken, MAX_OPEN};
use crate::cluster::{ClusterError, Fallback};

/// One command as the server reads it (RESP array of bulk strings), its words joined by spaces.
async fn command(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    r.read_line(&mut line).await.ok()?;
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut words = Vec::new();
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).await.ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut word = vec![0u8; len + 2];
        r.read_exact(&mut word).await.ok()?;
        word.truncate(len);
        words.push(String::from_utf8(word).ok()?);
    }
    Some(words.join(" "))
}

/// A server on one connection: answers each command it reads with the next answer given, and
/// reports the commands it read (until the answers run out or the client goes away).
async fn scripted(answers: Vec<Vec<u8>>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(stream);
        let mut seen = Vec::new();
        for answer in answers {
            let Some(cmd) = command(&mut r).await else {
                break;
            };
            seen.push(cmd);
            if r.get_mut().write_all(&answer).await.is_err() {
                break;
            }
        }
        seen
    });
    (format!("{}:{}", addr.ip(), addr.port()), server)
}

fn direct(url: &str) -> Direct {
    Direct::of(&redis::Client::open(url).unwrap()).unwrap()
}

fn taken(d: &Direct) -> Taken {
    d.take().expect("a free connection")
}

#[test]
fn at_most_max_open_connections_then_the_manager() {
    let d = direct("redis://127.0.0.1:1/0");
    let held: Vec<Taken> = (0..MAX_OPEN).map(|_| taken(&d)).collect();
    assert!(d.take().is_none(), "the {}th is refused", MAX_OPEN + 1);
    drop(held);
    assert!(d.take().is_some(), "free again once dropped");
}

#[test]
fn tls_and_unix_socket_urls_keep_to_the_manager() {
    let unix = redis::Client::open("redis+unix:///tmp/redis.sock").unwrap();
    assert!(Direct::of(&unix).is_none());
}

#[tokio::test]
async fn it_authenticates_selects_the_database_and_reloads_a_lost_script() {
    let script = redis::Script::new("return 7");
    let sha = script.get_hash().to_string();
    let (addr, server) = scripted(vec![
        b"+OK\r\n".to_vec(),
        b"+OK\r\n".to_vec(),
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n".to_vec(),
        format!("$40\r\n{sha}\r\n").into_bytes(),
        b":7\r\n".to_vec(),
        b":8\r\n".to_vec(),
    ])
    .await;
    let d = direct(&format!("redis://tg:secret@{addr}/3"));
    let inv = script.prepare_invoke();
    let seven: i64 = d.invoke(taken(&d), &inv).await.unwrap();
    assert_eq!(seven, 7);
    // The same connection, kept: no second AUTH or SELECT.
    let eight: i64 = d.invoke(taken(&d), &inv).await.unwrap();
    assert_eq!(eight, 8);
    drop(d);
    let seen = server.await.unwrap();
    let evalsha = format!("EVALSHA {sha} 0");
    assert_eq!(
        seen,
        [
            "AUTH tg secret",
            "SELECT 3",
            &evalsha,
            "SCRIPT LOAD return 7",
            &evalsha,
            &evalsha,
        ]
    );
}

#[tokio::test]
async fn an_oversized_or_broken_answer_fails_and_the_connection_is_closed() {
    let script = redis::Script::new("return 1");
    let mut huge = b"$1000000\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1_000_000));
    huge.extend(b"\r\n");
    for answer in [huge, b"?garbage\r\n".to_vec()] {
        let (addr, server) = scripted(vec![answer]).await;
        let d = direct(&format!("redis://{addr}/0"));
        let answer: Result<i64, _> = d.invoke(taken(&d), &script.prepare_invoke()).await;
        assert!(matches!(answer, Err(ClusterError::Redis(_))), "{answer:?}");
        // Nothing kept: the next request opens a new connection (none left to reuse).
        assert!(matches!(d.take(), Some(Taken::Open(_))));
        server.abort();
    }
}

#[tokio::test]
async fn a_server_that_is_gone_fails_the_request_with_its_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let d = direct(&format!("redis://{addr}/0"));
    let answer: Result<i64, _> = d
        .invoke(taken(&d), &redis::Script::new("return 1").prepare_invoke())
        .await;
    match answer {
        Err(e @ ClusterError::Connect { .. }) => {
            assert!(e.to_string().contains(&addr.to_string()), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admissions_use_the_urls_database() {
    if !redis_here("direct_database").await {
        return;
    }
    let p = Prefix::new();
    let opts = ClusterOptions {
        redis_url: "redis://127.0.0.1:6379/2".into(),
        ..options(&p, "a")
    };
    let a = node(opts).await;
    let lease = a.adm.admit(&open_request("t1", "8610")).await.unwrap();
    let client = redis::Client::open("redis://127.0.0.1:6379/2").unwrap();
    let mut db2 = client.get_multiplexed_async_connection().await.unwrap();
    let leases: i64 = redis::cmd("HLEN")
        .arg(p.key("node:a:leases"))
        .query_async(&mut db2)
        .await
        .unwrap();
    assert_eq!(leases, 1);
    let mut db0 = raw().await;
    let in_db0: i64 = redis::cmd("EXISTS")
        .arg(p.key("node:a:leases"))
        .query_async(&mut db0)
        .await
        .unwrap();
    assert_eq!(in_db0, 0);
    drop(lease);
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.adm.held_per_trunk().is_empty()
        })
        .await
    );
    let _: i64 = redis::cmd("DEL")
        .arg(p.key("nodes"))
        .arg(p.key("node:a:leases"))
        .arg(p.key("node:a:load"))
        .arg(p.key("rate:t1"))
        .query_async(&mut db2)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_is_never_taken_for_the_next_admissions() {
    if !redis_here("late_answer").await {
        return;
    }
    let p = Prefix::new();
    let relay = super::down::relay().await;
    let opts = ClusterOptions {
        redis_url: relay.url.clone(),
        op_timeout: Duration::from_millis(300),
        ..options(&p, "a")
    };
    let a = node(opts).await;
    // Refused (a cap of 0), and its answer held past the timeout.
    let mut refused = open_request("t1", "8610");
    refused.caps.max_concurrent = 0;
    relay.held.store(true, Ordering::Relaxed);
    let answer = a.adm.admit(&refused).await;
    assert_eq!(answer.unwrap_err(), Refused::Unavailable(Fallback::Refuse));
    relay.held.store(false, Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(20), || async { a.adm.is_up() }).await);
    // Had the held "refused" answer been read as theirs, these would be refused.
    for i in 0..3 {
        let lease = a.adm.admit(&open_request("t1", "8611")).await.unwrap();
        assert_eq!(lease.line(), "8611", "admission {i}");
    }
    assert!(a.adm.counters().redis_errors.load(Ordering::Relaxed) >= 1);
}
