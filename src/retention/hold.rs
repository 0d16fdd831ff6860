//! Legal holds: for an investigation, every version of an archive key (or of every key under
//! a prefix) is held, whatever its retention, until the hold is removed.
//!
//! S3's legal hold is a bare ON/OFF flag. Who placed it, when and why are kept beside it as
//! tags on the same version (`trailvault-hold-by`, `-at`, `-reason`), which S3 allows on
//! locked versions, and in the log line every change writes. A version already held keeps
//! its first record: a second hold does not overwrite the first investigation's reason.

use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus, Tag, Tagging};
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aws::{Failure, Head, Version, Versions};

pub const TAG_BY: &str = "trailvault-hold-by";
pub const TAG_AT: &str = "trailvault-hold-at";
pub const TAG_REASON: &str = "trailvault-hold-reason";
const TAG_PREFIX: &str = "trailvault-hold-";

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(
        "cannot list the versions in archive bucket {bucket} under {prefix:?}: {}; the \
         identity needs s3:ListBucketVersions on it",
        failure.detail
    )]
    List {
        bucket: String,
        prefix: String,
        failure: Failure,
    },
    #[error(
        "nothing in archive bucket {bucket} is at or under {target:?}; give an archive key \
         ({{key_prefix}}{{source bucket}}/{{source key}}) or a prefix of one, as `aws s3 ls` \
         shows them"
    )]
    NotFound { bucket: String, target: String },
}

/// One version and its hold.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub key: String,
    pub version_id: String,
    pub held: bool,
    pub by: Option<String>,
    pub at: Option<String>,
    pub reason: Option<String>,
    /// `held`, `already held`, `released`, `not held`, or what failed.
    pub outcome: String,
    pub failed: bool,
}

/// Places, removes and lists legal holds in one archive bucket.
pub struct Holds {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub concurrency: usize,
}

impl Holds {
    /// Holds every version of `target` (a key, or else every key under it as a prefix).
    pub async fn put(&self, target: &str, who: &str, reason: &str) -> Result<Vec<Held>, HoldError> {
        let versions = self.targets(target).await?;
        let at = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
            .format(&Rfc3339)
            .unwrap_or_default();
        let record = [
            (TAG_BY, tag_value(who)),
            (TAG_AT, at),
            (TAG_REASON, tag_value(reason)),
        ];
        Ok(self.each(versions, |v| self.put_one(v, &record)).await)
    }

    /// Releases every version of `target` from its legal hold.
    pub async fn remove(&self, target: &str) -> Result<Vec<Held>, HoldError> {
        let versions = self.targets(target).await?;
        Ok(self.each(versions, |v| self.remove_one(v)).await)
    }

    /// Every held version under `prefix` (the whole archive when `None`).
    pub async fn list(&self, prefix: Option<&str>) -> Result<Vec<Held>, HoldError> {
        let mut pages = Versions::new(self.s3.clone(), &self.bucket, prefix);
        let mut held = Vec::new();
        loop {
            let page = pages.next_page().await.map_err(|failure| HoldError::List {
                bucket: self.bucket.clone(),
                prefix: prefix.unwrap_or_default().to_owned(),
                failure,
            })?;
            let Some(page) = page else { break };
            let found = self.each(page.versions, |v| self.status(v)).await;
            held.extend(found.into_iter().filter(|h| h.held || h.failed));
        }
        Ok(held)
    }

    /// The versions `target` names: those of the key `target` if there is one, else of every
    /// key under it.
    async fn targets(&self, target: &str) -> Result<Vec<Version>, HoldError> {
        let mut versions = Versions::new(self.s3.clone(), &self.bucket, Some(target))
            .all()
            .await
            .map_err(|failure| HoldError::List {
                bucket: self.bucket.clone(),
                prefix: target.to_owned(),
                failure,
            })?;
        if versions.iter().any(|v| v.key == target) {
            versions.retain(|v| v.key == target);
        }
        if versions.is_empty() {
            return Err(HoldError::NotFound {
                bucket: self.bucket.clone(),
                target: target.to_owned(),
            });
        }
        Ok(versions)
    }

    async fn each<'a, F, Fut>(&'a self, versions: Vec<Version>, op: F) -> Vec<Held>
    where
        F: Fn(Version) -> Fut,
        Fut: std::future::Future<Output = Held> + 'a,
    {
        let mut out: Vec<Held> = stream::iter(versions)
            .map(op)
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        out.sort_by(|a, b| (&a.key, &a.version_id).cmp(&(&b.key, &b.version_id)));
        out
    }

    async fn put_one(&self, v: Version, record: &[(&str, String); 3]) -> Held {
        let current = self.status(v.clone()).await;
        if current.failed || current.held {
            return Held {
                outcome: if current.failed {
                    current.outcome.clone()
                } else {
                    "already held".to_owned()
                },
                ..current
            };
        }
        // The record first: a hold that is on must always say who placed it and why.
        let mut tags: Vec<Tag> = match self.tags(&v).await {
            Ok(tags) => tags,
            Err(e) => return failed(&v, e),
        };
        tags.retain(|t| !t.key().starts_with(TAG_PREFIX));
        for (key, value) in record {
            tags.push(
                Tag::builder()
                    .key(*key)
                    .value(value)
                    .build()
                    .expect("key and value"),
            );
        }
        if let Err(e) = self.put_tags(&v, tags).await {
            return failed(&v, e);
        }
        if let Err(e) = self.set_hold(&v, true).await {
            return failed(&v, e);
        }
        Held {
            key: v.key,
            version_id: version_label(&v.version_id),
            held: true,
            by: Some(record[0].1.clone()),
            at: Some(record[1].1.clone()),
            reason: Some(record[2].1.clone()),
            outcome: "held".to_owned(),
            failed: false,
        }
    }

    async fn remove_one(&self, v: Version) -> Held {
        let current = self.status(v.clone()).await;
        if current.failed || !current.held {
            return Held {
                outcome: if current.failed {
                    current.outcome.clone()
                } else {
                    "not held".to_owned()
                },
                ..current
            };
        }
        if let Err(e) = self.set_hold(&v, false).await {
            return failed(&v, e);
        }
        // The record goes with the hold; the log line of the release keeps it.
        match self.tags(&v).await {
            Ok(mut tags) => {
                tags.retain(|t| !t.key().starts_with(TAG_PREFIX));
                if let Err(e) = self.put_tags(&v, tags).await {
                    return failed(&v, e);
                }
            }
            Err(e) => return failed(&v, e),
        }
        Held {
            held: false,
            outcome: "released".to_owned(),
            ..current
        }
    }

    /// A version's hold and its record.
    async fn status(&self, v: Version) -> Held {
        let head = match Head::of(&self.s3, &self.bucket, &v).await {
            Ok(head) => head,
            Err(e) => return failed(&v, e),
        };
        let held = head.legal_hold;
        let tags = if held {
            match self.tags(&v).await {
                Ok(tags) => tags,
                Err(e) => return failed(&v, e),
            }
        } else {
            Vec::new()
        };
        let tag = |name: &str| {
            tags.iter()
                .find(|t| t.key() == name)
                .map(|t| t.value().to_owned())
        };
        Held {
            key: v.key.clone(),
            version_id: version_label(&v.version_id),
            held,
            by: tag(TAG_BY),
            at: tag(TAG_AT),
            reason: tag(TAG_REASON),
            outcome: if held { "held" } else { "not held" }.to_owned(),
            failed: false,
        }
    }

    async fn set_hold(&self, v: &Version, on: bool) -> Result<(), VersionCallError> {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.s3
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(&v.key)
            .set_version_id(v.version_id.clone())
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| VersionCallError::new("PutObjectLegalHold", "s3:PutObjectLegalHold", &e))
    }

    async fn tags(&self, v: &Version) -> Result<Vec<Tag>, VersionCallError> {
        self.s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(&v.key)
            .set_version_id(v.version_id.clone())
            .send()
            .await
            .map(|out| out.tag_set().to_vec())
            .map_err(|e| {
                VersionCallError::new("GetObjectTagging", "s3:GetObjectVersionTagging", &e)
            })
    }

    async fn put_tags(&self, v: &Version, tags: Vec<Tag>) -> Result<(), VersionCallError> {
        if tags.is_empty() {
            return self
                .s3
                .delete_object_tagging()
                .bucket(&self.bucket)
                .key(&v.key)
                .set_version_id(v.version_id.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    VersionCallError::new(
                        "DeleteObjectTagging",
                        "s3:DeleteObjectVersionTagging",
                        &e,
                    )
                });
        }
        self.s3
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(&v.key)
            .set_version_id(v.version_id.clone())
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .expect("tag set is set"),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                VersionCallError::new("PutObjectTagging", "s3:PutObjectVersionTagging", &e)
            })
    }
}

/// An S3 call on a version that failed, and the permission it needs.
#[derive(Debug, thiserror::Error)]
#[error("{action} failed: {}; the identity needs {permission}", failure.detail)]
pub struct VersionCallError {
    action: &'static str,
    permission: &'static str,
    failure: Failure,
}

impl VersionCallError {
    fn new<E, R>(
        action: &'static str,
        permission: &'static str,
        e: &aws_sdk_s3::error::SdkError<E, R>,
    ) -> VersionCallError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + crate::aws::errors::HasStatus + 'static,
    {
        VersionCallError {
            action,
            permission,
            failure: Failure::from_sdk(e),
        }
    }
}

fn failed(v: &Version, why: impl std::fmt::Display) -> Held {
    Held {
        key: v.key.clone(),
        version_id: version_label(&v.version_id),
        held: false,
        by: None,
        at: None,
        reason: None,
        outcome: why.to_string(),
        failed: true,
    }
}

fn version_label(id: &Option<String>) -> String {
    id.clone().unwrap_or_else(|| "null".to_owned())
}

/// S3 tag values allow letters, digits, spaces and `+ - = . _ : / @`, up to 256 characters;
/// anything else becomes a space.
pub fn tag_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(256)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_keep_what_s3_allows() {
        assert_eq!(
            tag_value("arn:aws:sts::111122223333:assumed-role/Auditor/jane@example.com"),
            "arn:aws:sts::111122223333:assumed-role/Auditor/jane@example.com"
        );
        assert_eq!(tag_value("case #42, fraud (Q3)"), "case  42  fraud  Q3");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }
}
