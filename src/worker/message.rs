//! One message: parse, route, copy each object, decide.

use std::time::Instant;

use time::OffsetDateTime;
use tracing::{error, info, warn};

use super::disposition::{decide, Disposition, ObjectResult};
use super::{Ctx, QueueCtx};
use crate::copy::Outcome;
use crate::manifest::Entry;
use crate::notification::{self, Notification, ObjectRef};
use crate::routing;
use crate::telemetry::metrics::{AccountLabel, ObjectLabels, ReasonLabel};

/// Does a message's work and says what becomes of it.
#[tracing::instrument(skip_all, fields(queue = %queue.name, message_id = %message_id))]
pub async fn handle(ctx: &Ctx, queue: &QueueCtx, message_id: &str, body: &str) -> Disposition {
    if ctx.shutdown.stopping() {
        return Disposition::HandBack;
    }
    let objects = match notification::parse(body) {
        Ok(Notification::Objects(objects)) => objects,
        Ok(Notification::NoWork(what)) => {
            info!(
                kind = what.label(),
                "nothing to archive in this message; acknowledged"
            );
            return Disposition::Delete(what.label());
        }
        Err(e) => {
            warn!(
                error = %e,
                "not a notification trailvault understands; it stays on the queue until \
                 redrive moves it to the dead-letter queue"
            );
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel { reason: e.label() })
                .inc();
            ctx.tally.failure(e.label());
            return Disposition::Park;
        }
    };
    let mut results = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        // Between objects, never in the middle of one.
        if i > 0 && ctx.shutdown.stopping() {
            return Disposition::HandBack;
        }
        results.push(archive(ctx, object).await);
    }
    decide(&results)
}

async fn archive(ctx: &Ctx, object: &ObjectRef) -> ObjectResult {
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    let route = match routing::route(&ctx.config, object) {
        Ok(route) => route,
        Err(refusal) => {
            warn!(bucket, key, reason = refusal.label(), error = %refusal, "refused");
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel {
                    reason: refusal.label(),
                })
                .inc();
            ctx.tally.failure(refusal.label());
            return ObjectResult::Park;
        }
    };
    let account = route.account.name.as_str();
    let started = Instant::now();
    match ctx.copier.copy(&route, object).await {
        Ok(copied) => {
            ctx.metrics
                .copy_seconds
                .observe(started.elapsed().as_secs_f64());
            if let Some(at) = object.event_time {
                let lag = (OffsetDateTime::now_utc() - at).as_seconds_f64();
                ctx.metrics.lag_seconds.observe(lag.max(0.0));
            }
            ctx.metrics
                .objects
                .get_or_create(&ObjectLabels {
                    account: account.to_owned(),
                    kind: kind_label(route.kind),
                    outcome: copied.outcome.label(),
                })
                .inc();
            let written = copied.outcome != Outcome::Duplicate;
            if written {
                ctx.metrics
                    .archived_bytes
                    .get_or_create(&AccountLabel {
                        account: account.to_owned(),
                    })
                    .inc_by(copied.bytes);
            }
            if copied.lock_repaired {
                ctx.metrics.lock_repairs.inc();
            }
            if written && copied.quarantine.is_some() {
                ctx.metrics
                    .quarantined
                    .get_or_create(&AccountLabel {
                        account: account.to_owned(),
                    })
                    .inc();
            }
            ctx.tally
                .copied(account, route.bucket.region.as_str(), &copied);
            if let Some(manifest) = &ctx.manifest {
                let entry = Entry {
                    archive_key: route.archive_key.clone(),
                    version_id: copied
                        .version_id
                        .clone()
                        .unwrap_or_else(|| "null".to_owned()),
                    sha256: copied.sha256.clone(),
                    size: copied.bytes,
                    source_bucket: object.bucket.clone(),
                    source_key: object.key.clone(),
                    source_version_id: copied.source_version_id.clone(),
                    account: route.account.id.to_string(),
                    archived_at: copied.archived_at.clone(),
                    outcome: copied.outcome.label().to_owned(),
                };
                // Only fails once the writer is gone, which happens after every copy ended.
                let _ = manifest.send(entry).await;
            }
            let version_id = copied.version_id.as_deref().unwrap_or("null");
            match (&copied.outcome, &copied.quarantine) {
                (Outcome::Duplicate, _) => info!(
                    account, bucket, key, archive_key = %route.archive_key, version_id,
                    sha256 = %copied.sha256, "already archived with the same SHA-256; nothing written"
                ),
                (Outcome::Conflict, _) => warn!(
                    account, bucket, key, archive_key = %route.archive_key, version_id,
                    sha256 = %copied.sha256, bytes = copied.bytes,
                    "the archive held different bytes at this key; archived as a new version"
                ),
                (Outcome::Archived, Some(reason)) => warn!(
                    account, bucket, key, archive_key = %route.archive_key, version_id,
                    sha256 = %copied.sha256, bytes = copied.bytes, reason = %reason,
                    "archived byte-exact but quarantined: not a valid CloudTrail log file"
                ),
                (Outcome::Archived, None) => info!(
                    account, bucket, key, archive_key = %route.archive_key, version_id,
                    sha256 = %copied.sha256, bytes = copied.bytes, "archived"
                ),
            }
            ObjectResult::Done
        }
        Err(e) => {
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel { reason: e.label() })
                .inc();
            ctx.tally.failure(e.label());
            if e.is_retryable() {
                warn!(account, bucket, key, reason = e.label(), error = %e, "copy failed; will retry");
                ObjectResult::Retry
            } else {
                error!(
                    account, bucket, key, reason = e.label(), error = %e,
                    "copy failed and retrying will not help; the message goes to the dead-letter queue"
                );
                ObjectResult::Park
            }
        }
    }
}

fn kind_label(kind: crate::cloudtrail::key::FileKind) -> &'static str {
    use crate::cloudtrail::key::FileKind;
    match kind {
        FileKind::Log => "log",
        FileKind::Digest => "digest",
        FileKind::Insight => "insight",
    }
}
