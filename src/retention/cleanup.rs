//! Source cleanup: deleting CloudTrail files from a member account's bucket once, and only
//! once, the archive holds them byte for byte.
//!
//! For every source version older than the account's `cleanup_after_days`, the source bytes
//! are read and hashed (as the reader role), and the archive is searched for a version of
//! the file's archive key with that SHA-256 and a lock. Only then is the source version
//! deleted, by its version id. A file that is not archived, archived with other bytes, or
//! archived without a lock stays, and the report says why. Nothing is deleted unless asked
//! (`execute`); a dry run reports the same decisions.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_s3::primitives::ByteStream;
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::aws::{Aws, Failure, MemberClients, Version, Versions};
use crate::config::{Account, Config, SourceBucket};
use crate::copy::meta;
use crate::notification::ObjectRef;
use crate::routing;

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(
        "cannot list s3://{bucket} (account {account}) as its reader role: {}; the role needs \
         s3:ListBucketVersions on it",
        failure.detail
    )]
    List {
        account: String,
        bucket: String,
        failure: Failure,
    },
}

/// What became of one source version.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub account: String,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    /// `deleted`, `would_delete`, or `kept`.
    pub outcome: &'static str,
    /// Why it was kept: `not_archived`, `archive_differs`, `archive_not_locked`,
    /// `not_cloudtrail`, `read_failed`, `delete_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub execute: bool,
    /// Source versions looked at (old enough), by outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Kept versions, by reason.
    pub kept: BTreeMap<&'static str, u64>,
    /// Versions younger than their account's `cleanup_after_days`, not looked at.
    pub too_recent: u64,
    pub bytes_deleted: u64,
    pub decisions: Vec<Decision>,
}

/// Deletes (or, in a dry run, names) the source versions the archive holds.
pub struct Cleanup<'c> {
    config: &'c Config,
    archive: aws_sdk_s3::Client,
    members: HashMap<String, MemberClients>,
    concurrency: usize,
}

impl<'c> Cleanup<'c> {
    pub async fn new(config: &'c Config, aws: &Aws, concurrency: usize) -> Cleanup<'c> {
        let mut members = HashMap::new();
        for account in &config.accounts {
            members.insert(
                account.id.to_string(),
                aws.member(account, &config.archive.region).await,
            );
        }
        Cleanup {
            config,
            archive: aws.s3(&config.archive.region),
            members,
            concurrency,
        }
    }

    /// Cleans the buckets of `accounts` (each by its own `cleanup_after_days`), as of `now`.
    pub async fn run(
        &self,
        accounts: &[&'c Account],
        execute: bool,
        now: OffsetDateTime,
        mut progress: impl FnMut(&Report),
    ) -> Result<Report, CleanupError> {
        let mut report = Report {
            execute,
            ..Report::default()
        };
        for account in accounts {
            let Some(days) = account.cleanup_after_days else {
                continue;
            };
            let cutoff = now - time::Duration::days(i64::from(days));
            for bucket in &account.buckets {
                let source = self.members[account.id.as_str()].s3(&bucket.region);
                let mut pages = Versions::new(source.clone(), bucket.name.as_str(), None);
                loop {
                    let page = pages
                        .next_page()
                        .await
                        .map_err(|failure| CleanupError::List {
                            account: account.id.to_string(),
                            bucket: bucket.name.to_string(),
                            failure,
                        })?;
                    let Some(page) = page else { break };
                    let (old, young): (Vec<Version>, Vec<Version>) =
                        page.versions.into_iter().partition(|v| {
                            v.last_modified
                                .is_some_and(|t| t.secs() <= cutoff.unix_timestamp())
                        });
                    report.too_recent += young.len() as u64;
                    let mut decided = stream::iter(old)
                        .map(|v| self.decide(account, bucket, &source, v, execute))
                        .buffer_unordered(self.concurrency.max(1));
                    while let Some((decision, bytes)) = decided.next().await {
                        *report.outcomes.entry(decision.outcome).or_default() += 1;
                        if let Some(reason) = decision.reason {
                            *report.kept.entry(reason).or_default() += 1;
                        }
                        if decision.outcome == "deleted" {
                            report.bytes_deleted += bytes;
                        }
                        report.decisions.push(decision);
                        progress(&report);
                    }
                }
            }
        }
        report.decisions.sort_by(|a, b| {
            (&a.bucket, &a.key, &a.version_id).cmp(&(&b.bucket, &b.key, &b.version_id))
        });
        Ok(report)
    }

    async fn decide(
        &self,
        account: &Account,
        bucket: &SourceBucket,
        source: &aws_sdk_s3::Client,
        v: Version,
        execute: bool,
    ) -> (Decision, u64) {
        let mut decision = Decision {
            account: account.id.to_string(),
            bucket: bucket.name.to_string(),
            key: v.key.clone(),
            version_id: v.version_id.clone().unwrap_or_else(|| "null".to_owned()),
            outcome: "kept",
            reason: None,
            detail: None,
            sha256: None,
        };
        let kept = |mut d: Decision, reason: &'static str, detail: String| {
            d.reason = Some(reason);
            d.detail = Some(detail);
            (d, 0)
        };
        let object = ObjectRef {
            bucket: bucket.name.to_string(),
            key: v.key.clone(),
            version_id: v.version_id.clone(),
            size: Some(v.size),
            etag: None,
            event_time: None,
        };
        let route = match routing::route(self.config, &object) {
            Ok(route) => route,
            Err(refusal) => return kept(decision, "not_cloudtrail", refusal.to_string()),
        };
        let sha = match sha256_of(source, &object).await {
            Ok(sha) => sha,
            Err(why) => return kept(decision, "read_failed", why),
        };
        decision.sha256 = Some(sha.clone());
        match self.archived(&route.archive_key, &sha, v.size).await {
            Ok(None) => {}
            Ok(Some((reason, detail))) => return kept(decision, reason, detail),
            Err(why) => return kept(decision, "read_failed", why),
        }
        if !execute {
            decision.outcome = "would_delete";
            return (decision, 0);
        }
        let deleted = source
            .delete_object()
            .bucket(bucket.name.as_str())
            .key(&v.key)
            .set_version_id(v.version_id.clone())
            .send()
            .await;
        match deleted {
            Ok(_) => {
                tracing::info!(
                    account = %account.id, bucket = %bucket.name, key = %v.key,
                    version_id = %decision.version_id, sha256 = %sha,
                    archive_key = %route.archive_key,
                    "source deleted: the archive holds it byte for byte, locked"
                );
                decision.outcome = "deleted";
                (decision, v.size)
            }
            Err(e) => kept(
                decision,
                "delete_failed",
                format!(
                    "DeleteObject failed: {}; the reader role needs s3:DeleteObjectVersion on \
                     the bucket for cleanup",
                    Failure::from_sdk(&e).detail
                ),
            ),
        }
    }

    /// Why the archive does not (yet) vouch for these bytes, or `None` when a locked version
    /// of `key` holds exactly them.
    async fn archived(
        &self,
        key: &str,
        sha: &str,
        size: u64,
    ) -> Result<Option<(&'static str, String)>, String> {
        let bucket = self.config.archive.bucket.as_str();
        let versions = Versions::new(self.archive.clone(), bucket, Some(key))
            .all()
            .await
            .map_err(|f| format!("listing s3://{bucket}/{key} failed: {}", f.detail))?;
        let mut seen = Vec::new();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for v in versions.iter().filter(|v| v.key == key) {
            let head = self
                .archive
                .head_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(v.version_id.clone())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "HeadObject s3://{bucket}/{key} failed: {}",
                        Failure::from_sdk(&e).detail
                    )
                })?;
            let archived_sha = head
                .metadata()
                .and_then(|m| m.get(meta::SHA256))
                .cloned()
                .unwrap_or_default();
            if archived_sha != sha || head.content_length().unwrap_or(-1) != size as i64 {
                seen.push(archived_sha);
                continue;
            }
            let locked = head.object_lock_mode().is_some()
                && head
                    .object_lock_retain_until_date()
                    .is_some_and(|d| d.secs() > now);
            return Ok(if locked {
                None
            } else {
                Some((
                    "archive_not_locked",
                    format!(
                        "s3://{bucket}/{key} version {} holds these bytes but is not locked; \
                         run `trailvault retention audit --fix` first",
                        v.version_id.as_deref().unwrap_or("null")
                    ),
                ))
            });
        }
        Ok(Some(if seen.is_empty() {
            (
                "not_archived",
                format!("s3://{bucket}/{key} does not exist; the worker or a backfill must archive it first"),
            )
        } else {
            (
                "archive_differs",
                format!(
                    "no version of s3://{bucket}/{key} has SHA-256 {sha} (the archive has {})",
                    seen.join(", ")
                ),
            )
        }))
    }
}

/// The SHA-256 of a source version, streamed.
async fn sha256_of(source: &aws_sdk_s3::Client, object: &ObjectRef) -> Result<String, String> {
    let out = source
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id.clone())
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetObject s3://{}/{} failed: {}",
                object.bucket,
                object.key,
                Failure::from_sdk(&e).detail
            )
        })?;
    let mut body: ByteStream = out.body;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("reading s3://{}/{} failed: {e}", object.bucket, object.key))?
    {
        hasher.update(&chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}
