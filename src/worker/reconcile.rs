//! The archive bucket kept equal to the retention policy while the worker runs: checked at
//! start and every `retention.reconcile_interval`, then fixed (`enforce`) or only reported
//! (`report`, for a bucket whose configuration Terraform owns).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::retention::archive_bucket::{ArchiveBucket, BucketError};
use crate::retention::bucket::BucketState;
use crate::retention::policy::Reconcile;
use crate::telemetry::metrics::{Metrics, ResultLabel};

/// Compares the bucket with the policy once and acts as `mode` says. Never fails the worker:
/// archiving goes on whatever the bucket's configuration; the log and the metrics say what
/// is wrong.
pub async fn once(
    bucket: &ArchiveBucket,
    policy: &BucketState,
    mode: Reconcile,
    metrics: &Metrics,
) {
    let result = match bucket.read().await {
        Err(e) => {
            error!(bucket = bucket.name(), error = %e, "cannot compare the archive bucket with the retention policy");
            "failed"
        }
        Ok(state) => {
            let changes = state.diff(policy);
            metrics.retention_drift.set(changes.len() as i64);
            let list = changes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            match (changes.is_empty(), mode) {
                (true, _) => "equal",
                (false, Reconcile::Report) => {
                    warn!(
                        bucket = bucket.name(), changes = %list,
                        "the archive bucket differs from the retention policy; retention.reconcile \
                         is \"report\", so nothing was changed (`trailvault retention plan` shows it)"
                    );
                    "drift"
                }
                (false, Reconcile::Enforce) => match bucket.apply(policy).await {
                    Ok(_) => {
                        metrics.retention_drift.set(0);
                        info!(bucket = bucket.name(), changes = %list, "the archive bucket was made equal to the retention policy");
                        "applied"
                    }
                    Err(e @ BucketError::WouldWeaken { .. }) => {
                        error!(bucket = bucket.name(), error = %e, "the retention policy was not applied");
                        "refused"
                    }
                    Err(e) => {
                        error!(bucket = bucket.name(), error = %e, "the retention policy was not applied");
                        "failed"
                    }
                },
            }
        }
    };
    metrics
        .retention_checks
        .get_or_create(&ResultLabel { result })
        .inc();
}

/// Checks again every `interval` until `stop`.
pub async fn every(
    bucket: Arc<ArchiveBucket>,
    policy: Arc<BucketState>,
    mode: Reconcile,
    interval: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => once(&bucket, &policy, mode, &metrics).await,
        }
    }
}
