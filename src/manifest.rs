//! The archive's own signed chain of manifests: tamper evidence for every version trailvault
//! writes, not only for CloudTrail's files.
//!
//! Every period (and when it stops) a worker replica writes a manifest listing the versions it
//! archived (archive key, version id, SHA-256, size, source bucket/key/version, account,
//! archived-at), into `_trailvault/manifests/NNNNNNNNNNNN.json`, Object-Locked like everything
//! else. Each manifest names the one before it (key, SHA-256 of its bytes, signature) and is
//! signed with the archive's KMS SIGN_VERIFY key, RSASSA-PKCS1-v1_5 over SHA-256 of a string
//! shaped like CloudTrail's:
//!
//! ```text
//! {createdAt}
//! {archive bucket}/{manifest key}
//! {hex SHA-256 of the manifest's bytes}
//! {previousManifestSignature, or the text null}
//! ```
//!
//! The signature is the object's user metadata `signature` (hex), as CloudTrail does it.
//!
//! **Several replicas, one chain.** The sequence number is the key, and a manifest is written
//! with `If-None-Match: *`: two replicas closing a period at once cannot both take number N.
//! The loser reads manifest N (its bytes and signature become its `previous`), re-signs, and
//! takes N+1. So the chain is one line of consecutive numbers whatever the number of
//! replicas, and a number missing from it is a manifest removed.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::archive::layout::{
    manifest_key as key, manifest_sequence, rfc3339, MANIFESTS as PREFIX,
};
use crate::aws::{Aws, Failure};
use crate::cloudtrail::digest;
use crate::config::Config;
use crate::retention::lock::object_lock_mode;
use crate::retention::policy::Lock;
use crate::retention::retain_until;

/// The KMS signing algorithm (SHA256withRSA, as CloudTrail's digests).
pub const SIGNING_ALGORITHM: &str = "RSASSA_PKCS1_V1_5_SHA_256";
/// The format of the manifest JSON.
pub const FORMAT_VERSION: u32 = 1;

/// One manifest, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub manifest_version: u32,
    pub archive_bucket: String,
    pub sequence: u64,
    /// The replica that wrote it.
    pub writer: String,
    pub period_start: String,
    pub period_end: String,
    pub created_at: String,
    pub signing_key: String,
    pub signature_algorithm: String,
    pub previous_manifest_key: Option<String>,
    /// Hex SHA-256 of the previous manifest's bytes.
    pub previous_manifest_hash_value: Option<String>,
    pub previous_manifest_signature: Option<String>,
    pub entries: Vec<Entry>,
}

/// One archived version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub archive_key: String,
    pub version_id: String,
    /// Hex SHA-256 of the version's bytes.
    pub sha256: String,
    pub size: u64,
    pub source_bucket: String,
    pub source_key: String,
    pub source_version_id: Option<String>,
    pub account: String,
    pub archived_at: String,
    /// `archived`, `conflict` (other bytes for a taken key, kept under
    /// `_trailvault/conflicts/`), or `duplicate` (seen again: listed again, so that a version
    /// whose first manifest was lost is still listed).
    pub outcome: String,
}

impl Manifest {
    /// The string signed for a manifest read from `bytes` at `key`.
    pub fn string_to_sign(&self, key: &str, bytes: &[u8]) -> String {
        digest::string_to_sign(
            &self.created_at,
            &self.archive_bucket,
            key,
            bytes,
            self.previous_manifest_signature.as_deref(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "cannot list the manifests in s3://{bucket}/{PREFIX}: {}; the worker needs \
         s3:ListBucket on the archive",
        failure.detail
    )]
    List { bucket: String, failure: Failure },
    #[error("cannot read manifest s3://{bucket}/{key}: {detail}")]
    Read {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error(
        "KMS could not sign manifest {key} with archive.signing_key {signing_key}: {}; the \
         worker needs kms:Sign on it, and it must be an RSA SIGN_VERIFY key",
        failure.detail
    )]
    Sign {
        key: String,
        signing_key: String,
        failure: Failure,
    },
    #[error("cannot write manifest s3://{bucket}/{key}: {}", failure.detail)]
    Write {
        bucket: String,
        key: String,
        failure: Failure,
    },
    #[error(
        "gave up writing a manifest after {attempts} attempts: other writers kept taking the \
         next number"
    )]
    Contended { attempts: u32 },
}

/// The newest manifest of the chain, as far as this writer knows.
#[derive(Debug, Clone)]
struct Head {
    sequence: u64,
    key: String,
    sha256: String,
    signature: String,
}

/// Appends manifests to the archive's chain.
pub struct Writer {
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    bucket: String,
    signing_key: String,
    kms_key_arn: String,
    lock: Lock,
    writer: String,
    head: Option<Head>,
}

/// A manifest written.
#[derive(Debug, Clone)]
pub struct Written {
    pub key: String,
    pub sequence: u64,
    pub entries: usize,
}

impl Writer {
    /// A writer for the configured archive, which finds the chain's newest manifest first.
    /// `kms_key_arn` is the archive key's ARN (for SSE-KMS).
    pub async fn new(
        config: &Config,
        aws: &Aws,
        kms_key_arn: &str,
        writer: String,
    ) -> Result<Option<Writer>, ManifestError> {
        let Some(signing_key) = &config.archive.signing_key else {
            return Ok(None);
        };
        let region = &config.archive.region;
        let mut w = Writer {
            s3: aws.s3(region),
            kms: aws.kms(region),
            bucket: config.archive.bucket.to_string(),
            signing_key: signing_key.to_string(),
            kms_key_arn: kms_key_arn.to_owned(),
            lock: config.retention.lock,
            writer,
            head: None,
        };
        w.head = w.find_head().await?;
        Ok(Some(w))
    }

    /// The newest manifest in the archive (the highest number), read for its hash and
    /// signature.
    async fn find_head(&self) -> Result<Option<Head>, ManifestError> {
        let mut newest = None;
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(PREFIX)
            // A planted key XML cannot carry must not stop the manifests.
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ManifestError::List {
                bucket: self.bucket.clone(),
                failure: Failure::from_sdk(&e),
            })?;
            for o in page.contents() {
                let key = o.key().map(crate::aws::listing::url_decoded);
                if let Some(n) = key.as_deref().and_then(manifest_sequence) {
                    newest = newest.max(Some(n));
                }
            }
        }
        match newest {
            Some(n) => Ok(Some(self.read_head(n).await?)),
            None => Ok(None),
        }
    }

    async fn read_head(&self, sequence: u64) -> Result<Head, ManifestError> {
        let key = key(sequence);
        let read_error = |detail: String| ManifestError::Read {
            bucket: self.bucket.clone(),
            key: key.clone(),
            detail,
        };
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| read_error(Failure::from_sdk(&e).detail))?;
        let signature = out
            .metadata()
            .and_then(|m| m.get(digest::SIGNATURE_METADATA))
            .cloned()
            .ok_or_else(|| read_error("it has no signature metadata".to_owned()))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| read_error(e.to_string()))?
            .into_bytes();
        Ok(Head {
            sequence,
            sha256: hex::encode(Sha256::digest(&bytes)),
            key,
            signature,
        })
    }

    /// Appends a manifest of `entries`, archived between `start` and `end`.
    pub async fn write(
        &mut self,
        start: OffsetDateTime,
        end: OffsetDateTime,
        entries: &[Entry],
    ) -> Result<Written, ManifestError> {
        const ATTEMPTS: u32 = 100;
        for _ in 0..ATTEMPTS {
            let sequence = self.head.as_ref().map_or(1, |h| h.sequence + 1);
            let key = key(sequence);
            let created_at = OffsetDateTime::now_utc();
            let manifest = Manifest {
                manifest_version: FORMAT_VERSION,
                archive_bucket: self.bucket.clone(),
                sequence,
                writer: self.writer.clone(),
                period_start: rfc3339(start),
                period_end: rfc3339(end),
                created_at: rfc3339(created_at),
                signing_key: self.signing_key.clone(),
                signature_algorithm: SIGNING_ALGORITHM.to_owned(),
                previous_manifest_key: self.head.as_ref().map(|h| h.key.clone()),
                previous_manifest_hash_value: self.head.as_ref().map(|h| h.sha256.clone()),
                previous_manifest_signature: self.head.as_ref().map(|h| h.signature.clone()),
                entries: entries.to_vec(),
            };
            let bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
            let signature = self
                .sign(&key, manifest.string_to_sign(&key, &bytes))
                .await?;
            match self.put(&key, &bytes, &signature, created_at).await {
                Ok(()) => {
                    self.head = Some(Head {
                        sequence,
                        key: key.clone(),
                        sha256: hex::encode(Sha256::digest(&bytes)),
                        signature,
                    });
                    return Ok(Written {
                        key,
                        sequence,
                        entries: entries.len(),
                    });
                }
                // Another replica took this number, or we did: a write whose answer was lost
                // is retried (by the SDK) and finds itself. Ours is done; theirs becomes our
                // previous manifest.
                Err(failure) if failure.is_status(412) || failure.is_status(409) => {
                    let head = self.read_head(sequence).await?;
                    let ours = head.sha256 == hex::encode(Sha256::digest(&bytes));
                    self.head = Some(head);
                    if ours {
                        return Ok(Written {
                            key,
                            sequence,
                            entries: entries.len(),
                        });
                    }
                }
                Err(failure) => {
                    return Err(ManifestError::Write {
                        bucket: self.bucket.clone(),
                        key,
                        failure,
                    })
                }
            }
        }
        Err(ManifestError::Contended { attempts: ATTEMPTS })
    }

    async fn sign(&self, key: &str, string_to_sign: String) -> Result<String, ManifestError> {
        let out = self
            .kms
            .sign()
            .key_id(&self.signing_key)
            .message(Blob::new(string_to_sign.into_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| ManifestError::Sign {
                key: key.to_owned(),
                signing_key: self.signing_key.clone(),
                failure: Failure::from_sdk(&e),
            })?;
        Ok(hex::encode(
            out.signature().map(|b| b.as_ref()).unwrap_or_default(),
        ))
    }

    /// Writes a manifest only if its number is free, encrypted and locked like every copy.
    async fn put(
        &self,
        key: &str,
        bytes: &[u8],
        signature: &str,
        created_at: OffsetDateTime,
    ) -> Result<(), Failure> {
        crate::failpoint::hit("manifest_signed");
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
        let until = retain_until(created_at, self.lock.period);
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type("application/json")
            .metadata(digest::SIGNATURE_METADATA, signature)
            .metadata(digest::SIGNATURE_ALGORITHM_METADATA, SIGNING_ALGORITHM)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_arn)
            .bucket_key_enabled(true)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .object_lock_mode(object_lock_mode(self.lock.mode))
            .object_lock_retain_until_date(DateTime::from_secs(until.unix_timestamp()))
            .if_none_match("*")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Failure::from_sdk(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_is_shaped_like_cloudtrails() {
        let m = Manifest {
            manifest_version: 1,
            archive_bucket: "archive".to_owned(),
            sequence: 2,
            writer: "w".to_owned(),
            period_start: "2026-11-30T05:00:00Z".to_owned(),
            period_end: "2026-11-30T06:00:00Z".to_owned(),
            created_at: "2026-11-30T06:00:01Z".to_owned(),
            signing_key: "k".to_owned(),
            signature_algorithm: SIGNING_ALGORITHM.to_owned(),
            previous_manifest_key: Some(key(1)),
            previous_manifest_hash_value: Some("aa".to_owned()),
            previous_manifest_signature: Some("bb".to_owned()),
            entries: Vec::new(),
        };
        let s = m.string_to_sign(&key(2), b"");
        assert_eq!(
            s,
            "2026-11-30T06:00:01Z\narchive/_trailvault/manifests/000000000002.json\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nbb"
        );
    }
}
