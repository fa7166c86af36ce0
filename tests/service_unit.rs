//! `config/trunkguard.service`, the systemd unit of a node: its command line is one the binary
//! accepts (the config flag and `run`), it stops the gateway with SIGTERM (the drain) and gives
//! it longer than the CDR flush limit, and it raises the open-file limit the call budget uses.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use clap::Parser;
use trunkguard::cli::{Cli, Command};

fn unit() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/trunkguard.service"
    ))
    .unwrap()
}

fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    let mut found = unit.lines().filter_map(|l| l.strip_prefix(prefix.as_str()));
    let v = found
        .next()
        .unwrap_or_else(|| panic!("no {key}= in the unit"));
    assert!(found.next().is_none(), "{key}= twice");
    v
}

#[test]
fn the_unit_runs_the_gateway_and_stops_it_by_draining() {
    let unit = unit();
    let exec: Vec<&str> = value(&unit, "ExecStart").split_whitespace().collect();
    let cli = Cli::try_parse_from(&exec).unwrap_or_else(|e| panic!("{exec:?}: {e}"));
    assert!(matches!(cli.command, Some(Command::Run)), "{exec:?}");
    assert_eq!(
        cli.config,
        std::path::Path::new("/etc/trunkguard/trunkguard.toml")
    );
    assert_eq!(value(&unit, "KillSignal"), "SIGTERM");
    let stop: u64 = value(&unit, "TimeoutStopSec").parse().unwrap();
    assert!(stop > 60, "longer than the CDR flush limit: {stop}");
    let files: u64 = value(&unit, "LimitNOFILE").parse().unwrap();
    assert!(files >= 65_536, "{files}");
    assert!(value(&unit, "ReadWritePaths").contains(value(&unit, "WorkingDirectory")));
}
