//! The check of what S3 stored, and a duplicate's lock made good.

use time::OffsetDateTime;

use super::error::{archive_error, CopyError};
use super::write::PutAnswer;
use super::Copier;
use crate::archive::layout::meta;
use crate::aws::hash::sha256_of;
use crate::aws::Head;
use crate::retention::{self, lock::set_retention};

impl Copier {
    /// The archive key's version (`None`: the current one), or `None` when the key does not
    /// exist.
    pub(super) async fn head_archive(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<Head>, CopyError> {
        // With S3's stored checksum: it is what a written or found version is judged by.
        match Head::read(&self.archive, &self.bucket, key, version, true).await {
            Ok(head) => Ok(Some(head)),
            Err(e) => {
                let failure = e.failure;
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

    /// Whether a version found at the archive key holds these very bytes, judged as a first
    /// write is, never by trailvault's own metadata (any writer to the archive can set it):
    /// its size, S3's stored SHA-256 (or, where S3 keeps none for the whole object, the
    /// bytes read back and hashed), and its encryption under the archive key. `Ok(None)`:
    /// it does; `Ok(Some(why))`: it does not, and the copy is a conflict, kept apart (see the
    /// module documentation).
    pub(super) async fn vouch(
        &self,
        key: &str,
        v: &Head,
        size: u64,
        sha: &[u8; 32],
    ) -> Result<Option<String>, CopyError> {
        if v.size != size {
            return Ok(Some(format!("{} bytes instead of {size}", v.size)));
        }
        if v.sse.as_deref() != Some("aws:kms") || v.kms_key.as_deref() != Some(&self.kms_key_arn) {
            return Ok(Some(format!(
                "encrypted with {:?} under {:?}, not aws:kms under the archive key",
                v.sse, v.kms_key
            )));
        }
        let stored = match v.sha256 {
            Some(stored) => stored,
            None => sha256_of(&self.archive, &self.bucket, key, v.version_id.as_deref())
                .await
                .map_err(|failure| CopyError::ArchiveWrite {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    failure,
                })?,
        };
        Ok((stored != *sha).then(|| "its bytes are not the source's".to_owned()))
    }

    /// Whether S3's answer to a single-part `PutObject` proves the version is what was meant,
    /// with no read back. By S3's documented behaviour, a 200 to that request means: the
    /// bytes matched the `x-amz-checksum-sha256` sent (S3 refuses the upload otherwise), so
    /// also their size; the lock headers were applied (S3 refuses them on a bucket without
    /// Object Lock, and an explicit mode and date override the bucket's default); the user
    /// metadata is what was sent (a write is atomic). What the answer must still show is
    /// what S3 chose: the version it created, and the encryption and key it applied (a
    /// bucket's default or a policy could differ), and the checksum it verified. Anything
    /// missing or different, and the version is read back and checked in full.
    pub(super) fn proves(&self, answer: &PutAnswer, sha: &[u8; 32]) -> bool {
        answer.version_id.as_deref().is_some_and(|v| v != "null")
            && answer.sse.as_deref() == Some("aws:kms")
            && answer.kms_key.as_deref() == Some(self.kms_key_arn.as_str())
            && answer.sha256.as_ref() == Some(sha)
    }

    /// What is wrong with a written version, if anything.
    pub(super) fn check(
        &self,
        v: &Head,
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
        // S3 verified the checksum sent with a single-part upload; a multipart one keeps a
        // checksum of its parts' checksums, checked part by part on upload.
        if let Some(stored) = v.sha256 {
            if hex::encode(stored) != sha {
                return Some(format!(
                    "S3's stored SHA-256 is {}, not the source's",
                    hex::encode(stored)
                ));
            }
        }
        if v.sse.as_deref() != Some("aws:kms") || v.kms_key.as_deref() != Some(&self.kms_key_arn) {
            return Some(format!(
                "encrypted with {:?} under {:?}, not aws:kms under {}",
                v.sse, v.kms_key, self.kms_key_arn
            ));
        }
        if v.lock_mode != Some(self.lock.mode)
            || v.retain_until.is_none_or(|until| until < retain_until)
        {
            return Some(format!(
                "locked {:?} until {:?}, not {} until {retain_until}",
                v.lock_mode, v.retain_until, self.lock.mode,
            ));
        }
        None
    }

    /// Makes an archived version's lock at least what the policy gives it from the time it
    /// was archived (never shorter, never weaker). Returns whether it had to change anything.
    pub(super) async fn ensure_locked(&self, key: &str, v: &Head) -> Result<bool, CopyError> {
        let archived_at = retention::archived_at(v.stamp(), v.last_modified)
            .unwrap_or_else(OffsetDateTime::now_utc);
        let judgement = retention::judge(self.lock, archived_at, v.lock_mode, v.retain_until);
        let Some((mode, until)) = judgement.fix else {
            return Ok(false);
        };
        set_retention(
            &self.archive,
            &self.bucket,
            key,
            v.version_id.as_deref(),
            v.lock_mode,
            mode,
            until,
        )
        .await
        .map_err(|e| archive_error(&self.bucket, key, &e))?;
        tracing::warn!(
            archive_key = %crate::archive::layout::printable(key),
            version_id = v.version_id.as_deref().unwrap_or("null"),
            was = judgement.standing.label(),
            "an archived version's lock fell short of the policy; extended"
        );
        Ok(true)
    }
}
