//! The `trunkguard` command: parse the command line, load the config, then either run the
//! gateway until a signal or run one tool subcommand (`trunkguard::cli`).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use trunkguard::app::Gateway;
use trunkguard::cli::{self, Cli, Command};
use trunkguard::config::Config;

/// The binary's allocator: signalling allocates many small, short-lived strings, which mimalloc
/// serves with fewer instructions than glibc malloc (bench/README.md). Library tests keep the
/// system allocator. Built without transparent huge pages (`no_thp`): with them, each page
/// mimalloc took back from the OS came back as a 2 MiB page zeroed whole (`clear_page_erms`,
/// 4 % of the CPU at 1,000 calls/s), and peak RSS at 1,000 recorded calls was 441 MiB against
/// 383 without (issue 16).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    let args = Cli::parse();
    init_tracing();
    // Checking a manifest file or a package needs no configuration: an auditor has none.
    if let Some(Command::Tool(tool)) = &args.command {
        if cli::runs_without_config(tool) {
            let out = &mut std::io::stdout().lock();
            if let Some(done) = cli::run_without_config(tool, out) {
                return Ok(done?);
            }
        }
    }
    let config =
        Config::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    let workers = config.runtime.worker_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .with_context(|| format!("starting the tokio runtime ({workers} worker threads)"))?;
    runtime.block_on(async move {
        match args.command.unwrap_or(Command::Run) {
            Command::Run => {
                tracing::info!(worker_threads = workers, "async runtime started");
                run_gateway(config).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Tool(tool) => {
                let out = &mut std::io::stdout().lock();
                Ok(cli::run(tool, &args.config, &config, out).await?)
            }
        }
    })
}

/// Logs go to stderr (stdout is the tools' output); `RUST_LOG` filters, `info` by default.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Starts the gateway, waits for SIGINT or SIGTERM, then stops it in order.
async fn run_gateway(config: Config) -> anyhow::Result<()> {
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
