//! The command line (clap's derive): the global `--config`, `run` (the gateway, main.rs starts
//! it) and the tools that work on the database (`Tool`, run by `cli::run`). Each subcommand's
//! own arguments live beside the code that acts on them (`ReportArgs` in `report.rs`…); what
//! several subcommands repeat is one struct here (`Period`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use super::audit::AuditVerifyArgs;
use super::cdr::SearchArgs;
use super::enforce::EnforceTarget;
use super::manifest::ManifestCommand;
use super::migrate::MigrateArgs;
use super::report::ReportArgs;
use super::values::{duration_value, number_value, time_value};
use crate::api::Role;
use crate::model::Step;

#[derive(Debug, Parser)]
#[command(
    name = "trunkguard",
    version,
    about = "SIP trunk gateway and call-recording compliance monitor"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "config/trunkguard.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run,
    #[command(flatten)]
    Tool(Tool),
}

/// The subcommands other than `run`: each does its work and exits.
#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Load and validate the configuration, then exit.
    CheckConfig,
    /// Print the most recent CDRs as JSON lines, newest first.
    Cdrs {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Recompute a recording's SHA-256 and compare it with the digest stored with its CDR.
    /// Exit status 0: the file is the one recorded; 1: it is not (or no digest is on record).
    Verify {
        /// A recording file, or a call id.
        target: String,
    },
    /// KPIs of a period from the persisted hourly buckets (one row per subject and bucket).
    Report(ReportArgs),
    /// Impose or lift enforcement steps, list those in force, read the log.
    Enforce {
        #[command(subcommand)]
        command: EnforceCommand,
    },
    /// Import and list complaints.
    Complaints {
        #[command(subcommand)]
        command: ComplaintsCommand,
    },
    /// Bearer tokens of the HTTP API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// CDR search (like GET /api/v1/cdrs), reading the database.
    Cdr {
        #[command(subcommand)]
        command: CdrCommand,
    },
    /// Call recordings.
    Recording {
        #[command(subcommand)]
        command: RecordingCommand,
    },
    /// The retention purge (`[retention]`).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Copy a SQLite database into an empty PostgreSQL one, checked by row counts and digests.
    MigrateSqlite(MigrateArgs),
    /// The deployment's Ed25519 signing key (sealed manifests).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit and enforcement logs' hash chains.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Signed daily manifests: seal a day, verify sealed days, files and evidence packages.
    Manifest {
        #[command(subcommand)]
        command: ManifestCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key pair: the private key to a new file (0600, never overwritten), the public key
    /// printed (PEM) with its fingerprint.
    Create {
        /// The private key's file (default: [evidence] signing_key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print the public key (PEM) and its fingerprint: what the carrier or an auditor keeps.
    Public {
        /// The private key's file (default: [evidence] signing_key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chains from their first row: every edited, deleted or hand-inserted row is
    /// named (exit status 1).
    Verify(AuditVerifyArgs),
}

/// A period: from (inclusive) to (exclusive).
#[derive(Debug, Clone, Copy, Args)]
pub struct Period {
    /// Start (inclusive): RFC 3339 or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = time_value)]
    pub from: DateTime<Utc>,
    /// End (exclusive): RFC 3339 or YYYY-MM-DD (UTC).
    #[arg(long, value_parser = time_value)]
    pub to: DateTime<Utc>,
}

#[derive(Debug, Subcommand)]
pub enum CdrCommand {
    /// CDRs matching every filter given, oldest first (INVITE time, then id).
    Search(SearchArgs),
}

#[derive(Debug, Subcommand)]
pub enum RecordingCommand {
    /// Copy a call's recording to FILE, checking its SHA-256 against the stored digest
    /// (exit status 1 and no file on a mismatch).
    Get {
        call_id: String,
        /// Where to write it (must not exist).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// The raw RTP capture (kept when the codec could not be decoded) instead of the WAV.
        #[arg(long)]
        pcap: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Purge now what has expired (calls on legal hold are kept), as the gateway does daily.
    Run {
        /// Purge as of this time (RFC 3339 or YYYY-MM-DD, UTC) instead of now.
        #[arg(long, value_parser = time_value)]
        now: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// admin, compliance, carrier or agent (PCI pause/resume of live calls only).
        #[arg(long, hide_possible_values = true)]
        role: Role,
        /// A trunk a carrier token is limited to (repeat for several; none: every trunk).
        #[arg(long = "trunk")]
        trunks: Vec<String>,
        /// A unique name: the audit log's "who".
        #[arg(long)]
        name: String,
    },
    /// Every token (never the token itself).
    List,
    /// Revoke a token: the next request with it gets 401.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum EnforceCommand {
    /// Impose a step: alert, throttle, suspend_number or suspend_trunk.
    Impose {
        #[command(flatten)]
        target: EnforceTarget,
        #[arg(long)]
        step: Step,
        /// How long (90s, 30m, 2h, 7d); without it, until lifted.
        #[arg(long = "for", value_parser = duration_value)]
        duration: Option<chrono::Duration>,
    },
    /// Lift a step in force (or every step on the subject without --step).
    Lift {
        #[command(flatten)]
        target: EnforceTarget,
        #[arg(long)]
        step: Option<Step>,
    },
    /// The steps in force.
    List,
    /// The enforcement log of a period, as JSON lines.
    Log {
        #[command(flatten)]
        period: Period,
    },
}

#[derive(Debug, Subcommand)]
pub enum ComplaintsCommand {
    /// Import a CSV file (columns: complainant, caller_id, time, category, source, text).
    Import {
        file: PathBuf,
        /// Calls from the caller ID to the complainant this many days before a complaint are
        /// linked to it.
        #[arg(long, default_value_t = 7)]
        link_days: i64,
    },
    /// Complaints of a period as JSON lines.
    List {
        #[command(flatten)]
        period: Period,
        #[arg(long, value_parser = number_value)]
        number: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::values::OutputFormat;
    use crate::monitor::report::Bucket;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("trunkguard").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_runs_the_gateway_with_the_default_config() {
        let cli = parse(&[]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config, PathBuf::from("config/trunkguard.toml"));
        let cli = parse(&["run", "--config", "x.toml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Run)));
        assert_eq!(cli.config, PathBuf::from("x.toml"));
    }

    #[test]
    fn values_are_typed_with_todays_defaults() {
        let Some(Command::Tool(Tool::Report(r))) =
            parse(&["report", "--from", "2026-11-27", "--to", "2026-11-28"])
                .unwrap()
                .command
        else {
            panic!("report")
        };
        assert_eq!(
            (r.bucket, r.format, r.kind),
            (Bucket::Hour, OutputFormat::Table, None)
        );
        let Some(Command::Tool(Tool::Report(r))) = parse(&[
            "report",
            "--from",
            "2026-11-27",
            "--to",
            "2026-11-28",
            "--bucket",
            "day",
            "--format",
            "csv",
            "--kind",
            "caller_id",
            "--number",
            "+861012345678",
        ])
        .unwrap()
        .command
        else {
            panic!("report")
        };
        assert_eq!(r.bucket, Bucket::Day);
        assert_eq!(r.format, OutputFormat::Csv);
        assert_eq!(r.kind.map(|k| k.as_str()), Some("caller_id"));
        let Some(Command::Tool(Tool::Enforce {
            command:
                EnforceCommand::Impose {
                    step,
                    duration,
                    target,
                },
        })) = parse(&[
            "enforce",
            "impose",
            "--trunk",
            "demo",
            "--step",
            "suspend_number",
            "--for",
            "2h",
            "--operator",
            "ops",
            "--reason",
            "test",
        ])
        .unwrap()
        .command
        else {
            panic!("impose")
        };
        assert_eq!(step, Step::SuspendNumber);
        assert_eq!(duration.map(|d| d.num_seconds()), Some(7200));
        assert_eq!(target.wait, 10);
        let Some(Command::Tool(Tool::Token {
            command: TokenCommand::Create { role, .. },
        })) = parse(&["token", "create", "--role", "carrier", "--name", "c"])
            .unwrap()
            .command
        else {
            panic!("token")
        };
        assert_eq!(role, Role::Carrier);
        let Some(Command::Tool(Tool::Cdr {
            command: CdrCommand::Search(s),
        })) = parse(&["cdr", "search"]).unwrap().command
        else {
            panic!("cdr search")
        };
        assert_eq!((s.limit, s.format), (100, OutputFormat::Table));
    }

    /// A bad value is refused while parsing, by a message that names the option.
    #[test]
    fn bad_values_are_usage_errors_naming_the_option() {
        let period = ["--from", "2026-11-27", "--to", "2026-11-28"];
        let cases: [(&str, Vec<&str>); 13] = [
            (
                "--format",
                [&["report"][..], &period, &["--format", "xml"]].concat(),
            ),
            (
                "--bucket",
                [&["report"][..], &period, &["--bucket", "week"]].concat(),
            ),
            (
                "--kind",
                [&["report"][..], &period, &["--kind", "caller-id"]].concat(),
            ),
            (
                "--from",
                vec!["report", "--from", "yesterday", "--to", "2026-11-28"],
            ),
            (
                "--number",
                [&["complaints", "list"][..], &period, &["--number", "abc"]].concat(),
            ),
            (
                "--role",
                vec!["token", "create", "--role", "root", "--name", "x"],
            ),
            ("--format", vec!["cdr", "search", "--format", "xml"]),
            ("--limit", vec!["cdr", "search", "--limit", "0"]),
            (
                "--disposition",
                vec!["cdr", "search", "--disposition", "maybe"],
            ),
            (
                "--reason",
                vec!["cdr", "search", "--reason", "Number Blocked"],
            ),
            ("--anomaly", vec!["cdr", "search", "--anomaly", "x"]),
            (
                "--step",
                vec![
                    "enforce",
                    "lift",
                    "--trunk",
                    "t",
                    "--operator",
                    "o",
                    "--reason",
                    "r",
                    "--step",
                    "ban",
                ],
            ),
            (
                "--for",
                vec![
                    "enforce",
                    "impose",
                    "--trunk",
                    "t",
                    "--operator",
                    "o",
                    "--reason",
                    "r",
                    "--step",
                    "alert",
                    "--for",
                    "soon",
                ],
            ),
        ];
        for (option, args) in cases {
            let e = parse(&args).expect_err(option);
            use clap::error::ErrorKind::{InvalidValue, ValueValidation};
            assert!(
                matches!(e.kind(), InvalidValue | ValueValidation),
                "{option}: {e}"
            );
            assert!(e.to_string().contains(option), "{option}: {e}");
        }
        let e = parse(&["retention", "run", "--now", "later"]).unwrap_err();
        assert!(e.to_string().contains("--now"), "{e}");
    }
}
