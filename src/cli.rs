//! The command line: one enum of subcommands, each wrapping its own module's options.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::config_check::CheckArgs;
use crate::commands::hold::HoldCommand;
use crate::commands::manifest::ManifestCommand;
use crate::commands::retention::RetentionCommand;
use crate::commands::run::RunArgs;
use crate::commands::source_cleanup::CleanupArgs;
use crate::commands::verify::VerifyArgs;
use crate::config::LogFormat;

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
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    Check(CheckArgs),
}

/// Where a command finds its configuration file: the argument, else `TRAILVAULT_CONFIG`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigPath {
    /// The configuration file (TOML).
    #[arg(value_name = "FILE", env = "TRAILVAULT_CONFIG")]
    pub file: PathBuf,
}

/// The configuration file as an option, for commands whose arguments are something else.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigOption {
    /// The configuration file (TOML).
    #[arg(long = "config", value_name = "FILE", env = "TRAILVAULT_CONFIG")]
    pub file: PathBuf,
}
