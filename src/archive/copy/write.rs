//! The archive side's write: byte-exact, SSE-KMS under the archive key, the SHA-256 checksum
//! sent along for S3 to verify, the policy's Object Lock; one request for small objects, a
//! multipart upload fed by a second, pinned read for large ones. And the metadata it carries.

use std::collections::HashMap;

use bytes::Bytes;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::error::{archive_error, source_error, CopyError};
use super::read::{get_pinned, next_chunk};
use super::{Copier, Headers, Pin, MAX_PARTS, PART_SIZE};
use crate::archive::layout::{meta, rfc3339};
use crate::cloudtrail::logfile::{LogSummary, NotALogFile};
use crate::notification::ObjectRef;
use crate::retention::lock::{object_lock_mode, set_retention};

/// What every archive write carries, single-part or multipart: the source's content headers,
/// the metadata, SSE-KMS under the archive key with a bucket key, and the SHA-256 checksum
/// algorithm (S3 wants it, or Content-MD5, with lock headers; with the value given, the SDK
/// sends ours instead of computing its own). A macro, because PutObject and
/// CreateMultipartUpload have builders of different types.
/// What S3 answered to a single-part `PutObject`.
pub(super) struct PutAnswer {
    pub version_id: Option<String>,
    pub sse: Option<String>,
    pub kms_key: Option<String>,
    /// The SHA-256 S3 verified the bytes against before it accepted them.
    pub sha256: Option<[u8; 32]>,
}

macro_rules! with_archive_headers {
    ($builder:expr, $headers:expr, $kms_key_arn:expr) => {
        $builder
            .set_content_type($headers.content.content_type.clone())
            .set_content_encoding($headers.content.content_encoding.clone())
            .set_cache_control($headers.content.cache_control.clone())
            .set_content_disposition($headers.content.content_disposition.clone())
            .set_content_language($headers.content.content_language.clone())
            .set_metadata(Some($headers.metadata.clone()))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id($kms_key_arn)
            .bucket_key_enabled(true)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
    };
}

impl Copier {
    /// Aborts the archive's multipart uploads begun more than `older_than` ago: those of a
    /// replica killed mid-upload (its message came back and was copied again), which would
    /// otherwise cost storage until the bucket's lifecycle rule removes them after 7 days.
    /// Returns how many it aborted; a failure is logged, never fatal.
    pub async fn abort_abandoned_uploads(&self, older_than: std::time::Duration) -> usize {
        let cutoff = OffsetDateTime::now_utc() - older_than;
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let listed = self
                .archive
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await;
            let page = match listed {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(bucket = %self.bucket, error = %crate::aws::Failure::from_sdk(&e).detail,
                        "could not list the archive's unfinished multipart uploads (s3:ListBucketMultipartUploads); \
                         the lifecycle rule removes them after 7 days");
                    return aborted;
                }
            };
            for upload in page.uploads() {
                let begun = upload
                    .initiated()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok());
                let (Some(key), Some(id), Some(begun)) = (upload.key(), upload.upload_id(), begun)
                else {
                    continue;
                };
                if begun > cutoff {
                    continue;
                }
                match self
                    .archive
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                {
                    Ok(_) => aborted += 1,
                    Err(e) => {
                        tracing::warn!(
                            key = %crate::archive::layout::printable(key),
                            error = %crate::aws::Failure::from_sdk(&e).detail,
                            "could not abort an abandoned multipart upload"
                        )
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
        }
        if aborted > 0 {
            tracing::info!(
                aborted,
                "aborted multipart uploads abandoned by a stopped replica"
            );
        }
        aborted
    }

    pub(super) async fn put_single(
        &self,
        key: &str,
        body: Bytes,
        headers: &Headers,
        sha256: &[u8; 32],
        retain_until: OffsetDateTime,
        only_if_new: bool,
    ) -> Result<PutAnswer, CopyError> {
        let put = self
            .archive
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        let out = with_archive_headers!(put, headers, &self.kms_key_arn)
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha256))
            .object_lock_mode(object_lock_mode(self.lock.mode))
            .object_lock_retain_until_date(DateTime::from_secs(retain_until.unix_timestamp()))
            .set_if_none_match(only_if_new.then(|| "*".to_owned()))
            // As for a part: the signed checksum header already covers every byte.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| archive_error(&self.bucket, key, &e))?;
        crate::failpoint::hit("after_write");
        Ok(PutAnswer {
            version_id: out.version_id().map(str::to_owned),
            sse: out.server_side_encryption().map(|s| s.as_str().to_owned()),
            kms_key: out.ssekms_key_id().map(str::to_owned),
            sha256: out
                .checksum_sha256()
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .and_then(|raw| <[u8; 32]>::try_from(raw).ok()),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn put_multipart(
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
        let create = self
            .archive
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key);
        let created = with_archive_headers!(create, headers, &self.kms_key_arn)
            .send()
            .await
            .map_err(|e| archive_error(&self.bucket, key, &e))?;
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
        set_retention(
            &self.archive,
            &self.bucket,
            key,
            version_id.as_deref(),
            None,
            self.lock.mode,
            retain_until,
        )
        .await
        .map_err(|e| archive_error(&self.bucket, key, &e))?;
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
                            crate::failpoint::hit("between_parts");
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
            .map_err(|e| archive_error(&self.bucket, key, &e))?;
        crate::failpoint::hit("after_complete");
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
            // The part's SHA-256 travels signed in its checksum header, which S3 verifies:
            // signing the payload too would hash every byte a second time for nothing.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| archive_error(&self.bucket, key, &e))?;
        Ok(CompletedPart::builder()
            .part_number(number as i32)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .checksum_sha256(checksum)
            .build())
    }
}

/// The source's user metadata, untouched, plus trailvault's own. Returns the metadata and the
/// quarantine reason, if any.
#[allow(clippy::too_many_arguments)]
pub(super) fn metadata(
    source: Option<&HashMap<String, String>>,
    account: &str,
    object: &ObjectRef,
    version: Option<&str>,
    etag: Option<&str>,
    sha256: &str,
    now: OffsetDateTime,
    log: Option<Result<LogSummary, NotALogFile>>,
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
        Some(Err(reason)) => quarantine = Some(reason.to_string()),
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

        let log = Some(Err(NotALogFile::Gzip("invalid gzip header".to_owned())));
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
