//! `trailvault run --config FILE`: the worker, with its `/healthz` and `/metrics` listener,
//! until SIGTERM or SIGINT (or, with `--until-empty`, until the queues are drained).

use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::aws::Aws;
use crate::cli::args::ConfigOption;
use crate::config::LogFormat;
use crate::telemetry::{self, http, metrics::Metrics};
use crate::worker::{self, Options, Shutdown};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigOption,

    /// Stop once every queue is empty and nothing is in flight, then print a summary
    /// (for a demo, a backlog, or a test; a deployment runs without it).
    #[arg(long)]
    pub until_empty: bool,
}

pub async fn run(args: RunArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let config = Arc::new(args.config.load()?.0);
    telemetry::init_logging(log_format.unwrap_or(config.telemetry.log_format))?;

    let metrics = Arc::new(Metrics::new());
    let (listener, address) = http::bind(config.telemetry.metrics_address).await?;
    info!(%address, "serving /healthz and /metrics");
    let stop_http = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, metrics.clone(), stop_http.clone()));

    let shutdown = Shutdown::default();
    watch_signals(
        shutdown.clone(),
        config.worker.shutdown_grace,
        "stopping: no new messages; in-flight copies may finish within the grace period",
        "second signal: exiting now; unfinished messages come back when their visibility ends",
    )?;

    let aws = Aws::load(&config.aws).await;
    info!(
        queues = config.queues.len(),
        accounts = config.accounts.len(),
        archive = %config.archive.bucket,
        max_in_flight = config.worker.max_in_flight.get(),
        "trailvault worker starting"
    );
    let summary = worker::run(
        config.clone(),
        &aws,
        metrics,
        shutdown,
        Options {
            until_empty: args.until_empty,
        },
    )
    .await?;
    stop_http.cancel();
    let _ = server.await;
    info!(
        archived = summary.archived_objects(),
        bytes = summary.archived_bytes(),
        duplicates = summary.duplicates(),
        conflicts = summary.conflicts(),
        quarantined = summary.quarantined(),
        failures = summary.failures(),
        dead_lettered = summary.dead_lettered(),
        "trailvault worker stopped"
    );
    if args.until_empty {
        print!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The first SIGTERM or SIGINT stops receiving and starts the grace period; a second one ends
/// the process at once. `first` and `second` say what each means for the command.
pub(crate) fn watch_signals(
    shutdown: Shutdown,
    grace: std::time::Duration,
    first: &'static str,
    second: &'static str,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(signal = name, grace_secs = grace.as_secs(), "{first}");
        shutdown.begin(grace);
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        warn!(signal = name, "{second}");
        std::process::exit(130);
    });
    Ok(())
}
