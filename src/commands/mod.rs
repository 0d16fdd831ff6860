//! One module per command; [`run`] dispatches.

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::LogFormat;
use crate::telemetry;

pub mod config_check;
pub mod run;

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log_format = cli.log_format();
    match cli.command {
        Command::Config(ConfigCommand::Check(args)) => {
            telemetry::init_logging(log_format.unwrap_or(LogFormat::Text))?;
            config_check::run(args).await
        }
        // The worker's log format comes from its configuration, unless overridden.
        Command::Run(args) => run::run(args, log_format).await,
    }
}
