//! The start-up step that raises the soft `RLIMIT_NOFILE` to the hard limit and computes how
//! many calls the descriptors allow (`b2bua::capacity`).
//!
//! Why raise it: the soft limit is often far below the hard one (1,024 or 20,000 against
//! hundreds of thousands), and a call holds up to six descriptors; a service manager's
//! `LimitNOFILE=` sets both. The hard limit is never raised (that needs privileges, and is the
//! operator's decision).

use crate::b2bua::capacity::{CallCapacity, Reserve};

/// Descriptors kept for the process itself (see `Reserve::base`).
const BASE: u64 = 128;
/// Per database connection: the database file, its WAL and its shared memory.
const PER_DB_CONNECTION: u64 = 3;
/// The CDR spool: its file and folder, and a replay reading it.
const SPOOL: u64 = 4;

/// The reserve of this gateway, from the parts' own caps.
pub fn reserve() -> Reserve {
    let api = u64::try_from(crate::api::server::MAX_CONNECTIONS).unwrap_or(u64::MAX);
    let tcp = u64::try_from(crate::sip::transport::MAX_TCP_CONNECTIONS).unwrap_or(u64::MAX);
    Reserve {
        base: BASE,
        database: u64::from(crate::store::StoreOptions::default().max_connections)
            * PER_DB_CONNECTION,
        // A connection, and a recording it may be streaming.
        api: api.saturating_mul(2),
        spool: SPOOL,
        // Per interface.
        sip_tcp: tcp.saturating_mul(2),
    }
}

/// Raises the soft limit to the hard one (when it can), logs and returns the budget.
pub fn budget() -> CallCapacity {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (before.current, before.maximum) {
        if soft < hard {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit");
            }
        }
    }
    let now = getrlimit(Resource::Nofile);
    let reserve = reserve();
    let capacity = CallCapacity::for_limit(now.current, &reserve);
    let show = |l: Option<u64>| l.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    if capacity.calls == 0 {
        tracing::error!(open_files = %show(now.current), reserve = reserve.total(), "the open-file limit leaves no room for a call: every call is refused `descriptor_limit` (raise LimitNOFILE)");
    } else {
        tracing::info!(
            open_files = %show(now.current),
            was = %show(before.current),
            hard = %show(now.maximum),
            reserve = reserve.total(),
            per_call = capacity.per_call,
            calls = capacity.calls,
            "descriptor budget: calls beyond it are refused `descriptor_limit`"
        );
    }
    capacity
}
