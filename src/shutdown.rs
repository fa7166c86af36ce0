//! Shutdown signalling, as in mini-redis: one trigger, many listeners that can each wait for it.

use tokio::sync::watch;

/// Held by whoever decides when to stop.
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Held by every task that must stop; clone freely.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Wait until shutdown is triggered (or the trigger is dropped).
    pub async fn recv(&mut self) {
        let _ = self.rx.wait_for(|v| *v).await;
    }
}
