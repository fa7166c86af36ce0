//! The `trunkguard` command: parse the command line, load the config, run until a signal.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use trunkguard::app::Gateway;
use trunkguard::cli;
use trunkguard::config::Config;

/// The binary's allocator: signalling allocates many small, short-lived strings, which mimalloc
/// serves with fewer instructions than glibc malloc (bench/README.md). Library tests keep the
/// system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "trunkguard",
    version,
    about = "SIP trunk gateway and call-recording compliance monitor"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "config/trunkguard.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
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
    Report {
        /// Start (inclusive): RFC 3339 or YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
        /// End (exclusive): RFC 3339 or YYYY-MM-DD (UTC).
        #[arg(long)]
        to: String,
        #[arg(long)]
        trunk: Option<String>,
        /// A caller ID or called number: its rows.
        #[arg(long)]
        number: Option<String>,
        /// Only this kind of subject: trunk, caller_id or callee.
        #[arg(long)]
        kind: Option<String>,
        /// hour or day (UTC days).
        #[arg(long, default_value = "hour")]
        bucket: String,
        /// csv, json or table.
        #[arg(long, default_value = "table")]
        format: String,
    },
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
}

#[derive(Subcommand)]
enum CdrCommand {
    /// CDRs matching every filter given, oldest first (INVITE time, then id).
    Search {
        /// A caller or callee number.
        #[arg(long)]
        number: Option<String>,
        #[arg(long)]
        trunk: Option<String>,
        /// INVITE time at or after: RFC 3339 or YYYY-MM-DD (UTC).
        #[arg(long)]
        from: Option<String>,
        /// INVITE time before: RFC 3339 or YYYY-MM-DD (UTC).
        #[arg(long)]
        to: Option<String>,
        /// answered, busy, no_answer, cancelled, rejected, failed or refused.
        #[arg(long)]
        disposition: Option<String>,
        /// A refusal or end reason code (number_blocked, caller_id_not_authorized, busy…).
        #[arg(long)]
        reason: Option<String>,
        /// An anomaly's id: the calls it names.
        #[arg(long)]
        anomaly: Option<String>,
        /// At most this many CDRs.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// table, json (JSON lines) or csv (the export's columns).
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Subcommand)]
enum RecordingCommand {
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

#[derive(Subcommand)]
enum RetentionCommand {
    /// Purge now what has expired (calls on legal hold are kept), as the gateway does daily.
    Run {
        /// Purge as of this time (RFC 3339 or YYYY-MM-DD, UTC) instead of now.
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// admin, compliance or carrier.
        #[arg(long)]
        role: String,
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

#[derive(clap::Args)]
struct EnforceTarget {
    /// The trunk.
    #[arg(long)]
    trunk: String,
    /// A caller ID of the trunk (otherwise the step is on the trunk itself).
    #[arg(long)]
    number: Option<String>,
    /// Who gives the order (written to the log).
    #[arg(long)]
    operator: String,
    /// Why (written to the log).
    #[arg(long)]
    reason: String,
    /// Seconds to wait for the running gateway to apply it.
    #[arg(long, default_value_t = 10)]
    wait: u64,
}

#[derive(Subcommand)]
enum EnforceCommand {
    /// Impose a step: alert, throttle, suspend_number or suspend_trunk.
    Impose {
        #[command(flatten)]
        target: EnforceTarget,
        #[arg(long)]
        step: String,
        /// How long (90s, 30m, 2h, 7d); without it, until lifted.
        #[arg(long = "for")]
        duration: Option<String>,
    },
    /// Lift a step in force (or every step on the subject without --step).
    Lift {
        #[command(flatten)]
        target: EnforceTarget,
        #[arg(long)]
        step: Option<String>,
    },
    /// The steps in force.
    List,
    /// The enforcement log of a period, as JSON lines.
    Log {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum ComplaintsCommand {
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
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        number: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let config =
        Config::load(&cli.config).with_context(|| format!("loading {}", cli.config.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => run(config).await,
            Command::CheckConfig => {
                println!(
                    "{}: ok ({} trunks)",
                    cli.config.display(),
                    config.trunks.len()
                );
                Ok(())
            }
            Command::Verify { target } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let v = trunkguard::recording::evidence::verify(&store, &target).await?;
                let call = v.call_id.as_deref().unwrap_or("(unknown to the store)");
                println!("file:     {}", v.path.display());
                println!("call:     {call}");
                println!("sha256:   {}", v.actual_sha256);
                match &v.recorded_sha256 {
                    Some(d) => println!("recorded: {d}"),
                    None => println!("recorded: (none)"),
                }
                if let Some(r) = &v.recording {
                    println!("status:   {}", r.status.as_str());
                }
                if let Some(p) = &v.pcap {
                    println!("pcap:     {}", p.path.display());
                    println!(
                        "  sha256:   {}",
                        p.actual_sha256.as_deref().unwrap_or("(unreadable)")
                    );
                    println!(
                        "  recorded: {}",
                        p.recorded_sha256.as_deref().unwrap_or("(none)")
                    );
                }
                if v.matches() {
                    println!("OK: the file is the recording that was made");
                    Ok(())
                } else {
                    println!("MISMATCH: the file is not the recording on record");
                    std::process::exit(1);
                }
            }
            Command::Report {
                from,
                to,
                trunk,
                number,
                kind,
                bucket,
                format,
            } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let args = cli::report::ReportArgs {
                    from,
                    to,
                    trunk,
                    number,
                    kind,
                    bucket,
                    format,
                };
                cli::report::run(&store, &args, &mut std::io::stdout().lock()).await?;
                Ok(())
            }
            Command::Enforce { command } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let out = &mut std::io::stdout().lock();
                match command {
                    EnforceCommand::Impose {
                        target,
                        step,
                        duration,
                    } => {
                        let o = order(target, Some(step), duration);
                        cli::enforce::order(&store, "impose", &o, out).await?
                    }
                    EnforceCommand::Lift { target, step } => {
                        let o = order(target, step, None);
                        cli::enforce::order(&store, "lift", &o, out).await?
                    }
                    EnforceCommand::List => cli::enforce::list(&store, out).await?,
                    EnforceCommand::Log { from, to } => {
                        cli::enforce::log(&store, &from, &to, out).await?
                    }
                }
                Ok(())
            }
            Command::Complaints { command } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let out = &mut std::io::stdout().lock();
                match command {
                    ComplaintsCommand::Import { file, link_days } => {
                        let trunks = cli::trunks_in_force(&store, &config).await?;
                        cli::complaints::import(&store, &trunks, &file, link_days, out).await?;
                    }
                    ComplaintsCommand::List { from, to, number } => {
                        cli::complaints::list(&store, &from, &to, number.as_deref(), out).await?
                    }
                }
                Ok(())
            }
            Command::Token { command } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let out = &mut std::io::stdout().lock();
                match command {
                    TokenCommand::Create { role, trunks, name } => {
                        let known: Vec<String> = cli::trunks_in_force(&store, &config)
                            .await?
                            .into_iter()
                            .map(|t| t.name)
                            .collect();
                        cli::token::create(&store, &name, &role, &trunks, &known, out).await?
                    }
                    TokenCommand::List => cli::token::list(&store, out).await?,
                    TokenCommand::Revoke { name } => cli::token::revoke(&store, &name, out).await?,
                }
                Ok(())
            }
            Command::Cdr {
                command:
                    CdrCommand::Search {
                        number,
                        trunk,
                        from,
                        to,
                        disposition,
                        reason,
                        anomaly,
                        limit,
                        format,
                    },
            } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let args = cli::cdr::SearchArgs {
                    number,
                    trunk,
                    from,
                    to,
                    disposition,
                    reason,
                    anomaly,
                    limit,
                    format,
                };
                cli::cdr::search(&store, &args, &mut std::io::stdout().lock()).await?;
                Ok(())
            }
            Command::Recording { command } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let dir = cli::recording::recordings_dir(&config);
                let out = &mut std::io::stdout().lock();
                match command {
                    RecordingCommand::Get {
                        call_id,
                        output,
                        pcap,
                    } => {
                        cli::recording::get(&store, &dir, &call_id, &output, pcap, out).await?;
                    }
                }
                Ok(())
            }
            Command::Retention { command } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                let dir = cli::recording::recordings_dir(&config);
                let out = &mut std::io::stdout().lock();
                match command {
                    RetentionCommand::Run { now } => {
                        let now = match now {
                            Some(t) => cli::time_arg("now", &t)?,
                            None => chrono::Utc::now(),
                        };
                        cli::retention::run(&store, &dir, &config.retention, now, out).await?;
                    }
                }
                Ok(())
            }
            Command::Cdrs { limit } => {
                let store = trunkguard::store::Store::connect(&config.database.url).await?;
                for cdr in store.recent_cdrs(limit).await? {
                    println!("{}", serde_json::to_string(&cdr)?);
                }
                Ok(())
            }
        }
    })
}

fn order(t: EnforceTarget, step: Option<String>, duration: Option<String>) -> cli::enforce::Order {
    cli::enforce::Order {
        target: cli::enforce::Target {
            trunk: t.trunk,
            number: t.number,
        },
        step,
        duration,
        operator: t.operator,
        reason: t.reason,
        wait: std::time::Duration::from_secs(t.wait),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let gateway = Gateway::start(config)
        .await
        .context("starting the gateway")?;
    wait_for_signal().await;
    tracing::info!("signal received: stopping");
    let store = gateway.store().clone();
    gateway.shutdown().await;
    // The last connection to close checkpoints the WAL and removes the -wal and -shm files, so
    // that a stopped gateway leaves one self-contained database file behind.
    if tokio::time::timeout(std::time::Duration::from_secs(10), store.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still in use at exit");
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
