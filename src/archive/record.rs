//! The worker's side of the manifest chain: collect what this replica archived, and append a
//! signed manifest of it every period and when the worker stops.
//!
//! Entries live in memory until their manifest is written. A replica that is killed outright
//! (SIGKILL, or a second signal) loses the entries of its current period: the versions stay
//! archived and locked, and `trailvault verify` names them as listed by no manifest. A version
//! seen again (a redelivered message finds it archived) is listed again, so that a crash
//! between copy and acknowledgement leaves nothing unlisted.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::manifest::{Entry, Writer};
use crate::telemetry::metrics::Metrics;

/// A manifest is written early once this many entries wait, so that one manifest stays a few
/// MB at most however busy the period.
const MAX_ENTRIES: usize = 10_000;

/// Collects entries from `inbox` and writes them every `period` (aligned to the clock, as
/// CloudTrail's hourly digests are) until every sender is gone; then writes what is left.
pub async fn run(
    mut writer: Writer,
    mut inbox: mpsc::Receiver<Entry>,
    period: Duration,
    metrics: Arc<Metrics>,
) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut start = OffsetDateTime::now_utc();
    loop {
        let wait = until_next_boundary(OffsetDateTime::now_utc(), period);
        tokio::select! {
            received = inbox.recv() => match received {
                Some(entry) => {
                    entries.push(entry);
                    if entries.len() >= MAX_ENTRIES {
                        flush(&mut writer, &mut entries, &mut start, &metrics).await;
                    }
                }
                None => {
                    flush(&mut writer, &mut entries, &mut start, &metrics).await;
                    if !entries.is_empty() {
                        error!(
                            unlisted = entries.len(),
                            "stopping with archived versions that no manifest lists; \
                             `trailvault verify` will name them"
                        );
                    }
                    return;
                }
            },
            _ = tokio::time::sleep(wait) => {
                flush(&mut writer, &mut entries, &mut start, &metrics).await;
            }
        }
    }
}

/// Writes the waiting entries, if any; on failure they stay for the next attempt.
async fn flush(
    writer: &mut Writer,
    entries: &mut Vec<Entry>,
    start: &mut OffsetDateTime,
    metrics: &Metrics,
) {
    let end = OffsetDateTime::now_utc();
    if entries.is_empty() {
        *start = end;
        return;
    }
    match writer.write(*start, end, entries).await {
        Ok(written) => {
            info!(
                manifest = %written.key,
                sequence = written.sequence,
                entries = written.entries,
                "manifest written"
            );
            metrics.manifests_written.inc();
            metrics.manifest_entries.inc_by(written.entries as u64);
            entries.clear();
            *start = end;
        }
        Err(e) => {
            metrics.manifest_failures.inc();
            error!(error = %e, waiting = entries.len(), "manifest not written; will try again");
        }
    }
}

/// How long until the next multiple of `period` since the epoch.
fn until_next_boundary(now: OffsetDateTime, period: Duration) -> Duration {
    let period = period.as_secs().max(1);
    let secs = now.unix_timestamp().max(0) as u64;
    let next = (secs / period + 1) * period;
    Duration::from_secs(next - secs)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn periods_are_aligned_to_the_clock() {
        let hour = Duration::from_secs(3600);
        assert_eq!(
            until_next_boundary(datetime!(2026-11-30 05:59:00 UTC), hour),
            Duration::from_secs(60)
        );
        assert_eq!(
            until_next_boundary(datetime!(2026-11-30 06:00:00 UTC), hour),
            hour
        );
    }
}
