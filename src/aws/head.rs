//! One object version as S3 itself describes it: `HeadObject` by version, read once into a
//! value that says which fields S3 computed and which a writer chose.

use std::collections::HashMap;

use aws_sdk_s3::types::{ChecksumMode, ChecksumType, ObjectLockLegalHoldStatus};
use base64::Engine as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Failure, Version};
use crate::archive::layout::meta;
use crate::retention::policy::LockMode;

/// A `HeadObject` that failed, with what it asked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "HeadObject s3://{bucket}/{key}{} failed: {}; the identity needs s3:GetObject and \
     s3:GetObjectVersion on the bucket",
    version_id.as_ref().map(|v| format!(" version {v}")).unwrap_or_default(),
    failure.detail
)]
pub struct HeadError {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub failure: Failure,
}

/// A version's head. Size, last-modified time, encryption, lock and the stored checksum are
/// S3's own; `metadata` is whatever the writer sent, and proves nothing on its own.
#[derive(Debug, Clone)]
pub struct Head {
    pub version_id: Option<String>,
    pub size: u64,
    /// When S3 stored the version (to the second).
    pub last_modified: Option<OffsetDateTime>,
    pub metadata: HashMap<String, String>,
    pub sse: Option<String>,
    pub kms_key: Option<String>,
    pub lock_mode: Option<LockMode>,
    pub retain_until: Option<OffsetDateTime>,
    pub legal_hold: bool,
    /// Whether S3 assembled the version from a multipart upload (its ETag ends in `-N`).
    pub multipart: bool,
    /// S3's SHA-256 of the whole object, where it keeps one: a single-part upload sent with a
    /// SHA-256 checksum, which S3 verified against the bytes before accepting them. A
    /// multipart upload keeps only a checksum of its parts' checksums (SHA-256 has no
    /// full-object type for multipart uploads), and an upload sent with another algorithm
    /// none: both are `None` here.
    pub sha256: Option<[u8; 32]>,
}

impl Head {
    /// Reads `key` (at `version_id`, or its current version); with `checksum`, its stored
    /// checksum too, which S3 gives for an SSE-KMS object only to a caller allowed
    /// `kms:Decrypt` on the object's key.
    pub async fn read(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        checksum: bool,
    ) -> Result<Head, HeadError> {
        let h = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .set_checksum_mode(checksum.then_some(ChecksumMode::Enabled))
            .send()
            .await
            .map_err(|e| HeadError {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version_id: version_id.map(str::to_owned),
                failure: Failure::from_sdk(&e),
            })?;
        let time = |d: &aws_sdk_s3::primitives::DateTime| {
            OffsetDateTime::from_unix_timestamp(d.secs()).ok()
        };
        let multipart = h.e_tag().is_some_and(is_multipart_etag);
        Ok(Head {
            version_id: h.version_id().map(str::to_owned),
            size: h.content_length().unwrap_or(0).max(0) as u64,
            last_modified: h.last_modified().and_then(time),
            metadata: h.metadata().cloned().unwrap_or_default(),
            sse: h.server_side_encryption().map(|s| s.as_str().to_owned()),
            kms_key: h.ssekms_key_id().map(str::to_owned),
            lock_mode: h
                .object_lock_mode()
                .and_then(|m| LockMode::parse(m.as_str())),
            retain_until: h.object_lock_retain_until_date().and_then(time),
            legal_hold: h.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
            multipart,
            // The emulator returns a bare value for a multipart upload's composite checksum,
            // without its `-N` or its type: the ETag decides first.
            sha256: (!multipart)
                .then(|| full_object_sha256(h.checksum_sha256(), h.checksum_type()))
                .flatten(),
        })
    }
}

impl Head {
    /// [`Head::read`] of a listed version, without its checksum.
    pub async fn of(s3: &aws_sdk_s3::Client, bucket: &str, v: &Version) -> Result<Head, HeadError> {
        Head::read(s3, bucket, &v.key, v.version_id.as_deref(), false).await
    }

    /// trailvault's archived-at stamp, as the writer set it (see `retention::archived_at` for
    /// how far it is believed).
    pub fn stamp(&self) -> Option<OffsetDateTime> {
        self.metadata
            .get(meta::ARCHIVED_AT)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
    }
}

/// S3 computes a multipart upload's ETag from its parts' and appends their count.
fn is_multipart_etag(etag: &str) -> bool {
    etag.trim_matches('"').contains('-')
}

/// The stored SHA-256 when it covers the whole object.
fn full_object_sha256(value: Option<&str>, kind: Option<&ChecksumType>) -> Option<[u8; 32]> {
    if kind == Some(&ChecksumType::Composite) {
        return None;
    }
    // A composite value carries its part count (`...-3`) and does not decode to 32 bytes.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value?)
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_object_sha256_counts() {
        let digest = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(full_object_sha256(Some(&b64), None), Some(digest));
        assert_eq!(
            full_object_sha256(Some(&b64), Some(&ChecksumType::FullObject)),
            Some(digest)
        );
        // A multipart upload's checksum of checksums, with or without its type.
        assert_eq!(
            full_object_sha256(Some(&b64), Some(&ChecksumType::Composite)),
            None
        );
        assert_eq!(full_object_sha256(Some(&format!("{b64}-2")), None), None);
        assert_eq!(full_object_sha256(None, None), None);
        // Not SHA-256 sized: another algorithm's value in the wrong header, or garbage.
        assert_eq!(full_object_sha256(Some("AAAAAA=="), None), None);
        assert_eq!(full_object_sha256(Some("not base64!"), None), None);
    }

    #[test]
    fn a_multipart_etag_has_its_part_count() {
        assert!(is_multipart_etag("\"9b2cf535f27731c974343645a3985328-2\""));
        assert!(!is_multipart_etag("\"9b2cf535f27731c974343645a3985328\""));
        assert!(!is_multipart_etag("9b2cf535f27731c974343645a3985328"));
    }
}
