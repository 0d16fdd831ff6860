//! `trailvault run --config FILE`: the worker, with its `/healthz` and `/metrics` listener,
//! until SIGTERM or SIGINT (or, with `--until-empty`, until the queues are drained).

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::aws::Aws;
use crate::cli::args::ConfigOption;
use crate::config::LogFormat;
use crate::shutdown::{watch_signals, Shutdown};
use crate::telemetry::{self, http, metrics::Metrics};
use crate::worker::{self, Options};

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
