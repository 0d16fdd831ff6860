//! How a long-running command stops: first no new work (`stop_receiving`), then, once the
//! grace period is over, no more work at all (`abandon`). Every feeder watches the same pair.

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How the worker stops: first no new messages (`stop_receiving`), then, once the grace
/// period is over, no more work (`abandon`).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub stop_receiving: CancellationToken,
    pub abandon: CancellationToken,
}

impl Shutdown {
    pub fn stopping(&self) -> bool {
        self.stop_receiving.is_cancelled()
    }

    /// Stops receiving now and abandons in-flight work after `grace`.
    pub fn begin(&self, grace: Duration) {
        self.stop_receiving.cancel();
        let abandon = self.abandon.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abandon.cancel();
        });
    }
}

/// The first SIGTERM or SIGINT stops receiving and starts the grace period; a second one ends
/// the process at once. `first` and `second` say what each means for the command.
pub fn watch_signals(
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
