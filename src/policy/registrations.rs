//! Which trunks hold a registration with their carrier (`register = true`), as the
//! registration client (`trunks::registration`) last found: admission refuses outbound calls on
//! a trunk without one (`trunk_not_registered`), `/metrics` and `/healthz` show it. A plain
//! table written by the client and read with a time: "registered" means a binding the
//! registrar granted that has not expired at `now`, so a client that stops refreshing cannot
//! leave a trunk looking registered.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

/// One trunk's registration as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationState {
    /// When the binding the registrar granted expires; None: no binding.
    pub registered_until: Option<DateTime<Utc>>,
    /// The final status of the last REGISTER (None: no answer, or none sent yet).
    pub last_status: Option<u16>,
    /// Why the last attempt failed (cleared by a success).
    pub last_error: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    /// Failed attempts since the start.
    pub failures: u64,
}

impl RegistrationState {
    pub fn registered(&self, now: DateTime<Utc>) -> bool {
        self.registered_until.is_some_and(|until| now < until)
    }
}

#[derive(Debug, Default)]
pub struct Registrations {
    by_trunk: RwLock<HashMap<String, RegistrationState>>,
}

impl Registrations {
    /// Whether `trunk` holds an unexpired binding at `now`.
    pub fn registered(&self, trunk: &str, now: DateTime<Utc>) -> bool {
        self.by_trunk
            .read()
            .get(trunk)
            .is_some_and(|s| s.registered(now))
    }

    pub fn state(&self, trunk: &str) -> Option<RegistrationState> {
        self.by_trunk.read().get(trunk).cloned()
    }

    /// Every trunk the client keeps, by name.
    pub fn all(&self) -> Vec<(String, RegistrationState)> {
        let mut all: Vec<_> = self
            .by_trunk
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The client keeps `trunk` registered from now on (not registered until it succeeds).
    pub fn track(&self, trunk: &str) {
        self.by_trunk.write().entry(trunk.to_string()).or_default();
    }

    /// The registrar granted a binding until `until`.
    pub fn succeeded(&self, trunk: &str, status: u16, now: DateTime<Utc>, until: DateTime<Utc>) {
        let mut map = self.by_trunk.write();
        let s = map.entry(trunk.to_string()).or_default();
        s.registered_until = Some(until);
        s.last_status = Some(status);
        s.last_error = None;
        s.last_attempt = Some(now);
    }

    /// An attempt failed; a binding granted earlier stays until it expires.
    pub fn failed(&self, trunk: &str, status: Option<u16>, why: String, now: DateTime<Utc>) {
        let mut map = self.by_trunk.write();
        let s = map.entry(trunk.to_string()).or_default();
        s.last_status = status;
        s.last_error = Some(why);
        s.last_attempt = Some(now);
        s.failures += 1;
    }

    /// The binding was removed (Expires: 0 answered, or given up at a stop).
    pub fn unregistered(&self, trunk: &str) {
        if let Some(s) = self.by_trunk.write().get_mut(trunk) {
            s.registered_until = None;
        }
    }

    /// The trunk no longer registers (removed, or `register` turned off).
    pub fn forget(&self, trunk: &str) {
        self.by_trunk.write().remove(trunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_only_until_the_grant_expires() {
        let r = Registrations::default();
        let t0 = DateTime::parse_from_rfc3339("2024-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        r.track("a");
        assert!(!r.registered("a", t0));
        r.succeeded("a", 200, t0, t0 + chrono::Duration::seconds(60));
        assert!(r.registered("a", t0 + chrono::Duration::seconds(59)));
        assert!(!r.registered("a", t0 + chrono::Duration::seconds(60)));
        r.failed("a", Some(403), "forbidden".into(), t0);
        assert!(
            r.registered("a", t0),
            "a failed refresh keeps the binding it had"
        );
        assert_eq!(r.state("a").unwrap().failures, 1);
        r.unregistered("a");
        assert!(!r.registered("a", t0));
        r.forget("a");
        assert!(r.all().is_empty());
    }
}
