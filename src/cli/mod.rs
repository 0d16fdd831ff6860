//! The command line: one enum of subcommands, each wrapping its own module's options, and
//! [`run()`], which dispatches. The argument types every command shares are in [`args`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::alerts::{self, AlertsCommand};
use crate::commands::backfill::{self, BackfillArgs};
use crate::commands::config_check::{self, CheckArgs};
use crate::commands::healthcheck::{self, HealthcheckArgs};
use crate::commands::hold::{self, HoldCommand};
use crate::commands::manifest::{self, ManifestCommand};
use crate::commands::report::{self, ReportCommand};
use crate::commands::retention::{self, RetentionCommand};
use crate::commands::run::{self, RunArgs};
use crate::commands::source_cleanup::{self, CleanupArgs};
use crate::commands::verify::{self, VerifyArgs};
use crate::config::LogFormat;
use crate::telemetry;

pub mod args;

/// A tamper-evident, long-term archive of an AWS Organization's CloudTrail logs.
#[derive(Debug, Parser)]
#[command(name = "trailvault", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr; for the worker, this overrides telemetry.log_format.
    #[arg(long, global = true, value_enum, env = "TRAILVAULT_LOG_FORMAT")]
    pub log_format: Option<LogFormatArg>,
}

impl Cli {
    /// The log format asked for on the command line or in the environment, if any.
    pub fn log_format(&self) -> Option<LogFormat> {
        self.log_format.map(|f| match f {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Text => LogFormat::Text,
        })
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the archive worker: notifications in, byte-exact locked copies out.
    Run(RunArgs),
    /// Archive the member buckets' CloudTrail files that the archive lacks (existing logs of a
    /// new account, or files whose notifications were lost); resumable.
    Backfill(BackfillArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Keep the archive bucket and every archived version equal to the retention policy.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Legal holds on archived versions, for investigations.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Delete from the member buckets what the archive holds byte for byte (dry run unless
    /// --execute).
    SourceCleanup(CleanupArgs),
    /// Prove the archive untampered and complete: CloudTrail's digest chains checked on the
    /// archive copies, and the archive's own signed manifests (read-only).
    Verify(VerifyArgs),
    /// The archive's signed manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Signed verification reports (`verify --report --sign`): check one offline.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Alert rules (CloudWatch Logs filter patterns, the CIS monitoring set): list them, try
    /// them on local CloudTrail files.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Exit 0 when a running worker's /healthz answers 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    Check(CheckArgs),
}

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log_format = cli.log_format();
    // The worker's log format comes from its configuration, unless overridden; every other
    // command logs text unless told otherwise.
    if !matches!(cli.command, Command::Run(_)) {
        telemetry::init_logging(log_format.unwrap_or(LogFormat::Text))?;
    }
    match cli.command {
        Command::Config(ConfigCommand::Check(args)) => config_check::run(args).await,
        Command::Run(args) => run::run(args, log_format).await,
        Command::Retention(command) => retention::run(command).await,
        Command::Hold(command) => hold::run(command).await,
        Command::SourceCleanup(args) => source_cleanup::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Backfill(args) => backfill::run(args).await,
        Command::Manifest(command) => manifest::run(command).await,
        Command::Report(command) => report::run(command).await,
        Command::Alerts(command) => alerts::run(command).await,
        Command::Healthcheck(args) => healthcheck::run(args),
    }
}
