//! `cli::run`: one tool subcommand, from its parsed arguments to its output and exit status.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::args::{
    AuditCommand, CdrCommand, ComplaintsCommand, EnforceCommand, KeysCommand, RecordingCommand,
    RetentionCommand, TokenCommand, Tool,
};
use super::enforce::Order;
use super::manifest::ManifestCommand;
use super::{
    audit, cdr, complaints, enforce, keys, manifest, migrate, recording, report, retention, token,
    trunks_in_force,
};
use super::{verify, CliError};
use crate::config::Config;
use crate::model::StepAction;
use crate::store::Store;

/// Runs `tool` with the loaded `config` (read from `config_path`), writing to `out`. Exit status
/// 1 without an error: `verify` found a file that is not the recording on record, `audit
/// verify` a log that was tampered with, or `manifest verify` a day that differs from its seal.
pub async fn run(
    tool: Tool,
    config_path: &Path,
    config: &Config,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let connect = || Store::connect(&config.database.url);
    match tool {
        Tool::CheckConfig => {
            writeln!(
                out,
                "{}: ok ({} trunks)",
                config_path.display(),
                config.trunks.len()
            )
            .map_err(|e| CliError::io("writing", e))?;
        }
        Tool::Cdrs { limit } => {
            let store = connect().await?;
            for cdr in store.recent_cdrs(limit).await? {
                serde_json::to_writer(&mut *out, &cdr)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(|e| CliError::io("writing the CDRs", e))?;
            }
        }
        Tool::Verify { target } => {
            let dir = recording::recordings_dir(config);
            if !verify::run(&connect().await?, &dir, &target, out).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Tool::Report(args) => report::run(&connect().await?, &args, out).await?,
        Tool::Enforce { command } => {
            let store = connect().await?;
            match command {
                EnforceCommand::Impose {
                    target,
                    step,
                    duration,
                } => {
                    let order = Order {
                        action: StepAction::Impose,
                        target,
                        step: Some(step),
                        duration,
                    };
                    enforce::order(&store, &order, config.cluster.as_ref(), out).await?
                }
                EnforceCommand::Lift { target, step } => {
                    let order = Order {
                        action: StepAction::Lift,
                        target,
                        step,
                        duration: None,
                    };
                    enforce::order(&store, &order, config.cluster.as_ref(), out).await?
                }
                EnforceCommand::List => enforce::list(&store, out).await?,
                EnforceCommand::Log { period } => enforce::log(&store, &period, out).await?,
            }
        }
        Tool::Complaints { command } => {
            let store = connect().await?;
            match command {
                ComplaintsCommand::Import { file, link_days } => {
                    let trunks = trunks_in_force(&store, config).await?;
                    complaints::import(&store, &trunks, &file, link_days, out).await?;
                }
                ComplaintsCommand::List { period, number } => {
                    complaints::list(&store, &period, number.as_deref(), out).await?
                }
            }
        }
        Tool::Token { command } => {
            let store = connect().await?;
            match command {
                TokenCommand::Create { role, trunks, name } => {
                    let known: Vec<String> = trunks_in_force(&store, config)
                        .await?
                        .into_iter()
                        .map(|t| t.name)
                        .collect();
                    token::create(&store, &name, role, &trunks, &known, out).await?
                }
                TokenCommand::List => token::list(&store, out).await?,
                TokenCommand::Revoke { name } => token::revoke(&store, &name, out).await?,
            }
        }
        Tool::Cdr {
            command: CdrCommand::Search(args),
        } => cdr::search(&connect().await?, &args, out).await?,
        Tool::Recording {
            command:
                RecordingCommand::Get {
                    call_id,
                    output,
                    pcap,
                },
        } => {
            let store = connect().await?;
            let dir = recording::recordings_dir(config);
            recording::get(&store, &dir, &call_id, &output, pcap, out).await?;
        }
        Tool::Retention {
            command: RetentionCommand::Run { now },
        } => {
            let store = connect().await?;
            let dir = recording::recordings_dir(config);
            let now = now.unwrap_or_else(chrono::Utc::now);
            let node = config.cluster.as_ref().map(|c| c.node_id.as_str());
            retention::run(&store, &dir, node, &config.retention, now, out).await?;
        }
        Tool::MigrateSqlite(args) => {
            return migrate::run(&args, &config.database.url, out).await;
        }
        Tool::Keys { command } => match command {
            KeysCommand::Create { key } => keys::create(&keys::key_path(key, config)?, out)?,
            KeysCommand::Public { key } => keys::public(&keys::key_path(key, config)?, out)?,
        },
        Tool::Audit {
            command: AuditCommand::Verify(args),
        } => {
            if !audit::verify(&connect().await?, &args, out).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Tool::Manifest {
            command: ManifestCommand::Seal { day },
        } => manifest::seal(&connect().await?, config, day, out).await?,
        Tool::Manifest {
            command: ManifestCommand::Verify(args),
        } => {
            let intact = if args.offline() {
                manifest::verify_offline(&args, out)?
            } else {
                manifest::verify(&connect().await?, config, &args, out).await?
            };
            if !intact {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `tool` works on files alone, without the configuration (`manifest verify --file`
/// on an auditor's machine, which has no gateway configuration).
pub fn runs_without_config(tool: &Tool) -> bool {
    matches!(tool, Tool::Manifest { command: ManifestCommand::Verify(args) } if args.offline())
}

/// Runs a tool that needs no configuration (see `runs_without_config`); `None` for any other.
pub fn run_without_config(tool: &Tool, out: &mut impl Write) -> Option<Result<ExitCode, CliError>> {
    match tool {
        Tool::Manifest {
            command: ManifestCommand::Verify(args),
        } if args.offline() => Some(manifest::verify_offline(args, out).map(|intact| {
            if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        })),
        _ => None,
    }
}
