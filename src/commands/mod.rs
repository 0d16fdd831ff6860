//! One module per command; [`run`] dispatches.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::LogFormat;
use crate::telemetry;

pub mod backfill;
pub mod config_check;
pub mod healthcheck;
pub mod hold;
pub mod manifest;
pub mod retention;
pub mod run;
pub mod source_cleanup;
pub mod verify;

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
        Command::Healthcheck(args) => healthcheck::run(args),
    }
}

/// A counter on stderr when it is a terminal; nothing otherwise (logs and pipes stay clean).
pub(crate) fn progress_bar(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
