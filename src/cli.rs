//! The command line: one enum of subcommands, each wrapping its own module's options.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::commands::backfill::BackfillArgs;
use crate::commands::config_check::CheckArgs;
use crate::commands::healthcheck::HealthcheckArgs;
use crate::commands::hold::HoldCommand;
use crate::commands::manifest::ManifestCommand;
use crate::commands::retention::RetentionCommand;
use crate::commands::run::RunArgs;
use crate::commands::source_cleanup::CleanupArgs;
use crate::commands::verify::VerifyArgs;
use crate::config::{Config, LogFormat};

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
    /// Exit 0 when a running worker's /healthz answers 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    Check(CheckArgs),
}

/// The environment variable that may hold the whole configuration, for containers (ECS) where
/// writing a file is awkward. A file, when given, wins.
pub const CONFIG_TOML_ENV: &str = "TRAILVAULT_CONFIG_TOML";

/// Where a command finds its configuration: the FILE argument, else `TRAILVAULT_CONFIG` (a
/// file), else `TRAILVAULT_CONFIG_TOML` (the TOML itself).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigPath {
    /// The configuration file (TOML); or set TRAILVAULT_CONFIG, or put the TOML itself in
    /// TRAILVAULT_CONFIG_TOML.
    #[arg(value_name = "FILE", env = "TRAILVAULT_CONFIG")]
    pub file: Option<PathBuf>,
}

impl ConfigPath {
    /// The validated configuration and a name for where it came from.
    pub fn load(&self) -> anyhow::Result<(Config, String)> {
        load(self.file.as_deref())
    }
}

/// The configuration file as an option, for commands whose arguments are something else.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigOption {
    /// The configuration file (TOML); or set TRAILVAULT_CONFIG, or put the TOML itself in
    /// TRAILVAULT_CONFIG_TOML.
    #[arg(long = "config", value_name = "FILE", env = "TRAILVAULT_CONFIG")]
    pub file: Option<PathBuf>,
}

impl ConfigOption {
    /// The validated configuration and a name for where it came from.
    pub fn load(&self) -> anyhow::Result<(Config, String)> {
        load(self.file.as_deref())
    }
}

fn load(file: Option<&Path>) -> anyhow::Result<(Config, String)> {
    if let Some(path) = file {
        return Ok((Config::load(path)?, path.display().to_string()));
    }
    match std::env::var(CONFIG_TOML_ENV) {
        Ok(text) => Ok((
            Config::from_toml(&text, Path::new(CONFIG_TOML_ENV))?,
            CONFIG_TOML_ENV.to_owned(),
        )),
        Err(_) => anyhow::bail!(
            "no configuration: give the file (--config FILE, or FILE for `config check`), or \
             set TRAILVAULT_CONFIG to its path, or TRAILVAULT_CONFIG_TOML to the TOML itself"
        ),
    }
}
