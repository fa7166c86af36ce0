//! The `trunkguard` command: parse the command line, load the config, run until a signal.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use trunkguard::app::Gateway;
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
                if v.matches() {
                    println!("OK: the file is the recording that was made");
                    Ok(())
                } else {
                    println!("MISMATCH: the file is not the recording on record");
                    std::process::exit(1);
                }
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

async fn run(config: Config) -> anyhow::Result<()> {
    let gateway = Gateway::start(config)
        .await
        .context("starting the gateway")?;
    wait_for_signal().await;
    tracing::info!("signal received: stopping");
    gateway.shutdown().await;
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
