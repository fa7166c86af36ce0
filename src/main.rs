//! The `trunkguard` command: parse the command line, load the config, run until a signal.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use trunkguard::app::Gateway;
use trunkguard::config::Config;

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
