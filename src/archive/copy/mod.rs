//! Source -> archive: one object copied byte for byte, checked, encrypted and locked, once.
//!
//! For every object, in as few requests as the guarantees allow:
//!
//! 1. `GetObject` on the source, as the member's reader role (by version when the
//!    notification names one). Its headers give the size, version, ETag, content headers and
//!    user metadata (CloudTrail's digest signatures live there).
//! 2. That one streaming read computes the SHA-256 of exactly the bytes delivered, checks
//!    CloudTrail log files as they pass, and keeps the bytes of objects up to
//!    [`SINGLE_PART_LIMIT`].
//! 3. Small objects: `PutObject` with `If-None-Match: *`. If the key is taken (412), a
//!    `HeadObject` (with S3's stored checksum) tells a duplicate from a conflict. A duplicate
//!    is judged as a first write is: the same size, S3's own SHA-256 of the version (read
//!    back and hashed where S3 keeps none for the whole object), SSE-KMS under the archive
//!    key; never trailvault's metadata, which any writer can set. Then nothing is written and
//!    the version's lock is made good if it falls short. Anything else is a conflict (a member
//!    rewrote a file it delivered): the first bytes stay the key's current version, what
//!    every reader gets; the new bytes are kept, locked, at
//!    `_trailvault/conflicts/{archive key}/{their SHA-256}`, written only if new, so a replay
//!    of bytes already kept adds nothing. Two replicas racing on one notification write one
//!    version.
//! 4. Large objects: `HeadObject` on the archive key first (a duplicate must not cost an
//!    upload), then a multipart upload fed by a second read pinned to the first's version (or
//!    ETag), one part in memory at a time; its SHA-256 must match the first read's. Lock set
//!    after completion.
//! 5. Every write: SSE-KMS under the archive key with a bucket key, the SHA-256 checksum sent
//!    along (and the payload not hashed again for signing: the signed checksum header covers
//!    it), the source's content headers and user metadata plus trailvault's own, Object Lock
//!    mode and retain-until from the policy.
//! 6. The check. A single-part write is proven by S3's answer where it can be
//!    (`Copier::proves`); otherwise, and after a multipart upload, `HeadObject` on the new
//!    version: size, SHA-256 (trailvault's and S3's stored one), encryption and lock as
//!    intended. Only then is the copy done.
//!
//! By stage, one file each: `read.rs` the source side, `write.rs` the archive write and the
//! metadata it carries, `check.rs` what S3 stored (and a duplicate's lock), `error.rs` what
//! can go wrong.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use time::OffsetDateTime;

use self::error::source_error;
pub use self::error::CopyError;
use self::write::metadata;
use super::layout::{conflict_key, meta, printable, rfc3339};
use super::routing::Route;
use crate::alerts::eval::{FileMatches, Rules};
use crate::aws::{Aws, Failure, Head, Members};
use crate::cloudtrail::logfile::{LogSummary, NotALogFile};
use crate::config::Config;
use crate::notification::ObjectRef;
use crate::retention::policy::Lock;
use crate::retention::retain_until;

mod check;
mod error;
mod read;
mod write;

/// Objects up to this size are read into memory once and written with one `PutObject`;
/// larger ones stream through a multipart upload. CloudTrail's files are nearly all far
/// below it.
pub const SINGLE_PART_LIMIT: u64 = PART_SIZE;
/// Multipart part size (S3 allows 5 MiB to 5 GiB, at most 10,000 parts).
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;

/// How a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new object in the archive.
    Archived,
    /// The archive already held these exact bytes at this key; nothing was written.
    Duplicate,
    /// The archive held other bytes at this key; these were kept apart, under
    /// `_trailvault/conflicts/`, and the key's first bytes stay what readers get.
    Conflict,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Archived => "archived",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
        }
    }
}

/// A finished copy.
#[derive(Debug, Clone)]
pub struct Copied {
    /// Where the bytes are: the route's archive key, or for a conflict the key beside it
    /// under `_trailvault/conflicts/`.
    pub archive_key: String,
    pub outcome: Outcome,
    pub bytes: u64,
    /// Hex SHA-256 of the object's bytes.
    pub sha256: String,
    /// The archive version that holds them.
    pub version_id: Option<String>,
    /// Why the file was marked quarantined, if it was.
    pub quarantine: Option<String>,
    /// A correction made to an already-archived version's lock.
    pub lock_repaired: bool,
    /// When the version was archived (RFC 3339): now, or for a duplicate, when it first was.
    pub archived_at: String,
    /// The source version it is a copy of, when the source bucket is versioned.
    pub source_version_id: Option<String>,
    /// What the alert rules matched in a valid log file, when they were evaluated.
    pub matches: Option<FileMatches>,
}

/// Copies objects into the archive. Built once; shared by every task.
pub struct Copier {
    archive: aws_sdk_s3::Client,
    bucket: String,
    /// The archive key's ARN, resolved once: what S3 reports back on every object.
    kms_key_arn: String,
    lock: Lock,
    members: Arc<Members>,
    /// Evaluated on every record of every log file read, when set.
    rules: Option<Rules>,
}

/// What the first read of the source found.
struct Inspected {
    sha256: [u8; 32],
    /// The bytes, for objects small enough to write in one request (shared, never copied:
    /// the conditional write and a conflict's second write send the same buffer).
    body: Option<Bytes>,
    /// The log-file check, for CloudTrail log files.
    log: Option<Result<LogSummary, NotALogFile>>,
}

impl Copier {
    /// Resolves the archive's KMS key to its ARN (unless given as one) and builds a reader for
    /// every member account.
    pub async fn new(config: &Config, aws: &Aws) -> anyhow::Result<Copier> {
        let home = &config.archive.region;
        let kms_key_arn = match config.archive.kms_key.key_arn() {
            Some(arn) => arn.to_owned(),
            None => resolve_key(aws, config).await?,
        };
        Ok(Copier {
            archive: aws.s3(home),
            bucket: config.archive.bucket.to_string(),
            kms_key_arn,
            lock: config.retention.lock,
            members: Arc::new(Members::new(aws, home)),
            rules: None,
        })
    }

    /// Evaluates `rules` on every record of every log file this copier reads.
    pub fn evaluate(&mut self, rules: Rules) {
        self.rules = Some(rules);
    }

    /// The archive bucket's client and name.
    pub fn archive(&self) -> (&aws_sdk_s3::Client, &str) {
        (&self.archive, &self.bucket)
    }

    /// The member accounts' clients (the same ones every copy reads through).
    pub fn members(&self) -> &Arc<Members> {
        &self.members
    }

    /// The archive key's ARN: what every archived object is encrypted under.
    pub fn kms_key_arn(&self) -> &str {
        &self.kms_key_arn
    }

    /// Copies one routed object into the archive (see the module documentation).
    pub async fn copy(&self, route: &Route<'_>, object: &ObjectRef) -> Result<Copied, CopyError> {
        let mut matches = None;
        let mut copied = self.copy_once(route, object, &mut matches).await?;
        copied.matches = matches;
        Ok(copied)
    }

    /// The copy; `matches` gets what the rules matched as soon as the source is read.
    async fn copy_once(
        &self,
        route: &Route<'_>,
        object: &ObjectRef,
        matches: &mut Option<FileMatches>,
    ) -> Result<Copied, CopyError> {
        let account = route.account.id.to_string();
        let source = self
            .members
            .get(route.account)
            .await
            .s3(&route.bucket.region);
        let key = &route.archive_key;

        let got = source
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await
            .map_err(|e| source_error(&account, object, Failure::from_sdk(&e)))?;
        // The size decides the path and bounds the memory a copy may take: without it, the
        // object is not read at all.
        let size = got
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| CopyError::SourceChanged {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                reason: "S3 sent no Content-Length for it".to_owned(),
            })?;
        let source_version = got.version_id().filter(|v| *v != "null").map(str::to_owned);
        let source_etag = got.e_tag().map(str::to_owned);
        let small = size <= SINGLE_PART_LIMIT;
        let content = Content {
            content_type: got.content_type().map(str::to_owned),
            content_encoding: got.content_encoding().map(str::to_owned),
            cache_control: got.cache_control().map(str::to_owned),
            content_disposition: got.content_disposition().map(str::to_owned),
            content_language: got.content_language().map(str::to_owned),
        };
        let source_metadata = got.metadata().cloned();

        // A large object is compared with the archive before its upload, so that a duplicate
        // never costs a multipart upload; a small one is written first, conditionally.
        let existing = if small {
            None
        } else {
            self.head_archive(key, None).await?
        };
        let mut inspected = self.inspect(got.body, route, object, size, small).await?;
        if self.rules.is_some() {
            if let Some(Ok(summary)) = &mut inspected.log {
                *matches = Some(std::mem::take(&mut summary.matches));
            }
        }
        let sha_hex = hex::encode(inspected.sha256);
        // Where other bytes for a taken key go: the first bytes stay what readers get.
        let conflict = conflict_key(key, &sha_hex);
        let mut target = key.clone();
        let mut outcome = Outcome::Archived;
        if let Some(existing) = &existing {
            match self.vouch(key, existing, size, &inspected.sha256).await? {
                None => return self.duplicate(key, existing, size, sha_hex).await,
                Some(why) => {
                    tracing::debug!(archive_key = %printable(key), why, "not a duplicate");
                    if let Some(kept) = self.head_archive(&conflict, None).await? {
                        return self
                            .duplicate_conflict(&conflict, &kept, size, sha_hex)
                            .await;
                    }
                    target = conflict.clone();
                    outcome = Outcome::Conflict;
                }
            }
        }

        let now = OffsetDateTime::now_utc();
        let retain_until = retain_until(now, self.lock.period);
        let (metadata, quarantine) = metadata(
            source_metadata.as_ref(),
            &account,
            object,
            source_version.as_deref(),
            source_etag.as_deref(),
            &sha_hex,
            now,
            inspected.log,
        );
        let headers = Headers { content, metadata };
        // What S3 answered to a single-part write, which may prove it (see `proves`).
        let (version_id, answer) = match inspected.body {
            Some(body) => {
                let first = self
                    .put_single(
                        key,
                        body.clone(),
                        &headers,
                        &inspected.sha256,
                        retain_until,
                        true,
                    )
                    .await;
                match first {
                    Ok(answer) => (answer.version_id.clone(), Some(answer)),
                    Err(CopyError::ArchiveWrite { failure, .. }) if failure.is_status(412) => {
                        // The key is taken: by these very bytes (a redelivery, or another
                        // replica), or by others (a rewrite, kept apart as a conflict).
                        let taken = self.head_archive(key, None).await?.ok_or_else(|| {
                            CopyError::SourceChanged {
                                bucket: object.bucket.clone(),
                                key: object.key.clone(),
                                reason: "its archive key was taken, then freed".to_owned(),
                            }
                        })?;
                        if self
                            .vouch(key, &taken, size, &inspected.sha256)
                            .await?
                            .is_none()
                        {
                            return self.duplicate(key, &taken, size, sha_hex).await;
                        }
                        target = conflict.clone();
                        outcome = Outcome::Conflict;
                        let written = self
                            .put_single(
                                &conflict,
                                body,
                                &headers,
                                &inspected.sha256,
                                retain_until,
                                true,
                            )
                            .await;
                        match written {
                            Ok(answer) => (answer.version_id.clone(), Some(answer)),
                            // This rewrite was kept before: a replay adds nothing.
                            Err(CopyError::ArchiveWrite { failure, .. })
                                if failure.is_status(412) =>
                            {
                                let kept =
                                    self.head_archive(&conflict, None).await?.ok_or_else(|| {
                                        CopyError::SourceChanged {
                                            bucket: object.bucket.clone(),
                                            key: object.key.clone(),
                                            reason: "its conflict key was taken, then freed"
                                                .to_owned(),
                                        }
                                    })?;
                                return self
                                    .duplicate_conflict(&conflict, &kept, size, sha_hex)
                                    .await;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                let pin = Pin {
                    version: source_version.clone(),
                    etag: source_etag.clone(),
                };
                let version_id = self
                    .put_multipart(
                        &target,
                        &account,
                        &source,
                        object,
                        &pin,
                        size,
                        &headers,
                        &inspected.sha256,
                        retain_until,
                        true,
                    )
                    .await?;
                (version_id, None)
            }
        };
        let key = &target;

        if !answer.is_some_and(|a| self.proves(&a, &inspected.sha256)) {
            let version = version_id.clone().unwrap_or_else(|| "null".to_owned());
            let written = self.head_archive(key, version_id.as_deref()).await?;
            let written = written.ok_or_else(|| CopyError::ArchiveCheck {
                bucket: self.bucket.clone(),
                key: key.clone(),
                version: version.clone(),
                problem: "the version just written is not there".to_owned(),
            })?;
            if let Some(problem) = self.check(&written, size, &sha_hex, retain_until) {
                return Err(CopyError::ArchiveCheck {
                    bucket: self.bucket.clone(),
                    key: key.clone(),
                    version,
                    problem,
                });
            }
        }
        crate::failpoint::hit("after_check");
        Ok(Copied {
            archive_key: key.clone(),
            outcome,
            bytes: size,
            sha256: sha_hex,
            version_id,
            quarantine,
            lock_repaired: false,
            archived_at: rfc3339(now),
            source_version_id: source_version,
            matches: None,
        })
    }

    /// These bytes were kept as a conflict before: nothing to write, once they are judged as
    /// any duplicate is (a version planted at the conflict key is not taken on its name).
    async fn duplicate_conflict(
        &self,
        conflict: &str,
        kept: &Head,
        size: u64,
        sha256: String,
    ) -> Result<Copied, CopyError> {
        let mut sha = [0u8; 32];
        hex::decode_to_slice(&sha256, &mut sha).expect("our own hex");
        if let Some(why) = self.vouch(conflict, kept, size, &sha).await? {
            return Err(CopyError::ArchiveCheck {
                bucket: self.bucket.clone(),
                key: conflict.to_owned(),
                version: kept.version_id.clone().unwrap_or_else(|| "null".to_owned()),
                problem: format!(
                    "the conflict key named for these bytes holds others ({why}): someone wrote \
                     it besides trailvault; inspect its versions"
                ),
            });
        }
        self.duplicate(conflict, kept, size, sha256).await
    }

    /// The archive already holds these bytes: nothing to write, but its lock must be right.
    async fn duplicate(
        &self,
        key: &str,
        existing: &Head,
        size: u64,
        sha256: String,
    ) -> Result<Copied, CopyError> {
        let lock_repaired = self.ensure_locked(key, existing).await?;
        Ok(Copied {
            archive_key: key.to_owned(),
            outcome: Outcome::Duplicate,
            bytes: size,
            sha256,
            version_id: existing.version_id.clone(),
            quarantine: existing.metadata.get(meta::QUARANTINE).cloned(),
            lock_repaired,
            archived_at: existing
                .metadata
                .get(meta::ARCHIVED_AT)
                .cloned()
                .unwrap_or_default(),
            source_version_id: existing
                .metadata
                .get(meta::SOURCE_VERSION)
                .filter(|v| *v != "null")
                .cloned(),
            matches: None,
        })
    }
}

/// The ARN of a key given as an alias or key id: what S3 reports on every object.
async fn resolve_key(aws: &Aws, config: &Config) -> anyhow::Result<String> {
    let home = &config.archive.region;
    let key = aws
        .kms(home)
        .describe_key()
        .key_id(config.archive.kms_key.as_str())
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "archive.kms_key {}: {}; check the key exists in {home} and the worker may \
                 kms:DescribeKey (or give the key's ARN)",
                config.archive.kms_key,
                Failure::from_sdk(&e).detail
            )
        })?;
    Ok(key
        .key_metadata()
        .and_then(|m| m.arn())
        .ok_or_else(|| anyhow::anyhow!("KMS DescribeKey returned no ARN for archive.kms_key"))?
        .to_owned())
}

/// The source's content headers, carried to the archive copy as they are.
struct Content {
    content_type: Option<String>,
    content_encoding: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
}

/// Content headers and user metadata for the archive copy.
struct Headers {
    content: Content,
    metadata: HashMap<String, String>,
}

/// What pins a second read to the bytes of the first: the version where the bucket is
/// versioned, else the ETag.
struct Pin {
    version: Option<String>,
    etag: Option<String>,
}
