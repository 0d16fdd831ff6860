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
//!    `HeadObject` tells a duplicate (the same SHA-256: nothing is written, the archived
//!    version's lock is made good if it falls short) from a conflict (other bytes: archived as
//!    a new version, and reported). Two replicas racing on one notification write one version.
//! 4. Large objects: `HeadObject` on the archive key first (a duplicate must not cost an
//!    upload), then a multipart upload fed by a second read pinned to the first's version (or
//!    ETag), one part in memory at a time; its SHA-256 must match the first read's. Lock set
//!    after completion.
//! 5. Every write: SSE-KMS under the archive key with a bucket key, the SHA-256 checksum sent
//!    along, the source's content headers and user metadata plus trailvault's own, Object Lock
//!    mode and retain-until from the policy.
//! 6. `HeadObject` on the new version: size, SHA-256, encryption and lock as intended. Only
//!    then is the copy done.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockMode,
    ObjectLockRetentionMode, ServerSideEncryption,
};
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::layout::meta;
use super::routing::Route;
use crate::aws::{Aws, Failure, Members};
use crate::cloudtrail::key::FileKind;
use crate::cloudtrail::logfile::{LogCheck, LogSummary};
use crate::config::{Config, Lock, LockMode};
use crate::notification::ObjectRef;
use crate::retention::{self, retain_until};

/// Objects up to this size are read into memory once and written with one `PutObject`;
/// larger ones stream through a multipart upload. CloudTrail's files are nearly all far
/// below it.
pub const SINGLE_PART_LIMIT: u64 = 16 * 1024 * 1024;
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
    /// The archive held other bytes at this key; these were archived as a new version.
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
}

/// Why a copy did not happen. [`CopyError::is_retryable`] tells a passing condition from one
/// that waiting will not fix.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "s3://{bucket}/{key}{} does not exist (account {account}); if it was deleted after \
         the notification there is nothing to archive",
        version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default()
    )]
    SourceMissing {
        account: String,
        bucket: String,
        key: String,
        version: Option<String>,
    },
    #[error(
        "account {account}'s reader role may not read s3://{bucket}/{key}: {detail}; check \
         that its policy allows s3:GetObject (and s3:GetObjectVersion) on the bucket, and \
         kms:Decrypt on the bucket's key if it uses SSE-KMS"
    )]
    SourceDenied {
        account: String,
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("reading s3://{bucket}/{key} (account {account}) failed: {}", failure.detail)]
    SourceRead {
        account: String,
        bucket: String,
        key: String,
        failure: Failure,
    },
    #[error(
        "s3://{bucket}/{key} changed while it was being copied ({reason}); the copy was \
         abandoned and will be retried"
    )]
    SourceChanged {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("writing s3://{bucket}/{key} failed: {}", failure.detail)]
    ArchiveWrite {
        bucket: String,
        key: String,
        failure: Failure,
    },
    #[error(
        "the archive copy s3://{bucket}/{key} (version {version}) did not check out: {problem}"
    )]
    ArchiveCheck {
        bucket: String,
        key: String,
        version: String,
        problem: String,
    },
}

impl CopyError {
    /// Whether the same copy may succeed later. Either way the message is not deleted; this
    /// only decides how soon it comes back.
    pub fn is_retryable(&self) -> bool {
        match self {
            CopyError::SourceMissing { .. } | CopyError::SourceDenied { .. } => false,
            CopyError::SourceRead { failure, .. } | CopyError::ArchiveWrite { failure, .. } => {
                failure.retryable
            }
            CopyError::SourceChanged { .. } | CopyError::ArchiveCheck { .. } => true,
        }
    }

    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CopyError::SourceMissing { .. } => "source_missing",
            CopyError::SourceDenied { .. } => "source_denied",
            CopyError::SourceRead { .. } => "source_read",
            CopyError::SourceChanged { .. } => "source_changed",
            CopyError::ArchiveWrite { .. } => "archive_write",
            CopyError::ArchiveCheck { .. } => "archive_check",
        }
    }
}

/// Copies objects into the archive. Built once; shared by every task.
pub struct Copier {
    archive: aws_sdk_s3::Client,
    bucket: String,
    /// The archive key's ARN, resolved once: what S3 reports back on every object.
    kms_key_arn: String,
    lock: Lock,
    members: Arc<Members>,
}

/// An archived version, as `HeadObject` shows it.
struct Archived {
    version_id: Option<String>,
    size: u64,
    metadata: HashMap<String, String>,
    sse: Option<String>,
    kms_key: Option<String>,
    lock_mode: Option<String>,
    retain_until: Option<i64>,
}

/// What the first read of the source found.
struct Inspected {
    sha256: [u8; 32],
    /// The bytes, for objects small enough to write in one request.
    body: Option<Vec<u8>>,
    /// The log-file check, for CloudTrail log files.
    log: Option<Result<LogSummary, String>>,
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
        })
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
        let size = got.content_length().unwrap_or(0).max(0) as u64;
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
        let inspected = self.inspect(got.body, route, object, size, small).await?;
        let sha_hex = hex::encode(inspected.sha256);
        if let Some(existing) = &existing {
            if existing.metadata.get(meta::SHA256) == Some(&sha_hex) {
                return self.duplicate(key, existing, size, sha_hex).await;
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
        let (version_id, outcome) = match inspected.body {
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
                    Ok(version_id) => (version_id, Outcome::Archived),
                    Err(CopyError::ArchiveWrite { failure, .. }) if failure.is_status(412) => {
                        // The key is taken: by these very bytes (a redelivery, or another
                        // replica), or by others (a conflict, archived as a new version).
                        let taken = self.head_archive(key, None).await?.ok_or_else(|| {
                            CopyError::SourceChanged {
                                bucket: object.bucket.clone(),
                                key: object.key.clone(),
                                reason: "its archive key was taken, then freed".to_owned(),
                            }
                        })?;
                        if taken.metadata.get(meta::SHA256) == Some(&sha_hex) {
                            return self.duplicate(key, &taken, size, sha_hex).await;
                        }
                        let version_id = self
                            .put_single(key, body, &headers, &inspected.sha256, retain_until, false)
                            .await?;
                        (version_id, Outcome::Conflict)
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
                        key,
                        &account,
                        &source,
                        object,
                        &pin,
                        size,
                        &headers,
                        &inspected.sha256,
                        retain_until,
                        existing.is_none(),
                    )
                    .await?;
                let outcome = if existing.is_some() {
                    Outcome::Conflict
                } else {
                    Outcome::Archived
                };
                (version_id, outcome)
            }
        };

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
        Ok(Copied {
            outcome,
            bytes: size,
            sha256: sha_hex,
            version_id,
            quarantine,
            lock_repaired: false,
            archived_at: rfc3339(now),
            source_version_id: source_version,
        })
    }

    /// The archive already holds these bytes: nothing to write, but its lock must be right.
    async fn duplicate(
        &self,
        key: &str,
        existing: &Archived,
        size: u64,
        sha256: String,
    ) -> Result<Copied, CopyError> {
        let lock_repaired = self.ensure_locked(key, existing).await?;
        Ok(Copied {
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
        })
    }

    /// The first read: hash everything, check log files, keep small objects' bytes.
    async fn inspect(
        &self,
        mut body: ByteStream,
        route: &Route<'_>,
        object: &ObjectRef,
        size: u64,
        keep: bool,
    ) -> Result<Inspected, CopyError> {
        let account = route.account.id.to_string();
        let mut hasher = Sha256::new();
        let mut kept = keep.then(|| Vec::with_capacity(size as usize));
        let mut check = (route.kind == FileKind::Log).then(LogCheck::start);
        let mut read = 0u64;
        while let Some(chunk) = next_chunk(&mut body, &account, object).await? {
            read += chunk.len() as u64;
            hasher.update(&chunk);
            if let Some(kept) = &mut kept {
                kept.extend_from_slice(&chunk);
            }
            if let Some(check) = &mut check {
                check.feed(chunk).await;
            }
        }
        if read != size {
            return Err(CopyError::SourceChanged {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                reason: format!("read {read} bytes of {size}"),
            });
        }
        let log = match check {
            Some(check) => Some(check.finish().await),
            None => None,
        };
        Ok(Inspected {
            sha256: hasher.finalize().into(),
            body: kept,
            log,
        })
    }

    async fn put_single(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &Headers,
        sha256: &[u8; 32],
        retain_until: OffsetDateTime,
        only_if_new: bool,
    ) -> Result<Option<String>, CopyError> {
        let out = self
            .archive
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .set_content_type(headers.content.content_type.clone())
            .set_content_encoding(headers.content.content_encoding.clone())
            .set_cache_control(headers.content.cache_control.clone())
            .set_content_disposition(headers.content.content_disposition.clone())
            .set_content_language(headers.content.content_language.clone())
            .set_metadata(Some(headers.metadata.clone()))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_arn)
            .bucket_key_enabled(true)
            // The algorithm header too: S3 wants it (or Content-MD5) with lock headers, and with
            // the value given the SDK sends ours instead of computing its own.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha256))
            .object_lock_mode(lock_mode(self.lock.mode))
            .object_lock_retain_until_date(DateTime::from_secs(retain_until.unix_timestamp()))
            .set_if_none_match(only_if_new.then(|| "*".to_owned()))
            .send()
            .await
            .map_err(|e| self.write_error(key, &e))?;
        Ok(out.version_id().map(str::to_owned))
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_multipart(
        &self,
        key: &str,
        account: &str,
        source: &aws_sdk_s3::Client,
        object: &ObjectRef,
        pin: &Pin,
        size: u64,
        headers: &Headers,
        sha256: &[u8; 32],
        retain_until: OffsetDateTime,
        only_if_new: bool,
    ) -> Result<Option<String>, CopyError> {
        let created = self
            .archive
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(headers.content.content_type.clone())
            .set_content_encoding(headers.content.content_encoding.clone())
            .set_cache_control(headers.content.cache_control.clone())
            .set_content_disposition(headers.content.content_disposition.clone())
            .set_content_language(headers.content.content_language.clone())
            .set_metadata(Some(headers.metadata.clone()))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_arn)
            .bucket_key_enabled(true)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|e| self.write_error(key, &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self
            .upload_parts(
                key,
                &upload_id,
                account,
                source,
                object,
                pin,
                size,
                sha256,
                only_if_new,
            )
            .await;
        let version_id = match result {
            Ok(version_id) => version_id,
            Err(e) => {
                // Best effort: an abandoned upload costs storage until the bucket's lifecycle
                // rule for incomplete uploads removes it.
                let _ = self
                    .archive
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        };
        // Retention given at CreateMultipartUpload is not reliably kept (the emulator drops
        // it), so it is set on the finished version.
        self.archive
            .put_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.clone())
            .retention(
                aws_sdk_s3::types::ObjectLockRetention::builder()
                    .mode(retention_mode(self.lock.mode))
                    .retain_until_date(DateTime::from_secs(retain_until.unix_timestamp()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.write_error(key, &e))?;
        Ok(version_id)
    }

    /// The second read, pinned to the first's version (or ETag), one part in memory at a time.
    #[allow(clippy::too_many_arguments)]
    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        account: &str,
        source: &aws_sdk_s3::Client,
        object: &ObjectRef,
        pin: &Pin,
        size: u64,
        sha256: &[u8; 32],
        only_if_new: bool,
    ) -> Result<Option<String>, CopyError> {
        let part_size = PART_SIZE.max(size.div_ceil(MAX_PARTS)) as usize;
        let mut body = get_pinned(source, object, pin)
            .await
            .map_err(|f| source_error(account, object, f))?;
        let mut whole = Sha256::new();
        let mut parts = Vec::new();
        let mut buffer = Vec::with_capacity(part_size);
        let mut done = false;
        while !done {
            match next_chunk(&mut body, account, object).await? {
                Some(chunk) => {
                    whole.update(&chunk);
                    let mut chunk = chunk;
                    while !chunk.is_empty() {
                        let take = (part_size - buffer.len()).min(chunk.len());
                        buffer.extend_from_slice(&chunk.split_to(take));
                        if buffer.len() == part_size {
                            let part =
                                std::mem::replace(&mut buffer, Vec::with_capacity(part_size));
                            parts.push(
                                self.upload_part(key, upload_id, parts.len() + 1, part)
                                    .await?,
                            );
                        }
                    }
                }
                None => done = true,
            }
        }
        if !buffer.is_empty() || parts.is_empty() {
            parts.push(
                self.upload_part(key, upload_id, parts.len() + 1, buffer)
                    .await?,
            );
        }
        let whole: [u8; 32] = whole.finalize().into();
        if &whole != sha256 {
            return Err(CopyError::SourceChanged {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                reason: "the second read's SHA-256 differs from the first's".to_owned(),
            });
        }
        let done = self
            .archive
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_if_none_match(only_if_new.then(|| "*".to_owned()))
            .send()
            .await
            .map_err(|e| self.write_error(key, &e))?;
        Ok(done.version_id().map(str::to_owned))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: usize,
        part: Vec<u8>,
    ) -> Result<CompletedPart, CopyError> {
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&part));
        let out = self
            .archive
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| self.write_error(key, &e))?;
        Ok(CompletedPart::builder()
            .part_number(number as i32)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .checksum_sha256(checksum)
            .build())
    }

    async fn head_archive(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Archived>, CopyError> {
        match self
            .archive
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(h) => Ok(Some(Archived {
                version_id: h.version_id().map(str::to_owned),
                size: h.content_length().unwrap_or(0).max(0) as u64,
                metadata: h.metadata().cloned().unwrap_or_default(),
                sse: h.server_side_encryption().map(|s| s.as_str().to_owned()),
                kms_key: h.ssekms_key_id().map(str::to_owned),
                lock_mode: h.object_lock_mode().map(|m| m.as_str().to_owned()),
                retain_until: h.object_lock_retain_until_date().map(|d| d.secs()),
            })),
            Err(e) => {
                let failure = Failure::from_sdk(&e);
                if failure.is_status(404) && version.is_none() {
                    Ok(None)
                } else {
                    Err(CopyError::ArchiveWrite {
                        bucket: self.bucket.clone(),
                        key: key.to_owned(),
                        failure,
                    })
                }
            }
        }
    }

    /// What is wrong with a written version, if anything.
    fn check(
        &self,
        v: &Archived,
        size: u64,
        sha: &str,
        retain_until: OffsetDateTime,
    ) -> Option<String> {
        if v.size != size {
            return Some(format!("{} bytes instead of {size}", v.size));
        }
        if v.metadata.get(meta::SHA256).map(String::as_str) != Some(sha) {
            return Some("its SHA-256 metadata is not the source's".to_owned());
        }
        if v.sse.as_deref() != Some("aws:kms") || v.kms_key.as_deref() != Some(&self.kms_key_arn) {
            return Some(format!(
                "encrypted with {:?} under {:?}, not aws:kms under {}",
                v.sse, v.kms_key, self.kms_key_arn
            ));
        }
        if v.lock_mode.as_deref() != Some(self.lock.mode.as_str())
            || v.retain_until.unwrap_or(0) < retain_until.unix_timestamp()
        {
            return Some(format!(
                "locked {:?} until {:?}, not {} until {}",
                v.lock_mode,
                v.retain_until,
                self.lock.mode.as_str(),
                retain_until.unix_timestamp()
            ));
        }
        None
    }

    /// Makes an archived version's lock at least what the policy gives it from the time it
    /// was archived (never shorter, never weaker). Returns whether it had to change anything.
    async fn ensure_locked(&self, key: &str, v: &Archived) -> Result<bool, CopyError> {
        let archived_at = v
            .metadata
            .get(meta::ARCHIVED_AT)
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(OffsetDateTime::now_utc);
        let judgement = retention::judge(
            self.lock,
            archived_at,
            v.lock_mode.as_deref().and_then(LockMode::parse),
            v.retain_until
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        );
        let Some((mode, until)) = judgement.fix else {
            return Ok(false);
        };
        self.archive
            .put_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(v.version_id.clone())
            .retention(
                aws_sdk_s3::types::ObjectLockRetention::builder()
                    .mode(retention_mode(mode))
                    .retain_until_date(DateTime::from_secs(until.unix_timestamp()))
                    .build(),
            )
            // Turning GOVERNANCE into COMPLIANCE overrides a governance lock.
            .set_bypass_governance_retention(
                (v.lock_mode.as_deref() == Some("GOVERNANCE")).then_some(true),
            )
            .send()
            .await
            .map_err(|e| self.write_error(key, &e))?;
        tracing::warn!(
            archive_key = key,
            version_id = v.version_id.as_deref().unwrap_or("null"),
            was = judgement.standing.label(),
            "an archived version's lock fell short of the policy; extended"
        );
        Ok(true)
    }

    fn write_error<E, R>(&self, key: &str, e: &aws_sdk_s3::error::SdkError<E, R>) -> CopyError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + crate::aws::errors::HasStatus,
    {
        CopyError::ArchiveWrite {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            failure: Failure::from_sdk(e),
        }
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

/// `GetObject` of the exact object the first `HeadObject` saw: by version where the bucket is
/// versioned, else on the condition that the ETag has not changed.
async fn get_pinned(
    source: &aws_sdk_s3::Client,
    object: &ObjectRef,
    pin: &Pin,
) -> Result<ByteStream, Failure> {
    let out = source
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(pin.version.clone())
        .set_if_match(if pin.version.is_none() {
            pin.etag.clone()
        } else {
            None
        })
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    Ok(out.body)
}

async fn next_chunk(
    body: &mut ByteStream,
    account: &str,
    object: &ObjectRef,
) -> Result<Option<Bytes>, CopyError> {
    body.try_next().await.map_err(|e| CopyError::SourceRead {
        account: account.to_owned(),
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        failure: Failure {
            status: None,
            code: None,
            retryable: true,
            detail: format!("the body stopped: {e}"),
        },
    })
}

fn source_error(account: &str, object: &ObjectRef, failure: Failure) -> CopyError {
    let (bucket, key) = (object.bucket.clone(), object.key.clone());
    if failure.is_status(404) || failure.is_code("NoSuchKey") || failure.is_code("NoSuchVersion") {
        CopyError::SourceMissing {
            account: account.to_owned(),
            bucket,
            key,
            version: object.version_id.clone(),
        }
    } else if failure.is_status(403) {
        CopyError::SourceDenied {
            account: account.to_owned(),
            bucket,
            key,
            detail: failure.detail,
        }
    } else if failure.is_status(412) {
        CopyError::SourceChanged {
            bucket,
            key,
            reason: "its ETag changed between reads".to_owned(),
        }
    } else {
        CopyError::SourceRead {
            account: account.to_owned(),
            bucket,
            key,
            failure,
        }
    }
}

/// The source's user metadata, untouched, plus trailvault's own. Returns the metadata and the
/// quarantine reason, if any.
#[allow(clippy::too_many_arguments)]
fn metadata(
    source: Option<&HashMap<String, String>>,
    account: &str,
    object: &ObjectRef,
    version: Option<&str>,
    etag: Option<&str>,
    sha256: &str,
    now: OffsetDateTime,
    log: Option<Result<LogSummary, String>>,
) -> (HashMap<String, String>, Option<String>) {
    let mut m = HashMap::new();
    let mut quarantine = None;
    for (k, v) in source.into_iter().flatten() {
        if let Some(rest) = k.strip_prefix(meta::PREFIX) {
            // A source may not speak for trailvault; its entry is kept, renamed.
            m.insert(format!("{}{rest}", meta::SHADOWED), v.clone());
            quarantine = Some("the source's user metadata used trailvault's own names".to_owned());
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert(meta::SOURCE_BUCKET.into(), object.bucket.clone());
    m.insert(meta::SOURCE_KEY.into(), header_safe_key(&object.key));
    m.insert(
        meta::SOURCE_VERSION.into(),
        version.unwrap_or("null").to_owned(),
    );
    if let Some(etag) = etag {
        m.insert(meta::SOURCE_ETAG.into(), etag.trim_matches('"').to_owned());
    }
    m.insert(meta::ACCOUNT.into(), account.to_owned());
    m.insert(meta::SHA256.into(), sha256.to_owned());
    m.insert(meta::ARCHIVED_AT.into(), rfc3339(now));
    match log {
        Some(Ok(summary)) => {
            m.insert(meta::RECORDS.into(), summary.records.to_string());
            if let (Some(oldest), Some(newest)) = (summary.oldest, summary.newest) {
                m.insert(meta::OLDEST_EVENT.into(), header_safe(&oldest));
                m.insert(meta::NEWEST_EVENT.into(), header_safe(&newest));
            }
        }
        Some(Err(reason)) => quarantine = Some(reason),
        None => {}
    }
    if let Some(reason) = &quarantine {
        m.insert(meta::QUARANTINE.into(), header_safe(reason));
    }
    (m, quarantine)
}

/// Keys may hold any UTF-8; metadata values travel as HTTP headers, so everything but
/// printable ASCII (and `%` itself) is percent-encoded.
fn header_safe_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// Printable ASCII only, at most 256 characters: for free text in metadata.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(256)
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format")
}

fn lock_mode(mode: LockMode) -> ObjectLockMode {
    match mode {
        LockMode::Compliance => ObjectLockMode::Compliance,
        LockMode::Governance => ObjectLockMode::Governance,
    }
}

fn retention_mode(mode: LockMode) -> ObjectLockRetentionMode {
    match mode {
        LockMode::Compliance => ObjectLockRetentionMode::Compliance,
        LockMode::Governance => ObjectLockRetentionMode::Governance,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn metadata_keeps_the_source_and_cannot_be_spoofed() {
        let mut source = HashMap::new();
        source.insert("signature".to_owned(), "ab12".to_owned());
        source.insert("signature-algorithm".to_owned(), "SHA256withRSA".to_owned());
        source.insert("trailvault-sha256".to_owned(), "forged".to_owned());
        let object = ObjectRef {
            bucket: "b".to_owned(),
            key: "AWSLogs/é x/k".to_owned(),
            version_id: None,
            size: None,
            etag: None,
            event_time: None,
        };
        let now = datetime!(2026-11-21 12:00:00.25 UTC);
        let (m, quarantine) = metadata(
            Some(&source),
            "111122223333",
            &object,
            None,
            Some("\"e1\""),
            "cafe",
            now,
            None,
        );
        assert_eq!(m["signature"], "ab12");
        assert_eq!(m["signature-algorithm"], "SHA256withRSA");
        assert_eq!(
            m[meta::SHA256],
            "cafe",
            "the source cannot set trailvault's hash"
        );
        assert_eq!(m["trailvault-shadowed-sha256"], "forged");
        assert!(quarantine.is_some());
        assert_eq!(m[meta::SOURCE_KEY], "AWSLogs/%C3%A9 x/k");
        assert_eq!(m[meta::SOURCE_ETAG], "e1");
        assert_eq!(m[meta::SOURCE_VERSION], "null");
        assert_eq!(m[meta::ARCHIVED_AT], "2026-11-21T12:00:00Z");

        let log = Some(Err("not valid gzip: invalid gzip header".to_owned()));
        let (m, quarantine) = metadata(
            None,
            "111122223333",
            &object,
            Some("v1"),
            None,
            "cafe",
            now,
            log,
        );
        assert_eq!(
            quarantine.as_deref(),
            Some("not valid gzip: invalid gzip header")
        );
        assert_eq!(m[meta::QUARANTINE], "not valid gzip: invalid gzip header");
        assert!(!m.contains_key(meta::SOURCE_ETAG));
    }
}
