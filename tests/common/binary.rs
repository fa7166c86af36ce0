//! The real `trunkguard` binary (`tests/sipp/harness.rs`) between our own PBX and carrier UAs,
//! for the tests that kill it, take its database away or start it on TLS (crash, db_outage,
//! db_read_only, api_tls): the UAs on the harness's usual addresses, the gateway on ports of its
//! own, its database (`tg.db`) and spool in a fresh folder.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{InviteSpec, Ua, CALLER, CARRIER_IP, PBX_IP};

#[path = "../sipp/harness.rs"]
pub mod harness;

/// The UAs bound and the gateway's config written, the gateway not started yet (a test that
/// runs it as another user starts it itself).
pub struct Peers {
    pub dir: tempfile::TempDir,
    pub pbx: Ua,
    pub carrier: Ua,
    pub addrs: harness::Addrs,
    /// The gateway's config: its trunk's carrier is our carrier UA.
    pub config: String,
}

impl Peers {
    pub async fn bind(limits: harness::TrunkLimits) -> Peers {
        Peers::bind_on(limits, None).await
    }

    /// `bind` with the gateway on `database_url` (a PostgreSQL database the caller keeps) instead
    /// of `tg.db`, its spool still in the folder.
    pub async fn bind_on(limits: harness::TrunkLimits, database_url: Option<&str>) -> Peers {
        let dir = tempfile::tempdir().expect("tempdir");
        let pbx = Ua::bind("pbx", PBX_IP).await;
        let carrier = Ua::bind("carrier", CARRIER_IP).await;
        let addrs = harness::Addrs::pick();
        let mut config = harness::config_toml(&addrs, &db_in(&dir), limits)
            .replace(&addrs.carrier.to_string(), &carrier.addr().to_string());
        if let Some(url) = database_url {
            let sqlite = format!("url = \"sqlite://{}\"", db_in(&dir).display());
            assert!(config.contains(&sqlite), "{config}");
            let spool = dir.path().join("spool");
            config = config.replace(
                &sqlite,
                &format!("url = \"{url}\"\nspool_dir = \"{}\"", spool.display()),
            );
        }
        Peers {
            dir,
            pbx,
            carrier,
            addrs,
            config,
        }
    }
}

/// `Peers` with the gateway running.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub pbx: Ua,
    pub carrier: Ua,
    pub addrs: harness::Addrs,
    pub config: String,
    pub gw: harness::Gateway,
}

impl Setup {
    pub async fn start() -> Setup {
        Setup::start_with(harness::TrunkLimits::default()).await
    }

    pub async fn start_with(limits: harness::TrunkLimits) -> Setup {
        Setup::start_on(limits, None).await
    }

    /// `start_with` on `database_url` (see [`Peers::bind_on`]).
    pub async fn start_on(limits: harness::TrunkLimits, database_url: Option<&str>) -> Setup {
        let Peers {
            dir,
            pbx,
            carrier,
            addrs,
            config,
        } = Peers::bind_on(limits, database_url).await;
        let gw = harness::Gateway::start(dir.path(), &config);
        Setup {
            dir,
            pbx,
            carrier,
            addrs,
            config,
            gw,
        }
    }
}

/// The gateway's database in `dir`.
pub fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("tg.db")
}

/// The gateway's CDR spool in `dir`.
pub fn spool_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("spool").join("cdrs.spool")
}

/// A call to `callee` the carrier refuses with 486: it ends at once, its CDR is submitted.
/// Returns the PBX's Call-ID.
pub async fn busy_call(pbx: &mut Ua, carrier: &mut Ua, inside: SocketAddr, callee: &str) -> String {
    let invite = pbx.invite(inside, &InviteSpec::new(CALLER, callee)).await;
    pbx.expect_response(100).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier.reply(&c_invite, 486, Some("busy")).await;
    carrier.expect_request("ACK").await;
    let resp = pbx.expect_response(486).await;
    pbx.ack_non2xx(&invite, &resp).await;
    invite.call_id
}
