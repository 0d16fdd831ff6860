//! One object, whoever brought it (a notification, the sweep, a backfill): route, copy,
//! check, count, log, and list it for the manifest. The one implementation of archiving.

use std::time::Instant;

use time::OffsetDateTime;
use tracing::{error, info, warn};

use super::classify::{classify, Failed, ObjectResult};
use super::copy::Outcome;
use super::layout::printable;
use super::record::Listing;
use super::routing::{self, Refusal};
use super::Ctx;
use crate::alerts::deliver::Evidence;
use crate::manifest::Entry;
use crate::notification::ObjectRef;
use crate::telemetry::metrics::{AccountLabel, ObjectLabels, ReasonLabel};

/// How archiving one object ended.
#[derive(Debug)]
pub struct Archival {
    pub result: ObjectResult,
    /// How the copy ended, when it did.
    pub outcome: Option<Outcome>,
    pub bytes: u64,
    /// Why it failed, when it did (the metrics' reason label).
    pub reason: Option<&'static str>,
    /// Resolves once a durable manifest lists the version (when manifests are on).
    pub listing: Option<Listing>,
}

impl Archival {
    /// Archiving panicked (a bug): retried, never taken as done.
    pub fn panicked() -> Archival {
        Archival::failed(ObjectResult::Retry, "panic")
    }

    fn failed(result: ObjectResult, reason: &'static str) -> Archival {
        Archival {
            result,
            outcome: None,
            bytes: 0,
            reason: Some(reason),
            listing: None,
        }
    }
}

/// Routes, copies and checks one object, then counts, logs and lists it for the manifest.
pub async fn archive(ctx: &Ctx, object: &ObjectRef) -> Archival {
    let _copying = ctx.copying.start();
    // Keys come from member accounts: printed escaped, so that none can forge a log line.
    let key = printable(&object.key);
    let bucket = object.bucket.as_str();
    let mut accounts = ctx.accounts.snapshot();
    let mut routed = routing::route_among(&accounts, &ctx.config.archive.key_prefix, object);
    if let (Err(Refusal::UnknownBucket { .. }), Some(discovery)) = (&routed, &ctx.discovery) {
        // A bucket of an account the organization gained since the last look, perhaps.
        discovery.refresh_soon().await;
        accounts = ctx.accounts.snapshot();
        routed = routing::route_among(&accounts, &ctx.config.archive.key_prefix, object);
    }
    let route = match routed {
        Ok(route) => route,
        Err(refusal) => {
            warn!(bucket, key = %key, reason = refusal.label(), error = %refusal, "refused");
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel {
                    reason: refusal.label(),
                })
                .inc();
            ctx.tally.failure(refusal.label());
            let result = classify(Failed::Refused {
                refusal: &refusal,
                discovery: ctx.discovery.is_some(),
            });
            return Archival::failed(result, refusal.label());
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
            let mut listing = None;
            if let Some(recorder) = &ctx.manifest {
                let entry = Entry {
                    archive_key: copied.archive_key.clone(),
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
                listing = Some(recorder.record(entry).await);
            }
            let version_id = copied.version_id.as_deref().unwrap_or("null");
            match (&copied.outcome, &copied.quarantine) {
                (Outcome::Duplicate, _) => info!(
                    account, bucket, key = %key, archive_key = %printable(&copied.archive_key), version_id,
                    sha256 = %copied.sha256, "already archived with the same SHA-256; nothing written"
                ),
                (Outcome::Conflict, _) => warn!(
                    account, bucket, key = %key, archive_key = %printable(&route.archive_key),
                    kept_at = %printable(&copied.archive_key), version_id,
                    sha256 = %copied.sha256, bytes = copied.bytes,
                    "the source was rewritten after it was archived: readers still get the first \
                     bytes; the new ones are kept apart as evidence (kept_at)"
                ),
                (Outcome::Archived, Some(reason)) => warn!(
                    account, bucket, key = %key, archive_key = %printable(&route.archive_key), version_id,
                    sha256 = %copied.sha256, bytes = copied.bytes, reason = %reason,
                    "archived byte-exact but quarantined: not a valid CloudTrail log file"
                ),
                (Outcome::Archived, None) => info!(
                    account, bucket, key = %key, archive_key = %printable(&route.archive_key), version_id,
                    sha256 = %copied.sha256, bytes = copied.bytes, "archived"
                ),
            }
            if let Some(result) = alert(ctx, &route, object, &copied).await {
                return Archival {
                    result,
                    outcome: Some(copied.outcome),
                    bytes: copied.bytes,
                    reason: Some("alert_delivery"),
                    listing,
                };
            }
            Archival {
                result: ObjectResult::Done,
                outcome: Some(copied.outcome),
                bytes: copied.bytes,
                reason: None,
                listing,
            }
        }
        Err(e) => {
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel { reason: e.label() })
                .inc();
            ctx.tally.failure(e.label());
            if e.archive_side() {
                ctx.archive_health.failed(&e.to_string(), &ctx.metrics);
            }
            let result = classify(Failed::Copy(&e));
            match result {
                ObjectResult::Retry => {
                    warn!(account, bucket, key = %key, reason = e.label(), error = %e, "copy failed; will retry")
                }
                _ => error!(
                    account, bucket, key = %key, reason = e.label(), error = %e,
                    "copy failed and retrying will not help; the message goes to the dead-letter queue"
                ),
            }
            Archival::failed(result, e.label())
        }
    }
}

/// Delivers the alerts of an archived log file's records, when alerts are on and some record
/// matched. `Some(Retry)` when they are not out: the archive side of it is done, but the
/// message stays until its alerts are out too. Never the message's fault: never parked.
async fn alert(
    ctx: &Ctx,
    route: &routing::Route<'_>,
    object: &ObjectRef,
    copied: &super::copy::Copied,
) -> Option<ObjectResult> {
    let alerter = ctx.alerter.as_ref()?;
    let matches = copied.matches.as_ref().filter(|m| !m.is_empty())?;
    let account = route.account.id.to_string();
    let region = crate::cloudtrail::key::parse(&object.key)
        .map(|k| k.region.to_owned())
        .unwrap_or_else(|_| route.bucket.region.to_string());
    let evidence = Evidence {
        account: &account,
        account_name: &route.account.name,
        region: &region,
        archive_bucket: ctx.config.archive.bucket.as_str(),
        archive_key: &copied.archive_key,
        version_id: copied.version_id.as_deref(),
        sha256: &copied.sha256,
        source_bucket: &object.bucket,
        source_key: &object.key,
    };
    let fresh = copied.outcome != super::copy::Outcome::Duplicate;
    match alerter.deliver(&evidence, matches, fresh).await {
        Ok(_) => None,
        Err(e) => {
            ctx.metrics.alert_failures.inc();
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel {
                    reason: "alert_delivery",
                })
                .inc();
            ctx.tally.failure("alert_delivery");
            error!(account = %route.account.name, archive_key = %printable(&copied.archive_key),
                error = %e, "archived, but its alerts are not out; the message stays and is retried");
            Some(classify(Failed::Alert(&e)))
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
