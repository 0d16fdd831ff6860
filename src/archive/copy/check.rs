//! The check of what S3 stored, and a duplicate's lock made good.

use time::OffsetDateTime;

use super::error::{archive_error, CopyError};
use super::Copier;
use crate::archive::layout::meta;
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
        match Head::read(&self.archive, &self.bucket, key, version, false).await {
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
            archive_key = key,
            version_id = v.version_id.as_deref().unwrap_or("null"),
            was = judgement.standing.label(),
            "an archived version's lock fell short of the policy; extended"
        );
        Ok(true)
    }
}
