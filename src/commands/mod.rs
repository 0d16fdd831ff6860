//! One module per command; [`run`] dispatches.

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConfigCommand};

pub mod config_check;

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(ConfigCommand::Check(args)) => config_check::run(args).await,
    }
}
