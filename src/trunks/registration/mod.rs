//! Registration with the carriers that require it (`[[trunks]] register = true`): one binding
//! task per such trunk (`binding.rs`), kept in step with the trunks in force (a trunk added,
//! changed or removed at run time starts, restarts or stops its binding within a second), its
//! state in `Policy::registrations` (admission, `/metrics`, `/healthz`). At a clean stop every
//! binding is removed (`Expires: 0`) while the SIP interfaces are still up.
//!
//! Here, in `trunks`, because it is the trunks' business and it needs what lies below: the
//! transaction layer (`sip`) to send, the trunks and the state table (`policy`).

mod binding;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Credentials, Registration, TransportKind, TrunkConfig};
use crate::policy::Policy;
use crate::shutdown::Shutdown;
use crate::sip::transaction::TransactionLayer;
use crate::sip::transport::{Peer, Proto};

/// How often the trunks in force are compared with the bindings running.
const RESYNC: Duration = Duration::from_secs(1);

/// What a binding is started from: when it changes, the binding restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    reg: Registration,
    creds: Option<Arc<Credentials>>,
    proto: Proto,
}

fn wanted(t: &TrunkConfig) -> Option<Wanted> {
    Some(Wanted {
        reg: t.registration()?,
        creds: t.credentials(),
        proto: match t.carrier_transport {
            TransportKind::Udp => Proto::Udp,
            TransportKind::Tcp => Proto::Tcp,
            TransportKind::Tls => Proto::Tls,
        },
    })
}

struct Running {
    wanted: Wanted,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The running registrations; `stop` removes every binding.
pub struct RegistrationClient {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RegistrationClient {
    /// Starts keeping the trunks' registrations; `local` is the outside interface's address.
    pub fn spawn(
        layer: TransactionLayer,
        local: SocketAddr,
        policy: Arc<Policy>,
        shutdown: Shutdown,
    ) -> RegistrationClient {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(manage(layer, local, policy, stop_rx, shutdown));
        RegistrationClient { stop, task }
    }

    /// Unregisters every trunk (each waits for its registrar's answer a few seconds at most)
    /// and stops. Before the SIP interfaces close: the answers come back on them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let limit = binding::UNREGISTER_WAIT + Duration::from_secs(2);
        if tokio::time::timeout(limit, self.task).await.is_err() {
            tracing::warn!("registrations did not stop in time");
        }
    }
}

async fn manage(
    layer: TransactionLayer,
    local: SocketAddr,
    policy: Arc<Policy>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: Shutdown,
) {
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|v| *v) => break,
            _ = shutdown.recv() => break,
        }
        let want: HashMap<String, Wanted> = policy
            .trunks()
            .iter()
            .filter_map(|t| Some((t.name.clone(), wanted(t)?)))
            .collect();
        let gone: Vec<String> = running
            .iter()
            .filter(|(name, r)| want.get(*name) != Some(&r.wanted))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(r) = running.remove(&name) {
                tracing::info!(trunk = %name, "registration stopped (trunk changed or removed)");
                finish(r).await;
                if !want.contains_key(&name) {
                    policy.registrations().forget(&name);
                }
            }
        }
        for (name, w) in want {
            if running.contains_key(&name) {
                continue;
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let b = binding::Binding {
                trunk: name.clone(),
                reg: w.reg.clone(),
                creds: w.creds.clone(),
                peer: Peer {
                    addr: w.reg.registrar,
                    proto: w.proto,
                },
                local,
                layer: layer.clone(),
                state: policy.registrations().clone(),
            };
            tracing::info!(trunk = %name, registrar = %w.reg.registrar, aor = %w.reg.aor, "registration started");
            let task = tokio::spawn(b.run(stop_rx));
            running.insert(
                name,
                Running {
                    wanted: w,
                    stop: stop_tx,
                    task,
                },
            );
        }
    }
    // Every binding unregisters at once, in parallel.
    for r in running.values() {
        let _ = r.stop.send(true);
    }
    for (_, r) in running {
        let _ = r.task.await;
    }
}

async fn finish(r: Running) {
    let _ = r.stop.send(true);
    let _ = r.task.await;
}
