//! Logging (and, with the worker, metrics).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Sends `tracing` output to stderr, as text or JSON. The filter comes from `TRAILVAULT_LOG`
/// (then `RUST_LOG`) in `tracing`'s directive syntax; when neither is set, trailvault's own
/// events from `info` up and the AWS SDK's warnings only.
pub fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    let directives = std::env::var("TRAILVAULT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn,trailvault=info".to_owned());
    let filter = EnvFilter::try_new(&directives).map_err(|err| {
        anyhow::anyhow!("TRAILVAULT_LOG/RUST_LOG {directives:?} is not a valid log filter: {err}")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot set up logging: {err}"))?;
    panics::log_panics();
    Ok(())
}

pub mod http;
pub mod metrics;
pub mod panics;
